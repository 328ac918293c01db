//! Deterministic fault injection.
//!
//! Every API request draws the same fixed set of numbers from one RNG seeded with `fault_seed`,
//! whether or not a fault is enabled, so the same seed and the same request order give the
//! same faults: a failing test can be replayed exactly.

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::config::Faults;

/// What to do to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Draw {
    /// Answer with this 5xx status before executing anything.
    pub error_5xx: Option<u16>,
    /// Drop the connection before executing anything.
    pub reset: bool,
    /// Sleep `slow_ms` first.
    pub slow: bool,
    /// Execute a mutation, then drop the connection.
    pub after_commit: bool,
}

#[derive(Debug)]
pub struct FaultRng {
    rng: StdRng,
}

const STATUSES: [u16; 3] = [503, 502, 500];

impl FaultRng {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn draw(&mut self, faults: &Faults) -> Draw {
        let [p5xx, preset, pslow, pafter]: [f64; 4] = std::array::from_fn(|_| self.rng.random());
        let status = STATUSES[self.rng.random_range(0..STATUSES.len())];
        Draw {
            error_5xx: (p5xx < faults.fault_5xx).then_some(status),
            reset: preset < faults.fault_reset,
            slow: pslow < faults.fault_slow,
            after_commit: pafter < faults.fault_after_commit,
        }
    }

    /// A fair coin, for `AuthErrorMode::Mixed`.
    pub fn coin(&mut self) -> bool {
        self.rng.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_rates_roughly_match() {
        let faults = Faults {
            fault_5xx: 0.3,
            fault_reset: 0.1,
            fault_slow: 0.0,
            fault_after_commit: 1.0,
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = FaultRng::new(seed);
            (0..1000).map(|_| rng.draw(&faults)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let count = |f: fn(&Draw) -> bool| a.iter().filter(|d| f(d)).count();
        assert!(
            (230..370).contains(&count(|d| d.error_5xx.is_some())),
            "5xx ~30%"
        );
        assert!((50..150).contains(&count(|d| d.reset)), "reset ~10%");
        assert_eq!(count(|d| d.slow), 0);
        assert_eq!(count(|d| d.after_commit), 1000);
    }
}
