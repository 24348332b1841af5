//! Coverage: over a few hundred seeds every fault class is drawn by some seeds and not by
//! others, and every class that is an event (not a setting) fires; a class switched off
//! never fires.

use sapix_sim::overrides::{Class, Overrides};
use sapix_sim::runner::{self, Budget};
use sapix_sim::trace::Trace;

const SETTINGS: [Class; 6] = [
    Class::Drift,
    Class::WallOffset,
    Class::RandomOrigin,
    Class::Codios,
    Class::RestartAll,
    Class::LeaveDown,
];

#[test]
fn every_fault_class_is_drawn_and_fires() {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sum = runner::hunt(0, Budget::Seeds(500), jobs, &[], false, &|_| {});
    println!("{}", sum.coverage);
    let c = &sum.coverage;
    assert_eq!(c.seeds, 500);
    for class in Class::ALL.into_iter().filter(|c| c.is_fault()) {
        let drew = c.drew(class);
        assert!(drew > 0 && drew < c.seeds, "{class}: drawn by {drew} seeds");
        if !SETTINGS.contains(&class) {
            assert!(c.fired(class) > 0, "{class} never fired");
        }
    }
    assert!(format!("{c}").contains("partitions"));
}

#[test]
fn a_class_switched_off_is_neither_drawn_nor_fired() {
    let seed = (0..)
        .find(|&s| {
            let r = runner::run_seed(s, &[], Trace::quiet());
            r.coverage.fired(Class::Crashes) > 0 && r.coverage.fired(Class::Dup) > 0
        })
        .expect("some seed crashes and duplicates");
    let off = Overrides {
        off: vec![Class::Crashes, Class::Dup],
        ..Overrides::default()
    };
    let r = runner::run_seed_with(seed, &[], &off, Trace::quiet());
    for class in [Class::Crashes, Class::Dup] {
        assert!(!r.coverage.drawn(class), "seed {seed}: {class}");
        assert_eq!(r.coverage.fired(class), 0, "seed {seed}: {class}");
    }
}
