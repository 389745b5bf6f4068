//! Notifications: what happened to an execution or a group, as notices, and the webhooks that receive them.
//!
//! Notices are derived from the change of an execution's state ([`execution_notices`]), so every process
//! that commits a change announces exactly the change it made. Each notice has a stable id (the same
//! change gives the same id), which receivers may use to drop a duplicate.

use crate::error::FieldError;
use crate::execution::{
    Event, ExecutionState, Mode, NO_RECOVERY_INSTANCE, Phase, ServerState, WaveState, phase_word, status,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    ExecutionRequested,
    /// A recovery or failback waits for a second person, or a gate before a wave waits for an approver.
    AwaitingApproval,
    WaveStarted,
    WaveFinished,
    ServerFailed,
    /// A recovery instance came up as another instance, with another IP, or not running.
    IdentityMismatch,
    ExecutionFinished,
    /// A protection group's readiness verdict turned blocked.
    ReadinessBlocked,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 8] = [
        Self::ExecutionRequested,
        Self::AwaitingApproval,
        Self::WaveStarted,
        Self::WaveFinished,
        Self::ServerFailed,
        Self::IdentityMismatch,
        Self::ExecutionFinished,
        Self::ReadinessBlocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExecutionRequested => "execution_requested",
            Self::AwaitingApproval => "awaiting_approval",
            Self::WaveStarted => "wave_started",
            Self::WaveFinished => "wave_finished",
            Self::ServerFailed => "server_failed",
            Self::IdentityMismatch => "identity_mismatch",
            Self::ExecutionFinished => "execution_finished",
            Self::ReadinessBlocked => "readiness_blocked",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::ExecutionRequested => "Execution requested",
            Self::AwaitingApproval => "Awaiting approval",
            Self::WaveStarted => "Wave started",
            Self::WaveFinished => "Wave finished",
            Self::ServerFailed => "Server failed",
            Self::IdentityMismatch => "Identity mismatch",
            Self::ExecutionFinished => "Execution finished",
            Self::ReadinessBlocked => "Readiness blocked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How urgent a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeSeverity {
    Info,
    Warning,
    Critical,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Stable: the same change of the same execution or group always has the same id.
    pub id: String,
    pub kind: NoticeKind,
    pub severity: NoticeSeverity,
    /// When it happened, Unix ms (the estate's clock).
    pub at: i64,
    /// The execution or protection group it is about.
    pub subject: String,
    /// One line for people.
    pub title: String,
    pub details: Value,
}

/// What a notice about an execution needs beyond its state.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionContext<'a> {
    pub execution_id: &'a str,
    pub plan_name: &'a str,
    pub rto_target_minutes: u32,
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Drill => "Drill",
        Mode::Recovery => "Recovery",
        Mode::Failback => "Failback",
    }
}

/// The notices of one change of an execution: `before` is `None` for a new execution; `event` is the event
/// that made the change.
pub fn execution_notices(
    ctx: ExecutionContext<'_>,
    before: Option<&ExecutionState>,
    after: &ExecutionState,
    events: &[Event],
    at: i64,
) -> Vec<Notice> {
    let mut out = Vec::new();
    let id = ctx.execution_id;
    let what = format!("{} of {}", mode_word(after.mode), ctx.plan_name);
    let mut push = |kind: NoticeKind, key: String, severity: NoticeSeverity, title: String, details: Value| {
        let mut details = details;
        if let Some(d) = details.as_object_mut() {
            d.insert("execution_id".into(), id.into());
            d.insert("plan_name".into(), ctx.plan_name.into());
            d.insert("mode".into(), json!(after.mode));
        }
        out.push(Notice {
            id: format!("{id}:{}{key}", kind.as_str()),
            kind,
            severity,
            at,
            subject: id.to_owned(),
            title,
            details,
        });
    };
    let Some(before) = before else {
        push(
            NoticeKind::ExecutionRequested,
            String::new(),
            NoticeSeverity::Info,
            format!("{what} requested by {}", after.requested_by),
            json!({ "requested_by": after.requested_by, "kind": after.kind }),
        );
        if after.phase == Phase::AwaitingApproval {
            push(
                NoticeKind::AwaitingApproval,
                String::new(),
                NoticeSeverity::Warning,
                format!("{what} awaits approval by a second person"),
                json!({ "approval_deadline": after.approval_deadline }),
            );
        }
        if after.phase == Phase::AwaitingGate {
            gate(&mut push, after, &what);
        }
        // A drill starts its first wave at once.
        for (i, w) in after.waves.iter().enumerate().filter(|(_, w)| w.state == WaveState::Running) {
            push(
                NoticeKind::WaveStarted,
                format!(":{i}"),
                NoticeSeverity::Info,
                format!("{what}: wave {} started ({} servers)", w.name, w.servers.len()),
                json!({ "wave": w.name, "wave_index": i, "servers": w.servers.len() }),
            );
        }
        return out;
    };
    if after.phase == Phase::AwaitingGate && before.phase != Phase::AwaitingGate {
        gate(&mut push, after, &what);
    }
    // The status is read only when a wave or the execution ends.
    let st = std::cell::OnceCell::new();
    let st = || st.get_or_init(|| status(after, ctx.rto_target_minutes, at));
    for (i, (old, new)) in before.waves.iter().zip(&after.waves).enumerate() {
        if old.state == WaveState::Pending && new.state == WaveState::Running {
            push(
                NoticeKind::WaveStarted,
                format!(":{i}"),
                NoticeSeverity::Info,
                format!("{what}: wave {} started ({} servers)", new.name, new.servers.len()),
                json!({ "wave": new.name, "wave_index": i, "servers": new.servers.len() }),
            );
        }
        if matches!(old.state, WaveState::Pending | WaveState::Running)
            && matches!(new.state, WaveState::Succeeded | WaveState::Failed)
        {
            let ws = &st().waves[i];
            let failed = new.state == WaveState::Failed;
            push(
                NoticeKind::WaveFinished,
                format!(":{i}"),
                if failed { NoticeSeverity::Critical } else { NoticeSeverity::Info },
                format!(
                    "{what}: wave {} {} ({} of {} verified)",
                    new.name,
                    if failed { "failed" } else { "succeeded" },
                    ws.verified,
                    ws.servers
                ),
                json!({ "wave": new.name, "wave_index": i, "state": new.state, "servers": ws.servers,
                        "verified": ws.verified, "failed": ws.failed, "rto_ms": ws.rto_ms }),
            );
        }
        for (o, n) in old.servers.iter().zip(new.servers.iter()) {
            if o.state == ServerState::Failed || n.state != ServerState::Failed {
                continue;
            }
            // Another instance, another IP, or not running; DRS naming no recovery instance is a failure.
            let identity = events.iter().any(|e| {
                matches!(e, Event::VerificationFailed { server, error, .. }
                    if server == &n.source_server_id && error != NO_RECOVERY_INSTANCE)
            });
            let kind = if identity { NoticeKind::IdentityMismatch } else { NoticeKind::ServerFailed };
            let error = bounded(n.error.as_deref().unwrap_or_default());
            push(
                kind,
                format!(":{}", n.source_server_id),
                NoticeSeverity::Critical,
                format!(
                    "{what}: {} ({}) {}: {error}",
                    n.name,
                    n.source_server_id,
                    if identity { "failed identity verification" } else { "failed" }
                ),
                json!({ "wave": new.name, "server_name": n.name, "source_server_id": n.source_server_id,
                        "standby_instance_id": n.standby_instance_id, "expected_ip": n.expected_ip.to_string(),
                        "error": error }),
            );
        }
    }
    if after.phase.is_terminal() && !before.phase.is_terminal() {
        let ok = after.phase == Phase::Succeeded;
        let st = st();
        let rto = st.rto_ms.map_or_else(|| "not achieved".to_owned(), crate::time::format_duration_ms);
        push(
            NoticeKind::ExecutionFinished,
            // A failback re-armed again ends again: a new notice, not a duplicate.
            if after.re_arms > 0 { format!(":re-arm-{}", after.re_arms) } else { String::new() },
            if ok { NoticeSeverity::Info } else { NoticeSeverity::Critical },
            format!(
                "{what} ended {}: RTO {rto} against a target of {} min",
                phase_word(after.phase),
                ctx.rto_target_minutes
            ),
            json!({ "outcome": after.phase, "rto_ms": st.rto_ms, "rto_target_ms": st.rto_target_ms,
                    "servers": after.waves.iter().map(|w| w.servers.len()).sum::<usize>(),
                    "failed": st.waves.iter().map(|w| w.failed).sum::<usize>() }),
        );
    }
    out
}

/// The awaiting-approval notice of a gate before the current wave.
fn gate(push: &mut impl FnMut(NoticeKind, String, NoticeSeverity, String, Value), after: &ExecutionState, what: &str) {
    let wave = after.waves.get(after.current_wave).map_or("", |w| w.name.as_str());
    push(
        NoticeKind::AwaitingApproval,
        format!(":gate:{}", after.current_wave),
        NoticeSeverity::Warning,
        format!("{what}: wave {wave} waits for an approver to release it"),
        json!({ "wave": wave }),
    );
}

/// Longest error text a notice carries (errors come from DRS and EC2).
pub const MAX_ERROR_CHARS: usize = 500;

/// `s` cut to [`MAX_ERROR_CHARS`].
fn bounded(s: &str) -> String {
    if s.chars().count() <= MAX_ERROR_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_ERROR_CHARS - 1).collect();
    out.push('…');
    out
}

/// The notice of a group whose verdict turned blocked.
pub fn readiness_blocked(group_id: &str, group_name: &str, failing: &[(String, usize)], at: i64) -> Notice {
    let because: Vec<String> = failing.iter().take(5).map(|(c, n)| format!("{c} ({n})")).collect();
    Notice {
        id: format!("{group_id}:readiness_blocked:{at}"),
        kind: NoticeKind::ReadinessBlocked,
        severity: NoticeSeverity::Critical,
        at,
        subject: group_id.to_owned(),
        title: format!("Protection group {group_name} is blocked: {}", because.join(", ")),
        details: json!({ "protection_group_id": group_id, "group_name": group_name, "failing": failing }),
    }
}

/// The wire format a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notice as JSON.
    #[default]
    Generic,
    /// A Slack-compatible message (`text` and `blocks`), for Slack's incoming webhooks and the chat tools
    /// that accept the same.
    Slack,
}

/// The body a webhook of `format` receives for `n`.
pub fn payload(n: &Notice, format: WebhookFormat) -> Value {
    match format {
        WebhookFormat::Generic => json!({
            "source": "roundtrip",
            "id": n.id,
            "kind": n.kind,
            "severity": n.severity,
            "at": crate::time::format_iso8601(n.at),
            "at_ms": n.at,
            "subject": n.subject,
            "title": n.title,
            "details": n.details,
        }),
        WebhookFormat::Slack => {
            let mark = match n.severity {
                NoticeSeverity::Info => ":information_source:",
                NoticeSeverity::Warning => ":warning:",
                NoticeSeverity::Critical => ":rotating_light:",
            };
            // Slack refuses a section over 3000 characters.
            let title: String = slack_escape(&n.title).chars().take(2_800).collect();
            json!({
                "text": format!("{mark} {title}"),
                "blocks": [
                    { "type": "section", "text": { "type": "mrkdwn", "text": format!("{mark} *{title}*") } },
                    { "type": "context", "elements": [ { "type": "mrkdwn", "text": format!(
                        "{} · {} · {}", n.kind.label(), slack_escape(&n.subject), crate::time::format_iso8601(n.at)
                    ) } ] }
                ]
            })
        }
    }
}

/// Text as Slack's message format needs it: `&`, `<` and `>` escaped, so estate data cannot form links or
/// mentions.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The longest webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// A webhook as an admin enters it. Its `Debug` shows neither the URL's path nor the secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub name: String,
    /// Where notices are posted (http or https). Often a secret itself (Slack's are): stored, never shown.
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// The kinds it receives; all when empty.
    #[serde(default)]
    pub events: Vec<NoticeKind>,
    /// Signs each body: `X-Roundtrip-Signature: sha256=<HMAC-SHA256 of the body, hex>`. Stored, never shown.
    #[serde(default)]
    pub secret: Option<String>,
}

/// A valid [`WebhookInput`]. Its `Debug` shows neither the URL's path nor the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidWebhook {
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    pub events: Vec<NoticeKind>,
    pub secret: Option<String>,
}

macro_rules! redacted_debug {
    ($t:ty) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.name)
                    .field("url", &redacted_url(&self.url))
                    .field("format", &self.format)
                    .field("events", &self.events)
                    .field("secret", &self.secret.as_ref().map(|_| "***"))
                    .finish()
            }
        }
    };
}

redacted_debug!(WebhookInput);
redacted_debug!(ValidWebhook);

impl WebhookInput {
    /// Checks every field; all problems at once.
    ///
    /// # Errors
    /// One [`FieldError`] per problem, with a stable code.
    pub fn validate(&self) -> Result<ValidWebhook, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "INVALID_NAME", "a name of 1 to 64 characters"));
        }
        let url = self.url.trim().to_owned();
        if url_host(&url).is_none() || url.len() > MAX_URL_LEN {
            errors.push(FieldError::new(
                "url",
                "INVALID_URL",
                format!("an http:// or https:// URL with a host, up to {MAX_URL_LEN} characters, without spaces"),
            ));
        }
        let secret = self.secret.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        if secret.as_ref().is_some_and(|s| s.len() < 16 || s.len() > 256) {
            errors.push(FieldError::new("secret", "INVALID_SECRET", "a signing secret of 16 to 256 characters"));
        }
        let mut events = self.events.clone();
        events.sort();
        events.dedup();
        if errors.is_empty() {
            Ok(ValidWebhook { name, url, format: self.format, events, secret })
        } else {
            Err(errors)
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL, or `None` when it is not one.
pub fn url_host(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    // No user information: it would be a credential shown as the host.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

/// A webhook URL as shown after it is saved: its host only (the path of many webhooks is their secret).
pub fn redacted_url(url: &str) -> String {
    url_host(url).map_or_else(|| "(invalid URL)".to_owned(), |h| format!("{h}/…"))
}

/// One failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    /// Wall-clock Unix ms.
    pub at: i64,
    pub notice_id: String,
    pub notice_kind: NoticeKind,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub error: String,
    /// Whether this was the last attempt (the notice was not delivered).
    pub gave_up: bool,
}

/// How a webhook's deliveries are going.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeliveryStatus {
    pub delivered: u64,
    /// Notices given up on.
    pub undelivered: u64,
    pub failed_attempts: u64,
    pub last_delivered_at: Option<i64>,
    /// Newest first, at most [`RECENT_FAILURES`].
    pub recent_failures: Vec<DeliveryFailure>,
}

/// Failures a webhook's status keeps.
pub const RECENT_FAILURES: usize = 20;

impl DeliveryStatus {
    /// Records a failed attempt.
    pub fn failed(&mut self, f: DeliveryFailure) {
        self.failed_attempts += 1;
        if f.gave_up {
            self.undelivered += 1;
        }
        self.recent_failures.insert(0, f);
        self.recent_failures.truncate(RECENT_FAILURES);
    }

    /// Whether the last attempt failed (a problem worth showing).
    pub fn failing(&self) -> bool {
        self.recent_failures.first().is_some_and(|f| self.last_delivered_at.is_none_or(|d| f.at > d))
    }
}

/// A webhook as anyone may see it: no URL path, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    /// Host only.
    pub target: String,
    pub format: WebhookFormat,
    /// All when empty.
    pub events: Vec<NoticeKind>,
    /// Whether bodies are signed.
    pub signed: bool,
    pub created_by: String,
    pub created_at: i64,
    pub status: DeliveryStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{ExecutionState, FailoverKind, ServerRun, WaveRun};

    fn state() -> ExecutionState {
        let server = |n: u8| {
            let mut r = ServerRun::waiting(
                crate::ids::SourceServerId::parse(&format!("s-{n:017x}")).unwrap(),
                crate::ids::InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
                std::net::Ipv4Addr::new(10, 0, 0, n),
            );
            r.name = format!("app-<{n}>");
            r
        };
        let wave = |name: &str, servers: Vec<ServerRun>| WaveRun {
            name: name.into(),
            pause_before: false,
            on_failure: Default::default(),
            timeout_ms: 3_600_000,
            state: WaveState::Pending,
            started_at: None,
            ended_at: None,
            servers: servers.into(),
            readiness_checked_at: None,
        };
        ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("db", vec![server(1)]), wave("app", vec![server(2), server(3)])],
            "alice",
            1_000,
            3_600_000,
        )
    }

    const CTX: ExecutionContext<'static> =
        ExecutionContext { execution_id: "exec-1", plan_name: "Billing", rto_target_minutes: 30 };

    #[test]
    fn a_new_drill_is_requested_and_a_recovery_also_awaits_approval() {
        let s = state();
        let n = execution_notices(CTX, None, &s, &[], 5);
        assert_eq!(
            n.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::ExecutionRequested, NoticeKind::WaveStarted]
        );
        assert_eq!(n[1].id, "exec-1:wave_started:0");
        assert_eq!(n[0].id, "exec-1:execution_requested");
        let mut r = s.clone();
        r.mode = Mode::Recovery;
        r.phase = Phase::AwaitingApproval;
        r.waves[0].state = WaveState::Pending;
        let n = execution_notices(CTX, None, &r, &[], 5);
        assert_eq!(
            n.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::ExecutionRequested, NoticeKind::AwaitingApproval]
        );
    }

    #[test]
    fn wave_changes_failures_and_the_end_each_give_one_notice() {
        let before = state();
        assert_eq!(before.waves[0].state, WaveState::Running, "a drill starts its first wave at once");
        let mut after = before.clone();
        after.waves[1].state = WaveState::Running;
        let n = execution_notices(CTX, Some(&before), &after, &[], 9);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].kind, n[0].id.as_str()), (NoticeKind::WaveStarted, "exec-1:wave_started:1"));
        // A verification failure is an identity mismatch; the wave and the execution end with it.
        let before = after.clone();
        let victim = after.waves[0].servers.make_mut()[0].source_server_id.clone();
        after.waves[0].servers.make_mut()[0].state = ServerState::Failed;
        after.waves[0].servers.make_mut()[0].error = Some("came up with private IP 10.0.0.9, expected 10.0.0.1".into());
        after.waves[0].state = WaveState::Failed;
        after.phase = Phase::Failed;
        after.ended_at = Some(20);
        let ev = Event::VerificationFailed { server: victim, error: "x".into(), at: 20 };
        let n = execution_notices(CTX, Some(&before), &after, &[ev], 20);
        let kinds: Vec<_> = n.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NoticeKind::WaveFinished, NoticeKind::IdentityMismatch, NoticeKind::ExecutionFinished]);
        assert!(n[1].title.contains("10.0.0.9") && n[1].severity == NoticeSeverity::Critical, "{:?}", n[1]);
        assert_eq!(n[2].details["outcome"], "failed");
        // The same state again announces nothing.
        assert!(execution_notices(CTX, Some(&after), &after, &[], 21).is_empty());
    }

    #[test]
    fn a_gate_at_the_start_a_missing_recovery_instance_and_a_second_end_are_told_apart() {
        let mut s = state();
        s.waves[0].state = WaveState::Pending;
        s.phase = Phase::AwaitingGate;
        let n = execution_notices(CTX, None, &s, &[], 5);
        assert_eq!(n[1].id, "exec-1:awaiting_approval:gate:0", "{n:?}");
        let before = state();
        let mut after = before.clone();
        let victim = after.waves[0].servers.make_mut()[0].source_server_id.clone();
        after.waves[0].servers.make_mut()[0].state = ServerState::Failed;
        after.waves[0].servers.make_mut()[0].error = Some(NO_RECOVERY_INSTANCE.repeat(30));
        let ev = Event::VerificationFailed { server: victim, error: NO_RECOVERY_INSTANCE.into(), at: 9 };
        let n = execution_notices(CTX, Some(&before), &after, &[ev], 9);
        assert_eq!(n[0].kind, NoticeKind::ServerFailed);
        assert_eq!(n[0].details["error"].as_str().unwrap().chars().count(), MAX_ERROR_CHARS);
        let mut ended = before.clone();
        ended.phase = Phase::Succeeded;
        ended.re_arms = 1;
        let n = execution_notices(CTX, Some(&before), &ended, &[], 9);
        assert_eq!(n[0].id, "exec-1:execution_finished:re-arm-1");
    }

    #[test]
    fn webhook_secrets_stay_out_of_debug_output() {
        let input = WebhookInput {
            name: "ops".into(),
            url: "https://hooks.example.com/T0/B0/very-secret-path".into(),
            secret: Some("signing-secret-0123456789".into()),
            ..Default::default()
        };
        let shown = format!("{input:?} {:?}", input.validate().unwrap());
        assert!(!shown.contains("very-secret-path") && !shown.contains("signing-secret"), "{shown}");
    }

    #[test]
    fn slack_messages_escape_estate_data() {
        let before = state();
        let mut after = before.clone();
        after.waves[0].servers.make_mut()[0].state = ServerState::Failed;
        after.waves[0].servers.make_mut()[0].error = Some("<!channel> boom".into());
        let n = &execution_notices(CTX, Some(&before), &after, &[], 9)[0];
        assert_eq!(n.kind, NoticeKind::ServerFailed);
        let body = payload(n, WebhookFormat::Slack).to_string();
        assert!(!body.contains("<!channel>") && body.contains("&lt;!channel&gt;"), "{body}");
        assert!(body.contains("app-&lt;1&gt;"), "{body}");
        let generic = payload(n, WebhookFormat::Generic);
        assert_eq!(generic["kind"], "server_failed");
        assert_eq!(generic["details"]["server_name"], "app-<1>");
    }

    #[test]
    fn webhook_input_is_checked_and_urls_are_shown_by_host_only() {
        let ok = WebhookInput {
            name: " Ops ".into(),
            url: "https://hooks.slack.com/services/T0/B0/secretpath".into(),
            format: WebhookFormat::Slack,
            events: vec![NoticeKind::WaveStarted, NoticeKind::ServerFailed, NoticeKind::WaveStarted],
            secret: None,
        }
        .validate()
        .unwrap();
        assert_eq!(ok.name, "Ops");
        assert_eq!(ok.events, [NoticeKind::WaveStarted, NoticeKind::ServerFailed]);
        assert_eq!(redacted_url(&ok.url), "https://hooks.slack.com/…");
        for bad in ["ftp://x/y", "https://", "https://user:pw@host/x", "http://ho st/", "hooks.slack.com/x"] {
            let e = WebhookInput { name: "x".into(), url: bad.into(), ..Default::default() }.validate().unwrap_err();
            assert_eq!(e[0].code, "INVALID_URL", "{bad}");
        }
        let e = WebhookInput {
            name: String::new(),
            url: "http://127.0.0.1:9/".into(),
            secret: Some("short".into()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["INVALID_NAME", "INVALID_SECRET"]);
    }
}
