//! Wall-clock timestamps in the two textual forms the LXD API uses: RFC 3339 with nanoseconds
//! (`2026-11-27T01:55:28.755449019Z`) and Go's default `time.Time` string. No time-zone database is
//! needed because rxd only ever prints UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch; the unit rxd stores timestamps in.
pub fn now_nanos() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
}

fn split(nanos: i64) -> Parts {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Parts { year, month, day, hour: rem / 3600, minute: (rem % 3600) / 60, second: rem % 60, nanos: frac }
}

/// `YYYY-MM-DD<sep>hh:mm:ss[.fraction]` with trailing zeros of the fraction dropped.
fn date_time(nanos: i64, sep: char) -> String {
    let p = split(nanos);
    let mut s = format!("{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}", p.year, p.month, p.day, p.hour, p.minute, p.second);
    if p.nanos != 0 {
        let frac = format!("{:09}", p.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

/// RFC 3339 with as many fractional digits as needed (Go's RFC3339Nano).
pub fn rfc3339(nanos: i64) -> String {
    date_time(nanos, 'T') + "Z"
}

/// Go's `time.Time.String()` for a UTC time: `2022-04-01 10:00:00.1 +0000 UTC`.
pub fn go_string(nanos: i64) -> String {
    date_time(nanos, ' ') + " +0000 UTC"
}

/// The `2006/01/02 15:04 MST` layout LXD's client uses in tables.
pub fn table_string(nanos: i64) -> String {
    let p = split(nanos);
    format!("{:04}/{:02}/{:02} {:02}:{:02} UTC", p.year, p.month, p.day, p.hour, p.minute)
}

/// Parses RFC 3339 (`Z` or a numeric offset, optional fraction) into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
        nanos = padded.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // Out of range (e.g. Go's zero time, year 1) is None: callers treat it as "no time".
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Go's `time.Duration.String()` (e.g. `12.34s`, `1m2.5s`), used in "No heartbeat for …".
pub fn go_duration(d: Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".into();
    }
    if total < 1_000_000_000 {
        let ms = total as f64 / 1e6;
        return format!("{}ms", trim_float(ms));
    }
    let secs = total / 1_000_000_000;
    let frac = total % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut sec = s.to_string();
    if frac != 0 {
        let f = format!("{:09}", frac);
        sec.push('.');
        sec.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, m) => format!("{m}m{sec}s"),
        (h, m) => format!("{h}h{m}m{sec}s"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = 1_795_744_528_755_449_019; // 2026-11-27T01:55:28.755449019Z
        assert_eq!(rfc3339(t), "2026-11-27T01:55:28.755449019Z");
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_string(100_000_000), "1970-01-01 00:00:00.1 +0000 UTC");
        assert_eq!(go_duration(Duration::from_millis(12_340)), "12.34s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(table_string(0), "1970/01/01 00:00 UTC");
    }
}
