//! EC2 over its query protocol: a form body `Action=…`, XML answers, `<Response><Errors>` errors; and the
//! escaping and error helpers the other query protocols share.

use crate::Simulator;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::estate::{AccountRegion, Ec2Instance};
use domain::ids::InstanceId;
use domain::time::format_iso8601;
use engine::cloud::{Cloud, CloudError};
use std::fmt::Write as _;

// ---------------------------------------------------------------- EC2, STS, IAM (query protocols)

pub(super) const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Text as XML character data: markup escaped, and characters XML 1.0 cannot carry dropped (a tag value
/// written through `CreateTags` is untrusted and must never make a later answer unreadable).
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn query_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>",
        esc(code),
        esc(message)
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

/// The EC2 error of `e`.
pub(super) fn ec2_error(e: &CloudError) -> Response {
    let (status, code) = match e {
        CloudError::Throttled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "RequestLimitExceeded"),
        CloudError::AccessDenied { .. } => (StatusCode::FORBIDDEN, "UnauthorizedOperation"),
        CloudError::Unavailable { .. } | CloudError::Unexpected(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        }
        CloudError::Validation { .. } => (StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        CloudError::NotFound { .. } => (StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        CloudError::Conflict { .. } => (StatusCode::BAD_REQUEST, "IncorrectInstanceState"),
        CloudError::QuotaExceeded { .. } => (StatusCode::BAD_REQUEST, "ResourceLimitExceeded"),
    };
    query_error(status, code, &e.to_string())
}

/// An STS or IAM error (the AWS query protocol's `<ErrorResponse>`).
pub(super) fn aws_query_error(e: &CloudError) -> Response {
    let (status, code) = match e {
        CloudError::Throttled { .. } => (StatusCode::BAD_REQUEST, "Throttling"),
        CloudError::AccessDenied { .. } => (StatusCode::FORBIDDEN, "AccessDenied"),
        CloudError::NotFound { .. } => (StatusCode::NOT_FOUND, "NoSuchEntity"),
        CloudError::Unavailable { .. } | CloudError::Unexpected(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure")
        }
        _ => (StatusCode::BAD_REQUEST, "ValidationError"),
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
        esc(&e.to_string())
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

/// Values of a flattened list: `InstanceId.1`, `InstanceId.2`, …
pub(super) fn list(form: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut v: Vec<(usize, String)> = form
        .iter()
        .filter_map(|(k, val)| Some((k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?, val.clone())))
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

pub(super) fn instance_ids(form: &[(String, String)]) -> Result<Vec<InstanceId>, CloudError> {
    parse_instance_ids(&list(form, "InstanceId"))
}

pub(super) fn parse_instance_ids(ids: &[String]) -> Result<Vec<InstanceId>, CloudError> {
    ids.iter().map(|i| InstanceId::parse(i).map_err(|e| CloudError::Validation { message: e.to_string() })).collect()
}

/// The values of the filter `name` of an EC2 query (`Filter.N.Name`, `Filter.N.Value.M`), if given.
pub(super) fn filter_values(form: &[(String, String)], name: &str) -> Option<Vec<String>> {
    (1..=50).find_map(|i| {
        let key = format!("Filter.{i}.Name");
        let n = form.iter().find(|(k, _)| *k == key)?;
        (n.1 == name).then(|| list(form, &format!("Filter.{i}.Value")))
    })
}

pub(super) fn tag_set(tags: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::from("<tagSet>");
    for (k, v) in tags {
        let _ = write!(out, "<item><key>{}</key><value>{}</value></item>", esc(k), esc(v));
    }
    out.push_str("</tagSet>");
    out
}

pub(super) fn instance_xml(i: &Ec2Instance) -> String {
    let code = match i.state {
        domain::estate::InstanceState::Pending => 0,
        domain::estate::InstanceState::Running => 16,
        domain::estate::InstanceState::ShuttingDown => 32,
        domain::estate::InstanceState::Terminated => 48,
        domain::estate::InstanceState::Stopping => 64,
        domain::estate::InstanceState::Stopped => 80,
    };
    let mut x = format!(
        "<item><instanceId>{}</instanceId><instanceState><code>{code}</code><name>{}</name></instanceState><privateIpAddress>{}</privateIpAddress><subnetId>{}</subnetId><instanceType>{}</instanceType><architecture>{}</architecture><bootMode>{}</bootMode><currentInstanceBootMode>{}</currentInstanceBootMode><rootDeviceType>{}</rootDeviceType>",
        i.instance_id.as_str(),
        i.state.as_str(),
        i.private_ip,
        i.subnet_id.as_str(),
        esc(&i.instance_type),
        i.architecture.as_str(),
        i.boot_mode.as_str(),
        i.boot_mode.as_str(),
        esc(&i.root_device_type),
    );
    if i.platform == domain::estate::Platform::Windows {
        x.push_str("<platform>windows</platform>");
    }
    x.push_str("<groupSet>");
    for g in &i.security_group_ids {
        let _ = write!(x, "<item><groupId>{}</groupId></item>", esc(g));
    }
    x.push_str("</groupSet><blockDeviceMapping>");
    for v in &i.volumes {
        let _ = write!(
            x,
            "<item><deviceName>{}</deviceName><ebs><volumeId>{}</volumeId><status>attached</status></ebs></item>",
            esc(&v.device_name),
            esc(&v.volume_id)
        );
    }
    x.push_str("</blockDeviceMapping>");
    if let Some(p) = &i.iam_instance_profile {
        let _ = write!(
            x,
            "<iamInstanceProfile><arn>arn:aws:iam::{}:instance-profile/{}</arn><id>AIPA{}</id></iamInstanceProfile>",
            i.account_id.as_str(),
            esc(p),
            i.account_id.as_str()
        );
    }
    x.push_str(&tag_set(&i.tags));
    x.push_str("</item>");
    x
}

/// A page of `items` by `MaxResults`/`NextToken` (an offset), and the `<nextToken>` element.
pub(super) fn query_page<T>(items: Vec<T>, form: &[(String, String)]) -> (Vec<T>, String) {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let start: usize = get("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let max: usize = get("MaxResults").and_then(|m| m.parse().ok()).unwrap_or(usize::MAX).max(1);
    let total = items.len();
    let end = start.saturating_add(max).min(total);
    let next = if end < total { format!("<nextToken>{end}</nextToken>") } else { String::new() };
    (items.into_iter().skip(start).take(end.saturating_sub(start)).collect(), next)
}

pub(super) fn response(op: &str, ns: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{ns}\"><requestId>00000000-0000-0000-0000-000000000000</requestId>{inner}</{op}Response>"
    )
}

pub(super) async fn ec2(
    sim: &Simulator,
    at: &AccountRegion,
    action: &str,
    form: &[(String, String)],
) -> Result<String, CloudError> {
    match action {
        "DescribeInstances" => {
            // One reservation per instance, so a page of MaxResults holds that many instances.
            let instances = match filter_values(form, "instance-id") {
                Some(ids) => sim.describe_instances_by_id(at, &parse_instance_ids(&ids)?).await?,
                None => sim.describe_instances(at).await?,
            };
            let (items, next) = query_page(instances, form);
            let mut x = String::from("<reservationSet>");
            for i in &items {
                let _ = write!(
                    x,
                    "<item><reservationId>r-{}</reservationId><ownerId>{}</ownerId><groupSet/><instancesSet>{}</instancesSet></item>",
                    &i.instance_id.as_str()[2..],
                    at.account_id.as_str(),
                    instance_xml(i)
                );
            }
            x.push_str("</reservationSet>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "DescribeSubnets" => {
            let (items, next) = query_page(sim.describe_subnets(at).await?, form);
            let mut x = String::from("<subnetSet>");
            for s in items {
                let _ = write!(
                    x,
                    "<item><subnetId>{}</subnetId><vpcId>{}</vpcId><cidrBlock>{}</cidrBlock><availabilityZone>{}</availabilityZone><state>available</state></item>",
                    s.subnet_id.as_str(),
                    esc(&s.vpc_id),
                    s.cidr,
                    esc(&s.availability_zone)
                );
            }
            x.push_str("</subnetSet>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "DescribeVolumes" => {
            let status = filter_values(form, "status");
            let attached_to = filter_values(form, "attachment.instance-id");
            let wants = |s: &str| status.as_ref().is_none_or(|v| v.iter().any(|x| x == s));
            let mut vols: Vec<String> = Vec::new();
            if wants("in-use") {
                let instances = match &attached_to {
                    Some(ids) => sim.describe_instances_by_id(at, &parse_instance_ids(ids)?).await?,
                    None => sim.describe_instances(at).await?,
                };
                for i in instances {
                    for v in &i.volumes {
                        vols.push(format!(
                            "<item><volumeId>{}</volumeId><size>{}</size><status>in-use</status><attachmentSet><item><volumeId>{}</volumeId><instanceId>{}</instanceId><device>{}</device><status>attached</status></item></attachmentSet></item>",
                            esc(&v.volume_id),
                            v.size_gib,
                            esc(&v.volume_id),
                            i.instance_id.as_str(),
                            esc(&v.device_name)
                        ));
                    }
                }
            }
            // A detached volume is attached to nothing, so an attachment filter leaves it out.
            if wants("available") && attached_to.is_none() {
                for v in sim.describe_available_volumes(at).await? {
                    // EC2 does not say which instance a detached volume left, so neither does this.
                    vols.push(format!(
                        "<item><volumeId>{}</volumeId><size>{}</size><status>available</status><createTime>{}</createTime><attachmentSet/></item>",
                        esc(&v.volume_id),
                        v.size_gib,
                        format_iso8601(v.since)
                    ));
                }
            }
            let (items, next) = query_page(vols, form);
            Ok(response(action, EC2_NS, &format!("<volumeSet>{}</volumeSet>{next}", items.concat())))
        }
        "DescribeSecurityGroups" => {
            let (items, next) = query_page(sim.describe_security_groups(at).await?, form);
            let mut x = String::from("<securityGroupInfo>");
            for g in items {
                let _ = write!(
                    x,
                    "<item><groupId>{}</groupId><groupName>{}</groupName><vpcId>{}</vpcId><ownerId>{}</ownerId><ipPermissionsEgress>",
                    esc(&g.group_id),
                    esc(&g.name),
                    esc(&g.vpc_id),
                    at.account_id.as_str()
                );
                match &g.egress {
                    None => x.push_str("<item><ipProtocol>-1</ipProtocol></item>"),
                    Some(rules) => {
                        for r in rules {
                            if r.protocol == "-1" {
                                x.push_str("<item><ipProtocol>-1</ipProtocol></item>");
                            } else {
                                let _ = write!(
                                    x,
                                    "<item><ipProtocol>{}</ipProtocol><fromPort>{}</fromPort><toPort>{}</toPort></item>",
                                    esc(&r.protocol),
                                    r.from_port,
                                    r.to_port
                                );
                            }
                        }
                    }
                }
                x.push_str("</ipPermissionsEgress></item>");
            }
            x.push_str("</securityGroupInfo>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "StopInstances" | "StartInstances" | "TerminateInstances" => {
            let ids = instance_ids(form)?;
            match action {
                "StopInstances" => sim.stop_instances(at, &ids).await?,
                "StartInstances" => sim.start_instances(at, &ids).await?,
                _ => sim.terminate_instances(at, &ids).await?,
            }
            let items: String =
                ids.iter().map(|i| format!("<item><instanceId>{}</instanceId></item>", i.as_str())).collect();
            Ok(response(action, EC2_NS, &format!("<instancesSet>{items}</instancesSet>")))
        }
        "CreateTags" => {
            let keys = list(form, "Tag").len();
            let resources = list(form, "ResourceId");
            let (k, v) = (
                form.iter().find(|(n, _)| n == "Tag.1.Key").map(|x| x.1.clone()),
                form.iter().find(|(n, _)| n == "Tag.1.Value").map(|x| x.1.clone()).unwrap_or_default(),
            );
            let Some(k) = k else {
                return Err(CloudError::Validation { message: format!("CreateTags needs a tag ({keys} given)") });
            };
            for r in resources {
                let id = InstanceId::parse(&r).map_err(|e| CloudError::Validation { message: e.to_string() })?;
                sim.create_tags(at, &id, &k, &v).await?;
            }
            Ok(response(action, EC2_NS, "<return>true</return>"))
        }
        "DeleteVolume" => {
            let id = form.iter().find(|(n, _)| n == "VolumeId").map(|x| x.1.clone()).unwrap_or_default();
            sim.delete_volume(at, &id).await?;
            Ok(response(action, EC2_NS, "<return>true</return>"))
        }
        other => Err(CloudError::Validation { message: format!("{other} is not an EC2 action this simulator serves") }),
    }
}
