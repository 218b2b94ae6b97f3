//! Time as the domain sees it: Unix milliseconds, read from the system clock
//! only at the edges (HTTP handlers, the control channel, the gateway loop).
//! Domain functions take `now` as a parameter so tests can use fixed times.

/// Milliseconds since the Unix epoch.
pub type UnixMs = i64;

/// Reads the system clock. Call this at the edge and pass the value in.
#[allow(clippy::disallowed_methods)] // the one reader of the wall clock
pub fn now() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// The longest duration anything takes (a grant "for" a time, a timeout): ten years.
pub const MAX_DURATION: i64 = 3650 * DAY;

/// Parses a human duration such as `90s`, `30m`, `1h`, `1d`, `2w` into
/// milliseconds; `None` unless it is between 1 s and [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let unit_ms = match unit {
        "s" => SECOND,
        "m" | "min" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return None,
    };
    if n <= 0 {
        return None;
    }
    n.checked_mul(unit_ms).filter(|ms| *ms <= MAX_DURATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("90s"), Some(90 * SECOND));
        assert_eq!(parse_duration("1h"), Some(HOUR));
        assert_eq!(parse_duration("2d"), Some(2 * DAY));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration("3650d"), Some(MAX_DURATION));
        assert_eq!(parse_duration("3651d"), None, "more than ten years");
        assert_eq!(parse_duration("9223372036854775s"), None, "no overflow");
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
