//! DRS launch configurations in the simulated estate: the default for a source server, and the checks
//! `UpdateLaunchConfiguration` makes before it writes (as DRS documents them).

use crate::state::{Fault, World};
use domain::estate::AccountRegion;
use domain::ids::SourceServerId;
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate, RightSizing};
use engine::cloud::CloudError;

pub(super) fn launch_configuration(
    w: &World,
    at: &AccountRegion,
    source: &SourceServerId,
) -> Result<LaunchConfiguration, CloudError> {
    let Some(server) = w
        .scenario
        .source_servers
        .iter()
        .find(|s| &s.source_server_id == source && s.account_id == at.account_id && s.region == at.region)
    else {
        return Err(CloudError::NotFound {
            message: format!("source server {source} does not exist in {}", at.region),
        });
    };
    Ok(w.launch_configurations.get(source).cloned().unwrap_or_else(|| {
        let mut c = LaunchConfiguration::drs_default(source.clone());
        // DRS does not offer BASIC right-sizing for arm64 source servers.
        if server.architecture == domain::estate::Architecture::Arm64 {
            c.right_sizing = RightSizing::None;
        }
        c
    }))
}

/// DRS's documented refusals (aws-drs-api.md §1.2, §1.4 and the troubleshooting page).
pub(super) fn validate_update(
    w: &World,
    at: &AccountRegion,
    source: &SourceServerId,
    update: &LaunchConfigurationUpdate,
    next: &LaunchConfiguration,
) -> Result<(), CloudError> {
    let bad = |m: String| Err(CloudError::Validation { message: m });
    let server = w.scenario.source_servers.iter().find(|s| &s.source_server_id == source);
    if next.right_sizing == RightSizing::Basic
        && server.is_some_and(|s| s.architecture == domain::estate::Architecture::Arm64)
    {
        return bad("BASIC right-sizing is not supported for arm64 source servers".into());
    }
    let Some(Some(target)) = &update.launch_into_instance_id else { return Ok(()) };
    if let Some(Fault::RejectLaunchInto { message }) = w.faults.get(source) {
        return bad(message.clone());
    }
    if next.copy_private_ip || next.copy_tags {
        return bad("copyPrivateIp and copyTags must be disabled to launch into an existing instance".into());
    }
    let Some(instance) = w
        .scenario
        .instances
        .iter()
        .find(|i| &i.instance_id == target && i.account_id == at.account_id && i.region == at.region)
    else {
        return bad(format!("launchIntoEC2InstanceID {target} does not exist in {}", at.region));
    };
    if !instance.has_exact_awsdrs_tag() {
        return bad(format!("{target} is not tagged AWSDRS=AllowLaunchingIntoThisInstance"));
    }
    if let Some(s) = server
        && s.architecture != instance.architecture
    {
        return bad(format!(
            "cannot define {target} as a launch into instance ID as it has conflicting instance settings; mismatch: Architecture"
        ));
    }
    Ok(())
}
