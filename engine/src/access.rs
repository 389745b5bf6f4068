//! "Test access": every read Roundtrip needs, tried in every account and region it is configured for, with
//! exactly what is missing where it fails (the AWS adapter names the missing permission).
//!
//! Writes (`drs:StartRecovery`, `ec2:StopInstances`, …) cannot be tried without acting; `roundtrip aws
//! iam-policy` lists them, generated from the same table the adapter is checked against.

use crate::cloud::{Cloud, CloudError};
pub use domain::estate::AccessCheck;

fn line<T>(
    at: &crate::cloud::KnownAccountRegion,
    action: &str,
    r: Result<Vec<T>, CloudError>,
    what: &str,
) -> AccessCheck {
    let (ok, detail) = match r {
        Ok(v) => (true, format!("{} {what}", v.len())),
        Err(CloudError::AccessDenied { message }) => (false, message),
        Err(e) => (false, e.to_string()),
    };
    AccessCheck {
        account_id: at.at.account_id.as_str().to_owned(),
        account_name: at.account_name.clone(),
        region: at.at.region.as_str().to_owned(),
        action: action.to_owned(),
        ok,
        detail,
    }
}

/// Tries each read in each account and region of `cloud`.
pub async fn check_access(cloud: &dyn Cloud) -> Vec<AccessCheck> {
    let places = match cloud.list_account_regions().await {
        Ok(p) => p,
        Err(e) => {
            return vec![AccessCheck {
                account_id: String::new(),
                account_name: String::new(),
                region: String::new(),
                action: "list accounts".into(),
                ok: false,
                detail: e.to_string(),
            }];
        }
    };
    let mut out = Vec::new();
    for k in &places {
        let at = &k.at;
        out.push(line(k, "ec2:DescribeInstances", cloud.describe_instances(at).await, "instances"));
        if !out.last().is_some_and(|l| l.ok) && out.last().is_some_and(|l| l.detail.contains("AssumeRole")) {
            continue; // Without the role nothing else can work; one line says so.
        }
        out.push(line(k, "ec2:DescribeSubnets", cloud.describe_subnets(at).await, "subnets"));
        out.push(line(k, "ec2:DescribeSecurityGroups", cloud.describe_security_groups(at).await, "security groups"));
        out.push(line(k, "ec2:DescribeVolumes", cloud.describe_available_volumes(at).await, "detached volumes"));
        out.push(line(k, "iam:ListInstanceProfiles", cloud.describe_instance_profiles(at).await, "instance profiles"));
        match cloud.drs_initialized(at).await {
            Ok(false) => out.push(AccessCheck {
                action: "drs:DescribeSourceServers".into(),
                ok: true,
                detail: "DRS is not initialised in this region (fine for a region with no DRS role)".into(),
                ..line::<()>(k, "", Ok(Vec::new()), "")
            }),
            _ => {
                out.push(line(
                    k,
                    "drs:DescribeSourceServers",
                    cloud.describe_source_servers(at).await,
                    "source servers",
                ));
                out.push(line(k, "drs:DescribeJobs", cloud.describe_jobs(at, &[]).await, "jobs"));
                out.push(line(
                    k,
                    "drs:DescribeRecoveryInstances",
                    cloud.describe_recovery_instances(at, &[]).await,
                    "recovery instances",
                ));
            }
        }
    }
    out
}
