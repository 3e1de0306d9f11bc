//! UTC timestamps as GitHub and the audit log write them (`2026-11-24T08:00:00Z`), and
//! durations as the CLI takes them (`7d`, `12h`, `30m`, `45s`). No time zones, no crate.

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Unix seconds of a UTC ISO 8601 timestamp (`2026-11-23T22:00:00Z`, fractions ignored).
pub fn unix_of(timestamp: &str) -> Option<i64> {
    let t = timestamp.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut c = time.split(':').map(|p| p.split('.').next().unwrap_or(p).parse::<i64>());
    let (h, min, sec) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + min * 60 + sec)
}

/// The UTC timestamp of Unix seconds `unix`: `2026-11-24T08:00:00Z`.
pub fn timestamp(unix: i64) -> String {
    let (days, rem) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // The civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Seconds of a duration written `7d`, `12h`, `30m` or `45s`.
pub fn duration_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0)?;
    let scale = match unit {
        'd' => 86_400,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_unix_seconds_and_back() {
        assert_eq!(unix_of("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_of("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(unix_of("2024-02-29T12:34:56.789Z"), Some(1_709_210_096));
        assert_eq!(unix_of("yesterday"), None);
        assert_eq!(unix_of("2024-13-01T00:00:00Z"), None);
        for unix in [0, 1_709_210_096, 1_800_000_000, 951_782_400, 4_107_542_400] {
            assert_eq!(unix_of(&timestamp(unix)), Some(unix), "{}", timestamp(unix));
        }
        assert_eq!(timestamp(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(duration_secs("7d"), Some(604_800));
        assert_eq!(duration_secs("12h"), Some(43_200));
        assert_eq!(duration_secs("30m"), Some(1800));
        assert_eq!(duration_secs("45s"), Some(45));
        for bad in ["", "d", "7", "-1d", "7w", "1.5h"] {
            assert_eq!(duration_secs(bad), None, "{bad}");
        }
    }
}
