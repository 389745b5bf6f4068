//! The state machine's tests.

use super::*;
use crate::ids::{InstanceId, SourceServerId};
use crate::plan::OnFailure;
use std::net::Ipv4Addr;

const MIN: i64 = 60_000;

fn server(n: u32) -> ServerRun {
    ServerRun::waiting(
        SourceServerId::parse(&format!("s-{n:017x}")).unwrap(),
        InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
        Ipv4Addr::new(10, 1, 0, 10),
    )
}

fn wave(name: &str, servers: std::ops::Range<u32>, pause_before: bool, on_failure: OnFailure) -> WaveRun {
    WaveRun {
        name: name.into(),
        pause_before,
        on_failure,
        timeout_ms: 60 * MIN,
        state: WaveState::Pending,
        started_at: None,
        ended_at: None,
        servers: servers.map(server).collect(),
        // Checked already, so tests of other rules start at once (one test below covers the check).
        readiness_checked_at: Some(0),
    }
}

fn id(n: u32) -> SourceServerId {
    server(n).source_server_id
}

fn apply(s: ExecutionState, events: Vec<Event>) -> ExecutionState {
    events.into_iter().fold(s, |s, e| on_event(s, e).unwrap())
}

/// Runs every server of the current wave through claim → job → launch → verify.
fn run_wave(s: ExecutionState, job: &str, at: i64) -> ExecutionState {
    let ids: Vec<SourceServerId> = s.waves[s.current_wave].servers.iter().map(|r| r.source_server_id.clone()).collect();
    let mut evs = vec![
        Event::BatchClaimed { servers: ids.clone(), at },
        Event::JobStarted { job_id: job.into(), servers: ids.clone(), at },
    ];
    evs.extend(ids.iter().map(|i| Event::Launched { server: i.clone(), at: at + 5 * MIN }));
    evs.extend(ids.iter().map(|i| Event::Verified { server: i.clone(), at: at + 6 * MIN, recovery_point: Some(at) }));
    apply(s, evs)
}

#[test]
fn a_decision_is_admitted_only_while_the_execution_awaits_it() {
    use Decision::{Approve, Cancel, Reject, Resume};
    let requested = || {
        ExecutionState::new(
            Mode::Recovery,
            FailoverKind::Disaster,
            vec![wave("db", 1..2, false, OnFailure::Stop), wave("app", 2..3, true, OnFailure::Stop)],
            "alice",
            0,
            60 * MIN,
        )
    };
    let rejected = apply(requested(), vec![Event::Rejected { by: "bob".into(), at: MIN }]);
    let expired = apply(requested(), vec![Event::Tick { at: 61 * MIN }]);
    let running = apply(requested(), vec![Event::Approved { by: "bob".into(), at: MIN }]);
    let at_gate = run_wave(running.clone(), "drsjob-1", 2 * MIN);
    assert_eq!(at_gate.phase, Phase::AwaitingGate);
    let fresh = requested();
    let not_approval = |phase| Err(NotAwaiting::Approval { phase });
    type Case<'a> = (&'a str, &'a ExecutionState, i64, Decision, Result<(), NotAwaiting>);
    let cases: Vec<Case> = vec![
        ("a fresh request is approved", &fresh, MIN, Approve, Ok(())),
        ("a fresh request is rejected", &fresh, MIN, Reject, Ok(())),
        ("past its deadline, before the runner saw it", &fresh, 60 * MIN, Approve, not_approval(Phase::Expired)),
        ("an expired request", &expired, 62 * MIN, Approve, not_approval(Phase::Expired)),
        ("a rejected request", &rejected, 2 * MIN, Approve, not_approval(Phase::Rejected)),
        ("a rejected request, rejected again", &rejected, 2 * MIN, Reject, not_approval(Phase::Rejected)),
        ("an approved, running request", &running, 2 * MIN, Approve, not_approval(Phase::Running)),
        ("a wave at its gate is released", &at_gate, 9 * MIN, Resume, Ok(())),
        ("no gate while running", &running, 2 * MIN, Resume, Err(NotAwaiting::Gate { phase: Phase::Running })),
        (
            "a gate approval is a release, not an approval",
            &at_gate,
            9 * MIN,
            Approve,
            not_approval(Phase::AwaitingGate),
        ),
        ("a running execution is cancelled", &running, 2 * MIN, Cancel, Ok(())),
        ("an ended one is not", &rejected, 2 * MIN, Cancel, Err(NotAwaiting::Ended { phase: Phase::Rejected })),
    ];
    for (why, state, now, decision, want) in cases {
        assert_eq!(state.admits(decision, now), want, "{why}");
    }
    assert_eq!(
        NotAwaiting::Approval { phase: Phase::Expired }.to_string(),
        "nothing awaits approval: the execution is expired"
    );
}

#[test]
fn a_drill_runs_its_waves_in_order_and_succeeds() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("db", 1..3, false, OnFailure::Stop), wave("app", 3..5, false, OnFailure::Stop)],
        "alice",
        0,
        0,
    );
    assert_eq!((s.phase, s.waves[0].state), (Phase::Running, WaveState::Running));
    assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1), id(2)], is_drill: true }]);
    let s = run_wave(s, "drsjob-1", MIN);
    assert_eq!((s.current_wave, s.waves[0].state, s.waves[1].state), (1, WaveState::Succeeded, WaveState::Running));
    let s = run_wave(s, "drsjob-2", 10 * MIN);
    // A drill then returns every standby to standby before it ends.
    assert_eq!((s.phase, s.outcome, s.ended_at), (Phase::CleaningUp, Some(Phase::Succeeded), None));
    let all = vec![id(1), id(2), id(3), id(4)];
    assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: all.clone() }]);
    let s = apply(s, vec![Event::CleanedUp { servers: vec![id(1)], at: 17 * MIN }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: all[1..].to_vec() }]);
    let late = apply(s.clone(), vec![Event::LaunchFailed { server: id(2), error: "late".into(), at: 17 * MIN }]);
    assert_eq!(late, s, "late job events change nothing");
    // A person may abandon the clean-up; it also gives up after CLEANUP_TIMEOUT_MS.
    let abandoned = apply(s.clone(), vec![Event::CancelRequested { by: "a".into(), at: 17 * MIN }]);
    assert_eq!((abandoned.phase, abandoned.ended_at), (Phase::Succeeded, Some(17 * MIN)));
    let stuck = apply(s.clone(), vec![Event::Tick { at: 16 * MIN + CLEANUP_TIMEOUT_MS - 1 }]);
    assert_eq!(stuck.phase, Phase::CleaningUp);
    let gave_up = apply(s.clone(), vec![Event::Tick { at: 16 * MIN + CLEANUP_TIMEOUT_MS }]);
    assert_eq!((gave_up.phase, gave_up.waves[0].servers[1].cleaned_at), (Phase::Succeeded, None));
    let s = apply(s, vec![Event::CleanedUp { servers: all[1..].to_vec(), at: 18 * MIN }]);
    assert_eq!((s.phase, s.ended_at), (Phase::Succeeded, Some(18 * MIN)));
    assert!(decide(&s, &Limits::default()).is_empty());
}

#[test]
fn a_cancelled_planned_failover_still_launches_the_servers_whose_source_it_stopped() {
    let s = ExecutionState::new(
        Mode::Recovery,
        FailoverKind::Planned,
        vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..4, false, OnFailure::Stop)],
        "alice",
        0,
        60 * MIN,
    );
    let s = apply(
        s,
        vec![
            Event::Approved { by: "bob".into(), at: 0 },
            Event::SourcesStopped { servers: vec![id(1)], at: MIN },
            Event::CancelRequested { by: "alice".into(), at: MIN },
        ],
    );
    assert_eq!(s.phase, Phase::Running, "server 1's source is down: it must come up on the DR side");
    assert_eq!(
        decide(&s, &Limits::default()),
        [Command::AwaitDrain { servers: vec![id(1)] }],
        "server 2 is left alone"
    );
    let s = apply(s, vec![Event::Drained { servers: vec![id(1)], at: 2 * MIN }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1)], is_drill: false }]);
    let ids = vec![id(1)];
    let s = apply(
        s,
        vec![
            Event::BatchClaimed { servers: ids.clone(), at: 2 * MIN },
            Event::JobStarted { job_id: "j".into(), servers: ids, at: 2 * MIN },
            Event::Launched { server: id(1), at: 5 * MIN },
            Event::Verified { server: id(1), at: 6 * MIN, recovery_point: None },
        ],
    );
    assert_eq!(
        (s.phase, s.waves[0].servers[1].state, s.waves[1].state),
        (Phase::Cancelled, ServerState::Waiting, WaveState::Skipped)
    );
}

#[test]
fn a_wave_timeout_leaves_a_claim_without_a_job_to_reconciliation() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..3, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let s = apply(s, vec![Event::BatchClaimed { servers: vec![id(1)], at: 0 }, Event::Tick { at: 60 * MIN }]);
    assert_eq!(
        (s.waves[0].servers[0].state, s.waves[0].servers[1].state),
        (ServerState::Starting, ServerState::Failed)
    );
    assert_eq!(decide(&s, &Limits::default()), [Command::Reconcile { servers: vec![id(1)] }]);
}

#[test]
fn status_counts_progress_and_measures_rto_from_the_start() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..5, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let first = apply(
        s.clone(),
        vec![
            Event::BatchClaimed { servers: vec![id(1), id(2)], at: MIN },
            Event::JobStarted { job_id: "j1".into(), servers: vec![id(1), id(2)], at: MIN },
            Event::Launched { server: id(1), at: 6 * MIN },
            Event::Verified { server: id(1), at: 6 * MIN, recovery_point: None },
        ],
    );
    let early = status(&first, 30, 6 * MIN);
    assert_eq!(early.progress_percent, 25);
    assert_eq!(early.remaining_ms, None, "no wave has finished: estimating, not 18 minutes from one server");
    let s = run_wave(s, "j1", MIN);
    let half = status(&s, 30, 8 * MIN);
    assert_eq!((half.progress_percent, half.rto_ms, half.elapsed_ms), (50, None, Some(8 * MIN)));
    let (a, b) = (&s.waves[0], &s.waves[1]);
    let took = a.ended_at.unwrap() - a.started_at.unwrap();
    let spent = b.started_at.map_or(0, |t| 8 * MIN - t);
    assert_eq!(half.remaining_ms, Some(took - spent), "wave b takes as long as wave a, {took} ms; {spent} ms spent");
    assert_eq!(half.waves[0].rto_ms, Some(7 * MIN));
    let s = run_wave(s, "j2", 10 * MIN);
    let s = apply(s, vec![Event::CleanedUp { servers: (1..5).map(id).collect(), at: 16 * MIN }]);
    let done = status(&s, 30, 60 * MIN);
    assert_eq!((done.progress_percent, done.rto_ms, done.elapsed_ms), (100, Some(16 * MIN), Some(16 * MIN)));
}

#[test]
fn a_recovery_waits_for_approval_which_can_expire_or_be_rejected() {
    let waves = || vec![wave("all", 1..2, false, OnFailure::Stop)];
    let s = ExecutionState::new(Mode::Recovery, FailoverKind::Disaster, waves(), "alice", 0, 60 * MIN);
    assert_eq!(s.phase, Phase::AwaitingApproval);
    assert!(decide(&s, &Limits::default()).is_empty(), "nothing starts before approval");
    let expired = apply(s.clone(), vec![Event::Tick { at: 60 * MIN }]);
    assert_eq!(expired.phase, Phase::Expired);
    let rejected = apply(s.clone(), vec![Event::Rejected { by: "bob".into(), at: MIN }]);
    assert_eq!(rejected.phase, Phase::Rejected);
    let approved = apply(s, vec![Event::Approved { by: "bob".into(), at: MIN }]);
    assert_eq!((approved.phase, approved.approved_by.as_deref()), (Phase::Running, Some("bob")));
    assert!(matches!(decide(&approved, &Limits::default())[0], Command::StartJob { is_drill: false, .. }));
}

#[test]
fn batches_respect_the_per_job_and_active_server_limits() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("big", 0..250, false, OnFailure::Stop)],
        "alice",
        0,
        0,
    );
    let limits = Limits { max_servers_per_job: 100, max_concurrent_jobs: 20, max_servers_in_active_jobs: 220 };
    let sizes: Vec<usize> = decide(&s, &limits)
        .into_iter()
        .map(|c| match c {
            Command::StartJob { servers, .. } => servers.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [100, 100, 20]);
    let two_jobs = Limits { max_concurrent_jobs: 2, ..limits };
    assert_eq!(decide(&s, &two_jobs).len(), 2);
}

#[test]
fn a_claimed_start_without_a_job_is_reconciled_not_started_again() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("w", 1..3, false, OnFailure::Stop)],
        "alice",
        0,
        0,
    );
    let claimed = apply(s, vec![Event::BatchClaimed { servers: vec![id(1), id(2)], at: MIN }]);
    // The process died here; on resume the state asks to reconcile, and starts nothing new.
    assert_eq!(decide(&claimed, &Limits::default()), [Command::Reconcile { servers: vec![id(1), id(2)] }]);
    let found = apply(
        claimed.clone(),
        vec![Event::JobStarted { job_id: "drsjob-9".into(), servers: vec![id(1), id(2)], at: MIN }],
    );
    assert_eq!(decide(&found, &Limits::default()), [Command::PollJobs { job_ids: vec!["drsjob-9".into()] }]);
    let lost = apply(claimed, vec![Event::StartAbandoned { servers: vec![id(1), id(2)] }]);
    assert!(matches!(&decide(&lost, &Limits::default())[..], [Command::StartJob { .. }]));
}

#[test]
fn a_failed_server_stops_the_plan_or_not_as_the_wave_says() {
    let waves = |policy| vec![wave("a", 1..3, false, policy), wave("b", 3..4, false, OnFailure::Stop)];
    let fail_one = |s: ExecutionState| {
        apply(
            s,
            vec![
                Event::BatchClaimed { servers: vec![id(1), id(2)], at: 0 },
                Event::JobStarted { job_id: "j".into(), servers: vec![id(1), id(2)], at: 0 },
                Event::Launched { server: id(1), at: MIN },
                Event::LaunchFailed { server: id(2), error: "LAUNCH_FAILED".into(), at: MIN },
                Event::VerificationFailed {
                    server: id(1),
                    error: "came up with 10.9.9.9, expected 10.1.0.10".into(),
                    at: 2 * MIN,
                },
            ],
        )
    };
    let stopped = fail_one(ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves(OnFailure::Stop), "a", 0, 0));
    assert_eq!(
        (stopped.phase, stopped.outcome, stopped.waves[1].state),
        (Phase::CleaningUp, Some(Phase::Failed), WaveState::Skipped)
    );
    let went_on =
        fail_one(ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves(OnFailure::Continue), "a", 0, 0));
    assert_eq!((went_on.phase, went_on.current_wave, went_on.waves[1].state), (Phase::Running, 1, WaveState::Running));
}

#[test]
fn a_gate_holds_the_next_wave_until_released() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..2, false, OnFailure::Stop), wave("b", 2..3, true, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let s = run_wave(s, "j1", 0);
    assert_eq!((s.phase, s.waves[1].state), (Phase::AwaitingGate, WaveState::Pending));
    assert!(decide(&s, &Limits::default()).is_empty());
    let s = apply(s, vec![Event::GateReleased { by: "bob".into(), at: 20 * MIN }]);
    assert_eq!((s.phase, s.waves[1].started_at), (Phase::Running, Some(20 * MIN)));
}

#[test]
fn cancel_starts_nothing_new_and_ends_when_jobs_in_flight_settle() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..4, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let s = apply(
        s,
        vec![
            Event::BatchClaimed { servers: vec![id(1)], at: 0 },
            Event::JobStarted { job_id: "j".into(), servers: vec![id(1)], at: 0 },
            Event::CancelRequested { by: "alice".into(), at: MIN },
        ],
    );
    assert_eq!(s.phase, Phase::Running, "server 1 is still launching");
    assert_eq!(decide(&s, &Limits::default()), [Command::PollJobs { job_ids: vec!["j".into()] }]);
    let s = apply(
        s,
        vec![
            Event::Launched { server: id(1), at: 2 * MIN },
            Event::Verified { server: id(1), at: 3 * MIN, recovery_point: None },
        ],
    );
    assert_eq!((s.phase, s.outcome), (Phase::CleaningUp, Some(Phase::Cancelled)));
    assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: vec![id(1)] }], "only what launched");
    assert_eq!(
        (s.waves[0].servers[1].state, s.waves[1].state),
        (ServerState::Waiting, WaveState::Skipped),
        "never launched"
    );
}

#[test]
fn a_wave_that_runs_past_its_timeout_fails_its_unfinished_servers() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..3, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let s = apply(s, vec![Event::Tick { at: 59 * MIN }]);
    assert_eq!(s.phase, Phase::Running);
    let s = apply(s, vec![Event::Tick { at: 60 * MIN }]);
    assert_eq!(s.phase, Phase::Failed);
    assert!(s.waves[0].servers[0].error.as_deref().unwrap().contains("timed out after 60 minutes"));
}

#[test]
fn events_that_do_not_fit_are_refused_and_terminal_states_absorb_the_rest() {
    let s = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Disaster,
        vec![wave("a", 1..2, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    let e = on_event(s.clone(), Event::Approved { by: "bob".into(), at: 0 }).unwrap_err();
    assert_eq!(e.event, "approved");
    assert!(on_event(s.clone(), Event::BatchClaimed { servers: vec![id(9)], at: 0 }).is_err(), "not in the wave");
    let done = apply(run_wave(s, "j", 0), vec![Event::CleanedUp { servers: vec![id(1)], at: MIN }]);
    assert_eq!(done.phase, Phase::Succeeded);
    assert_eq!(
        on_event(done.clone(), Event::LaunchFailed { server: id(1), error: "late".into(), at: 99 }).unwrap(),
        done
    );
}

#[test]
fn a_planned_failover_stops_and_drains_each_source_before_launching_it() {
    let s = ExecutionState::new(
        Mode::Recovery,
        FailoverKind::Planned,
        vec![wave("a", 1..3, false, OnFailure::Stop)],
        "alice",
        0,
        60 * MIN,
    );
    let s = apply(s, vec![Event::Approved { by: "bob".into(), at: MIN }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::StopSources { servers: vec![id(1), id(2)] }]);
    let s = apply(s, vec![Event::SourcesStopped { servers: vec![id(1), id(2)], at: MIN }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::AwaitDrain { servers: vec![id(1), id(2)] }]);
    let s = apply(s, vec![Event::Drained { servers: vec![id(2)], at: 2 * MIN }]);
    assert_eq!(
        decide(&s, &Limits::default()),
        [Command::AwaitDrain { servers: vec![id(1)] }, Command::StartJob { servers: vec![id(2)], is_drill: false }],
        "only a drained server launches"
    );
    let drill = ExecutionState::new(
        Mode::Drill,
        FailoverKind::Planned,
        vec![wave("a", 1..2, false, OnFailure::Stop)],
        "a",
        0,
        0,
    );
    assert_eq!(drill.kind, FailoverKind::Disaster, "a drill never touches the source side");
    assert!(matches!(&decide(&drill, &Limits::default())[..], [Command::StartJob { .. }]));
}

#[test]
fn a_recovery_records_the_point_in_time_it_launched_from_and_ends_without_clean_up() {
    let s = ExecutionState::new(
        Mode::Recovery,
        FailoverKind::Disaster,
        vec![wave("a", 1..2, false, OnFailure::Stop)],
        "alice",
        0,
        60 * MIN,
    );
    let s = apply(s, vec![Event::Approved { by: "bob".into(), at: 0 }]);
    let s = run_wave(s, "j", MIN);
    assert_eq!((s.phase, s.waves[0].servers[0].recovery_point), (Phase::Succeeded, Some(MIN)));
}

#[test]
fn a_wave_starts_nothing_before_readiness_is_checked_again_and_blocked_servers_fail() {
    let mut waves = vec![wave("a", 1..4, false, OnFailure::Continue), wave("b", 4..5, false, OnFailure::Stop)];
    waves.iter_mut().for_each(|w| w.readiness_checked_at = None);
    let s = ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves, "a", 0, 0);
    assert_eq!(decide(&s, &Limits::default()), [Command::CheckReadiness { servers: vec![id(1), id(2), id(3)] }]);
    let s = apply(s, vec![Event::ReadinessChecked { blocked: vec![(id(2), "standby.stopped".into())], at: MIN }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1), id(3)], is_drill: true }]);
    let blocked = &s.waves[0].servers[1];
    assert_eq!(blocked.state, ServerState::Failed);
    assert!(blocked.error.as_deref().unwrap().contains("standby.stopped"));
    // Every server blocked: the wave fails at once and, as it continues on failure, the next one is checked.
    let all = apply(
        ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..2, false, OnFailure::Continue), wave("b", 2..3, false, OnFailure::Stop)],
            "a",
            0,
            0,
        ),
        vec![],
    );
    let mut all = all;
    all.waves.iter_mut().for_each(|w| w.readiness_checked_at = None);
    let all = apply(all, vec![Event::ReadinessChecked { blocked: vec![(id(1), "x".into())], at: MIN }]);
    assert_eq!((all.current_wave, all.waves[0].state), (1, WaveState::Failed));
    assert_eq!(decide(&all, &Limits::default()), [Command::CheckReadiness { servers: vec![id(2)] }]);
}

#[test]
fn a_failback_reverses_replicates_and_configures_each_server_before_launching_it() {
    let s = ExecutionState::new(
        Mode::Failback,
        FailoverKind::Planned,
        vec![wave("a", 1..3, false, OnFailure::Stop)],
        "alice",
        0,
        60 * MIN,
    );
    assert_eq!((s.phase, s.kind), (Phase::AwaitingApproval, FailoverKind::Disaster));
    let s = apply(s, vec![Event::Approved { by: "bob".into(), at: 0 }]);
    assert_eq!(decide(&s, &Limits::default()), [Command::Reverse { servers: vec![id(1), id(2)] }]);
    let s = apply(s, vec![Event::ReverseClaimed { servers: vec![id(1), id(2)], at: MIN }]);
    // A crash here: the claims are reconciled, not reversed again.
    assert_eq!(decide(&s, &Limits::default()), [Command::ReconcileReverse { servers: vec![id(1), id(2)] }]);
    let back = |n: u32| SourceServerId::parse(&format!("s-f{n:016x}")).unwrap();
    let s = apply(
        s,
        vec![
            Event::Reversed { server: id(1), failback_source: back(1), at: MIN },
            Event::ReverseAbandoned { servers: vec![id(2)] },
        ],
    );
    assert_eq!(
        decide(&s, &Limits::default()),
        [Command::Reverse { servers: vec![id(2)] }, Command::AwaitReplication { servers: vec![id(1)] }]
    );
    let s = apply(s, vec![Event::Replicated { servers: vec![id(1)], at: 20 * MIN }]);
    assert!(decide(&s, &Limits::default()).contains(&Command::ConfigureFailback { servers: vec![id(1)] }));
    let s = apply(s, vec![Event::Configured { servers: vec![id(1)], at: 21 * MIN }]);
    assert!(decide(&s, &Limits::default()).contains(&Command::StartJob { servers: vec![id(1)], is_drill: false }));
    assert_eq!(s.waves[0].servers[0].failback_source_id, Some(back(1)));
}

#[test]
fn a_wave_s_servers_are_encoded_again_only_after_they_change() {
    let mut w = wave("w", 0..3, false, OnFailure::Stop);
    let plain = |w: &WaveRun| serde_json::to_string(&w.servers.iter().collect::<Vec<_>>()).unwrap();
    let first = serde_json::to_string(&w).unwrap();
    assert!(first.contains(&plain(&w)));
    // A copy shares the text; changing the copy encodes the copy anew and leaves the original as it was.
    let mut copy = w.clone();
    copy.servers.make_mut()[1].state = ServerState::Failed;
    copy.servers.make_mut()[1].error = Some("<gone>".into());
    let changed = serde_json::to_string(&copy).unwrap();
    assert!(changed.contains(&plain(&copy)) && changed.contains("<gone>"), "{changed}");
    assert_eq!(serde_json::to_string(&w).unwrap(), first);
    // Changed in place (not shared), it is encoded anew too.
    w.servers.make_mut()[0].name = "web-1".into();
    let again = serde_json::to_string(&w).unwrap();
    assert!(again.contains("\"web-1\"") && again.contains(&plain(&w)), "{again}");
    // Read back, and as a JSON value, it is the list.
    let back: WaveRun = serde_json::from_str(&again).unwrap();
    assert_eq!(back, w);
    assert_eq!(serde_json::to_value(&w).unwrap()["servers"][0]["name"], "web-1");
}
