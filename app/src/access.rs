//! The declared access of every console page and console function: the server's guard refuses anything
//! not listed here (deny by default), and a test enumerates the registered functions and the page routes
//! against these tables.

use domain::auth::{Access, Permission};

/// Where console functions are served.
pub const CONSOLE_PREFIX: &str = "/console/";

const READ: Access = Access::Role(Permission::Read);
const OPERATE: Access = Access::Role(Permission::Operate);
const ADMIN: Access = Access::Role(Permission::Administer);

/// Console functions by endpoint name.
pub const SERVER_FNS: &[(&str, Access)] = &[
    ("overview", READ),
    ("account_regions", READ),
    ("list_groups", READ),
    ("get_group", READ),
    ("save_group", OPERATE),
    ("delete_group", OPERATE),
    ("run_match", READ),
    ("accept_pairs", OPERATE),
    ("set_pair", OPERATE),
    ("delete_pair", OPERATE),
    ("launch_status", READ),
    ("configure", OPERATE),
    ("rollback", OPERATE),
    // Reading is enough; evaluating now (`now: true`) also needs the operator role, checked inside.
    ("readiness", READ),
    ("verdicts", READ),
    ("list_plans", READ),
    ("get_plan", READ),
    ("group_pairs", READ),
    ("save_plan", OPERATE),
    ("delete_plan", OPERATE),
    ("list_executions", READ),
    ("get_execution", READ),
    ("start_execution", OPERATE),
    ("swapped_volumes", READ),
    ("delete_swapped_volume", OPERATE),
    ("start_failback", OPERATE),
    ("failback_preview", OPERATE),
    ("round_trip_proof", READ),
    ("re_arm", OPERATE),
    // Approving needs the approver role and cancelling the operator role: checked inside.
    ("decide_execution", READ),
    ("whoami", Access::Public),
    ("change_password", Access::SignedIn),
    ("list_users", ADMIN),
    ("create_user", ADMIN),
    ("update_user", ADMIN),
    ("list_tokens", ADMIN),
    ("test_cloud_access", ADMIN),
    ("list_cloud_accounts", ADMIN),
    ("save_cloud_account", ADMIN),
    ("delete_cloud_account", ADMIN),
    ("list_webhooks", READ),
    ("create_webhook", ADMIN),
    ("delete_webhook", ADMIN),
    ("test_webhook", ADMIN),
    ("report_history", READ),
    ("create_token", ADMIN),
    ("revoke_token", ADMIN),
    ("audit_query", READ),
    ("audit_verify", READ),
    ("list_share_links", READ),
    ("create_share_link", OPERATE),
    ("update_share_link", OPERATE),
    ("revoke_share_link", OPERATE),
    ("stakeholder_status", Access::ShareLink),
];

/// Pages by route pattern (`{name}` matches one segment), as the router lists them.
pub const PAGES: &[(&str, Access)] = &[
    ("/", READ),
    ("/login", Access::Public),
    ("/account", Access::SignedIn),
    ("/status/{token}", Access::ShareLink),
    ("/protection-groups", READ),
    ("/protection-groups/new", OPERATE),
    ("/protection-groups/{id}", READ),
    ("/protection-groups/{id}/configuration", READ),
    ("/matching", READ),
    ("/recovery-plans", READ),
    ("/recovery-plans/{id}", READ),
    ("/executions", READ),
    ("/executions/{id}", READ),
    ("/approvals", READ),
    ("/audit", READ),
    ("/share-links", READ),
    ("/admin/users", ADMIN),
    ("/admin/tokens", ADMIN),
    ("/admin/cloud", ADMIN),
    ("/notifications", READ),
    ("/reports", READ),
];

/// The access of a console function's path (`/console/<name>`), or `None` when it declares none.
pub fn server_fn_access(path: &str) -> Option<Access> {
    let name = path.strip_prefix(CONSOLE_PREFIX)?;
    SERVER_FNS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let q: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| a.starts_with('{') && !b.is_empty() || a == b)
}

/// The access of a page path, or `None` when no page route matches it. A literal route wins over a
/// pattern (`/protection-groups/new` over `/protection-groups/:id`).
pub fn page_access(path: &str) -> Option<Access> {
    let path = if path.is_empty() { "/" } else { path };
    PAGES
        .iter()
        .find(|(p, _)| *p == path.trim_end_matches('/') || (*p == "/" && path == "/"))
        .or_else(|| PAGES.iter().find(|(p, _)| matches(p, path)))
        .map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_pages_win_over_patterns() {
        assert_eq!(page_access("/protection-groups/new"), Some(OPERATE));
        assert_eq!(page_access("/protection-groups/pg-1"), Some(READ));
        assert_eq!(page_access("/status/sl_abc"), Some(Access::ShareLink));
        assert_eq!(page_access("/"), Some(READ));
        assert_eq!(page_access("/nowhere/at/all"), None);
    }

    #[test]
    fn console_functions_are_found_by_name_only() {
        assert_eq!(server_fn_access("/console/save_group"), Some(OPERATE));
        assert_eq!(server_fn_access("/console/unknown"), None);
        assert_eq!(server_fn_access("/elsewhere/save_group"), None);
    }
}
