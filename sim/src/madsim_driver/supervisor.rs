//! The supervisor of a madsim run: the nodes' creation, the clients and faults as Poisson
//! processes on madsim's main node, the heal and the liveness judgement, and the runtime
//! seeded per run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use madsim::net::NetSim;
use madsim::runtime::{Handle, Runtime};
use madsim::time::{sleep, sleep_until, Instant};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::planted::PlantedBug;

use super::{ip, lock, micros, node_main, Cluster, Madsim, MAX_EVENTS, TICK};
use crate::codios::CodiosEv;
use crate::config::{poisson_gap, stream, Config, Episodes, Micros, Stream};
use crate::overrides::Class;
use crate::trace::Trace;
use crate::workload::Op;
use crate::world::{Phase, Report, World};

/// One class of client operation, as a Poisson process on the supervisor.
async fn clients(cl: Cluster, op: Op, first: Micros) {
    sleep(micros(first)).await;
    loop {
        let next = {
            let mut s = lock(&cl);
            if s.phase != Phase::Active || s.violation.is_some() {
                return;
            }
            s.client_op(op)
        };
        let Some(g) = next else { return };
        sleep(micros(g)).await;
    }
}

/// Codios's changes (policy flips, outages, slow spells, flapping) as Layer 0 draws them,
/// each at its time (ties in the order they were drawn), from `due` on; madsim's clock
/// started at `start`.
async fn codios(cl: Cluster, start: Instant, due: Vec<(Micros, CodiosEv)>) {
    let mut queue = BTreeMap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BTreeMap<_, _>, (at, ev): (Micros, CodiosEv)| {
        queue.insert((at, seq), ev);
        seq += 1;
    };
    for d in due {
        push(&mut queue, d);
    }
    while let Some(((at, _), ev)) = queue.pop_first() {
        sleep_until(start + micros(at)).await;
        let mut s = lock(&cl);
        if s.violation.is_some() {
            return;
        }
        for d in s.codios_changes(ev) {
            push(&mut queue, d);
        }
    }
}

/// A class of fault, as a Poisson process on the supervisor.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Crash(Episodes),
    Pause(Episodes),
    Partition(Episodes),
    OneWay(Episodes),
    Storage(f64),
}

async fn faults(cl: Cluster, kind: Kind, mut rng: ChaCha8Rng) {
    let rate = match kind {
        Kind::Crash(e) | Kind::Pause(e) | Kind::Partition(e) | Kind::OneWay(e) => e.per_sec,
        Kind::Storage(r) => r,
    };
    loop {
        sleep(micros(poisson_gap(&mut rng, rate))).await;
        let mut s = lock(&cl);
        if s.phase != Phase::Active || s.violation.is_some() {
            return;
        }
        let n = s.hosts.len();
        let i = rng.gen_range(0..n);
        let handle = Handle::current();
        match kind {
            Kind::Crash(e) if s.up(i) => {
                s.coverage.fire(Class::Crashes);
                handle.kill(s.d.ids[i]);
                s.crash(i);
                let (cl2, inc, down) = (Arc::downgrade(&cl), s.hosts[i].inc, e.length(&mut rng));
                drop(s);
                madsim::task::spawn(async move {
                    sleep(micros(down)).await;
                    let Some(cl2) = cl2.upgrade() else { return };
                    let s = lock(&cl2);
                    if !s.up(i) && s.hosts[i].inc == inc && s.phase == Phase::Active {
                        let id = s.d.ids[i];
                        drop(s);
                        Handle::current().restart(id);
                    }
                });
            }
            Kind::Pause(e) if s.up(i) && !s.d.paused[i] => {
                s.coverage.fire(Class::Pauses);
                s.d.paused[i] = true;
                let (id, inc, stall) = (s.d.ids[i], s.hosts[i].inc, e.length(&mut rng));
                s.line(|| format!("n{i} stalls for {stall}µs"));
                handle.pause(id);
                drop(s);
                let cl2 = Arc::downgrade(&cl);
                madsim::task::spawn(async move {
                    sleep(micros(stall)).await;
                    let Some(cl2) = cl2.upgrade() else { return };
                    let mut s = lock(&cl2);
                    if s.hosts[i].inc == inc && s.d.paused[i] {
                        s.d.paused[i] = false;
                        Handle::current().resume(id);
                    }
                });
            }
            Kind::Partition(e) | Kind::OneWay(e) => {
                let links: Vec<(usize, usize)> = if let Kind::OneWay(_) = kind {
                    let b = (i + rng.gen_range(1..n)) % n;
                    vec![(i, b)]
                } else {
                    let side: Vec<bool> = loop {
                        let s: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
                        if s.iter().any(|x| *x) && s.iter().any(|x| !*x) {
                            break s;
                        }
                    };
                    (0..n)
                        .flat_map(|a| (0..n).map(move |b| (a, b)))
                        .filter(|&(a, b)| side[a] != side[b])
                        .collect()
                };
                s.coverage.fire(match kind {
                    Kind::OneWay(_) => Class::OneWay,
                    _ => Class::Partitions,
                });
                s.cut(&links, false);
                s.line(|| format!("cut {links:?}"));
                let (cl2, generation, len) =
                    (Arc::downgrade(&cl), s.d.generation, e.length(&mut rng));
                drop(s);
                madsim::task::spawn(async move {
                    sleep(micros(len)).await;
                    let Some(cl2) = cl2.upgrade() else { return };
                    let mut s = lock(&cl2);
                    if s.d.generation == generation {
                        s.cut(&links, true);
                    }
                });
            }
            Kind::Storage(_) if s.up(i) => {
                s.coverage.fire(Class::Storage);
                s.stores[i].broken = true;
                s.line(|| format!("n{i} storage fails"));
            }
            _ => {}
        }
    }
}

/// Faults stop, every link heals, down, broken (or, on some seeds, all) nodes restart.
fn heal(cl: &Cluster) {
    let mut s = lock(cl);
    s.faults_stop();
    s.d.generation += 1;
    let n = s.hosts.len();
    let net = NetSim::current();
    for a in 0..n {
        for b in 0..n {
            if s.d.cuts[a * n + b] > 0 {
                s.d.cuts[a * n + b] = 0;
                net.unclog_link(s.d.ids[a], s.d.ids[b]);
            }
        }
    }
    net.update_config(|c| c.packet_loss_rate = 0.0);
    madsim::buggify::disable();
    let handle = Handle::current();
    for i in 0..n {
        if s.d.paused[i] {
            s.d.paused[i] = false;
            handle.resume(s.d.ids[i]);
        }
        if s.cfg.leave_down == Some(i) {
            handle.kill(s.d.ids[i]);
            s.crash(i);
            s.line(|| format!("n{i} stays down for good"));
        } else if s.cfg.restart_all || !s.up(i) || s.stores[i].broken {
            // Kill before the disk crashes, so no task of the old process sees the new disk.
            handle.kill(s.d.ids[i]);
            s.crash(i);
            handle.restart(s.d.ids[i]);
        }
    }
}

async fn supervise(cfg: Config, trace: Trace) -> Report {
    let (n, seed) = (cfg.total(), cfg.seed);
    super::LIVE.with(|l| l.set(l.get() + 1));
    let cl: Cluster = Arc::new_cyclic(|me| {
        let madsim = Madsim {
            me: me.clone(),
            start: Instant::now(),
            ids: Vec::new(),
            eps: vec![None; n],
            timers: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
            cuts: vec![0; n * n],
            generation: 0,
        };
        Mutex::new(World::build(cfg.clone(), trace, madsim))
    });
    let (firsts, codios_firsts, start) = {
        let mut s = lock(&cl);
        let cfg_line = cfg.to_string();
        s.line(|| format!("config (madsim driver)\n{cfg_line}"));
        (s.work.first(), s.codios.first(), s.d.start)
    };
    let handle = Handle::current();
    for i in 0..n {
        let cl2 = cl.clone();
        let node = handle
            .create_node()
            .name(crate::world::agent_name(i))
            .ip(ip(i))
            .init(move || node_main(cl2.clone(), i))
            .build();
        lock(&cl).d.ids.push(node.id());
    }
    let mut tasks = Vec::new();
    for (first, op) in firsts {
        tasks.push(madsim::task::spawn(clients(cl.clone(), op, first)));
    }
    if !codios_firsts.is_empty() {
        // Only on Codios seeds: another task would change how madsim schedules every seed.
        tasks.push(madsim::task::spawn(codios(
            cl.clone(),
            start,
            codios_firsts,
        )));
    }
    let mut fault_rng = stream(seed, Stream::Faults);
    let d = &cfg.nodes;
    let kinds = [
        d.crashes.map(Kind::Crash),
        d.pauses.map(Kind::Pause),
        cfg.net.partitions.map(Kind::Partition),
        cfg.net.one_way.map(Kind::OneWay),
        d.storage_faults.map(Kind::Storage),
    ];
    for kind in kinds.into_iter().flatten() {
        // Each class draws from its own stream, so the order madsim runs them in does not
        // change what any of them draws.
        let rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(fault_rng.gen());
        tasks.push(madsim::task::spawn(faults(cl.clone(), kind, rng)));
    }

    let active = cfg.active;
    let watch = |s: &mut World<Madsim>| {
        if s.events > MAX_EVENTS {
            s.fail("world", format!("more than {MAX_EVENTS} steps: runaway"));
        }
        s.violation.is_some()
    };
    loop {
        sleep(micros(TICK)).await;
        let mut s = lock(&cl);
        if watch(&mut s) || s.now >= active {
            break;
        }
    }
    if lock(&cl).violation.is_none() {
        heal(&cl);
        loop {
            sleep(micros(TICK)).await;
            let mut s = lock(&cl);
            if watch(&mut s) || !s.settling() {
                break;
            }
        }
    }
    let report = lock(&cl).finish();
    teardown(&cl, tasks).await;
    report
}

/// Ends every task that holds the world, so it is dropped with the run. A task sleeping in
/// madsim's timer is kept alive by the timer, and its sleep keeps the timer alive: a cycle
/// that leaked a whole run (~0.7 MB) per seed, until a long hunt ran out of memory.
async fn teardown(cl: &Cluster, supervisor: Vec<madsim::task::JoinHandle<()>>) {
    let handle = Handle::current();
    {
        let mut s = lock(cl);
        for &id in &s.d.ids {
            handle.kill(id);
        }
        s.d.eps.clear();
        s.d.timers.clear();
    }
    for task in &supervisor {
        task.abort();
    }
    // The killed and aborted tasks are dropped when madsim next runs its ready queue.
    sleep(micros(1)).await;
}

/// Runs `seed` (the same swarm [`Config`] Layer 0 draws for it) with `bugs` planted, in a
/// madsim runtime seeded with it.
pub fn run_seed(seed: u64, bugs: &[PlantedBug], trace: Trace) -> Report {
    let mut cfg = Config::draw(seed);
    cfg.bugs = bugs.to_vec();
    let mut knobs = stream(seed, Stream::Network);
    let (lo, hi) = cfg.net.latency;
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = cfg.net.loss;
    config.net.send_latency = micros(lo)..micros(hi.max(lo + 1));
    let buggify = knobs.gen_bool(0.3);
    let rt = Runtime::with_seed_and_config(seed, config);
    rt.block_on(async move {
        if buggify {
            // madsim's own chaos: now and then a send or receive waits 1–5 s.
            madsim::buggify::enable();
        }
        supervise(cfg, trace).await
    })
}

/// The one command that replays `seed` under the madsim driver with its trace printed.
pub fn replay_command(seed: u64, bugs: &[PlantedBug]) -> String {
    let mut cmd = format!("SAPIX_MADSIM_REPLAY=0x{seed:016x}");
    if !bugs.is_empty() {
        let names: Vec<&str> = bugs.iter().map(|b| crate::runner::bug_name(*b)).collect();
        cmd.push_str(&format!(" SAPIX_MADSIM_BUGS={}", names.join(",")));
    }
    cmd.push_str(" cargo madsim-test replay -- --nocapture");
    cmd
}
