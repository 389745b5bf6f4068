//! Unix milliseconds and the ISO-8601 text AWS uses for them (DRS dates are strings such as
//! `2026-11-27T03:00:28Z`, `aws-drs-api.md` §6.5), without a date library so the browser shares it.

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds as ISO-8601 UTC with milliseconds: `2026-11-27T03:00:28.123Z`.
pub fn format_iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// Parses ISO-8601 date-times as AWS writes them: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or an
/// offset such as `+00:00`. `None` for anything else.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3: String = frac[..digits].chars().chain(std::iter::repeat('0')).take(3).collect();
        ms = first3.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hhmm = rest[1..].replace(':', "");
            if hhmm.len() != 4 || !hhmm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (hhmm[..2].parse::<i64>().ok()? * 3600 + hhmm[2..].parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) - offset_secs) * 1000 + ms)
}

/// A duration for people: `1 h 02 min`, `4 min 05 s` or `12 s`.
pub fn format_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, min, sec) => format!("{min} min {sec:02} s"),
        (h, min, _) => format!("{h} h {min:02} min"),
    }
}

/// Seconds as an ISO-8601 duration such as DRS's `lagDuration`: `PT5S`, `PT1H2M3S`, `P2DT1S`.
pub fn format_duration_seconds(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    out.push('T');
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// Parses an ISO-8601 duration of days, hours, minutes and (fractional) seconds into whole seconds.
pub fn parse_duration_seconds(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = 0f64;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, k) = units.iter().find(|(u, _)| *u == c)?;
                total += num.parse::<f64>().ok()? * k;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    take(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    // Whole seconds: a lag of 1.5 s reads as 1 s, never negative.
    Some(total.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_time_round_trips_through_iso_8601() {
        for ms in [0, 1_764_212_428_123, 951_782_400_000, -86_400_000, 4_102_444_799_999] {
            assert_eq!(parse_iso8601(&format_iso8601(ms)), Some(ms), "{}", format_iso8601(ms));
        }
        assert_eq!(format_iso8601(1_764_212_428_123), "2025-11-27T03:00:28.123Z");
    }

    #[test]
    fn aws_date_forms_parse_and_nonsense_does_not() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_iso8601("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01.123456Z"), Some(1123));
        for bad in ["", "yesterday", "1970-13-01T00:00:00Z", "1970-01-01T00:00:00X", "1970-01-01T00:00:0aZ"] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_read_as_drs_writes_them() {
        for s in [0, 5, 59, 60, 3_723, 90_061] {
            assert_eq!(parse_duration_seconds(&format_duration_seconds(s)), Some(s));
        }
        assert_eq!(format_duration_seconds(5), "PT5S");
        assert_eq!(parse_duration_seconds("PT1.9S"), Some(1));
        assert_eq!(parse_duration_seconds("P1D"), Some(86_400));
        assert_eq!(parse_duration_seconds("5 seconds"), None);
        assert_eq!(parse_duration_seconds("PT5X"), None);
    }
}
