//! Every seed in `sim/regression-seeds.txt` must pass, forever.

use sapix_sim::runner::{self, parse_seed};
use sapix_sim::trace::Trace;

#[test]
fn every_regression_seed_passes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/regression-seeds.txt");
    let text = std::fs::read_to_string(path).expect("regression-seeds.txt is readable");
    let seeds: Vec<u64> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| parse_seed(l).unwrap_or_else(|| panic!("bad seed line {l:?}")))
        .collect();
    assert!(!seeds.is_empty());
    let mut failed = Vec::new();
    for &seed in &seeds {
        let r = runner::run_seed(seed, &[], Trace::quiet());
        if let Some(v) = &r.violation {
            failed.push(format!(
                "0x{seed:x}: {v}\n  replay: {}",
                runner::replay_command(seed, &[])
            ));
        }
    }
    println!("{} regression seeds replayed", seeds.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
