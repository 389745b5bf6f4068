//! Who may do what: roles, the permissions they grant, the acting identity of a request, and the two-person
//! rule for approvals.
//!
//! Invariants: a role grants a fixed set of permissions and nothing else; every route and console function
//! declares one [`Access`]; an identity's `subject` is the person behind it (a user name, or the user an
//! API token belongs to, or an OIDC subject), and the two-person rule compares subjects, so a person cannot
//! approve their own request by switching from the console to a token.

use serde::{Deserialize, Serialize};

/// Name of the console's session cookie.
pub const SESSION_COOKIE: &str = "rt_session";
/// Most characters in a user name.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes in a password (argon2 hashes anything, but a bound keeps hashing cheap to refuse).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Most characters in the name of an API token or a share link.
pub const MAX_LABEL_CHARS: usize = 80;
/// Most characters in a share link's operator message.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// A role held by a user or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Groups, matching, configuration, drills; requests failover and failback.
    Operator,
    /// Approves or rejects executions and resumes gates.
    Approver,
    /// Users, tokens, settings and destructive choices; everything the other roles may do.
    Admin,
}

impl Role {
    /// Every role, least to most powerful.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    /// Whether this role grants `p`.
    pub fn grants(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
            Permission::Approve => matches!(self, Role::Approver | Role::Admin),
            Permission::Administer => self == Role::Admin,
        }
    }

    /// The most powerful role that grants nothing beyond what both `self` and `other` grant: what a token
    /// of role `self` may do for an owner whose role is now `other`.
    pub fn meet(self, other: Role) -> Role {
        const PERMS: [Permission; 4] =
            [Permission::Read, Permission::Operate, Permission::Approve, Permission::Administer];
        [Role::Admin, Role::Approver, Role::Operator, Role::Viewer]
            .into_iter()
            .find(|r| PERMS.iter().all(|p| !r.grants(*p) || (self.grants(*p) && other.grants(*p))))
            .unwrap_or(Role::Viewer)
    }

    /// The wire form, e.g. `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire form.
    ///
    /// # Errors
    /// A field error naming the roles that exist.
    pub fn parse(s: &str) -> Result<Role, crate::FieldError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            crate::FieldError::new("role", "INVALID_ROLE", "role must be viewer, operator, approver or admin")
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Read,
    Operate,
    Approve,
    Administer,
}

/// The access a route or console function declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone, signed in or not (the health check, the login form).
    Public,
    /// Anyone holding a valid share link for the object; the handler checks the link.
    ShareLink,
    /// Any signed-in identity, including one that must still change its password.
    SignedIn,
    /// A signed-in identity whose role grants the permission.
    Role(Permission),
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A console session cookie.
    Session,
    /// An API token (`Authorization: Bearer rt_…`).
    Token,
    /// A bearer JWT from the configured OIDC issuer.
    Oidc,
    /// Roundtrip itself: background loops and start-up.
    System,
}

/// The acting identity of a request: recorded as the actor of everything it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The person (or system component) behind the request.
    pub subject: String,
    pub role: Role,
    pub method: AuthMethod,
    /// The API token's name when `method` is `Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A user signed in with a one-time password must set their own before anything else.
    #[serde(default)]
    pub must_change_password: bool,
}

impl Principal {
    /// Roundtrip itself, acting for `component` (e.g. `readiness-loop`).
    pub fn system(component: &str) -> Self {
        Self {
            subject: format!("system:{component}"),
            role: Role::Admin,
            method: AuthMethod::System,
            token: None,
            must_change_password: false,
        }
    }

    /// Whether this identity may do what `access` requires (share links are checked by their handler).
    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Public | Access::ShareLink | Access::SignedIn => true,
            Access::Role(p) => !self.must_change_password && self.role.grants(p),
        }
    }

    /// How the actor is written in records: `alice`, or `alice (token ci-pipeline)`.
    pub fn actor(&self) -> String {
        match (&self.method, &self.token) {
            (AuthMethod::Token, Some(t)) => format!("{} (token {t})", self.subject),
            _ => self.subject.clone(),
        }
    }
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApprovalRefusal {
    /// The two-person rule: whoever requested a recovery cannot approve it.
    #[error("{approver} requested this execution and cannot also approve it; a second person must")]
    SelfApproval { approver: String },
    /// The approver's role does not grant approvals.
    #[error("{approver} has the {role} role, which cannot approve; an approver or admin must")]
    NotAnApprover { approver: String, role: Role },
    /// The approver must set their own password first.
    #[error("{approver} must change their one-time password before approving")]
    PasswordChangeRequired { approver: String },
}

impl ApprovalRefusal {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SelfApproval { .. } => "SELF_APPROVAL",
            Self::NotAnApprover { .. } => "NOT_AN_APPROVER",
            Self::PasswordChangeRequired { .. } => "PASSWORD_CHANGE_REQUIRED",
        }
    }
}

/// The two-person rule: `approver` may approve what `requested_by` (a subject) asked for.
///
/// Subjects compare without regard to case, because user names are stored in lower case and OIDC subjects
/// may not be.
///
/// # Errors
/// An [`ApprovalRefusal`] saying why not.
pub fn check_approval(requested_by: &str, approver: &Principal) -> Result<(), ApprovalRefusal> {
    if approver.must_change_password {
        return Err(ApprovalRefusal::PasswordChangeRequired { approver: approver.subject.clone() });
    }
    if !approver.role.grants(Permission::Approve) {
        return Err(ApprovalRefusal::NotAnApprover { approver: approver.subject.clone(), role: approver.role });
    }
    if requested_by.trim().eq_ignore_ascii_case(approver.subject.trim()) {
        return Err(ApprovalRefusal::SelfApproval { approver: approver.subject.clone() });
    }
    Ok(())
}

/// A parsed user name: 1–64 characters of lower-case letters, digits, `.`, `_`, `-` and `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Parses a user name, folding it to lower case.
    ///
    /// # Errors
    /// A field error saying what is allowed.
    pub fn parse(s: &str) -> Result<Self, crate::FieldError> {
        let s = s.trim().to_ascii_lowercase();
        let ok = !s.is_empty()
            && s.chars().count() <= MAX_USERNAME_CHARS
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@'))
            && !s.starts_with("system:");
        if ok {
            Ok(Self(s))
        } else {
            Err(crate::FieldError::new(
                "username",
                "INVALID_USERNAME",
                format!("a user name is 1 to {MAX_USERNAME_CHARS} characters: letters, digits, '.', '_', '-' and '@'"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.message)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a new password against the policy: long enough, not absurdly long, not the user name.
///
/// # Errors
/// A field error a person can act on.
pub fn check_new_password(username: &str, password: &str) -> Result<(), crate::FieldError> {
    let err = |m: String| Err(crate::FieldError::new("password", "WEAK_PASSWORD", m));
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return err(format!("a password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return err(format!("a password may have at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.to_ascii_lowercase().contains(&username.to_ascii_lowercase()) {
        return err("a password must not contain the user name".into());
    }
    Ok(())
}

/// Checks a label (token or share-link name): 1–80 characters, no control characters.
///
/// # Errors
/// A field error naming `field`.
pub fn check_label(field: &str, s: &str) -> Result<String, crate::FieldError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > MAX_LABEL_CHARS || s.chars().any(char::is_control) {
        return Err(crate::FieldError::new(
            field,
            "INVALID_LABEL",
            format!("{field} must be 1 to {MAX_LABEL_CHARS} characters without control characters"),
        ));
    }
    Ok(s.to_owned())
}

/// A user as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub version: u64,
}

/// An API token as clients see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// A new token: its secret, shown once, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub details: ApiTokenView,
}

/// Input of a new user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub role: String,
    pub password: String,
}

/// A change to a user; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserChange {
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// A new one-time password: the user must change it at next sign-in.
    pub reset_password: Option<String>,
    pub expected_version: Option<u64>,
}

/// Input of a new API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    /// Days until it expires; never when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn principal(subject: &str, role: Role) -> Principal {
        Principal {
            subject: subject.into(),
            role,
            method: AuthMethod::Session,
            token: None,
            must_change_password: false,
        }
    }

    #[rstest]
    #[case(Role::Viewer, [true, false, false, false])]
    #[case(Role::Operator, [true, true, false, false])]
    #[case(Role::Approver, [true, false, true, false])]
    #[case(Role::Admin, [true, true, true, true])]
    fn each_role_grants_exactly_its_permissions(#[case] role: Role, #[case] expected: [bool; 4]) {
        let got = [Permission::Read, Permission::Operate, Permission::Approve, Permission::Administer]
            .map(|p| role.grants(p));
        assert_eq!(got, expected, "{role}");
    }

    #[rstest]
    #[case(Role::Admin, Role::Admin, Role::Admin)]
    #[case(Role::Admin, Role::Operator, Role::Operator)]
    #[case(Role::Approver, Role::Operator, Role::Viewer)]
    #[case(Role::Operator, Role::Admin, Role::Operator)]
    #[case(Role::Viewer, Role::Admin, Role::Viewer)]
    fn a_token_never_does_more_than_its_owner_may_now(
        #[case] token: Role,
        #[case] owner: Role,
        #[case] expected: Role,
    ) {
        assert_eq!(token.meet(owner), expected);
    }

    #[test]
    fn a_requester_cannot_approve_their_own_request() {
        let e = check_approval("alice", &principal("alice", Role::Approver)).unwrap_err();
        assert_eq!(e.code(), "SELF_APPROVAL");
    }

    #[test]
    fn the_requester_is_the_same_person_through_a_token_or_in_another_case() {
        let mut via_token = principal("Alice", Role::Admin);
        via_token.method = AuthMethod::Token;
        via_token.token = Some("ci".into());
        assert_eq!(check_approval("alice", &via_token).unwrap_err().code(), "SELF_APPROVAL");
    }

    #[test]
    fn a_second_person_with_the_approver_role_may_approve() {
        assert_eq!(check_approval("alice", &principal("bob", Role::Approver)), Ok(()));
        assert_eq!(check_approval("alice", &principal("carol", Role::Admin)), Ok(()));
    }

    #[rstest]
    #[case(Role::Viewer)]
    #[case(Role::Operator)]
    fn a_second_person_without_the_approver_role_may_not(#[case] role: Role) {
        assert_eq!(check_approval("alice", &principal("bob", role)).unwrap_err().code(), "NOT_AN_APPROVER");
    }

    #[test]
    fn an_approver_with_a_one_time_password_must_change_it_first() {
        let mut p = principal("bob", Role::Approver);
        p.must_change_password = true;
        assert_eq!(check_approval("alice", &p).unwrap_err().code(), "PASSWORD_CHANGE_REQUIRED");
        assert!(!p.allows(Access::Role(Permission::Read)), "a forced change blocks every role permission");
        assert!(p.allows(Access::SignedIn));
    }

    #[rstest]
    #[case("Alice", Some("alice"))]
    #[case("ops.bob@example.com", Some("ops.bob@example.com"))]
    #[case("", None)]
    #[case("has space", None)]
    #[case("<script>", None)]
    #[case("system:readiness", None)]
    fn user_names_are_folded_and_restricted(#[case] input: &str, #[case] expected: Option<&str>) {
        assert_eq!(Username::parse(input).ok().as_ref().map(Username::as_str), expected);
    }

    #[test]
    fn a_user_name_of_65_characters_is_rejected() {
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[rstest]
    #[case("short", false)]
    #[case("correct horse battery", true)]
    #[case("alice-is-my-password", false)]
    fn passwords_follow_the_policy(#[case] password: &str, #[case] ok: bool) {
        assert_eq!(check_new_password("alice", password).is_ok(), ok, "{password}");
        assert!(check_new_password("alice", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(check_label("name", "  ci pipeline ").unwrap(), "ci pipeline");
        assert!(check_label("name", "").is_err());
        assert!(check_label("name", "a\u{7}b").is_err());
        assert!(check_label("name", &"x".repeat(MAX_LABEL_CHARS + 1)).is_err());
    }

    #[test]
    fn the_actor_names_the_token_or_issuer() {
        let mut p = principal("alice", Role::Operator);
        assert_eq!(p.actor(), "alice");
        p.method = AuthMethod::Token;
        p.token = Some("ci".into());
        assert_eq!(p.actor(), "alice (token ci)");
    }
}
