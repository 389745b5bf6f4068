//! The command-line client: `roundtrip groups list`, `match`, `configure`, `readiness`, `failover`,
//! `approve`, `status`, `failback`, `report`, … against a running server's REST API with an API token.
//!
//! Text for people (with a progress bar on long operations) or `--output json` for scripts, and exit codes
//! a pipeline can act on ([`ClientError::exit_code`]).

mod client;
mod executions;
mod output;
mod prepare;
mod text;

use clap::{Args, Subcommand, ValueEnum};
pub use client::{Client, ClientError};
pub use executions::describe;
use output::Out;

/// Exit codes of the client commands (0 is success; clap answers 2 for a usage error).
pub mod exit {
    /// The server could not be reached, or answered something that is not Roundtrip's API.
    pub const UNREACHABLE: u8 = 5;
    /// No token, or a token that is invalid, expired, revoked or whose role does not allow this.
    pub const NOT_ALLOWED: u8 = 6;
    /// The server refused the request (invalid input, not found, conflict): its error code is printed.
    pub const REFUSED: u8 = 7;
    /// `readiness`: the group is blocked.
    pub const BLOCKED: u8 = 8;
    /// The execution ended failed (at least one server not verified).
    pub const FAILED: u8 = 10;
    /// The execution ended cancelled, rejected or expired.
    pub const NOT_RUN: u8 = 11;
    /// `--wait` / `--follow` gave up after `--timeout-minutes`.
    pub const TIMED_OUT: u8 = 12;
}

/// Where the server is and how to print.
#[derive(Args, Debug, Clone)]
pub struct ClientOptions {
    /// The Roundtrip server (client commands).
    #[arg(long, global = true, env = "ROUNDTRIP_SERVER", default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// An API token (Admin → API tokens); sent as `Authorization: Bearer …`.
    #[arg(long, global = true, env = "ROUNDTRIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output for people, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Protection groups.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Recovery plans.
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
    /// Match a group's source servers to standbys by Name tag; `--accept` pairs every ready match.
    Match {
        /// Group id or name.
        group: String,
        #[arg(long)]
        accept: bool,
    },
    /// Point each paired server's DRS launch configuration at its standby (launch into instance).
    Configure {
        /// Group id or name.
        group: String,
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// A group's readiness (exit code 8 when blocked).
    Readiness {
        /// Group id or name.
        group: String,
        /// Evaluate now instead of showing the last evaluation.
        #[arg(long)]
        evaluate: bool,
    },
    /// Start a drill or a failover of a plan.
    Failover(FailoverArgs),
    /// Approve a requested recovery or failback (a second person).
    Approve {
        execution_id: String,
        /// Why (recorded in the audit trail and the evidence report).
        #[arg(long)]
        comment: String,
    },
    /// Reject a requested recovery or failback.
    Reject {
        execution_id: String,
        #[arg(long)]
        comment: String,
    },
    /// Release the gate before the next wave.
    Resume {
        execution_id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Cancel an execution.
    Cancel { execution_id: String },
    /// An execution's progress; every execution when no id is given.
    Status {
        execution_id: Option<String>,
        /// Follow it until it ends, with a progress bar.
        #[arg(long, requires = "execution_id")]
        follow: bool,
        #[arg(long, default_value_t = 240)]
        timeout_minutes: u64,
    },
    /// Fail a completed recovery back into the original instances.
    Failback(FailbackArgs),
    /// Download an execution's evidence report.
    Report {
        execution_id: String,
        /// `html` (printable page) or `json`.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// File to write (standard output when absent).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Every protection group with its pair count.
    List,
    /// Create a protection group.
    Create {
        #[arg(long)]
        name: String,
        /// Primary account and region, e.g. 111111111111/us-east-1.
        #[arg(long)]
        primary: String,
        /// DR account and region, e.g. 222222222222/us-west-2.
        #[arg(long)]
        dr: String,
        /// Select source servers by tag (key=value, repeatable); every server when absent.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// Every recovery plan.
    List,
    /// Create a plan of one wave per group, in the order given.
    Create {
        #[arg(long)]
        name: String,
        /// Group id or name (repeatable).
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
        #[arg(long)]
        rto_target_minutes: Option<u32>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

/// `failover`'s arguments.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// Plan id or name.
    #[arg(long)]
    pub plan: String,
    /// A drill (no approval, standbys return to standby afterwards); otherwise a real recovery that
    /// waits for a second person.
    #[arg(long)]
    pub drill: bool,
    /// A planned failover (stop the sources, replicate the last data, then launch); disaster otherwise.
    #[arg(long, conflicts_with = "drill")]
    pub planned: bool,
    /// Run despite readiness warnings (critical checks always block).
    #[arg(long)]
    pub acknowledge_warnings: bool,
    /// Follow it until it ends, with a progress bar; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (exit code 12; the execution goes on).
    #[arg(long, default_value_t = 240)]
    pub timeout_minutes: u64,
}

/// `failback`'s arguments.
#[derive(Args, Debug)]
pub struct FailbackArgs {
    /// The recovery's execution id.
    pub execution_id: String,
    /// Stop each original instance before launching into it (when it still runs).
    #[arg(long)]
    pub stop_originals: bool,
    /// Tag each original `AWSDRS=AllowLaunchingIntoThisInstance` when it lacks the tag.
    #[arg(long)]
    pub tag_originals: bool,
    /// A server (source server id) to leave on its DR standby; repeat for more. A later failback of the
    /// same recovery can take it.
    #[arg(long = "leave-behind", value_name = "SOURCE_SERVER_ID")]
    pub leave_behind: Vec<String>,
    /// Fail back only the servers whose prerequisites pass; leave the others on DR.
    #[arg(long)]
    pub ready_only: bool,
    /// Only check: which servers would go and which would stay (and why), and the prerequisites.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow it until it ends, with a progress bar; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (exit code 12; the execution goes on).
    #[arg(long, default_value_t = 240)]
    pub timeout_minutes: u64,
}

/// Runs one client command.
///
/// # Errors
/// A [`ClientError`], whose exit code the binary returns.
pub async fn run(opts: &ClientOptions, command: ClientCommand) -> Result<(), ClientError> {
    let c = Client::new(opts)?;
    let out = Out { json: opts.output == Output::Json };
    match command {
        ClientCommand::Groups { command: GroupsCommand::List } => prepare::groups_list(&c, &out).await,
        ClientCommand::Groups { command: GroupsCommand::Create { name, primary, dr, tags } } => {
            prepare::groups_create(&c, &out, name, primary, dr, tags).await
        }
        ClientCommand::Plans { command: PlansCommand::List } => prepare::plans_list(&c, &out).await,
        ClientCommand::Plans { command: PlansCommand::Create { name, groups, rto_target_minutes } } => {
            prepare::plans_create(&c, &out, name, groups, rto_target_minutes).await
        }
        ClientCommand::Match { group, accept } => prepare::match_group(&c, &out, &group, accept).await,
        ClientCommand::Configure { group, dry_run } => prepare::configure(&c, &out, &group, dry_run).await,
        ClientCommand::Readiness { group, evaluate } => prepare::readiness(&c, &out, &group, evaluate).await,
        ClientCommand::Failover(a) => executions::failover(&c, &out, a).await,
        ClientCommand::Approve { execution_id, comment } => {
            executions::decide(&c, &out, &execution_id, "approve", &comment).await
        }
        ClientCommand::Reject { execution_id, comment } => {
            executions::decide(&c, &out, &execution_id, "reject", &comment).await
        }
        ClientCommand::Resume { execution_id, comment } => {
            executions::decide(&c, &out, &execution_id, "resume", &comment).await
        }
        ClientCommand::Cancel { execution_id } => executions::decide(&c, &out, &execution_id, "cancel", "").await,
        ClientCommand::Status { execution_id: None, .. } => executions::status_all(&c, &out).await,
        ClientCommand::Status { execution_id: Some(id), follow: true, timeout_minutes } => {
            executions::follow(&c, &out, &id, timeout_minutes).await
        }
        ClientCommand::Status { execution_id: Some(id), follow: false, .. } => executions::status(&c, &out, &id).await,
        ClientCommand::Failback(a) => executions::failback(&c, &out, a).await,
        ClientCommand::Report { execution_id, format, out: file } => {
            executions::report(&c, &out, &execution_id, format, file).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client::find;
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn exit_codes_tell_apart_what_a_pipeline_acts_on() {
        assert_eq!(ClientError::Ended("failed").exit_code(), exit::FAILED);
        assert_eq!(ClientError::Ended("rejected").exit_code(), exit::NOT_RUN);
        assert_eq!(ClientError::Blocked.exit_code(), exit::BLOCKED);
        assert_eq!(ClientError::TimedOut(1).exit_code(), exit::TIMED_OUT);
        let refused = ClientError::Refused { code: "NOT_READY".into(), message: "x".into(), details: Value::Null };
        assert_eq!(refused.to_json()["error"]["code"], "NOT_READY");
        assert_eq!(refused.to_json()["error"]["exit_code"], exit::REFUSED);
    }

    #[test]
    fn names_and_ids_are_resolved_and_ambiguity_is_refused() {
        let list = json!([{ "id": "rp-1", "name": "Billing" }, { "id": "rp-2", "name": "Web" }, { "id": "rp-3", "name": "web" }]);
        assert_eq!(find(&list, |p| p, "billing", "plan").unwrap(), "rp-1");
        assert_eq!(find(&list, |p| p, "rp-2", "plan").unwrap(), "rp-2");
        assert!(matches!(find(&list, |p| p, "Web", "plan"), Err(ClientError::Usage(_))));
        assert!(matches!(find(&list, |p| p, "nope", "plan"), Err(ClientError::Refused { .. })));
    }
}
