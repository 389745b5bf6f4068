//! Least privilege: the one table of AWS actions Roundtrip calls, and the IAM policies generated from it.
//!
//! The adapters call exactly these actions and nothing else; a test drives every cloud call through the
//! simulator's wire endpoint and compares the actions it saw with this table, so the two cannot drift.

use serde_json::{Value, json};

/// Who needs a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The orchestration role in the account Roundtrip runs in (store, assuming roles).
    Orchestrator,
    /// The role Roundtrip assumes in each source and DR account.
    AccountRole,
    /// Whoever runs `roundtrip aws init` once (never the running server).
    Setup,
}

/// One action and why Roundtrip calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub action: &'static str,
    pub principal: Principal,
    pub why: &'static str,
}

const fn p(action: &'static str, principal: Principal, why: &'static str) -> Permission {
    Permission { action, principal, why }
}

use Principal::{AccountRole as A, Orchestrator as O, Setup as S};

/// Every AWS action the adapters call.
pub const PERMISSIONS: &[Permission] = &[
    p("sts:AssumeRole", O, "reach each source and DR account through its role, with the External ID"),
    p("dynamodb:GetItem", O, "read one record of the store"),
    p("dynamodb:Query", O, "list records of the store by key prefix"),
    p("dynamodb:UpdateItem", O, "write a record with a version condition (inside TransactWriteItems)"),
    p("dynamodb:DeleteItem", O, "delete a record with a version condition (inside TransactWriteItems)"),
    p("dynamodb:ConditionCheckItem", O, "guard a transaction on a record it does not write"),
    p("dynamodb:TransactWriteItems", O, "write records all or nothing, retried safely with its request token"),
    p("dynamodb:DescribeTable", O, "check the store's table at start"),
    p("dynamodb:CreateTable", S, "`roundtrip aws init`: create the store's table"),
    p("dynamodb:UpdateContinuousBackups", S, "`roundtrip aws init`: turn on point-in-time recovery"),
    p("ec2:DescribeInstances", A, "find source instances, standbys and originals by tag and name"),
    p("ec2:DescribeSubnets", A, "check that each standby keeps its source's subnet and IP range"),
    p("ec2:DescribeVolumes", A, "volume sizes, and the volumes a launch swapped out of a standby"),
    p("ec2:DescribeSecurityGroups", A, "check failback egress (TCP 443 and 1500)"),
    p("ec2:StopInstances", A, "stop sources in a planned failover, originals before failback, standbys after"),
    p("ec2:StartInstances", A, "restart a standby the operator asked to keep running"),
    p("ec2:CreateTags", A, "tag an original AWSDRS=AllowLaunchingIntoThisInstance for failback"),
    p("ec2:DeleteVolume", A, "delete a swapped-out volume after its retention, on request"),
    p("ec2:TerminateInstances", A, "terminate standbys, only on an admin's typed confirmation"),
    p("iam:ListInstanceProfiles", A, "check recovery instances' profiles before failback"),
    p("iam:ListAttachedRolePolicies", A, "check the profile's role has the DRS recovery instance policy"),
    p("drs:DescribeSourceServers", A, "read source servers and their replication"),
    p("drs:GetLaunchConfiguration", A, "read each launch configuration"),
    p("drs:UpdateLaunchConfiguration", A, "configure launch into the standby, and restore it"),
    p("drs:DescribeJobs", A, "follow recovery jobs, reconcile after a crash"),
    p("drs:DescribeJobLogItems", A, "show each server's launch steps and errors"),
    p("drs:StartRecovery", A, "launch a wave's servers (drill or recovery)"),
    p("drs:DescribeRecoveryInstances", A, "verify what each server launched into"),
    p("drs:DisconnectRecoveryInstance", A, "release a drill's recovery instance back to standby"),
    p("drs:DeleteRecoveryInstance", A, "remove a released recovery instance from DRS"),
    p("drs:ReverseReplication", A, "start failback replication, and re-protect after failback"),
];

/// The actions `principal` needs, sorted.
pub fn actions(principal: Principal) -> Vec<&'static str> {
    let mut v: Vec<&str> = PERMISSIONS.iter().filter(|p| p.principal == principal).map(|p| p.action).collect();
    v.sort_unstable();
    v
}

/// The dependent actions AWS's Service Authorization Reference lists for `drs:StartRecovery` and
/// `drs:ReverseReplication`: DRS checks that the caller could do these itself, since it launches, snapshots
/// and swaps volumes on the caller's behalf. Roundtrip never calls them.
pub const DRS_DEPENDENT_ACTIONS: &[&str] = &[
    "drs:CreateRecoveryInstanceForDrs",
    "drs:DescribeReplicationConfigurationTemplates",
    "drs:ListTagsForResource",
    "ec2:AttachVolume",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:CreateSnapshot",
    "ec2:CreateVolume",
    "ec2:DeleteLaunchTemplateVersions",
    "ec2:DeleteSnapshot",
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSnapshots",
    "ec2:DetachVolume",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyLaunchTemplate",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RunInstances",
    "iam:PassRole",
];

/// The orchestration role's policy: the store table and its indexes, and assuming the account roles. When
/// an account is reached without a role (`own_account_too`: the account Roundtrip runs in), the account
/// role's statements are added, since the orchestration role then makes those calls itself.
pub fn orchestrator_policy(table_arn: &str, role_arns: &[String], own_account_too: bool) -> Value {
    let store: Vec<&str> =
        actions(Principal::Orchestrator).into_iter().filter(|a| a.starts_with("dynamodb:")).collect();
    let roles: Vec<Value> = if role_arns.is_empty() {
        vec![json!("arn:aws:iam::*:role/RoundtripAccess")]
    } else {
        role_arns.iter().map(|r| json!(r)).collect()
    };
    let mut statements = vec![
        json!({"Sid": "RoundtripStore", "Effect": "Allow", "Action": store,
               "Resource": [table_arn, format!("{table_arn}/index/*")]}),
        json!({"Sid": "RoundtripAssumeAccountRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": roles}),
    ];
    if own_account_too {
        statements.extend(account_role_policy()["Statement"].as_array().cloned().unwrap_or_default());
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The policy of whoever runs `roundtrip aws init`.
pub fn setup_policy(table_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RoundtripCreateStore", "Effect": "Allow", "Action": actions(Principal::Setup),
                       "Resource": table_arn}]
    })
}

/// The policy of the role in each source and DR account.
pub fn account_role_policy() -> Value {
    let all = actions(Principal::AccountRole);
    let reads: Vec<&str> =
        all.iter().copied().filter(|a| a.contains(":Describe") || a.contains(":Get") || a.contains(":List")).collect();
    let writes: Vec<&str> =
        all.iter().copied().filter(|a| !reads.contains(a) && *a != "ec2:TerminateInstances").collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RoundtripRead", "Effect": "Allow", "Action": reads, "Resource": "*"},
            {"Sid": "RoundtripRecover", "Effect": "Allow", "Action": writes, "Resource": "*"},
            {"Sid": "RoundtripDrsOnBehalf", "Effect": "Allow", "Action": DRS_DEPENDENT_ACTIONS, "Resource": "*"},
            // Only standbys: Roundtrip terminates nothing else, and only on an admin's typed confirmation. The
            // tag condition guards against a mistaken termination, not a compromised server: the same role
            // may tag an instance AWSDRS (originals, before failback).
            {"Sid": "RoundtripTerminateStandbysOnly", "Effect": "Allow", "Action": ["ec2:TerminateInstances"],
             "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/AWSDRS": "AllowLaunchingIntoThisInstance"}}},
        ]
    })
}

/// The trust policy of each account role: only the orchestration role, only with the External ID.
pub fn account_role_trust_policy(orchestrator_role_arn: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": orchestrator_role_arn},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once_with_a_reason() {
        let mut seen = std::collections::HashSet::new();
        for p in PERMISSIONS {
            assert!(seen.insert(p.action), "{} twice", p.action);
            assert!(!p.why.is_empty() && p.action.contains(':'));
        }
    }

    #[test]
    fn the_account_policy_grants_each_action_once_and_termination_only_on_standbys() {
        let policy = account_role_policy();
        let mut granted: Vec<String> = Vec::new();
        for st in policy["Statement"].as_array().unwrap() {
            if st["Sid"] == "RoundtripDrsOnBehalf" {
                continue;
            }
            granted.extend(st["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()));
        }
        granted.sort();
        assert_eq!(granted, actions(Principal::AccountRole));
        let term = &policy["Statement"][3];
        assert_eq!(term["Condition"]["StringEquals"]["aws:ResourceTag/AWSDRS"], "AllowLaunchingIntoThisInstance");
    }

    #[test]
    fn the_cloudformation_role_grants_exactly_the_generated_policy() {
        let template = include_str!("../../deploy/roundtrip.cfn.yaml");
        let mut in_template: Vec<&str> = template
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("- ").or_else(|| l.strip_prefix("Action: ")))
            .filter(|a| a.contains(':') && !a.contains(' ') && !a.contains('{'))
            // The trust policy's action, not a grant.
            .filter(|a| *a != "sts:AssumeRole")
            .collect();
        in_template.sort_unstable();
        let mut generated: Vec<&str> = actions(Principal::AccountRole);
        generated.extend(DRS_DEPENDENT_ACTIONS);
        generated.sort_unstable();
        assert_eq!(in_template, generated, "deploy/roundtrip.cfn.yaml drifted from the action table");
    }

    #[test]
    fn the_store_calls_exactly_the_dynamodb_actions_listed() {
        // SDK call → the IAM actions it needs (a transaction needs each action it contains).
        let calls = [
            (".get_item()", &["dynamodb:GetItem"][..]),
            (".query()", &["dynamodb:Query"]),
            (".transact_write_items()", &["dynamodb:TransactWriteItems"]),
            ("Update::builder()", &["dynamodb:UpdateItem"]),
            ("Delete::builder()", &["dynamodb:DeleteItem"]),
            ("ConditionCheck::builder()", &["dynamodb:ConditionCheckItem"]),
            (".describe_table()", &["dynamodb:DescribeTable"]),
            (".create_table()", &["dynamodb:CreateTable"]),
            (".update_continuous_backups()", &["dynamodb:UpdateContinuousBackups"]),
            (".put_item()", &["dynamodb:PutItem"]),
            (".delete_item()", &["dynamodb:DeleteItem"]),
            (".update_item()", &["dynamodb:UpdateItem"]),
            (".scan()", &["dynamodb:Scan"]),
            (".batch_write_item()", &["dynamodb:BatchWriteItem"]),
            (".batch_get_item()", &["dynamodb:BatchGetItem"]),
        ];
        let source = include_str!("dynamo.rs");
        let mut used: Vec<&str> =
            calls.iter().filter(|(call, _)| source.contains(call)).flat_map(|(_, a)| a.iter().copied()).collect();
        used.sort_unstable();
        used.dedup();
        let mut listed: Vec<&str> =
            PERMISSIONS.iter().map(|p| p.action).filter(|a| a.starts_with("dynamodb:")).collect();
        listed.sort_unstable();
        assert_eq!(used, listed);
    }

    #[test]
    fn the_trust_policy_demands_the_external_id() {
        let t = account_role_trust_policy("arn:aws:iam::111122223333:role/Roundtrip", "xyz-123");
        assert_eq!(t["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "xyz-123");
    }
}
