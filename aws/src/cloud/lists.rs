//! Paged list calls: every page followed, a repeated page token or a list without end refused.

use super::map::{map_instance, unexpected};
use crate::clients::ClientSet;
use crate::error::ForAction;
use aws_sdk_ec2::types as ec2;
use domain::estate::{AccountRegion, Ec2Instance};
use engine::cloud::CloudError;
use std::collections::HashMap;

/// The next page's token, or `None` after the last page. A token that repeats the one just used would loop
/// for ever: that is an error, as is a list of more than [`MAX_PAGES`] pages.
pub(super) fn next_token(
    previous: Option<&str>,
    next: Option<&str>,
    pages: &mut usize,
) -> Result<Option<String>, CloudError> {
    *pages += 1;
    match next.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if Some(t) == previous => Err(unexpected(format!("DRS returned the page token {t:?} twice"))),
        Some(_) if *pages >= MAX_PAGES => Err(unexpected(format!("more than {MAX_PAGES} pages"))),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// Pages read at most from one list call (a million items at 1000 a page).
pub(super) const MAX_PAGES: usize = 1_000;

pub(super) fn ids<'a, T: 'a>(items: impl IntoIterator<Item = &'a T>, as_str: fn(&T) -> &str) -> Vec<String> {
    items.into_iter().map(|i| as_str(i).to_owned()).collect()
}

/// EC2 `DescribeInstances`, every page, of the instances `only` when given (at most [`EC2_FILTER_VALUES`]).
pub(super) async fn instances(
    c: &ClientSet,
    at: &AccountRegion,
    only: Option<Vec<String>>,
) -> Result<Vec<Ec2Instance>, CloudError> {
    let filter = |name: &str| only.clone().map(|ids| ec2::Filter::builder().name(name).set_values(Some(ids)).build());
    let sizes: HashMap<String, u32> = volumes(c, filter("attachment.instance-id"))
        .await?
        .iter()
        .filter_map(|v| Some((v.volume_id()?.to_owned(), u32::try_from(v.size()?).ok()?)))
        .collect();
    let mut pages = c
        .ec2
        .describe_instances()
        .set_filters(filter("instance-id").map(|f| vec![f]))
        .max_results(1000)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.for_action("ec2:DescribeInstances")?;
        for r in page.reservations() {
            out.extend(r.instances().iter().filter_map(|i| map_instance(i, at, &sizes)));
        }
    }
    Ok(out)
}

/// EC2 `DescribeVolumes`, every page, optionally with one filter.
pub(super) async fn volumes(c: &ClientSet, filter: Option<ec2::Filter>) -> Result<Vec<ec2::Volume>, CloudError> {
    let req = c.ec2.describe_volumes().max_results(500).set_filters(filter.map(|f| vec![f]));
    let mut pages = req.into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.for_action("ec2:DescribeVolumes")?;
        out.extend(page.volumes().iter().cloned());
    }
    Ok(out)
}
