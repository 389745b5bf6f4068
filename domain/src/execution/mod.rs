//! The execution of a recovery plan as a pure state machine: events in, new state out; the commands the
//! state calls for are derived from it (`code-style.md` §7). No I/O, no clock: times come in with events.
//!
//! How a runner uses it, so that a crash at any point never starts a DRS job twice:
//! 1. `decide(&state, &limits)` lists commands. For `StartJob`, the runner first applies
//!    [`Event::BatchClaimed`] (servers `Waiting` → `Starting`) and persists the state with a conditional
//!    write, *then* calls `StartRecovery`, then applies [`Event::JobStarted`] with the job id and persists
//!    again.
//! 2. After a crash, servers left `Starting` without a job id come back as a `Reconcile` command: the
//!    runner looks for a job holding them (`DescribeJobs`) and applies `JobStarted` if one exists, or
//!    [`Event::StartAbandoned`] (back to `Waiting`) if none does.
//! 3. `PollJobs` and `Verify` are idempotent reads.
//!
//! Terminal phases absorb late events; an event that makes no sense in the current state is an
//! [`InvalidTransition`].

mod events;
mod failback;
mod machine;
mod proof;
mod record;
mod state;
mod status;
#[cfg(test)]
mod tests;

pub use events::*;
pub use failback::*;
pub use machine::*;
pub use proof::*;
pub use record::*;
pub use state::*;
pub use status::*;
