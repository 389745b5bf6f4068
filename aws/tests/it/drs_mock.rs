//! The DRS adapter against `aws-smithy-mocks`: the requests it builds, the pages it follows, the errors it
//! maps and the retries it makes, for the DRS operations the engine calls.

use aws::clients::ClientSet;
use aws::throttle::TokenBucket;
use aws::{AwsAccount, AwsCloud, AwsSettings, Clients};
use aws_sdk_drs::Client;
use aws_sdk_drs::operation::describe_jobs::DescribeJobsOutput;
use aws_sdk_drs::operation::describe_source_servers::DescribeSourceServersOutput;
use aws_sdk_drs::operation::start_recovery::StartRecoveryOutput;
use aws_sdk_drs::operation::update_launch_configuration::UpdateLaunchConfigurationOutput;
use aws_sdk_drs::types::{
    InitiatedBy, Job, JobStatus, LaunchDisposition, LaunchIntoInstanceProperties, ParticipatingServer, SourceServer,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use domain::estate::AccountRegion;
use domain::ids::{AccountId, InstanceId, Region, SourceServerId};
use domain::launch::LaunchConfigurationUpdate;
use engine::cloud::{Cloud, CloudError};
use std::sync::Arc;
use std::time::Duration;

const SOURCE: &str = "s-1111111111111111a";
const STANDBY: &str = "i-0aaaaaaaaaaaaaaaa";

fn dr() -> AccountRegion {
    AccountRegion { account_id: AccountId::parse("222222222222").unwrap(), region: Region::parse("us-west-2").unwrap() }
}

/// The adapter with a mocked DRS client (`attempts` per call, 1 ms backoff).
fn cloud(mode: RuleMode, rules: &[&Rule], attempts: u32) -> AwsCloud {
    let retry = RetryConfig::standard().with_max_attempts(attempts).with_initial_backoff(Duration::from_millis(1));
    let drs: Client = mock_client!(aws_sdk_drs, mode, rules, |c| c.retry_config(retry.clone()));
    let set = ClientSet {
        drs,
        // Never called here: configured, with no HTTP client behind them.
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .region(aws_sdk_ec2::config::Region::new("us-west-2"))
                .build(),
        ),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder().behavior_version(aws_sdk_iam::config::BehaviorVersion::latest()).build(),
        ),
        sts: aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder().behavior_version(aws_sdk_sts::config::BehaviorVersion::latest()).build(),
        ),
        drs_bucket: Arc::new(TokenBucket::new(1_000.0, 1_000)),
    };
    let settings = AwsSettings {
        accounts: vec![AwsAccount {
            account_id: dr().account_id,
            name: "recovery".into(),
            role_arn: None,
            external_id: None,
            regions: vec![dr().region],
        }],
        ..AwsSettings::default()
    };
    AwsCloud::new(Arc::new(Clients::with_client_set(settings, set)))
}

/// A DRS error response as the service sends it: status, `x-amzn-ErrorType`, JSON body.
fn drs_error(status: u16, kind: &str, body: &str) -> Response {
    let mut r = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body.to_owned()));
    r.headers_mut().insert("x-amzn-ErrorType", kind.to_owned());
    r.headers_mut().insert("content-type", "application/json");
    r
}

fn job(id: &str, initiated: InitiatedBy) -> Job {
    Job::builder()
        .job_id(id)
        .initiated_by(initiated)
        .status(JobStatus::Started)
        .creation_date_time("2026-11-27T03:00:28Z")
        .participating_servers(
            ParticipatingServer::builder().source_server_id(SOURCE).recovery_instance_id(STANDBY).build(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn update_launch_configuration_sends_launch_into_the_standby_and_can_clear_it() {
    let set = mock!(Client::update_launch_configuration)
        .match_requests(|r| {
            r.source_server_id() == Some(SOURCE)
                && r.launch_into_instance_properties().and_then(|p| p.launch_into_ec2_instance_id()) == Some(STANDBY)
                && r.copy_private_ip() == Some(false)
                && r.launch_disposition() == Some(&LaunchDisposition::Stopped)
        })
        .then_output(|| {
            UpdateLaunchConfigurationOutput::builder()
                .source_server_id(SOURCE)
                .launch_disposition(LaunchDisposition::Stopped)
                .copy_private_ip(false)
                .launch_into_instance_properties(
                    LaunchIntoInstanceProperties::builder().launch_into_ec2_instance_id(STANDBY).build(),
                )
                .build()
        });
    let clear = mock!(Client::update_launch_configuration)
        .match_requests(|r| {
            r.launch_into_instance_properties().is_some_and(|p| p.launch_into_ec2_instance_id().is_none())
        })
        .then_output(|| UpdateLaunchConfigurationOutput::builder().source_server_id(SOURCE).build());
    let c = cloud(RuleMode::Sequential, &[&set, &clear], 1);
    let mut u = LaunchConfigurationUpdate::for_server(SourceServerId::parse(SOURCE).unwrap());
    u.launch_into_instance_id = Some(Some(InstanceId::parse(STANDBY).unwrap()));
    u.copy_private_ip = Some(false);
    u.launch_disposition = Some(domain::launch::LaunchDisposition::Stopped);
    let written = c.update_launch_configuration(&dr(), &u).await.unwrap();
    assert_eq!(written.launch_into_instance_id.as_ref().map(InstanceId::as_str), Some(STANDBY));
    let mut u = LaunchConfigurationUpdate::for_server(SourceServerId::parse(SOURCE).unwrap());
    u.launch_into_instance_id = Some(None);
    assert_eq!(c.update_launch_configuration(&dr(), &u).await.unwrap().launch_into_instance_id, None);
    assert_eq!((set.num_calls(), clear.num_calls()), (1, 1));
}

#[tokio::test]
async fn start_recovery_names_each_server_once_and_a_drill_job_reads_as_a_drill() {
    let start = mock!(Client::start_recovery)
        .match_requests(|r| {
            r.is_drill() == Some(true)
                && r.source_servers().iter().map(|s| s.source_server_id()).collect::<Vec<_>>() == [SOURCE]
                && r.tags().is_none()
        })
        .then_output(|| {
            StartRecoveryOutput::builder().job(job("drsjob-0123456789abcdef0", InitiatedBy::StartDrill)).build()
        });
    let c = cloud(RuleMode::Sequential, &[&start], 1);
    let j = c.start_recovery(&dr(), &[SourceServerId::parse(SOURCE).unwrap()], true).await.unwrap();
    assert!(j.is_drill && j.is_active());
    assert_eq!(j.servers[0].recovery_instance_id.as_ref().map(InstanceId::as_str), Some(STANDBY));
    assert_eq!(j.created_at, domain::time::parse_iso8601("2026-11-27T03:00:28Z").unwrap());
}

#[tokio::test]
async fn every_page_of_source_servers_and_jobs_is_read() {
    let server = |id: &str| SourceServer::builder().source_server_id(id).build();
    let first = mock!(Client::describe_source_servers)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || DescribeSourceServersOutput::builder().items(server(SOURCE)).next_token("page-2").build());
    let second = mock!(Client::describe_source_servers)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || DescribeSourceServersOutput::builder().items(server("s-2222222222222222b")).build());
    let jobs1 = mock!(Client::describe_jobs).match_requests(|r| r.next_token().is_none()).then_output(|| {
        DescribeJobsOutput::builder()
            .items(job("drsjob-00000000000000001", InitiatedBy::StartRecovery))
            .next_token("j2")
            .build()
    });
    let jobs2 = mock!(Client::describe_jobs).match_requests(|r| r.next_token() == Some("j2")).then_output(|| {
        DescribeJobsOutput::builder().items(job("drsjob-00000000000000002", InitiatedBy::StartDrill)).build()
    });
    let c = cloud(RuleMode::MatchAny, &[&first, &second, &jobs1, &jobs2], 1);
    let servers = c.describe_source_servers(&dr()).await.unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(c.describe_jobs(&dr(), &[]).await.unwrap().len(), 2);
    assert_eq!(c.servers_in_active_jobs(&dr()).await.unwrap(), [SourceServerId::parse(SOURCE).unwrap()]);
}

#[tokio::test]
async fn each_drs_error_type_becomes_its_domain_error() {
    let cases: &[(u16, &str, &str, &str)] = &[
        (429, "ThrottlingException", r#"{"message":"slow down"}"#, "Throttled"),
        (402, "ServiceQuotaExceededException", r#"{"message":"too many","quotaCode":"L-123"}"#, "QuotaExceeded"),
        (409, "ConflictException", r#"{"message":"in a job","resourceId":"s-1111111111111111a"}"#, "Conflict"),
        (400, "ValidationException", r#"{"message":"bad","reason":"fieldValidationFailed"}"#, "Validation"),
        (400, "UninitializedAccountException", r#"{"message":"init first"}"#, "Validation"),
        (
            403,
            "AccessDeniedException",
            r#"{"message":"User x is not authorized to perform: drs:DescribeJobs"}"#,
            "AccessDenied",
        ),
        (404, "ResourceNotFoundException", r#"{"message":"no such job"}"#, "NotFound"),
        (500, "InternalServerException", r#"{"message":"oops"}"#, "Unavailable"),
    ];
    for &(status, kind, body, want) in cases {
        let rule = mock!(Client::describe_jobs).then_http_response(move || drs_error(status, kind, body));
        let c = cloud(RuleMode::Sequential, &[&rule], 1);
        let err = c.describe_jobs(&dr(), &[]).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{kind} ({status}) became {err:?}");
        if let CloudError::AccessDenied { message } = &err {
            assert!(message.starts_with("missing permission drs:DescribeJobs"), "{message}");
        }
        if let CloudError::QuotaExceeded { quota, .. } = &err {
            assert_eq!(quota, "L-123");
        }
        if let CloudError::Conflict { resource_id, .. } = &err {
            assert_eq!(resource_id.as_deref(), Some(SOURCE));
        }
    }
}

#[tokio::test]
async fn throttling_and_service_errors_are_retried_and_a_refusal_is_not() {
    let ok = || DescribeJobsOutput::builder().build();
    let throttled = mock!(Client::describe_jobs)
        .sequence()
        .http_response(|| drs_error(429, "ThrottlingException", r#"{"message":"slow down"}"#))
        .times(2)
        .output(ok)
        .build();
    let c = cloud(RuleMode::Sequential, &[&throttled], 3);
    c.describe_jobs(&dr(), &[]).await.unwrap();
    assert_eq!(throttled.num_calls(), 3, "two 429s, then the answer");

    let failing = mock!(Client::describe_jobs)
        .sequence()
        .http_response(|| drs_error(500, "InternalServerException", r#"{"message":"oops"}"#))
        .times(2)
        .output(ok)
        .build();
    let c = cloud(RuleMode::Sequential, &[&failing], 3);
    c.describe_jobs(&dr(), &[]).await.unwrap();
    assert_eq!(failing.num_calls(), 3, "two 5xx, then the answer");

    let refused = mock!(Client::describe_jobs)
        .sequence()
        .http_response(|| drs_error(400, "ValidationException", r#"{"message":"bad"}"#))
        .output(ok)
        .build();
    let c = cloud(RuleMode::Sequential, &[&refused], 3);
    assert!(matches!(c.describe_jobs(&dr(), &[]).await, Err(CloudError::Validation { .. })));
    assert_eq!(refused.num_calls(), 1, "a validation error is final");
}
