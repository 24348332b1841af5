//! `sapix-sim`: hunt for failing seeds, or replay one with its full trace.
//!
//! ```text
//! sapix-sim run [--seeds N | --seconds T] [--start S (default: random)] [--jobs J] [--bug NAME]...
//! sapix-sim replay <seed> [--bug NAME]... [--quiet] [OVERRIDES]
//! sapix-sim shrink <seed> [--bug NAME]...
//! ```
//!
//! `OVERRIDES` change what the seed drew (see `sapix_sim::overrides`): `--members N`,
//! `--spares N`, `--active SECS`, `--writes PER_SEC`, `--no-fault CLASS`, `--no-op CLASS`.
//! `shrink` finds the smallest set of them under which the same checker still fails and
//! prints the replay command that carries them.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sapix_core::node::planted::PlantedBug;
use sapix_sim::overrides::{class_names, Overrides};
use sapix_sim::runner::{self, Budget};
use sapix_sim::shrink;
use sapix_sim::trace::Trace;

const USAGE: &str = "usage:
  sapix-sim run [--seeds N | --seconds T] [--start S] [--jobs J] [--bug NAME]...
  sapix-sim replay <seed> [--bug NAME]... [--quiet] [OVERRIDES]
  sapix-sim shrink <seed> [--bug NAME]...
overrides: --members N --spares N --active SECS --writes PER_SEC
           --no-fault CLASS --no-op CLASS (each repeatable)
bugs: cp-ack-before-peers ingest-ack-before-durable push-before-durable
      cursor-before-durable failed-push-counts-as-delivered
      stale-permit-past-deny queue-overflow-drops position-before-durable";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(cmd) => cmd.run(),
        Err(e) => {
            eprintln!(
                "{e}\n{USAGE}\nfault classes: {}\nop classes: {}",
                class_names(true),
                class_names(false)
            );
            ExitCode::from(2)
        }
    }
}

enum Cmd {
    Run {
        budget: Budget,
        start: u64,
        jobs: usize,
        bugs: Vec<PlantedBug>,
    },
    Replay {
        seed: u64,
        bugs: Vec<PlantedBug>,
        quiet: bool,
        overrides: Overrides,
    },
    Shrink {
        seed: u64,
        bugs: Vec<PlantedBug>,
    },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let (cmd, rest) = args.split_first().ok_or("no command")?;
    let mut budget = Budget::Seeds(1000);
    // A hunt starts from a fresh random seed unless told where (it prints the start first).
    let mut start = None;
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bugs = Vec::new();
    let mut quiet = false;
    let mut seed = None;
    let mut overrides = Overrides::default();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            o if o.starts_with("--no-")
                || ["--members", "--spares", "--active", "--writes"].contains(&o) =>
            {
                overrides.parse_arg(o, value()?)?;
            }
            "--seeds" => budget = Budget::Seeds(number(value()?)?),
            "--seconds" => budget = Budget::Time(Duration::from_secs(number(value()?)?)),
            "--start" => start = Some(number(value()?)?),
            "--jobs" => jobs = number(value()?)? as usize,
            "--bug" => {
                let v = value()?;
                bugs.push(runner::parse_bug(v).ok_or(format!("unknown bug {v}"))?);
            }
            "--quiet" => quiet = true,
            s if seed.is_none() && !s.starts_with("--") => seed = Some(number(s)?),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    match cmd.as_str() {
        "run" if overrides.is_empty() => Ok(Cmd::Run {
            budget,
            start: seed.or(start).unwrap_or_else(runner::fresh_start),
            jobs,
            bugs,
        }),
        "replay" => Ok(Cmd::Replay {
            seed: seed.ok_or("replay needs a seed")?,
            bugs,
            quiet,
            overrides,
        }),
        "shrink" if overrides.is_empty() => Ok(Cmd::Shrink {
            seed: seed.ok_or("shrink needs a seed")?,
            bugs,
        }),
        "run" | "shrink" => Err(format!("overrides are for replay, not {cmd}")),
        other => Err(format!("unknown command {other}")),
    }
}

fn number(s: &str) -> Result<u64, String> {
    runner::parse_seed(s).ok_or(format!("not a number: {s}"))
}

impl Cmd {
    fn run(self) -> ExitCode {
        match self {
            Cmd::Run {
                budget,
                start,
                jobs,
                bugs,
            } => {
                println!("hunting from seed 0x{start:016x} ({budget:?}, {jobs} threads)");
                let sum = runner::hunt(start, budget, jobs, &bugs, false, &|r| {
                    runner::print_failure(r, &bugs)
                });
                println!("{}", sum.line(jobs));
                println!("{}", sum.coverage);
                if sum.failures.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Cmd::Replay {
                seed,
                bugs,
                quiet,
                overrides,
            } => {
                let trace = if quiet {
                    Trace::quiet()
                } else {
                    Trace::to(Box::new(BufWriter::new(std::io::stdout())))
                };
                let began = Instant::now();
                let r = runner::run_seed_with(seed, &bugs, &overrides, trace);
                let secs = began.elapsed().as_secs_f64();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "seed 0x{seed:016x}: {} events, {:.1} simulated s, trace hash 0x{:016x}, {:.0} events/s, {:?}",
                    r.events,
                    r.sim_time as f64 / 1e6,
                    r.trace_hash,
                    r.events as f64 / secs.max(1e-9),
                    r.stats
                );
                match &r.violation {
                    None => {
                        let _ = writeln!(out, "PASSED");
                        ExitCode::SUCCESS
                    }
                    Some(v) => {
                        let _ = writeln!(out, "FAILED {v}");
                        ExitCode::FAILURE
                    }
                }
            }
            Cmd::Shrink { seed, bugs } => shrink(seed, &bugs),
        }
    }
}

fn shrink(seed: u64, bugs: &[PlantedBug]) -> ExitCode {
    println!("shrinking seed 0x{seed:016x}");
    let found = shrink::shrink(seed, bugs, &mut |line| println!("  {line}"));
    match found {
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Ok(s) => {
            println!("as drawn: FAILED {}", s.original);
            println!(
                "smallest configuration ({} runs), FAILED {}:\n{}",
                s.runs, s.violation, s.config
            );
            println!(
                "replay: {}",
                runner::replay_command_with(seed, bugs, &s.overrides)
            );
            ExitCode::SUCCESS
        }
    }
}
