//! The state machine: [`on_event`] applies an event, [`decide`] lists the commands the state calls for.

use super::events::{Command, Event, InvalidTransition, Limits};
use super::state::{
    CLEANUP_TIMEOUT_MS, ExecutionState, FailoverKind, Mode, Phase, REARM_TIMEOUT_MS, ServerRun, ServerState, WaveRun,
    WaveState,
};
use crate::ids::SourceServerId;
use crate::plan::OnFailure;

impl ExecutionState {
    /// A new execution of `waves`: a drill runs at once, a recovery waits for approval until `deadline`.
    pub fn new(
        mode: Mode,
        kind: FailoverKind,
        waves: Vec<WaveRun>,
        requested_by: &str,
        at: i64,
        approval_ttl_ms: i64,
    ) -> Self {
        let (phase, deadline) = match mode {
            Mode::Drill => (Phase::Running, None),
            Mode::Recovery | Mode::Failback => (Phase::AwaitingApproval, Some(at + approval_ttl_ms)),
        };
        let mut s = Self {
            mode,
            kind: if mode == Mode::Recovery { kind } else { FailoverKind::Disaster },
            phase,
            outcome: None,
            cleanup_started_at: None,
            requested_by: requested_by.to_owned(),
            requested_at: at,
            approval_deadline: deadline,
            approved_by: None,
            started_at: None,
            ended_at: None,
            current_wave: 0,
            cancel_requested: false,
            waves,
            re_arms: 0,
        };
        if phase == Phase::Running {
            s.started_at = Some(at);
            s.enter_wave(at, false);
        }
        s
    }

    fn server_mut(&mut self, id: &SourceServerId) -> Option<&mut ServerRun> {
        self.waves.get_mut(self.current_wave)?.servers.make_mut().iter_mut().find(|s| &s.source_server_id == id)
    }

    /// Starts the current wave, or stops at its gate unless an approver `released` it.
    fn enter_wave(&mut self, at: i64, released: bool) {
        match self.waves.get_mut(self.current_wave) {
            None => self.finish(at),
            Some(w) if w.pause_before && !released && w.state == WaveState::Pending => {
                self.phase = Phase::AwaitingGate;
            }
            Some(w) => {
                self.phase = Phase::Running;
                w.state = WaveState::Running;
                w.started_at = Some(at);
            }
        }
    }

    fn finish(&mut self, at: i64) {
        let all_verified = self.waves.iter().all(|w| w.servers.iter().all(|s| s.state == ServerState::Verified));
        let outcome = if self.cancel_requested {
            Phase::Cancelled
        } else if all_verified {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        for w in &mut self.waves {
            if w.state == WaveState::Pending {
                w.state = WaveState::Skipped;
            }
        }
        if matches!(self.mode, Mode::Drill | Mode::Failback) && !self.to_clean_up().is_empty() {
            self.phase = Phase::CleaningUp;
            self.outcome = Some(outcome);
            self.cleanup_started_at = Some(at);
        } else {
            self.phase = outcome;
            self.ended_at = Some(at);
        }
    }

    /// Servers not yet back to standby: a drill's that may have reached DRS (claimed for a job); a
    /// failback's that came home (their DR standby is to be re-armed).
    fn to_clean_up(&self) -> Vec<SourceServerId> {
        let failback = self.mode == Mode::Failback;
        self.waves
            .iter()
            .flat_map(|w| w.servers.iter())
            .filter(|r| if failback { r.state == ServerState::Verified } else { r.started_at.is_some() })
            .filter(|r| r.cleaned_at.is_none())
            .map(|r| r.source_server_id.clone())
            .collect()
    }

    /// How long the clean-up (drill) or re-arm (failback) may take before it ends with what is left.
    fn cleanup_timeout_ms(&self) -> i64 {
        if self.mode == Mode::Failback { REARM_TIMEOUT_MS } else { CLEANUP_TIMEOUT_MS }
    }

    /// Whether a waiting server may be put in a job: at once, except in a planned failover, where its
    /// source must be stopped and drained first.
    fn may_launch(&self, r: &ServerRun) -> bool {
        match self.mode {
            Mode::Failback => r.configured_at.is_some(),
            _ => self.kind != FailoverKind::Planned || r.drained_at.is_some(),
        }
    }

    /// Closes the current wave once no server is in flight, and moves on (or stops).
    fn settle_wave(&mut self, at: i64) {
        let Some(w) = self.waves.get_mut(self.current_wave) else { return };
        if w.state != WaveState::Running {
            return;
        }
        let in_flight = w
            .servers
            .iter()
            .any(|s| matches!(s.state, ServerState::Starting | ServerState::Launching | ServerState::Launched));
        let waiting = w.servers.iter().any(|s| s.state == ServerState::Waiting);
        // A planned failover's server whose source is already stopped is committed: it launches even after
        // a cancel, or its application would be down on both sides.
        let committed = w.servers.iter().any(|s| s.state == ServerState::Waiting && s.source_stopped_at.is_some());
        if in_flight || committed || (waiting && !self.cancel_requested) {
            return;
        }
        let failed = w.servers.iter().any(|s| s.state != ServerState::Verified);
        w.state = if failed { WaveState::Failed } else { WaveState::Succeeded };
        w.ended_at = Some(at);
        let stop = self.cancel_requested || (failed && w.on_failure == OnFailure::Stop);
        if stop {
            self.finish(at);
        } else {
            self.current_wave += 1;
            self.enter_wave(at, false);
        }
    }
}

fn invalid(state: &ExecutionState, event: &'static str, why: impl Into<String>) -> InvalidTransition {
    InvalidTransition { phase: state.phase, event, why: why.into() }
}

/// Applies one event.
///
/// # Errors
/// [`InvalidTransition`] when the event does not fit the state (a terminal state absorbs every event).
pub fn on_event(mut s: ExecutionState, ev: Event) -> Result<ExecutionState, InvalidTransition> {
    if let Event::ReArmRequested { at, .. } = ev {
        if s.mode != Mode::Failback || !s.phase.is_terminal() || s.to_clean_up().is_empty() {
            return Err(invalid(&s, "re_arm_requested", "only an ended failback with servers left to re-arm re-arms"));
        }
        s.outcome = Some(s.phase);
        s.phase = Phase::CleaningUp;
        s.cleanup_started_at = Some(at);
        s.ended_at = None;
        s.re_arms += 1;
        return Ok(s);
    }
    if s.phase.is_terminal() {
        return Ok(s);
    }
    if s.phase == Phase::CleaningUp {
        // Late job events change nothing. Clean-up ends when every standby is back, or when a person
        // cancels it, or after CLEANUP_TIMEOUT_MS (e.g. a permission is missing): what is left stays as
        // it is, and the next execution refuses to start while DRS still lists a standby.
        let end = match ev {
            Event::CleanedUp { servers, at } => {
                for r in s.waves.iter_mut().flat_map(|w| w.servers.make_mut().iter_mut()) {
                    if servers.contains(&r.source_server_id) && r.cleaned_at.is_none() {
                        r.cleaned_at = Some(at);
                    }
                }
                s.to_clean_up().is_empty().then_some(at)
            }
            Event::Reprotected { servers, at } => {
                for r in s
                    .waves
                    .iter_mut()
                    .flat_map(|w| w.servers.make_mut().iter_mut())
                    .filter(|r| servers.contains(&r.source_server_id))
                {
                    r.reprotected_at.get_or_insert(at);
                }
                None
            }
            Event::Protected { servers, at } => {
                for r in s
                    .waves
                    .iter_mut()
                    .flat_map(|w| w.servers.make_mut().iter_mut())
                    .filter(|r| servers.contains(&r.source_server_id))
                {
                    r.protected_at.get_or_insert(at);
                }
                None
            }
            Event::CancelRequested { at, .. } => Some(at),
            Event::Tick { at } if s.cleanup_started_at.is_some_and(|t| at >= t + s.cleanup_timeout_ms()) => Some(at),
            _ => None,
        };
        if let Some(at) = end {
            s.phase = s.outcome.take().unwrap_or(Phase::Failed);
            s.ended_at = Some(at);
        }
        return Ok(s);
    }
    match ev {
        Event::Approved { by, at } => {
            if s.phase != Phase::AwaitingApproval {
                return Err(invalid(&s, "approved", "nothing awaits approval"));
            }
            s.approved_by = Some(by);
            s.started_at = Some(at);
            s.phase = Phase::Running;
            s.enter_wave(at, false);
        }
        Event::Rejected { at, .. } => {
            if s.phase != Phase::AwaitingApproval {
                return Err(invalid(&s, "rejected", "nothing awaits approval"));
            }
            s.phase = Phase::Rejected;
            s.ended_at = Some(at);
        }
        Event::GateReleased { at, .. } => {
            if s.phase != Phase::AwaitingGate {
                return Err(invalid(&s, "gate_released", "no wave waits at a gate"));
            }
            s.enter_wave(at, true);
        }
        Event::BatchClaimed { servers, at } => {
            let committed = |id: &SourceServerId| {
                s.waves.get(s.current_wave).is_some_and(|w| {
                    w.servers.iter().any(|r| &r.source_server_id == id && r.source_stopped_at.is_some())
                })
            };
            if s.phase != Phase::Running || (s.cancel_requested && !servers.iter().all(committed)) {
                return Err(invalid(&s, "batch_claimed", "no wave is starting servers"));
            }
            for id in &servers {
                let state = s.waves[s.current_wave].servers.iter().find(|r| &r.source_server_id == id).map(|r| r.state);
                match state {
                    None => return Err(invalid(&s, "batch_claimed", format!("{id} is not in the current wave"))),
                    Some(ServerState::Waiting) => {}
                    Some(other) => return Err(invalid(&s, "batch_claimed", format!("{id} is {other:?}, not waiting"))),
                }
            }
            for id in &servers {
                if let Some(r) = s.server_mut(id) {
                    r.state = ServerState::Starting;
                    r.started_at = Some(at);
                }
            }
        }
        Event::JobStarted { job_id, servers, .. } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Starting
                {
                    r.state = ServerState::Launching;
                    r.job_id = Some(job_id.clone());
                }
            }
        }
        Event::StartAbandoned { servers } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Starting
                {
                    r.state = ServerState::Waiting;
                    r.started_at = None;
                }
            }
            let at = s.started_at.unwrap_or(s.requested_at);
            s.settle_wave(at);
        }
        Event::StartFailed { servers, error, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && matches!(r.state, ServerState::Starting | ServerState::Waiting)
                {
                    r.state = ServerState::Failed;
                    r.error = Some(error.clone());
                }
            }
            s.settle_wave(at);
        }
        Event::Launched { server, at } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launching
            {
                r.state = ServerState::Launched;
                r.launched_at = Some(at);
            }
        }
        Event::LaunchFailed { server, error, at } => {
            if let Some(r) = s.server_mut(&server)
                && matches!(r.state, ServerState::Launching | ServerState::Starting)
            {
                r.state = ServerState::Failed;
                r.error = Some(error);
            }
            s.settle_wave(at);
        }
        Event::Verified { server, at, recovery_point } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launched
            {
                r.state = ServerState::Verified;
                r.verified_at = Some(at);
                r.recovery_point = recovery_point;
            }
            s.settle_wave(at);
        }
        Event::SourcesStopped { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.source_stopped_at.is_none()
                {
                    r.source_stopped_at = Some(at);
                }
            }
        }
        Event::Drained { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.source_stopped_at.is_some()
                {
                    r.drained_at = Some(at);
                }
            }
        }
        Event::ReadinessChecked { blocked, at } => {
            let Some(w) = s.waves.get_mut(s.current_wave) else { return Ok(s) };
            w.readiness_checked_at = Some(at);
            for r in w.servers.make_mut() {
                if let Some((_, why)) = blocked.iter().find(|(id, _)| id == &r.source_server_id)
                    && r.state == ServerState::Waiting
                {
                    r.state = ServerState::Failed;
                    r.error = Some(format!("not ready when its wave started: {why}"));
                }
            }
            s.settle_wave(at);
        }
        Event::ReverseClaimed { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.reverse_claimed_at.is_none()
                {
                    r.reverse_claimed_at = Some(at);
                    r.started_at = Some(at);
                }
            }
        }
        Event::Reversed { server, failback_source, .. } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Waiting
            {
                r.failback_source_id = Some(failback_source);
            }
        }
        Event::ReverseAbandoned { servers } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.failback_source_id.is_none()
                {
                    r.reverse_claimed_at = None;
                    r.started_at = None;
                }
            }
        }
        Event::ReplicationObserved { observations } => {
            for (id, state, lag) in observations {
                if let Some(r) = s.server_mut(&id) {
                    r.failback_replication = Some((state, lag));
                }
            }
        }
        Event::Replicated { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.failback_source_id.is_some()
                {
                    r.replicated_at = Some(at);
                }
            }
        }
        Event::Configured { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.replicated_at.is_some()
                {
                    r.configured_at = Some(at);
                }
            }
        }
        Event::CleanedUp { .. } => return Err(invalid(&s, "cleaned_up", "only a drill that has ended cleans up")),
        Event::Reprotected { .. } | Event::Protected { .. } => {
            return Err(invalid(&s, "reprotected", "only a failback that has come home re-arms"));
        }
        Event::ReArmRequested { .. } => return Err(invalid(&s, "re_arm_requested", "the failback is still running")),
        Event::VerificationFailed { server, error, at } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launched
            {
                r.state = ServerState::Failed;
                r.error = Some(error);
            }
            s.settle_wave(at);
        }
        Event::CancelRequested { at, .. } => {
            s.cancel_requested = true;
            match s.phase {
                Phase::AwaitingApproval | Phase::AwaitingGate => s.finish(at),
                _ => s.settle_wave(at),
            }
        }
        Event::Tick { at } => {
            if s.phase == Phase::AwaitingApproval && s.approval_deadline.is_some_and(|d| at >= d) {
                s.phase = Phase::Expired;
                s.ended_at = Some(at);
                return Ok(s);
            }
            let i = s.current_wave;
            if s.phase == Phase::Running
                && let Some(w) = s.waves.get_mut(i)
                && w.state == WaveState::Running
                && w.started_at.is_some_and(|t| at >= t + w.timeout_ms)
            {
                let minutes = w.timeout_ms / 60_000;
                for r in w.servers.make_mut() {
                    // A claim without a job id may be a running job: reconciliation decides, not the clock.
                    let unreconciled = r.state == ServerState::Starting && r.job_id.is_none();
                    if !matches!(r.state, ServerState::Verified | ServerState::Failed) && !unreconciled {
                        r.state = ServerState::Failed;
                        r.error = Some(format!("the wave timed out after {minutes} minutes"));
                    }
                }
                s.settle_wave(at);
            }
        }
    }
    Ok(s)
}

/// The commands the state calls for now, within `limits`: claimed starts to reconcile, jobs to poll,
/// launched servers to verify, and new batches while job slots are free (none once cancel is requested).
pub fn decide(s: &ExecutionState, limits: &Limits) -> Vec<Command> {
    if s.phase == Phase::CleaningUp {
        let servers = s.to_clean_up();
        return match (servers.is_empty(), s.mode) {
            (true, _) => Vec::new(),
            (false, Mode::Failback) => vec![Command::ReArm { servers }],
            (false, _) => vec![Command::CleanUp { servers }],
        };
    }
    if s.phase != Phase::Running {
        return Vec::new();
    }
    let Some(w) = s.waves.get(s.current_wave) else { return Vec::new() };
    let mut out = Vec::new();
    let in_state = |st: ServerState| -> Vec<SourceServerId> {
        w.servers.iter().filter(|r| r.state == st).map(|r| r.source_server_id.clone()).collect()
    };
    let orphans: Vec<SourceServerId> = w
        .servers
        .iter()
        .filter(|r| r.state == ServerState::Starting && r.job_id.is_none())
        .map(|r| r.source_server_id.clone())
        .collect();
    if !orphans.is_empty() {
        out.push(Command::Reconcile { servers: orphans });
    }
    let mut jobs: Vec<String> =
        w.servers.iter().filter(|r| r.state == ServerState::Launching).filter_map(|r| r.job_id.clone()).collect();
    jobs.sort();
    jobs.dedup();
    if !jobs.is_empty() {
        out.push(Command::PollJobs { job_ids: jobs.clone() });
    }
    let launched = in_state(ServerState::Launched);
    if !launched.is_empty() {
        out.push(Command::Verify { servers: launched });
    }
    // After a cancel only committed servers (a planned failover's stopped sources) go on.
    let committed = |r: &ServerRun| !s.cancel_requested || r.source_stopped_at.is_some();
    if s.cancel_requested && !w.servers.iter().any(|r| r.state == ServerState::Waiting && committed(r)) {
        return out;
    }
    if s.mode == Mode::Failback {
        // Prerequisites were checked when the failback was requested; each server goes reverse →
        // replicate → configure before it may launch.
        let pick = |f: &dyn Fn(&ServerRun) -> bool| -> Vec<SourceServerId> {
            w.servers
                .iter()
                .filter(|r| r.state == ServerState::Waiting && committed(r) && f(r))
                .map(|r| r.source_server_id.clone())
                .collect()
        };
        let steps = [
            (Command::Reverse { servers: pick(&|r| r.reverse_claimed_at.is_none()) }),
            (Command::ReconcileReverse {
                servers: pick(&|r| r.reverse_claimed_at.is_some() && r.failback_source_id.is_none()),
            }),
            (Command::AwaitReplication {
                servers: pick(&|r| r.failback_source_id.is_some() && r.replicated_at.is_none()),
            }),
            (Command::ConfigureFailback { servers: pick(&|r| r.replicated_at.is_some() && r.configured_at.is_none()) }),
        ];
        out.extend(steps.into_iter().filter(|c| match c {
            Command::Reverse { servers }
            | Command::ReconcileReverse { servers }
            | Command::AwaitReplication { servers }
            | Command::ConfigureFailback { servers } => !servers.is_empty(),
            _ => false,
        }));
    } else if w.readiness_checked_at.is_none() {
        out.push(Command::CheckReadiness { servers: in_state(ServerState::Waiting) });
        return out;
    }
    let active = w.servers.iter().filter(|r| matches!(r.state, ServerState::Starting | ServerState::Launching)).count();
    // Claims not yet known as a job may be one: count them as one job in flight.
    let unknown_job = w.servers.iter().any(|r| r.state == ServerState::Starting && r.job_id.is_none());
    let mut free_jobs = limits.max_concurrent_jobs.saturating_sub(jobs.len() + usize::from(unknown_job));
    let mut free_servers = limits.max_servers_in_active_jobs.saturating_sub(active);
    if s.kind == FailoverKind::Planned {
        let waiting = || w.servers.iter().filter(|r| r.state == ServerState::Waiting);
        let to_stop: Vec<SourceServerId> = waiting()
            .filter(|r| r.source_stopped_at.is_none() && !s.cancel_requested)
            .map(|r| r.source_server_id.clone())
            .collect();
        if !to_stop.is_empty() {
            out.push(Command::StopSources { servers: to_stop });
        }
        let draining: Vec<SourceServerId> = waiting()
            .filter(|r| r.source_stopped_at.is_some() && r.drained_at.is_none())
            .map(|r| r.source_server_id.clone())
            .collect();
        if !draining.is_empty() {
            out.push(Command::AwaitDrain { servers: draining });
        }
    }
    let waiting: Vec<SourceServerId> = w
        .servers
        .iter()
        .filter(|r| r.state == ServerState::Waiting && s.may_launch(r) && committed(r))
        .map(|r| r.source_server_id.clone())
        .collect();
    for chunk in waiting.chunks(limits.max_servers_per_job.max(1)) {
        if free_jobs == 0 || free_servers == 0 {
            break;
        }
        let take = chunk.len().min(free_servers);
        out.push(Command::StartJob { servers: chunk[..take].to_vec(), is_drill: s.mode == Mode::Drill });
        free_jobs -= 1;
        free_servers -= take;
    }
    out
}
