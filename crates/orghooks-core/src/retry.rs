//! The per-delivery retry schedule (SPEC §5): the gaps between attempts,
//! their jitter, and how a receiver's `Retry-After` bends them.
//!
//! Jitter is derived from the delivery id and attempt number, not from a
//! global RNG, so a schedule is reproducible in tests and the same on every
//! node.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// Gaps between attempts, and the jitter applied to each.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Gap before attempt 2, 3, …; after the last, the delivery fails.
    pub gaps: Vec<Duration>,
    /// Fraction each gap may move either way (0.2 = ±20 %).
    pub jitter: f64,
}

impl Schedule {
    /// The number of attempts a delivery gets.
    pub fn max_attempts(&self) -> u32 {
        self.gaps.len() as u32 + 1
    }

    /// The gap after `attempts_done` attempts (1 after the first), or `None`
    /// when the budget is spent. `retry_after` (from a 429/503) is honoured
    /// within [gap, 2 × gap].
    pub fn next_gap(
        &self,
        delivery_id: &[u8],
        attempts_done: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.gaps.get(attempts_done.checked_sub(1)? as usize)?;
        let gap = base.mul_f64(1.0 + self.jitter * unit_noise(delivery_id, attempts_done));
        Some(match retry_after {
            Some(wanted) => wanted.clamp(gap, gap * 2),
            None => gap,
        })
    }
}

/// A number in [-1, 1] fixed by the delivery and attempt.
fn unit_noise(delivery_id: &[u8], attempt: u32) -> f64 {
    let digest = Sha256::new()
        .chain_update(delivery_id)
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n as f64 / u64::MAX as f64) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            gaps: vec![Duration::from_secs(5), Duration::from_secs(180)],
            jitter: 0.2,
        }
    }

    #[test]
    fn gaps_follow_the_schedule_within_jitter_then_stop() {
        let s = schedule();
        assert_eq!(s.max_attempts(), 3);
        for id in 0u32..200 {
            let id = id.to_be_bytes();
            let g1 = s.next_gap(&id, 1, None).unwrap();
            assert!(
                g1 >= Duration::from_secs(4) && g1 <= Duration::from_secs(6),
                "{g1:?}"
            );
            let g2 = s.next_gap(&id, 2, None).unwrap();
            assert!(g2 >= Duration::from_secs(144) && g2 <= Duration::from_secs(216));
            assert_eq!(s.next_gap(&id, 3, None), None);
            assert_eq!(s.next_gap(&id, 1, None), Some(g1), "reproducible");
        }
        assert_eq!(s.next_gap(b"x", 0, None), None);
    }

    #[test]
    fn retry_after_is_clamped_to_gap_and_twice_gap() {
        let s = Schedule {
            gaps: vec![Duration::from_secs(10)],
            jitter: 0.0,
        };
        let at = |secs| {
            s.next_gap(b"d", 1, Some(Duration::from_secs(secs)))
                .unwrap()
        };
        assert_eq!(at(1), Duration::from_secs(10));
        assert_eq!(at(15), Duration::from_secs(15));
        assert_eq!(at(3600), Duration::from_secs(20));
    }
}
