//! The simulator's virtual clock: real time × a speed factor for demos, or moved by hand in tests.

use engine::clock::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// The fastest virtual clock: a simulated day in under a second.
pub const MAX_SPEED: f64 = 100_000.0;

/// How virtual time moves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ClockState {
    /// `virtual = virtual_anchor + (real - real_anchor) × speed`.
    Scaled { speed: f64, real_anchor_ms: i64, virtual_anchor_ms: i64 },
    /// Stands still until [`SimClock::advance`].
    Manual { now_ms: i64 },
}

/// The virtual clock. Implements the engine's [`Clock`], so everything Roundtrip records in a simulated
/// estate is in virtual time.
#[derive(Debug)]
pub struct SimClock(Mutex<ClockState>);

fn real_now() -> i64 {
    SystemClock.now_millis()
}

impl SimClock {
    /// A clock running at `speed` × real time from `virtual_now_ms`.
    pub fn scaled(speed: f64, virtual_now_ms: i64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed.min(MAX_SPEED) } else { 1.0 };
        Self(Mutex::new(ClockState::Scaled { speed, real_anchor_ms: real_now(), virtual_anchor_ms: virtual_now_ms }))
    }

    /// A clock that moves only by [`SimClock::advance`].
    pub fn manual(now_ms: i64) -> Self {
        Self(Mutex::new(ClockState::Manual { now_ms }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // The state is plain data, so a poisoned lock still holds a usable value.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves virtual time forward by `ms`, in either mode.
    pub fn advance(&self, ms: i64) {
        let mut s = self.state();
        match &mut *s {
            ClockState::Manual { now_ms } => *now_ms = now_ms.saturating_add(ms),
            ClockState::Scaled { virtual_anchor_ms, .. } => *virtual_anchor_ms = virtual_anchor_ms.saturating_add(ms),
        }
    }

    /// The speed factor (0 for a manual clock).
    pub fn speed(&self) -> f64 {
        match *self.state() {
            ClockState::Scaled { speed, .. } => speed,
            ClockState::Manual { .. } => 0.0,
        }
    }
}

impl Clock for SimClock {
    fn now_millis(&self) -> i64 {
        match *self.state() {
            ClockState::Manual { now_ms } => now_ms,
            ClockState::Scaled { speed, real_anchor_ms, virtual_anchor_ms } => {
                // `as` saturates, and so does the addition: a huge speed cannot overflow virtual time.
                virtual_anchor_ms.saturating_add(((real_now() - real_anchor_ms) as f64 * speed) as i64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let c = SimClock::manual(1_000);
        assert_eq!(c.now_millis(), 1_000);
        c.advance(500);
        assert_eq!(c.now_millis(), 1_500);
    }

    #[test]
    fn a_scaled_clock_starts_at_its_anchor_and_never_runs_backwards() {
        let c = SimClock::scaled(60.0, 5_000_000);
        let a = c.now_millis();
        assert!(a >= 5_000_000);
        c.advance(1_000);
        assert!(c.now_millis() >= a + 1_000);
    }
}
