//! Name normalisation and matching, as case tables.

use domain::estate::*;
use domain::ids::*;
use domain::matching::SourceNameKey;
use domain::matching::*;
use rstest::rstest;

fn source(n: u32, name: Option<&str>, hostname: &str) -> SourceServer {
    let mut tags = Tags::new();
    if let Some(name) = name {
        tags.insert("Name".into(), name.into());
    }
    SourceServer {
        source_server_id: SourceServerId::parse(&format!("s-{n:017x}")).unwrap(),
        account_id: AccountId::parse("222222222222").unwrap(),
        region: Region::parse("us-west-2").unwrap(),
        origin_account_id: AccountId::parse("111111111111").unwrap(),
        origin_region: Region::parse("us-east-1").unwrap(),
        hostname: hostname.into(),
        source_instance_id: None,
        replication_state: ReplicationState::Continuous,
        lag_seconds: 5,
        backlog_bytes: 0,
        replication_direction: Default::default(),
        tags,
        architecture: Architecture::X86_64,
        platform: Platform::Linux,
        boot_mode: Some(BootMode::LegacyBios),
    }
}

fn standby(n: u32, name: Option<&str>) -> Ec2Instance {
    let mut tags = Tags::new();
    tags.insert(AWSDRS_TAG_KEY.into(), AWSDRS_TAG_VALUE.into());
    if let Some(name) = name {
        tags.insert("Name".into(), name.into());
    }
    Ec2Instance {
        instance_id: InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
        account_id: AccountId::parse("222222222222").unwrap(),
        region: Region::parse("us-west-2").unwrap(),
        tags,
        state: InstanceState::Stopped,
        private_ip: std::net::Ipv4Addr::new(10, 1, 0, 10 + (n % 200) as u8),
        subnet_id: SubnetId::parse("subnet-0123456789abcdef0").unwrap(),
        security_group_ids: vec![],
        instance_type: "t3.medium".into(),
        architecture: Architecture::X86_64,
        platform: Platform::Linux,
        boot_mode: BootMode::LegacyBios,
        root_device_type: "ebs".into(),
        volumes: vec![],
        iam_instance_profile: None,
    }
}

#[rstest]
#[case::trims("  web-01  ", "web-01")]
#[case::lowercases("WEB-01", "web-01")]
#[case::collapses_inner_whitespace("web \t  01", "web 01")]
#[case::folds_fullwidth_letters("ＷＥＢ－０１", "web-01")]
#[case::folds_ligatures("ﬁle-server", "file-server")]
#[case::folds_non_breaking_space("web\u{00a0}01", "web 01")]
#[case::folds_roman_numeral("app-Ⅱ", "app-ii")]
#[case::keeps_cyrillic_lookalikes_apart("wеb-01", "wеb-01")]
#[case::empty("   ", "")]
fn names_normalise_by_nfkc_trim_collapse_and_lowercase(#[case] raw: &str, #[case] want: &str) {
    assert_eq!(normalize_name(raw), want);
}

#[test]
fn unique_names_on_both_sides_pair_one_to_one() {
    let report = match_estate(
        &[source(1, Some("web-01"), ""), source(2, Some("DB-01"), "")],
        &[standby(1, Some("db-01")), standby(2, Some(" Web-01 "))],
        SourceNameKey::default(),
    );
    let pairs: Vec<(&str, &str)> =
        report.pairs.iter().map(|p| (p.source_server_id.as_str(), p.standby_instance_id.as_str())).collect();
    assert_eq!(pairs, [("s-00000000000000002", "i-00000000000000001"), ("s-00000000000000001", "i-00000000000000002")]);
    assert_eq!(report.counts.match_rate, 1.0);
    assert!(report.pairs.iter().all(|p| p.status == PairStatus::Ready));
}

#[rstest]
#[case::two_standbys_alike(vec![("web-01", 1)], vec![("web-01", 1), ("WEB-01 ", 2)], ConflictSide::Standbys, 1, 2)]
#[case::two_sources_alike(vec![("web-01", 1), ("Web-01", 2)], vec![("web-01", 1)], ConflictSide::Sources, 2, 1)]
#[case::both_sides(vec![("a b", 1), ("A  B", 2)], vec![("a b", 1), ("a\u{3000}b", 2)], ConflictSide::Both, 2, 2)]
#[case::sources_alike_no_standby(vec![("x-1", 1), ("X-1", 2)], vec![], ConflictSide::Sources, 2, 0)]
#[case::standbys_alike_no_source(vec![], vec![("y-1", 1), ("Y-1", 2)], ConflictSide::Standbys, 0, 2)]
fn conflicts_pair_nobody_and_list_every_id(
    #[case] srcs: Vec<(&str, u32)>,
    #[case] sbs: Vec<(&str, u32)>,
    #[case] side: ConflictSide,
    #[case] n_src: usize,
    #[case] n_sb: usize,
) {
    let sources: Vec<_> = srcs.iter().map(|(n, i)| source(*i, Some(n), "")).collect();
    let standbys: Vec<_> = sbs.iter().map(|(n, i)| standby(*i, Some(n))).collect();
    let report = match_estate(&sources, &standbys, SourceNameKey::default());
    assert!(report.pairs.is_empty(), "nothing may be paired: {:?}", report.pairs);
    assert_eq!(report.conflicts.len(), 1);
    let c = &report.conflicts[0];
    assert_eq!(c.side, side);
    assert_eq!((c.source_server_ids.len(), c.standby_instance_ids.len()), (n_src, n_sb));
    assert!(report.unmatched_sources.iter().all(|u| u.reason == UnmatchedReason::Conflict));
    assert!(report.unmatched_standbys.iter().all(|u| u.reason == UnmatchedReason::Conflict));
    assert_eq!(report.unmatched_sources.len() + report.unmatched_standbys.len(), n_src + n_sb);
}

#[test]
fn a_source_without_name_falls_back_to_its_hostname_unless_the_group_says_name_tag() {
    let sources = [source(1, None, "app-07")];
    let standbys = [standby(1, Some("APP-07"))];
    assert_eq!(match_estate(&sources, &standbys, SourceNameKey::NameTagThenHostname).pairs.len(), 1);
    let strict = match_estate(&sources, &standbys, SourceNameKey::NameTag);
    assert_eq!(strict.unmatched_sources[0].reason, UnmatchedReason::NoName);
    assert_eq!(strict.unmatched_standbys[0].reason, UnmatchedReason::NoSourceWithName);
}

#[test]
fn every_unmatched_member_carries_a_reason() {
    let mut wrong_case = standby(3, Some("db-09"));
    wrong_case.tags.remove(AWSDRS_TAG_KEY);
    wrong_case.tags.insert("awsdrs".into(), "allowlaunchingintothisinstance".into());
    let mut terminated = standby(4, Some("gone-01"));
    terminated.state = InstanceState::Terminated;
    let mut untagged = standby(5, Some("plain"));
    untagged.tags.remove(AWSDRS_TAG_KEY);
    let report = match_estate(
        &[source(1, None, ""), source(2, Some("lonely-01"), ""), source(3, Some("db-09"), "")],
        &[standby(1, None), standby(2, Some("orphan-01")), wrong_case, terminated, untagged],
        SourceNameKey::default(),
    );
    let src: Vec<_> = report.unmatched_sources.iter().map(|u| (u.source_server_id.as_str(), u.reason)).collect();
    assert_eq!(
        src,
        [
            ("s-00000000000000001", UnmatchedReason::NoName),
            ("s-00000000000000003", UnmatchedReason::NoStandbyWithName),
            ("s-00000000000000002", UnmatchedReason::NoStandbyWithName),
        ]
    );
    let sb: Vec<_> = report.unmatched_standbys.iter().map(|u| (u.instance_id.as_str(), u.reason)).collect();
    assert_eq!(
        sb,
        [
            ("i-00000000000000001", UnmatchedReason::NoName),
            ("i-00000000000000003", UnmatchedReason::AwsdrsTagNotExact),
            ("i-00000000000000002", UnmatchedReason::NoSourceWithName),
        ]
    );
    assert_eq!(report.counts.standbys, 2, "terminated, untagged and wrong-case instances are not standbys");
}

#[test]
fn a_source_whose_only_standby_is_terminated_is_told_so_and_names_are_shown_as_written() {
    let mut gone = standby(4, Some("gone-01"));
    gone.state = InstanceState::Terminated;
    let report = match_estate(
        &[source(1, Some("gone-01"), ""), source(2, Some("h3-i\u{307}"), "")],
        &[gone, standby(5, Some("Orphan  \u{1F680}"))],
        SourceNameKey::default(),
    );
    let by_id = |id: &str| report.unmatched_sources.iter().find(|u| u.source_server_id.as_str() == id).unwrap();
    let gone = by_id("s-00000000000000001");
    assert_eq!(gone.reason, UnmatchedReason::StandbyTerminated);
    assert_eq!(gone.reason.as_str(), "STANDBY_TERMINATED");
    assert!(gone.message.contains("i-00000000000000004") && gone.message.contains("terminated"), "{}", gone.message);
    let mark = by_id("s-00000000000000002");
    assert_eq!(mark.reason, UnmatchedReason::NoStandbyWithName);
    assert_eq!(mark.message, "no standby is named \"h3-i\u{307}\" in the DR region");
    assert_eq!(
        report.unmatched_standbys[0].message, "no source server in this group is named \"Orphan  \u{1F680}\"",
        "the Name tag as written, not its normalised form"
    );
}

#[test]
fn near_misses_are_suggestions_never_pairs() {
    let report = match_estate(
        &[source(1, Some("billing-db-01"), ""), source(2, Some("db1"), ""), source(3, Some("crm-app-02"), "")],
        &[standby(1, Some("biling-db-01")), standby(2, Some("db2")), standby(3, Some("crm-app-01"))],
        SourceNameKey::default(),
    );
    assert!(report.pairs.is_empty());
    assert_eq!(
        report.suggestions.len(),
        1,
        "short names and names with other numbers get no suggestion: {:?}",
        report.suggestions
    );
    let s = &report.suggestions[0];
    assert_eq!(
        (s.source_server_id.as_str(), s.standby_instance_id.as_str(), s.distance),
        ("s-00000000000000001", "i-00000000000000001", 1)
    );
}

#[test]
fn readiness_facts_block_a_running_or_mismatched_standby() {
    let mut running = standby(1, Some("web-01"));
    running.state = InstanceState::Running;
    let mut uefi = standby(2, Some("web-02"));
    uefi.boot_mode = BootMode::Uefi;
    let mut arm = standby(3, Some("web-03"));
    arm.architecture = Architecture::Arm64;
    let mut stalled = source(4, Some("web-04"), "");
    stalled.replication_state = ReplicationState::Stalled;
    let report = match_estate(
        &[source(1, Some("web-01"), ""), source(2, Some("web-02"), ""), source(3, Some("web-03"), ""), stalled],
        &[running, uefi, arm, standby(4, Some("web-04"))],
        SourceNameKey::default(),
    );
    let codes: Vec<(PairStatus, Vec<&str>)> =
        report.pairs.iter().map(|p| (p.status, p.findings.iter().map(|f| f.code.as_str()).collect())).collect();
    assert_eq!(
        codes,
        [
            (PairStatus::Blocked, vec!["STANDBY_NOT_STOPPED"]),
            (PairStatus::Blocked, vec!["LINUX_STANDBY_NOT_BIOS"]),
            (PairStatus::Blocked, vec!["ARCHITECTURE_MISMATCH"]),
            (PairStatus::Warning, vec!["SOURCE_NOT_CONTINUOUS"]),
        ]
    );
    assert_eq!((report.counts.blocked_pairs, report.counts.pairs_with_warnings), (3, 1));
}

#[test]
fn output_does_not_depend_on_listing_order() {
    let sources: Vec<_> = (1..40).map(|i| source(i, Some(&format!("srv-{:02}", i % 30)), "")).collect();
    let standbys: Vec<_> = (1..45).map(|i| standby(i, Some(&format!("SRV-{:02}", i % 33)))).collect();
    let a = match_estate(&sources, &standbys, SourceNameKey::default());
    let mut rs = sources.clone();
    rs.reverse();
    let mut rt = standbys.clone();
    rt.rotate_left(17);
    let b = match_estate(&rs, &rt, SourceNameKey::default());
    assert_eq!(a, b);
    assert!(!a.conflicts.is_empty() && !a.pairs.is_empty());
}

#[rstest]
#[case("kitten", "sitting", 3, Some(3))]
#[case("kitten", "sitting", 2, None)]
#[case("abc", "abc", 0, Some(0))]
#[case("ab", "abcd", 1, None)]
#[case("", "ab", 2, Some(2))]
#[case("abcdef", "", 2, None)]
#[case("flaw", "lawn", 2, Some(2))]
#[case("billing-db-01", "biling-db-01", 2, Some(1))]
#[case("abcdefghij", "abcdefghxx", 1, None)]
#[case("abcdefghij", "bcdefghijk", 2, Some(2))]
fn edit_distance_is_bounded(#[case] a: &str, #[case] b: &str, #[case] max: usize, #[case] want: Option<usize>) {
    assert_eq!(bounded_levenshtein(a, b, max), want);
}

/// The full quadratic edit distance, as a reference for the banded one.
fn full_levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j - 1] + usize::from(a[i - 1] != b[j - 1])).min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[test]
fn the_banded_distance_agrees_with_the_full_one() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3_000 {
        let word = |n: u64, r: &mut dyn FnMut() -> u64| -> String {
            (0..n).map(|_| (b'a' + (r() % 3) as u8) as char).collect()
        };
        let la = next() % 9;
        let lb = next() % 9;
        let (a, b) = (word(la, &mut next), word(lb, &mut next));
        for max in 0..4 {
            let full = full_levenshtein(&a, &b);
            assert_eq!(bounded_levenshtein(&a, &b, max), (full <= max).then_some(full), "{a:?} {b:?} max {max}");
        }
    }
}
