//! How one delivery attempt ended, and what follows for the delivery
//! (SPEC §5): succeeded, retried on the schedule, failed for good, or
//! stopped because the receiver said it is gone. A pure decision; the
//! delivery engine applies it.

use std::time::Duration;

use crate::retry::Schedule;

/// Why an attempt got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// No answer within the delivery timeout.
    #[error("timed out after {}", human(*.0))]
    Timeout(Duration),
    /// The address policy refused the host's address: nothing was dialled.
    #[error("{0}")]
    Blocked(String),
    /// DNS, TCP, TLS or the HTTP exchange failed (the message has the
    /// cause chain).
    #[error("{0}")]
    Network(String),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The receiver answered with this status.
    Answered {
        status: u16,
        /// Its `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    Failed(AttemptError),
}

impl Ending {
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Answered { status, .. } if (200..300).contains(status))
    }

    /// The `outcome` label of `orghooks_delivery_attempts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Answered { status, .. } if (200..300).contains(status) => "success",
            Self::Answered { .. } => "http_error",
            Self::Failed(AttemptError::Timeout(_)) => "timeout",
            Self::Failed(AttemptError::Blocked(_)) => "refused",
            Self::Failed(AttemptError::Network(_)) => "network_error",
        }
    }
}

/// What follows for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Try again at `at` (Unix ms).
    Retry {
        at: i64,
    },
    /// The retry budget is spent. `probe_at` is when the circuit would try
    /// the receiver again (the last gap of the schedule from now).
    Exhausted {
        probe_at: i64,
    },
    /// The receiver answered 410 Gone: hold the delivery and turn the
    /// webhook off.
    Gone,
}

impl Verdict {
    /// When a failing receiver is next worth trying, for the circuit.
    pub fn next_try(&self) -> Option<i64> {
        match *self {
            Self::Retry { at } => Some(at),
            Self::Exhausted { probe_at } => Some(probe_at),
            Self::Succeeded | Self::Gone => None,
        }
    }
}

/// Decides what follows an attempt, the `attempts_done`-th of the delivery
/// `delivery_id`, that ended at `now`. `Retry-After` is honoured on 429 and
/// 503 only.
pub fn decide(
    ending: &Ending,
    attempts_done: u32,
    schedule: &Schedule,
    delivery_id: &[u8],
    now: i64,
) -> Verdict {
    if ending.succeeded() {
        return Verdict::Succeeded;
    }
    let retry_after = match ending {
        Ending::Answered { status: 410, .. } => return Verdict::Gone,
        Ending::Answered {
            status: 429 | 503,
            retry_after,
        } => *retry_after,
        _ => None,
    };
    match schedule.next_gap(delivery_id, attempts_done, retry_after) {
        Some(gap) => Verdict::Retry {
            at: now + millis(gap),
        },
        None => Verdict::Exhausted {
            probe_at: now + schedule.gaps.last().map_or(0, |g| millis(*g)),
        },
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn human(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            gaps: vec![Duration::from_secs(1), Duration::from_secs(10)],
            jitter: 0.0,
        }
    }

    fn answered(status: u16, retry_after: Option<u64>) -> Ending {
        Ending::Answered {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn verdicts() {
        let network = Ending::Failed(AttemptError::Network("connection refused".into()));
        let cases: &[(Ending, u32, Verdict)] = &[
            (answered(200, None), 1, Verdict::Succeeded),
            (answered(204, None), 3, Verdict::Succeeded),
            (answered(500, None), 1, Verdict::Retry { at: 1_000 }),
            (answered(500, None), 2, Verdict::Retry { at: 10_000 }),
            (
                answered(500, None),
                3,
                Verdict::Exhausted { probe_at: 10_000 },
            ),
            (answered(410, None), 1, Verdict::Gone),
            // Retry-After bends the gap within [gap, 2 × gap], on 429/503 only.
            (answered(429, Some(5)), 1, Verdict::Retry { at: 2_000 }),
            (answered(503, Some(15)), 2, Verdict::Retry { at: 15_000 }),
            (answered(500, Some(5)), 1, Verdict::Retry { at: 1_000 }),
            (answered(301, None), 1, Verdict::Retry { at: 1_000 }),
            (network.clone(), 1, Verdict::Retry { at: 1_000 }),
            (network, 3, Verdict::Exhausted { probe_at: 10_000 }),
        ];
        for (ending, attempts, want) in cases {
            assert_eq!(
                decide(ending, *attempts, &schedule(), b"d", 0),
                *want,
                "{ending:?} after {attempts}"
            );
        }
    }

    #[test]
    fn labels_and_messages() {
        let timeout = Ending::Failed(AttemptError::Timeout(Duration::from_secs(10)));
        assert_eq!(timeout.label(), "timeout");
        assert_eq!(
            AttemptError::Timeout(Duration::from_millis(1500)).to_string(),
            "timed out after 1500 ms"
        );
        assert_eq!(
            AttemptError::Timeout(Duration::from_secs(10)).to_string(),
            "timed out after 10 s"
        );
        assert_eq!(
            Ending::Failed(AttemptError::Blocked("x".into())).label(),
            "refused"
        );
        assert_eq!(answered(404, None).label(), "http_error");
        assert_eq!(answered(200, None).label(), "success");
    }
}
