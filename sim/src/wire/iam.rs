//! STS (`AssumeRole`, `GetCallerIdentity`) and IAM (`ListInstanceProfiles`, `ListAttachedRolePolicies`) over
//! the AWS query protocol; an assumed role's access key carries its account id.

use super::Wire;
use super::ec2::esc;
use crate::Simulator;
use domain::estate::AccountRegion;
use domain::ids::AccountId;
use domain::time::format_iso8601;
use engine::cloud::{Cloud, CloudError};
use std::fmt::Write as _;

pub(super) const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub(super) const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

pub(super) fn query_response(op: &str, ns: &str, result: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{ns}\"><{op}Result>{result}</{op}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata></{op}Response>"
    )
}

pub(super) async fn sts(
    wire: &Wire,
    caller: &AccountId,
    action: &str,
    form: &[(String, String)],
) -> Result<String, CloudError> {
    let sim = &wire.sim;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match action {
        "AssumeRole" => {
            let role = get("RoleArn").unwrap_or_default();
            let session = get("RoleSessionName").unwrap_or_default();
            // arn:aws:iam::<account>:role/<name>
            let account = role
                .split(':')
                .nth(4)
                .and_then(|a| AccountId::parse(a).ok())
                .ok_or_else(|| CloudError::Validation { message: format!("{role:?} is not a role ARN") })?;
            let known = sim.list_account_regions().await?.iter().any(|k| k.at.account_id == account);
            let external_id_ok = wire.external_id.as_ref().is_none_or(|x| get("ExternalId").as_ref() == Some(x));
            if !known || !external_id_ok {
                return Err(CloudError::AccessDenied {
                    message: format!("User is not authorized to perform: sts:AssumeRole on resource: {role}"),
                });
            }
            let name = role.rsplit('/').next().unwrap_or("role");
            // Credentials expire in an hour of real time: the SDK compares them with the system clock.
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                + 3_600_000;
            let key = format!("ASIA{}{:04X}", account.as_str(), fastrand_u16());
            Ok(query_response(
                action,
                STS_NS,
                &format!(
                    "<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>simulated</SecretAccessKey><SessionToken>simulated-{}</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA{}:{}</AssumedRoleId><Arn>arn:aws:sts::{}:assumed-role/{}/{}</Arn></AssumedRoleUser>",
                    caller.as_str(),
                    format_iso8601(expires),
                    account.as_str(),
                    esc(&session),
                    account.as_str(),
                    esc(name),
                    esc(&session)
                ),
            ))
        }
        "GetCallerIdentity" => Ok(query_response(
            action,
            STS_NS,
            &format!(
                "<Arn>arn:aws:sts::{0}:assumed-role/roundtrip/simulated</Arn><UserId>AROA{0}:simulated</UserId><Account>{0}</Account>",
                caller.as_str()
            ),
        )),
        other => Err(CloudError::Validation { message: format!("{other} is not an STS action this simulator serves") }),
    }
}

/// A pseudo-random suffix so access keys differ between sessions.
pub(super) fn fastrand_u16() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u16::try_from(nanos % 65_536).unwrap_or(0)
}

/// The role of an instance profile in the simulated estate.
pub(super) fn role_of(profile: &str) -> String {
    format!("{profile}-role")
}

pub(super) async fn iam(
    sim: &Simulator,
    at: &AccountRegion,
    action: &str,
    form: &[(String, String)],
) -> Result<String, CloudError> {
    // IAM is global: read the profiles through any region of the account.
    let region = sim
        .list_account_regions()
        .await?
        .into_iter()
        .find(|k| k.at.account_id == at.account_id)
        .map(|k| k.at)
        .ok_or_else(|| CloudError::AccessDenied {
            message: format!("account {} is not in the estate", at.account_id.as_str()),
        })?;
    let profiles = sim.describe_instance_profiles(&region).await?;
    let acct = at.account_id.as_str();
    let created = "2026-01-01T00:00:00Z";
    match action {
        "ListInstanceProfiles" => {
            let mut x = String::from("<IsTruncated>false</IsTruncated><InstanceProfiles>");
            for p in &profiles {
                let role = role_of(&p.name);
                let _ = write!(
                    x,
                    "<member><InstanceProfileName>{n}</InstanceProfileName><InstanceProfileId>AIPA{acct}</InstanceProfileId><Arn>arn:aws:iam::{acct}:instance-profile/{n}</Arn><Path>/</Path><CreateDate>{created}</CreateDate><Roles><member><RoleName>{r}</RoleName><RoleId>AROA{acct}</RoleId><Arn>arn:aws:iam::{acct}:role/{r}</Arn><Path>/</Path><CreateDate>{created}</CreateDate></member></Roles></member>",
                    n = esc(&p.name),
                    r = esc(&role)
                );
            }
            x.push_str("</InstanceProfiles>");
            Ok(query_response(action, IAM_NS, &x))
        }
        "ListAttachedRolePolicies" => {
            let role = form.iter().find(|(n, _)| n == "RoleName").map(|x| x.1.clone()).unwrap_or_default();
            let Some(p) = profiles.iter().find(|p| role_of(&p.name) == role) else {
                return Err(CloudError::NotFound { message: format!("The role with name {role} cannot be found.") });
            };
            let mut x = String::from("<IsTruncated>false</IsTruncated><AttachedPolicies>");
            for pol in &p.policies {
                let _ = write!(
                    x,
                    "<member><PolicyName>{n}</PolicyName><PolicyArn>arn:aws:iam::aws:policy/{n}</PolicyArn></member>",
                    n = esc(pol)
                );
            }
            x.push_str("</AttachedPolicies>");
            Ok(query_response(action, IAM_NS, &x))
        }
        other => Err(CloudError::Validation { message: format!("{other} is not an IAM action this simulator serves") }),
    }
}
