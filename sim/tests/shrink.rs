//! Shrinking: overrides leave a seed as drawn unless asked, their replay command carries them,
//! and a planted bug's failing seed shrinks to a smaller configuration that the same checker
//! still fails.

use sapix_core::node::planted::PlantedBug;
use sapix_sim::config::SECOND;
use sapix_sim::overrides::{Class, Overrides};
use sapix_sim::runner;
use sapix_sim::shrink::{self, config_of};
use sapix_sim::trace::Trace;
use sapix_sim::Config;

/// Classes on in `cfg`.
fn classes_on(cfg: &Config) -> usize {
    Class::ALL.into_iter().filter(|c| c.is_on(cfg)).count()
}

#[test]
fn no_overrides_leave_every_seed_as_drawn() {
    for seed in (0..500).chain([0x00d4_f71b_0476, u64::MAX]) {
        assert_eq!(config_of(seed, &Overrides::default()), Config::draw(seed));
    }
    let a = runner::run_seed(0xc7, &[], Trace::quiet());
    let b = runner::run_seed_with(0xc7, &[], &Overrides::default(), Trace::quiet());
    assert_eq!(a.trace_hash, b.trace_hash);
}

#[test]
fn overrides_round_trip_through_their_arguments() {
    let o = Overrides {
        members: Some(2),
        spares: Some(0),
        active_secs: Some(7),
        writes_per_sec: Some(1.25),
        off: vec![Class::Swizzle, Class::Divides, Class::CodiosSlow],
    };
    let args = o.args();
    assert_eq!(
        args,
        " --members 2 --spares 0 --active 7 --writes 1.25 --no-fault swizzle --no-op divides --no-fault codios-slow"
    );
    let words: Vec<&str> = args.split_whitespace().collect();
    let mut back = Overrides::default();
    for pair in words.chunks(2) {
        assert!(back.parse_arg(pair[0], pair[1]).expect("valid"));
    }
    assert_eq!(back, o);
    assert!(Overrides::default()
        .parse_arg("--no-fault", "divides")
        .is_err());
}

#[test]
fn overrides_only_ever_shrink_what_was_drawn() {
    for seed in 0..300 {
        let drawn = Config::draw(seed);
        let o = Overrides {
            members: Some(2),
            spares: Some(0),
            active_secs: Some(5),
            off: Class::ALL.to_vec(),
            ..Overrides::default()
        };
        let cfg = config_of(seed, &o);
        assert_eq!((cfg.members, cfg.spares), (2, 0), "seed {seed}");
        assert_eq!(cfg.workload.initial_ap.len(), 2);
        assert_eq!(cfg.active, 5 * SECOND);
        assert_eq!(classes_on(&cfg), 0, "seed {seed}: {cfg}");
        let more = config_of(
            seed,
            &Overrides {
                members: Some(9),
                spares: Some(9),
                ..Overrides::default()
            },
        );
        assert_eq!((more.members, more.spares), (drawn.members, drawn.spares));
    }
}

#[test]
fn a_planted_bug_shrinks_to_a_smaller_config_the_same_checker_fails() {
    let bug = PlantedBug::CursorBeforeDurable;
    let (seed, original) = (0..20)
        .find_map(|s| {
            runner::run_seed(s, &[bug], Trace::quiet())
                .violation
                .map(|v| (s, v))
        })
        .expect("cursor-before-durable is found within 20 seeds");
    let mut kept = Vec::new();
    let s = shrink::shrink(seed, &[bug], &mut |l| kept.push(l.to_string())).expect("fails");
    let replay = runner::replay_command_with(seed, &[bug], &s.overrides);
    println!(
        "seed 0x{seed:x}: {original}\nkept:\n{}\nsmallest ({} runs): {}\n{}\nreplay: {replay}",
        kept.join("\n"),
        s.runs,
        s.violation,
        s.config
    );
    assert_eq!(s.original.checker, original.checker);
    assert_eq!(s.violation.checker, original.checker);
    assert!(!s.overrides.is_empty() && !kept.is_empty());
    let drawn = Config::draw(seed);
    assert!(s.config.total() <= drawn.total() && s.config.active <= drawn.active);
    assert!(classes_on(&s.config) < classes_on(&drawn), "{}", s.config);
    // The printed command's overrides reproduce the same failure.
    let again = runner::run_seed_with(seed, &[bug], &s.overrides, Trace::quiet());
    assert_eq!(again.violation.map(|v| v.checker), Some(original.checker));
    assert!(replay.contains(&s.overrides.args()) && replay.contains("--bug cursor-before-durable"));
    // Greedy to the end: switching off any class still on loses the failure.
    for c in Class::ALL.into_iter().filter(|c| c.is_on(&s.config)) {
        let mut o = s.overrides.clone();
        o.off.push(c);
        let v = runner::run_seed_with(seed, &[bug], &o, Trace::quiet()).violation;
        assert_ne!(
            v.map(|v| v.checker),
            Some(original.checker),
            "with {c} off too it still fails: not shrunk to the end"
        );
    }
}
