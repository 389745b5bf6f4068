//! The rows of the instance-matching table: a match report and the accepted pairs flattened into one
//! list that the page filters and paginates. Pure, so both sides and the tests share it.

use domain::group::{GroupMatch, InstancePair};
use domain::matching::{PairStatus, UnmatchedReason};
use std::collections::HashMap;

/// The status a row shows, in the order the table sorts problems first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowStatus {
    Blocked,
    Conflict,
    Unmatched,
    Warning,
    Ready,
    Accepted,
}

impl RowStatus {
    /// Lower-case name: the badge class and the filter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Conflict => "conflict",
            Self::Unmatched => "unmatched",
            Self::Warning => "warning",
            Self::Ready => "ready",
            Self::Accepted => "accepted",
        }
    }

    /// Every status, for the filter.
    pub const ALL: [RowStatus; 6] =
        [Self::Blocked, Self::Conflict, Self::Unmatched, Self::Warning, Self::Ready, Self::Accepted];
}

/// One line of the matching table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Unique within a table.
    pub key: String,
    pub status: RowStatus,
    pub source_server_id: Option<String>,
    pub source_name: Option<String>,
    pub standby_instance_id: Option<String>,
    pub standby_name: Option<String>,
    pub wave: Option<String>,
    /// Reason codes (or finding codes) shown as text.
    pub codes: Vec<String>,
    /// Why, in words.
    pub reason: String,
    /// Standby facts: state, architecture, IP.
    pub facts: String,
    /// A proposed pair, ready, not yet accepted: what "accept all ready" sends.
    pub acceptable: bool,
    /// The stored pair of this row's source server, if any.
    pub pair_id: Option<String>,
    /// The stored pair's version, sent back with changes so a concurrent edit is refused, not overwritten.
    pub pair_version: Option<u64>,
    /// Lower-cased text the free-text filter searches.
    haystack: String,
}

impl Row {
    fn finish(mut self) -> Self {
        self.haystack = [&self.source_server_id, &self.source_name, &self.standby_instance_id, &self.standby_name]
            .iter()
            .filter_map(|s| s.as_deref())
            .chain(std::iter::once(self.reason.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        self
    }

    /// Whether the row passes the filters (`None` = any).
    pub fn passes(&self, status: Option<RowStatus>, wave: Option<&str>, text: &str) -> bool {
        status.is_none_or(|s| s == self.status)
            && wave.is_none_or(|w| self.wave.as_deref() == Some(w))
            && (text.trim().is_empty() || self.haystack.contains(&text.trim().to_lowercase()))
    }
}

fn empty(key: String, status: RowStatus) -> Row {
    Row {
        key,
        status,
        source_server_id: None,
        source_name: None,
        standby_instance_id: None,
        standby_name: None,
        wave: None,
        codes: Vec::new(),
        reason: String::new(),
        facts: String::new(),
        acceptable: false,
        pair_id: None,
        pair_version: None,
        haystack: String::new(),
    }
}

/// Flattens a group's match into table rows: problems first, then by name.
pub fn build_rows(m: &GroupMatch) -> Vec<Row> {
    let accepted: HashMap<&str, &InstancePair> = m.accepted.iter().map(|p| (p.source_server_id.as_str(), p)).collect();
    let mut rows =
        Vec::with_capacity(m.report.pairs.len() + m.report.unmatched_sources.len() + m.report.unmatched_standbys.len());
    let mut shown_pairs = std::collections::HashSet::new();
    for p in &m.report.pairs {
        let stored = accepted.get(p.source_server_id.as_str());
        if let Some(s) = stored.filter(|s| s.standby_instance_id != p.standby_instance_id) {
            // A person paired this source with another standby: show what is stored, and what matching proposes.
            shown_pairs.insert(p.source_server_id.as_str());
            let mut row = stored_row(s, format!("p:{}", p.source_server_id));
            row.reason = format!(
                "accepted ({}) with {}; matching proposes {} ({})",
                origin(s),
                s.standby_instance_id,
                p.standby_instance_id,
                p.standby_name
            );
            rows.push(row.finish());
            continue;
        }
        let is_accepted = stored.is_some_and(|s| s.standby_instance_id == p.standby_instance_id);
        let status = if is_accepted {
            RowStatus::Accepted
        } else {
            match p.status {
                PairStatus::Ready => RowStatus::Ready,
                PairStatus::Warning => RowStatus::Warning,
                PairStatus::Blocked => RowStatus::Blocked,
            }
        };
        if is_accepted {
            shown_pairs.insert(p.source_server_id.as_str());
        }
        let mut row = empty(format!("p:{}", p.source_server_id), status);
        row.source_server_id = Some(p.source_server_id.to_string());
        row.source_name = Some(p.source_name.clone());
        row.standby_instance_id = Some(p.standby_instance_id.to_string());
        row.standby_name = Some(p.standby_name.clone());
        row.wave = p.wave.clone();
        row.codes = p.findings.iter().map(|f| f.code.clone()).collect();
        row.reason = if p.findings.is_empty() {
            if is_accepted { "accepted; names match".into() } else { "names match; standby ready".into() }
        } else {
            p.findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
        };
        row.facts = format!(
            "{} · {} · {}",
            p.facts.standby_state.as_str(),
            p.facts.standby_architecture.as_str(),
            p.facts.private_ip
        );
        row.acceptable = !is_accepted && p.status == PairStatus::Ready && stored.is_none();
        row.pair_id = stored.map(|s| s.id.to_string());
        row.pair_version = stored.map(|s| s.version);
        rows.push(row.finish());
    }
    for u in &m.report.unmatched_sources {
        let stored = accepted.get(u.source_server_id.as_str());
        let mut row = empty(
            format!("s:{}", u.source_server_id),
            match (stored, u.reason) {
                (Some(_), _) => RowStatus::Accepted,
                (None, UnmatchedReason::Conflict) => RowStatus::Conflict,
                (None, _) => RowStatus::Unmatched,
            },
        );
        if stored.is_some() {
            shown_pairs.insert(u.source_server_id.as_str());
        }
        row.source_server_id = Some(u.source_server_id.to_string());
        row.source_name = u.source_name.clone();
        row.standby_instance_id = stored.map(|s| s.standby_instance_id.to_string());
        row.standby_name = stored.map(|s| s.standby_name.clone());
        row.wave = u.wave.clone();
        row.codes = vec![u.reason.as_str().to_owned()];
        row.reason = match stored {
            Some(s) => format!("accepted ({}); matching alone: {}", origin(s), u.message),
            None => u.message.clone(),
        };
        row.facts = format!("replication {}", u.replication_state.as_str());
        row.pair_id = stored.map(|s| s.id.to_string());
        row.pair_version = stored.map(|s| s.version);
        rows.push(row.finish());
    }
    for u in &m.report.unmatched_standbys {
        let paired_by_hand = m.accepted.iter().any(|p| p.standby_instance_id == u.instance_id);
        if paired_by_hand {
            continue;
        }
        let mut row = empty(
            format!("t:{}", u.instance_id),
            if u.reason == UnmatchedReason::Conflict { RowStatus::Conflict } else { RowStatus::Unmatched },
        );
        row.standby_instance_id = Some(u.instance_id.to_string());
        row.standby_name = u.name.clone();
        row.codes = vec![u.reason.as_str().to_owned()];
        row.reason = u.message.clone();
        row.facts = u.state.as_str().to_owned();
        rows.push(row.finish());
    }
    // Stored pairs whose source server no longer shows in the report (e.g. deselected or gone from DRS).
    for p in &m.accepted {
        if shown_pairs.contains(p.source_server_id.as_str())
            || rows.iter().any(|r| r.source_server_id.as_deref() == Some(p.source_server_id.as_str()))
        {
            continue;
        }
        let mut row = stored_row(p, format!("a:{}", p.source_server_id));
        row.reason = "stored pair; the source server is not in the current report — validate the pairs".into();
        rows.push(row.finish());
    }
    rows.sort_by(|a, b| {
        let name =
            |r: &Row| r.source_name.clone().or_else(|| r.standby_name.clone()).unwrap_or_default().to_lowercase();
        (a.status, name(a), &a.key).cmp(&(b.status, name(b), &b.key))
    });
    rows
}

/// A row showing a stored pair as it is stored.
fn stored_row(p: &InstancePair, key: String) -> Row {
    let mut row = empty(key, RowStatus::Accepted);
    row.source_server_id = Some(p.source_server_id.to_string());
    row.source_name = Some(p.source_name.clone());
    row.standby_instance_id = Some(p.standby_instance_id.to_string());
    row.standby_name = Some(p.standby_name.clone());
    row.wave = p.wave.clone();
    row.pair_id = Some(p.id.to_string());
    row.pair_version = Some(p.version);
    row
}

fn origin(p: &InstancePair) -> &'static str {
    match p.origin {
        domain::group::PairOrigin::Matched => "matched",
        domain::group::PairOrigin::Manual => "manual",
    }
}

/// The distinct waves of the rows, sorted.
pub fn waves(rows: &[Row]) -> Vec<String> {
    let mut w: Vec<String> = rows.iter().filter_map(|r| r.wave.clone()).collect();
    w.sort();
    w.dedup();
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::estate::*;
    use domain::group::*;
    use domain::ids::*;
    use domain::matching::{SourceNameKey, match_estate};

    fn source(n: u32, name: &str) -> SourceServer {
        let mut tags = Tags::new();
        tags.insert("Name".into(), name.into());
        tags.insert(WAVE_TAG_KEY.into(), "2".into());
        SourceServer {
            source_server_id: SourceServerId::parse(&format!("s-{n:017x}")).unwrap(),
            account_id: AccountId::parse("222222222222").unwrap(),
            region: Region::parse("us-west-2").unwrap(),
            origin_account_id: AccountId::parse("111111111111").unwrap(),
            origin_region: Region::parse("us-east-1").unwrap(),
            hostname: String::new(),
            source_instance_id: None,
            replication_state: ReplicationState::Continuous,
            lag_seconds: 1,
            backlog_bytes: 0,
            replication_direction: Default::default(),
            tags,
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: None,
        }
    }

    fn standby(n: u32, name: &str) -> Ec2Instance {
        let mut tags = Tags::new();
        tags.insert("Name".into(), name.into());
        tags.insert(AWSDRS_TAG_KEY.into(), AWSDRS_TAG_VALUE.into());
        Ec2Instance {
            instance_id: InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
            account_id: AccountId::parse("222222222222").unwrap(),
            region: Region::parse("us-west-2").unwrap(),
            tags,
            state: InstanceState::Stopped,
            private_ip: std::net::Ipv4Addr::new(10, 0, 0, n as u8 + 10),
            subnet_id: SubnetId::parse("subnet-0123456789abcdef0").unwrap(),
            security_group_ids: vec![],
            instance_type: "t3.small".into(),
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: BootMode::LegacyBios,
            root_device_type: "ebs".into(),
            volumes: vec![],
            iam_instance_profile: None,
        }
    }

    fn group_match(accepted: Vec<(u32, u32)>) -> GroupMatch {
        let sources = [source(1, "web-01"), source(2, "web-02"), source(3, "dup"), source(4, "DUP")];
        let standbys = [standby(1, "web-01"), standby(2, "web-02"), standby(3, "dup"), standby(9, "spare")];
        let report = match_estate(&sources, &standbys, SourceNameKey::default());
        let group = ProtectionGroupId::parse("pg-1").unwrap();
        let accepted = accepted
            .into_iter()
            .map(|(s, t)| {
                let sid = SourceServerId::parse(&format!("s-{s:017x}")).unwrap();
                InstancePair {
                    id: PairId::for_source(&sid),
                    protection_group_id: group.clone(),
                    source_server_id: sid,
                    standby_instance_id: InstanceId::parse(&format!("i-{t:017x}")).unwrap(),
                    origin: PairOrigin::Manual,
                    source_name: format!("src-{s}"),
                    standby_name: format!("sb-{t}"),
                    standby_private_ip: std::net::Ipv4Addr::new(10, 0, 0, 1),
                    standby_subnet_id: SubnetId::parse("subnet-0123456789abcdef0").unwrap(),
                    wave: None,
                    accepted_at: 0,
                    accepted_by: "test".into(),
                    version: 3,
                }
            })
            .collect();
        let g = ProtectionGroup {
            id: group,
            name: "g".into(),
            description: String::new(),
            primary: AccountRegion {
                account_id: AccountId::parse("111111111111").unwrap(),
                region: Region::parse("us-east-1").unwrap(),
            },
            dr: AccountRegion {
                account_id: AccountId::parse("222222222222").unwrap(),
                region: Region::parse("us-west-2").unwrap(),
            },
            selection: SourceSelection::All,
            source_name_key: SourceNameKey::default(),
            launch_disposition: Default::default(),
            lag_threshold_seconds: 600,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        GroupMatch { group: g, report, accepted }
    }

    fn statuses(rows: &[Row]) -> Vec<(&str, &str)> {
        rows.iter().map(|r| (r.key.as_str(), r.status.as_str())).collect()
    }

    #[test]
    fn problems_come_first_and_ready_pairs_are_acceptable() {
        let rows = build_rows(&group_match(vec![]));
        assert_eq!(
            statuses(&rows),
            [
                ("s:s-00000000000000003", "conflict"),
                ("s:s-00000000000000004", "conflict"),
                ("t:i-00000000000000003", "conflict"),
                ("t:i-00000000000000009", "unmatched"),
                ("p:s-00000000000000001", "ready"),
                ("p:s-00000000000000002", "ready"),
            ]
        );
        assert_eq!(rows.iter().filter(|r| r.acceptable).count(), 2);
    }

    #[test]
    fn a_stored_pair_is_shown_as_stored_even_when_matching_proposes_another_standby() {
        // web-01 was paired by hand with the spare standby; the conflict source 3 with standby 3.
        let rows = build_rows(&group_match(vec![(1, 9), (3, 3)]));
        let web = rows.iter().find(|r| r.key == "p:s-00000000000000001").unwrap();
        assert_eq!(
            (web.status, web.standby_instance_id.as_deref()),
            (RowStatus::Accepted, Some("i-00000000000000009"))
        );
        assert!(!web.acceptable, "a stored pair is never re-sent by accept-all");
        assert!(web.reason.contains("proposes i-00000000000000001"), "{}", web.reason);
        assert_eq!(web.pair_version, Some(3));
        let dup = rows.iter().find(|r| r.key == "s:s-00000000000000003").unwrap();
        assert_eq!(dup.status, RowStatus::Accepted);
        assert!(!rows.iter().any(|r| r.key == "t:i-00000000000000009"), "the spare is paired now");
    }

    #[test]
    fn filters_combine_status_wave_and_text() {
        let rows = build_rows(&group_match(vec![]));
        let n = |st: Option<RowStatus>, w: Option<&str>, t: &str| rows.iter().filter(|r| r.passes(st, w, t)).count();
        assert_eq!(n(None, None, ""), 6);
        assert_eq!(n(Some(RowStatus::Conflict), None, ""), 3);
        assert_eq!(n(None, Some("2"), ""), 4, "standby-only rows have no wave");
        assert_eq!(n(None, None, "WEB-02"), 1, "text search ignores case");
        assert_eq!(n(Some(RowStatus::Ready), Some("2"), "i-00000000000000001"), 1);
    }
}
