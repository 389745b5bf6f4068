//! An execution's progress: percent done, elapsed and remaining time, RTO against its target.

use super::state::{ExecutionState, Mode, Phase, ServerRun, ServerState, WaveState};
use serde::{Deserialize, Serialize};

/// One wave's progress, for the dashboard and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStatus {
    pub name: String,
    pub state: WaveState,
    pub servers: usize,
    pub verified: usize,
    pub failed: usize,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// From the execution's start to the wave's last verification.
    pub rto_ms: Option<i64>,
}

/// An execution's progress: phase, percent done, elapsed time and RTO against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionStatus {
    pub phase: Phase,
    pub mode: Mode,
    /// Servers verified or failed, of all servers, in percent.
    pub progress_percent: u8,
    pub elapsed_ms: Option<i64>,
    /// An estimate while it runs: the mean time of the finished waves for every wave still to run, less what
    /// the running wave has spent. `None` ("estimating…") until a wave has finished: the first servers of a
    /// wave finish together, so a rate per server misleads.
    pub remaining_ms: Option<i64>,
    /// From the start to the last server's verification (measured RTO), once every server is verified.
    pub rto_ms: Option<i64>,
    pub rto_target_ms: i64,
    pub waves: Vec<WaveStatus>,
}

/// Whether the time left is due but not known yet ("estimating…"): the execution has started, has not
/// ended, is not cleaning up, and no wave has finished (see [`ExecutionStatus::remaining_ms`]).
pub fn estimating(phase: Phase, elapsed_ms: Option<i64>, remaining_ms: Option<i64>) -> bool {
    remaining_ms.is_none() && elapsed_ms.is_some() && !phase.is_terminal() && phase != Phase::CleaningUp
}

/// Time left of `s` at `now`; see [`ExecutionStatus::remaining_ms`].
fn remaining(s: &ExecutionState, now: i64) -> Option<i64> {
    if s.phase == Phase::CleaningUp || s.started_at.is_none() {
        return None;
    }
    if s.phase.is_terminal() {
        return Some(0);
    }
    let finished: Vec<i64> = s
        .waves
        .iter()
        .filter(|w| matches!(w.state, WaveState::Succeeded | WaveState::Failed))
        .filter_map(|w| Some(w.ended_at? - w.started_at?))
        .collect();
    let mean = finished.iter().sum::<i64>().checked_div(i64::try_from(finished.len()).ok()?)?;
    Some(
        s.waves
            .iter()
            .map(|w| match w.state {
                WaveState::Pending => mean,
                WaveState::Running => (mean - (now - w.started_at.unwrap_or(now))).max(0),
                WaveState::Succeeded | WaveState::Failed | WaveState::Skipped => 0,
            })
            .sum(),
    )
}

/// The progress of `s` at `now`.
pub fn status(s: &ExecutionState, rto_target_minutes: u32, now: i64) -> ExecutionStatus {
    let servers: Vec<&ServerRun> = s.waves.iter().flat_map(|w| w.servers.iter()).collect();
    let done = servers.iter().filter(|r| matches!(r.state, ServerState::Verified | ServerState::Failed)).count();
    let rto_of = |rs: &[&ServerRun]| -> Option<i64> {
        let start = s.started_at?;
        if rs.is_empty() || rs.iter().any(|r| r.state != ServerState::Verified) {
            return None;
        }
        rs.iter().filter_map(|r| r.verified_at).max().map(|t| t - start)
    };
    ExecutionStatus {
        phase: s.phase,
        mode: s.mode,
        progress_percent: if servers.is_empty() {
            100
        } else {
            u8::try_from(done * 100 / servers.len()).unwrap_or(100)
        },
        elapsed_ms: s.started_at.map(|t| s.ended_at.unwrap_or(now) - t),
        remaining_ms: remaining(s, now),
        rto_ms: rto_of(&servers),
        rto_target_ms: i64::from(rto_target_minutes) * 60_000,
        waves: s
            .waves
            .iter()
            .map(|w| {
                let rs: Vec<&ServerRun> = w.servers.iter().collect();
                WaveStatus {
                    name: w.name.clone(),
                    state: w.state,
                    servers: w.servers.len(),
                    verified: w.servers.iter().filter(|r| r.state == ServerState::Verified).count(),
                    failed: w.servers.iter().filter(|r| r.state == ServerState::Failed).count(),
                    started_at: w.started_at,
                    ended_at: w.ended_at,
                    rto_ms: rto_of(&rs),
                }
            })
            .collect(),
    }
}
