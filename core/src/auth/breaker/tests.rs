//! The breaker with explicit times: when it opens, how it probes, when it closes.

use super::*;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn enabled() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        enabled: true,
        ..BreakerConfig::default()
    })
}

/// A breaker that opened at t=30 s after failures from t=0.
fn opened() -> CircuitBreaker {
    let mut b = enabled();
    b.on_failure(at(0));
    assert_eq!(b.on_failure(at(30_000)), Some(Transition::Opened));
    b
}

#[test]
fn defaults_match_the_spec() {
    let c = BreakerConfig::default();
    assert!(!c.enabled);
    assert_eq!(c.open_after, Duration::from_secs(30));
    assert_eq!(c.probe_interval, Duration::from_secs(5));
}

#[test]
fn opens_at_thirty_seconds_of_continuous_failure_and_not_before() {
    let mut b = enabled();
    assert_eq!(b.on_failure(at(0)), None);
    assert_eq!(b.on_failure(at(29_900)), None);
    assert_eq!(b.on_failure(Instant::from_micros(29_999_999)), None);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.should_call_codios(at(29_999)), Admission::Call);
    assert_eq!(b.on_failure(at(30_000)), Some(Transition::Opened));
    assert_eq!(b.state(), BreakerState::Open { since: at(30_000) });
    assert_eq!(b.on_failure(at(30_001)), None, "opened only once");
}

#[test]
fn the_streak_is_measured_from_its_first_failure() {
    let mut b = enabled();
    b.on_failure(at(10_000));
    assert_eq!(b.failing_since(), Some(at(10_000)));
    assert_eq!(b.on_failure(at(39_999)), None);
    assert_eq!(b.on_failure(at(40_000)), Some(Transition::Opened));
}

#[test]
fn a_success_in_between_resets_the_streak() {
    let mut b = enabled();
    b.on_failure(at(0));
    b.on_failure(at(20_000));
    assert_eq!(b.on_success(at(25_000)), None);
    assert_eq!(b.failing_since(), None);
    assert_eq!(b.on_failure(at(31_000)), None);
    assert_eq!(b.on_failure(at(60_999)), None);
    assert_eq!(b.on_failure(at(61_000)), Some(Transition::Opened));
}

#[test]
fn while_open_exactly_one_probe_goes_out_per_interval() {
    let mut b = opened();
    assert_eq!(b.poll_timeout(), Some(at(35_000)));
    assert_eq!(b.should_call_codios(at(31_000)), Admission::Bypass);
    assert_eq!(b.should_call_codios(at(35_000)), Admission::Probe);
    assert_eq!(b.state(), BreakerState::HalfOpen { since: at(30_000) });
    assert_eq!(b.should_call_codios(at(35_000)), Admission::Bypass);
    assert!(
        !b.handle_timeout(at(35_000)),
        "a probe is already in flight"
    );
    assert_eq!(b.poll_timeout(), Some(at(40_000)));
    // The probe fails: still open, and the next probe keeps its slot.
    assert_eq!(b.on_failure(at(36_000)), None);
    assert_eq!(b.state(), BreakerState::Open { since: at(30_000) });
    assert_eq!(b.should_call_codios(at(39_999)), Admission::Bypass);
    assert!(
        b.handle_timeout(at(40_000)),
        "the timer claims the next probe"
    );
    assert_eq!(b.should_call_codios(at(40_000)), Admission::Bypass);
}

#[test]
fn a_lost_probe_is_presumed_failed_after_one_interval() {
    let mut b = opened();
    assert!(b.handle_timeout(at(35_000)));
    // No outcome is ever reported for that probe.
    assert_eq!(b.should_call_codios(at(39_000)), Admission::Bypass);
    assert_eq!(b.should_call_codios(at(40_000)), Admission::Probe);
}

#[test]
fn a_probe_success_closes_the_circuit() {
    let mut b = opened();
    assert_eq!(b.should_call_codios(at(35_000)), Admission::Probe);
    assert_eq!(b.on_success(at(35_100)), Some(Transition::Closed));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.poll_timeout(), None);
    assert_eq!(b.should_call_codios(at(35_200)), Admission::Call);
    // A new streak starts from scratch.
    assert_eq!(b.on_failure(at(36_000)), None);
    assert_eq!(b.on_failure(at(65_999)), None);
    assert_eq!(b.on_failure(at(66_000)), Some(Transition::Opened));
}

#[test]
fn any_success_closes_an_open_circuit() {
    let mut b = opened();
    assert_eq!(b.on_success(at(31_000)), Some(Transition::Closed));
    assert!(!b.is_open());
}

#[test]
fn a_disabled_breaker_never_opens() {
    let mut b = CircuitBreaker::new(BreakerConfig::default());
    for s in 0..3_600 {
        assert_eq!(b.on_failure(at(s * 1_000)), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.should_call_codios(at(3_600_000)), Admission::Call);
    assert_eq!(b.poll_timeout(), None);
    assert!(!b.handle_timeout(at(3_600_000)));
}

#[test]
fn poll_timeout_moves_forward_after_each_handle_timeout() {
    let mut b = opened();
    assert!(!b.handle_timeout(at(31_000)), "spurious wake-up is a no-op");
    assert_eq!(b.poll_timeout(), Some(at(35_000)));
    let mut last = at(30_000);
    for _ in 0..10 {
        let due = b.poll_timeout().unwrap();
        assert!(due > last);
        assert!(b.handle_timeout(due));
        assert!(!b.handle_timeout(due));
        assert!(b.poll_timeout().unwrap() > due);
        b.on_failure(due);
        last = due;
    }
    assert_eq!(last, at(80_000));
}

#[test]
fn a_late_wake_up_schedules_from_now_not_from_the_missed_slot() {
    let mut b = opened();
    assert!(b.handle_timeout(at(100_000)));
    assert_eq!(b.poll_timeout(), Some(at(105_000)));
}

#[test]
fn time_going_backwards_cannot_shorten_a_streak() {
    let mut b = enabled();
    b.on_failure(at(10_000));
    assert_eq!(b.on_failure(at(5_000)), None);
    assert_eq!(b.failing_since(), Some(at(10_000)));
    assert_eq!(b.on_failure(at(40_000)), Some(Transition::Opened));
}

#[test]
fn config_refuses_breaker_with_require_codios_and_a_zero_probe_interval() {
    let on = BreakerConfig {
        enabled: true,
        ..BreakerConfig::default()
    };
    assert_eq!(on.validate(false), Ok(()));
    let err = on.validate(true).unwrap_err();
    assert_eq!(err, AuthConfigError::BreakerWithRequireCodios);
    let msg = err.to_string();
    assert!(msg.contains("SAPIX_AUTH_CIRCUIT_BREAKER") && msg.contains("SAPIX_REQUIRE_CODIOS"));
    assert_eq!(BreakerConfig::default().validate(true), Ok(()));
    let zero = BreakerConfig {
        probe_interval: Duration::ZERO,
        ..on
    };
    assert_eq!(
        zero.validate(false),
        Err(AuthConfigError::ZeroProbeInterval)
    );
}
