//! What the command-line client prints for people: aligned tables and the summaries of matching and of a
//! failback's dry run. Pure functions of the server's JSON answers, so their layout is tested here.
//!
//! Widths are counted in characters, not bytes, and a cell longer than [`MAX_CELL`] characters is cut with
//! `…`, so one long or non-ASCII Name tag never pushes the columns after it out of line.

use serde_json::Value;
use std::fmt::Write as _;

/// The widest a table cell is printed, in characters.
pub const MAX_CELL: usize = 40;
/// How many unmatched servers, conflicts or staying servers a summary lists by name.
pub const FIRST_FEW: usize = 5;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers.
    Right,
}

/// `v` as a cell: strings as written, numbers and the rest as JSON, nothing for null.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cut(text: &str) -> String {
    // Control characters would move the cursor: show them as spaces.
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= MAX_CELL {
        return clean;
    }
    let mut short: String = clean.chars().take(MAX_CELL - 1).collect();
    short.push('…');
    short
}

/// A table with a header row, every column as wide as its widest cell, two spaces between columns, and no
/// trailing spaces.
pub fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(c)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (head, _))| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([head.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let mut l = String::new();
        for (i, ((_, align), width)) in columns.iter().zip(&widths).enumerate() {
            let c = cells.get(i).map_or("", String::as_str);
            let pad = width.saturating_sub(c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            match align {
                Align::Left => {
                    l.push_str(c);
                    l.push_str(&" ".repeat(pad));
                }
                Align::Right => {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                }
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let head: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    line(&head, &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    out
}

/// `roundtrip groups list`.
pub fn groups_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["protection_groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let gr = &g["group"];
            let at = |side: &str| format!("{}/{}", cell(&gr[side]["account_id"]), cell(&gr[side]["region"]));
            vec![cell(&gr["id"]), cell(&gr["name"]), cell(&g["pairs"]), at("primary"), at("dr")]
        })
        .collect();
    use Align::{Left, Right};
    table(&[("ID", Left), ("NAME", Left), ("PAIRS", Right), ("PRIMARY", Left), ("DR", Left)], &rows)
}

/// `roundtrip plans list`.
pub fn plans_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["recovery_plans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let waves = p["waves"].as_array().map_or(0, Vec::len);
            vec![cell(&p["id"]), cell(&p["name"]), waves.to_string(), cell(&p["rto_target_minutes"])]
        })
        .collect();
    use Align::{Left, Right};
    table(&[("ID", Left), ("NAME", Left), ("WAVES", Right), ("RTO (MIN)", Right)], &rows)
}

fn list(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// `roundtrip match`: the pairs by status, then — as the console shows them — the unmatched source
/// servers and standbys and the conflicts, each counted and the first few named with their reasons.
/// `accepted` is the answer to accepting the ready pairs (with `--accept`).
pub fn match_summary(report: &Value, accepted: Option<&Value>, accept: bool) -> String {
    let pairs = list(&report["pairs"]);
    let ready = pairs.iter().filter(|p| p["status"] == "ready").count();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for p in &pairs {
        *counts.entry(cell(&p["status"])).or_default() += 1;
    }
    let mut t = format!("{} source servers matched by Name tag:", pairs.len());
    if counts.is_empty() {
        t.push_str(" none");
    }
    for (k, n) in &counts {
        let _ = write!(t, " {n} {k}");
    }
    t.push('\n');
    for p in pairs.iter().filter(|p| p["status"] != "ready").take(50) {
        let why: Vec<String> = list(&p["findings"]).iter().map(|x| cell(&x["code"])).collect();
        let _ = writeln!(t, "  {:<8} {} {}", cell(&p["status"]), cut(&cell(&p["source_name"])), why.join(", "));
    }
    let section = |t: &mut String, items: Vec<&Value>, what: &str, name: &dyn Fn(&Value) -> String| {
        let _ = writeln!(t, "{} {what}", items.len());
        for x in items.iter().take(FIRST_FEW) {
            let code = cell(&x["reason"]);
            let code = if code.is_empty() { String::new() } else { format!("{code}: ") };
            let _ = writeln!(t, "  {}  {code}{}", cut(&name(x)), cell(&x["message"]));
        }
        if items.len() > FIRST_FEW {
            let _ = writeln!(t, "  … and {} more (see --output json or the console)", items.len() - FIRST_FEW);
        }
    };
    let unnamed = |v: &Value, id: &str| {
        let n = cell(v);
        if n.is_empty() { format!("({id}, no name)") } else { n }
    };
    section(&mut t, list(&report["unmatched_sources"]), "unmatched source servers", &|x| {
        unnamed(&x["source_name"], &cell(&x["source_server_id"]))
    });
    section(&mut t, list(&report["unmatched_standbys"]), "unmatched standbys", &|x| {
        unnamed(&x["name"], &cell(&x["instance_id"]))
    });
    section(&mut t, list(&report["conflicts"]), "conflicts", &|x| cell(&x["normalized_name"]));
    match (accepted, accept) {
        (Some(a), _) => {
            let n = a["accepted"].as_array().map_or(ready, Vec::len);
            let _ = writeln!(t, "paired {n} ready servers with their standbys");
        }
        (None, true) => t.push_str("nothing ready to pair\n"),
        (None, false) => t.push_str("run again with --accept to pair the ready ones\n"),
    }
    t
}

/// `roundtrip failback --dry-run`: which servers would go home and which stay on DR (and why), and what
/// keeps the failback from being requested.
pub fn failback_preview(v: &Value) -> String {
    let going = list(&v["going"]);
    let staying = list(&v["staying"]);
    let mut t = if v["ready"] == true {
        format!("ready to fail back: {} servers go home, {} stay on DR\n", going.len(), staying.len())
    } else {
        format!("not ready ({} servers would go home, {} stay on DR):\n", going.len(), staying.len())
    };
    for p in list(&v["problems"]) {
        let _ = writeln!(t, "  {}: {} ({})", cell(&p["field"]), cell(&p["message"]), cell(&p["code"]));
    }
    if !staying.is_empty() {
        t.push_str("staying on DR:\n");
        for l in &staying {
            let _ = writeln!(t, "  {}  {}: {}", cut(&cell(&l["name"])), cell(&l["reason"]), cell(&l["message"]));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The character column where `word` ends on `line`.
    fn ends_at(line: &str, word: &str) -> usize {
        let byte = line.find(word).unwrap_or_else(|| panic!("{word:?} not in {line:?}")) + word.len();
        line[..byte].chars().count()
    }

    #[test]
    fn the_pairs_column_lines_up_under_its_header_whatever_the_names() {
        let groups = json!({ "protection_groups": [
            { "group": { "id": "pg-1", "name": "Billing", "primary": { "account_id": "111111111111", "region": "us-east-1" }, "dr": { "account_id": "222222222222", "region": "us-west-2" } }, "pairs": 12 },
            { "group": { "id": "pg-2", "name": "Ünïcödé façade – ražnjići", "primary": { "account_id": "111111111111", "region": "us-east-1" }, "dr": { "account_id": "222222222222", "region": "us-west-2" } }, "pairs": 7 },
            { "group": { "id": "pg-3", "name": "a group whose name is far longer than any column should be", "primary": { "account_id": "111111111111", "region": "us-east-1" }, "dr": { "account_id": "333333333333", "region": "eu-west-1" } }, "pairs": 1024 },
        ]});
        let text = groups_table(&groups);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let column = ends_at(lines[0], "PAIRS");
        for (line, pairs) in lines[1..].iter().zip(["12", "7", "1024"]) {
            assert_eq!(ends_at(line, &format!(" {pairs} ")) - 1, column, "PAIRS misaligned:\n{text}");
        }
        // Every row's DR column starts where the header's does.
        let start = lines[0].find("DR").unwrap();
        let start = lines[0][..start].chars().count();
        for l in &lines[1..] {
            let at: String = l.chars().skip(start).collect();
            assert!(at.starts_with("222222222222/") || at.starts_with("333333333333/"), "{l:?}\n{text}");
        }
        assert!(text.contains("a group whose name is far longer than a…"), "{text}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn a_cell_never_carries_control_characters_to_the_terminal() {
        let t = table(&[("NAME", Align::Left)], &[vec!["evil\u{1b}[2Jname\r".into()]]);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
    }

    #[test]
    fn matching_names_the_unmatched_servers_and_conflicts_with_their_reasons() {
        let unmatched: Vec<Value> = (0..7)
            .map(|i| json!({ "source_server_id": format!("s-{i:017x}"), "source_name": format!("web-{i}"), "reason": "NO_STANDBY_WITH_NAME", "message": format!("no standby is named \"web-{i}\" in the DR region") }))
            .collect();
        let report = json!({
            "pairs": [
                { "status": "ready", "source_name": "db-1", "findings": [] },
                { "status": "blocked", "source_name": "db-2", "findings": [{ "code": "STANDBY_NOT_STOPPED" }] },
            ],
            "unmatched_sources": unmatched,
            "unmatched_standbys": [{ "instance_id": "i-0000000000000000a", "name": null, "reason": "NO_NAME", "message": "standby has no Name tag; tag it with its source server's name" }],
            "conflicts": [{ "normalized_name": "app-1", "message": "2 standbys are named \"app-1\"; rename or untag all but one so each name is unique" }],
        });
        let t = match_summary(&report, None, false);
        assert!(t.starts_with("2 source servers matched by Name tag: 1 blocked 1 ready\n"), "{t}");
        assert!(t.contains("7 unmatched source servers\n"), "{t}");
        assert!(t.contains("  web-0  NO_STANDBY_WITH_NAME: no standby is named \"web-0\" in the DR region\n"), "{t}");
        assert!(t.contains("web-4") && !t.contains("web-5"), "the first few only: {t}");
        assert!(t.contains("… and 2 more"), "{t}");
        assert!(
            t.contains("1 unmatched standbys\n  (i-0000000000000000a, no name)  NO_NAME: standby has no Name tag"),
            "{t}"
        );
        assert!(t.contains("1 conflicts\n  app-1  2 standbys are named \"app-1\""), "{t}");
        assert!(t.ends_with("run again with --accept to pair the ready ones\n"), "{t}");
        let accepted = json!({ "accepted": [{}] });
        assert!(
            match_summary(&report, Some(&accepted), true).ends_with("paired 1 ready servers with their standbys\n")
        );
    }

    #[test]
    fn a_failback_dry_run_says_who_goes_and_who_stays_and_why() {
        let v = json!({
            "ready": true, "problems": [],
            "going": [{ "source_server_id": "s-1", "name": "db-1" }, { "source_server_id": "s-2", "name": "db-2" }],
            "staying": [{ "source_server_id": "s-3", "name": "app-1", "reason": "NOT_READY", "message": "ORIGINAL_TERMINATED: the original i-1 is terminated" }],
        });
        let t = failback_preview(&v);
        assert_eq!(
            t,
            "ready to fail back: 2 servers go home, 1 stay on DR\nstaying on DR:\n  app-1  NOT_READY: ORIGINAL_TERMINATED: the original i-1 is terminated\n"
        );
        let nothing = json!({ "ready": false, "going": [], "staying": [],
            "problems": [{ "field": "execution_id", "code": "NOTHING_TO_FAIL_BACK", "message": "all 3 verified servers are home" }] });
        assert!(
            failback_preview(&nothing).contains("execution_id: all 3 verified servers are home (NOTHING_TO_FAIL_BACK)")
        );
    }
}
