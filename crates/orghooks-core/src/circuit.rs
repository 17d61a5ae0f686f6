//! A webhook's circuit (SPEC §5) as a value: after `failure_threshold`
//! failures in a row it opens, and then one probe at a time tries the
//! receiver when the schedule says; a success closes it; open for longer
//! than `disable_after_ms` turns the webhook off. Test deliveries pass
//! through an open circuit and do not move it. The delivery engine owns one
//! per lane and acts on the [`Transition`]s.

/// When a circuit opens, and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitPolicy {
    pub failure_threshold: u32,
    pub disable_after_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Circuit {
    consecutive_failures: u32,
    open: bool,
    opened_at: i64,
    probe_in_flight: bool,
    next_probe_at: i64,
}

/// May this delivery be sent now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Send it; `probe` when it tests an open circuit.
    Send { probe: bool },
    /// Not before this time (another probe is out, or it is not due yet).
    Wait { until: i64 },
}

/// What changed, for the engine to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing the engine must act on.
    Stay,
    /// It just opened: hold the webhook's deliveries back until `probe_at`.
    Opened { probe_at: i64 },
    /// Still open after a failed probe: hold back until `probe_at`.
    Reopened { probe_at: i64 },
    /// It was open and a delivery succeeded: release what it held back.
    Closed,
    /// Open for longer than the policy allows since `opened_at`: turn the
    /// webhook off. The circuit is reset.
    Disable { opened_at: i64 },
}

impl Circuit {
    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether the lane holding it can be forgotten (nothing to remember).
    pub fn is_idle(&self) -> bool {
        !self.open && self.consecutive_failures == 0
    }

    /// Asks to send a delivery at `now`. An open circuit lets one probe out
    /// at a time, from `next_probe_at`; a test delivery always goes.
    pub fn gate(&mut self, now: i64, is_test: bool) -> Gate {
        if !self.open || is_test {
            return Gate::Send { probe: false };
        }
        if self.probe_in_flight || now < self.next_probe_at {
            return Gate::Wait {
                until: self.next_probe_at,
            };
        }
        self.probe_in_flight = true;
        Gate::Send { probe: true }
    }

    /// A probe came back, whatever its result.
    pub fn probe_done(&mut self) {
        self.probe_in_flight = false;
    }

    pub fn on_success(&mut self) -> Transition {
        self.consecutive_failures = 0;
        if self.open {
            self.open = false;
            Transition::Closed
        } else {
            Transition::Stay
        }
    }

    /// A failure at `now`; the receiver is next worth trying at `next_try`.
    pub fn on_failure(&mut self, now: i64, next_try: i64, policy: &CircuitPolicy) -> Transition {
        self.consecutive_failures += 1;
        if self.open {
            if now - self.opened_at >= policy.disable_after_ms {
                let opened_at = self.opened_at;
                *self = Self::default();
                return Transition::Disable { opened_at };
            }
            self.next_probe_at = next_try;
            return Transition::Reopened { probe_at: next_try };
        }
        if self.consecutive_failures >= policy.failure_threshold {
            self.open = true;
            self.opened_at = now;
            self.next_probe_at = next_try;
            return Transition::Opened { probe_at: next_try };
        }
        Transition::Stay
    }

    /// Its admin changed the webhook: it starts closed. Answers whether it
    /// was open.
    pub fn reset(&mut self) -> bool {
        let was_open = self.open;
        *self = Self::default();
        was_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CircuitPolicy = CircuitPolicy {
        failure_threshold: 3,
        disable_after_ms: 1_000,
    };

    /// A step and what it must answer.
    #[derive(Debug)]
    enum Step {
        Fail {
            now: i64,
            next: i64,
            want: Transition,
        },
        Succeed {
            want: Transition,
        },
        Ask {
            now: i64,
            test: bool,
            want: Gate,
        },
        ProbeDone,
    }
    use Step::*;

    fn run(steps: &[Step]) -> Circuit {
        let mut c = Circuit::default();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Fail { now, next, want } => {
                    assert_eq!(
                        c.on_failure(*now, *next, &POLICY),
                        *want,
                        "step {i}: {step:?}"
                    )
                }
                Succeed { want } => assert_eq!(c.on_success(), *want, "step {i}: {step:?}"),
                Ask { now, test, want } => {
                    assert_eq!(c.gate(*now, *test), *want, "step {i}: {step:?}")
                }
                ProbeDone => c.probe_done(),
            }
        }
        c
    }

    #[test]
    fn opens_after_the_threshold_and_closes_on_success() {
        let c = run(&[
            Fail {
                now: 0,
                next: 10,
                want: Transition::Stay,
            },
            Fail {
                now: 1,
                next: 11,
                want: Transition::Stay,
            },
            Ask {
                now: 2,
                test: false,
                want: Gate::Send { probe: false },
            },
            Fail {
                now: 2,
                next: 100,
                want: Transition::Opened { probe_at: 100 },
            },
            // Open: nothing goes before the probe time, then one at a time.
            Ask {
                now: 50,
                test: false,
                want: Gate::Wait { until: 100 },
            },
            Ask {
                now: 50,
                test: true,
                want: Gate::Send { probe: false },
            },
            Ask {
                now: 100,
                test: false,
                want: Gate::Send { probe: true },
            },
            Ask {
                now: 101,
                test: false,
                want: Gate::Wait { until: 100 },
            },
            ProbeDone,
            Succeed {
                want: Transition::Closed,
            },
            Ask {
                now: 102,
                test: false,
                want: Gate::Send { probe: false },
            },
        ]);
        assert!(c.is_idle());
    }

    #[test]
    fn a_failed_probe_waits_for_the_next_and_a_success_resets_the_count() {
        let c = run(&[
            Fail {
                now: 0,
                next: 10,
                want: Transition::Stay,
            },
            Succeed {
                want: Transition::Stay,
            },
            Fail {
                now: 1,
                next: 10,
                want: Transition::Stay,
            },
            Fail {
                now: 2,
                next: 10,
                want: Transition::Stay,
            },
            Fail {
                now: 3,
                next: 10,
                want: Transition::Opened { probe_at: 10 },
            },
            Ask {
                now: 10,
                test: false,
                want: Gate::Send { probe: true },
            },
            ProbeDone,
            Fail {
                now: 12,
                next: 500,
                want: Transition::Reopened { probe_at: 500 },
            },
            Ask {
                now: 499,
                test: false,
                want: Gate::Wait { until: 500 },
            },
        ]);
        assert!(c.is_open());
        assert_eq!(c.consecutive_failures(), 4);
    }

    #[test]
    fn open_too_long_disables_and_resets() {
        let mut c = run(&[
            Fail {
                now: 0,
                next: 1,
                want: Transition::Stay,
            },
            Fail {
                now: 0,
                next: 1,
                want: Transition::Stay,
            },
            Fail {
                now: 5,
                next: 500,
                want: Transition::Opened { probe_at: 500 },
            },
            Fail {
                now: 1_004,
                next: 2_000,
                want: Transition::Reopened { probe_at: 2_000 },
            },
            Fail {
                now: 1_005,
                next: 3_000,
                want: Transition::Disable { opened_at: 5 },
            },
        ]);
        assert!(c.is_idle());
        assert!(!c.reset());
    }

    #[test]
    fn reset_closes_an_open_circuit() {
        let mut c = run(&[
            Fail {
                now: 0,
                next: 1,
                want: Transition::Stay,
            },
            Fail {
                now: 0,
                next: 1,
                want: Transition::Stay,
            },
            Fail {
                now: 0,
                next: 9,
                want: Transition::Opened { probe_at: 9 },
            },
        ]);
        assert!(c.reset());
        assert_eq!(c.gate(0, false), Gate::Send { probe: false });
    }
}
