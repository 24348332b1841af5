//! The durability claims of the strand and the state files, on turmoil's simulated file system
//! ([`TurmoilDisk`]), where a crash keeps only what was fsynced and a directory entry only once
//! its parent was fsynced. Each test does something on a host, crashes (or bounces) it, and
//! looks at what the restarted host finds.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use sapix_core::{
    AgentId, Block, BlockBody, Collection, Hash, KeySchedule, MasterSeed, UnixMillis,
};
use sapix_runtime::disk::{ensure_dir, Disk, OpenHow};
use sapix_runtime::state_file;
use sapix_runtime::strand::{Strand, StrandOptions};
use sapix_tests::turmoil_disk::{Lie, TurmoilDisk};

/// How the host goes down between the two phases.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Down {
    /// Power cut: `Sim::crash`, then a restart.
    Crash,
    /// Process restart: `Sim::bounce` (the kernel keeps unsynced writes).
    Bounce,
}

/// Runs `first` on a fresh host, takes the host down as `down` says, and returns what `then`
/// finds on the restarted host. Both phases see a disk that tells `lie`, if any.
fn across_restart<T: 'static>(
    down: Down,
    lie: Option<Lie>,
    first: impl Fn(&TurmoilDisk) + 'static,
    then: impl Fn(&TurmoilDisk) -> T + 'static,
) -> T {
    let mut builder = turmoil::Builder::new();
    builder.fs();
    let mut sim = builder.build();
    let boots = Rc::new(Cell::new(0u32));
    let found: Rc<RefCell<Option<T>>> = Rc::default();
    let (first, then) = (Rc::new(first), Rc::new(then));
    {
        let (boots, found) = (boots.clone(), found.clone());
        sim.host("h", move || {
            let (boots, found, first, then) =
                (boots.clone(), found.clone(), first.clone(), then.clone());
            async move {
                let disk = TurmoilDisk::current(lie);
                if boots.get() == 0 {
                    first(&disk);
                } else {
                    *found.borrow_mut() = Some(then(&disk));
                }
                boots.set(boots.get() + 1);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    let step_until = |sim: &mut turmoil::Sim<'_>, n: u32| {
        for _ in 0..100 {
            if boots.get() >= n {
                return;
            }
            sim.step().expect("simulation step");
        }
        panic!("the host did not boot {n} times");
    };
    step_until(&mut sim, 1);
    match down {
        Down::Crash => {
            sim.crash("h");
            sim.bounce("h");
        }
        Down::Bounce => sim.bounce("h"),
    }
    step_until(&mut sim, 2);
    let out = found.borrow_mut().take();
    out.expect("the second boot reported")
}

fn write_unsynced(disk: &TurmoilDisk, path: &Path, bytes: &[u8]) {
    let mut f = disk
        .open(path, OpenHow::Replace { mode: 0o644 })
        .expect("create");
    f.write_all(bytes).expect("write");
}

#[test]
fn the_simulated_disk_loses_unsynced_writes_in_a_crash_and_keeps_them_in_a_bounce() {
    let setup = |disk: &TurmoilDisk| {
        ensure_dir(disk, Path::new("/d")).unwrap();
        state_file::write_atomic(disk, Path::new("/d/synced"), b"kept", 0o644).unwrap();
        write_unsynced(disk, Path::new("/d/unsynced"), b"lost?");
    };
    let look = |disk: &TurmoilDisk| {
        (
            disk.read(Path::new("/d/synced")).ok(),
            disk.read(Path::new("/d/unsynced")).ok(),
        )
    };
    assert_eq!(
        across_restart(Down::Crash, None, setup, look),
        (Some(b"kept".to_vec()), None)
    );
    assert_eq!(
        across_restart(Down::Bounce, None, setup, look),
        (Some(b"kept".to_vec()), Some(b"lost?".to_vec()))
    );
}

#[test]
fn new_directories_survive_a_crash() {
    let dir = PathBuf::from("/srv/sapix/strand");
    let made = {
        let dir = dir.clone();
        move |disk: &TurmoilDisk| ensure_dir(disk, &dir).unwrap()
    };
    let there = move |disk: &TurmoilDisk| disk.list(&dir).is_ok();
    assert!(across_restart(Down::Crash, None, made, there));
}

#[test]
fn a_state_file_survives_a_crash_unless_the_directory_sync_is_skipped() {
    let path = Path::new("/state/cluster.json");
    let write = move |disk: &TurmoilDisk| {
        ensure_dir(disk, path.parent().unwrap()).unwrap();
        state_file::write_json(disk, path, &vec![1u32, 2, 3]).unwrap();
    };
    let read = move |disk: &TurmoilDisk| state_file::read_json::<Vec<u32>>(disk, path).ok();
    assert_eq!(
        across_restart(Down::Crash, None, write, read),
        Some(Some(vec![1, 2, 3]))
    );
    // The rename is a directory entry: without the directory fsync a crash can take it.
    assert_ne!(
        across_restart(Down::Crash, Some(Lie::SyncDir), write, read),
        Some(Some(vec![1, 2, 3]))
    );
}

fn blocks(n: u64) -> Vec<Block> {
    let keys = KeySchedule::new(MasterSeed::from_bytes([9; 32]));
    let author = AgentId::new("disk-test").expect("valid id");
    let mut prev = Hash::ZERO;
    (1..=n)
        .map(|seq| {
            let block = BlockBody {
                author: author.clone(),
                seq,
                prev,
                ts: UnixMillis(1_700_000_000_000 + seq),
                collection: Collection::new("orders").expect("valid name"),
                payload: format!("{{\"n\":{seq}}}").into_bytes(),
            }
            .seal(&keys.signing_key(&author));
            prev = block.hash;
            block
        })
        .collect()
}

fn strand_opts() -> StrandOptions {
    let mut opts = StrandOptions::new("/data/strand", "/data/graph", "/data/blobs");
    opts.inline_writer = true;
    opts
}

/// Appends 20 blocks one request at a time (a crash cuts the process at once, so nothing is
/// closed cleanly), and returns the tip the restarted host recovers.
fn tip_after_crash(lie: Option<Lie>) -> u64 {
    let append = |disk: &TurmoilDisk| {
        let (strand, _) = Strand::open_on(Arc::new(disk.clone()), strand_opts()).unwrap();
        for b in blocks(20) {
            strand.append_blocking(vec![b]).unwrap();
        }
        disk.kill();
        drop(strand);
    };
    let recover = |disk: &TurmoilDisk| {
        let (strand, report) = Strand::open_on(Arc::new(disk.clone()), strand_opts()).unwrap();
        assert_eq!(report.tip, strand.tip());
        strand.tip()
    };
    across_restart(Down::Crash, lie, append, recover)
}

#[test]
fn acknowledged_appends_survive_a_crash_unless_the_fsync_is_skipped() {
    assert_eq!(tip_after_crash(None), 20);
    assert!(tip_after_crash(Some(Lie::SyncData)) < 20);
}
