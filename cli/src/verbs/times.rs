//! Points in time as docker's `--since` and `--until` take them, and
//! times as docker prints them.

use std::fmt;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};

/// A point in time: Unix seconds and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds past `secs` (below one second).
    pub nanos: u32,
}

impl fmt::Display for Timestamp {
    /// `SECONDS.NANOSECONDS`, the form the engine takes for events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// Why a time was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTime(String);

impl fmt::Display for BadTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Unix seconds `secs` as Go's `time.Time.String()` prints them in the
/// local zone: `2006-01-02 15:04:05 -0700 MST` (the zone's name is `UTC`
/// at offset 0, else the offset again: chrono has no zone names).
pub fn go_time(secs: i64) -> String {
    let Some(time) = Local.timestamp_opt(secs, 0).single() else {
        return String::new();
    };
    let offset = time.format("%z").to_string();
    let zone = match time.offset().fix().local_minus_utc() {
        0 => "UTC".to_owned(),
        _ => offset.clone(),
    };
    format!("{} {offset} {zone}", time.format("%Y-%m-%d %H:%M:%S"))
}

/// An engine's RFC 3339 time as Go's `time.Time.String()` prints it, with
/// its fraction of a second (trailing zeros dropped) when it has one.
pub fn go_time_of(rfc3339: &str) -> String {
    let Ok(time) = DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let whole = go_time(time.timestamp());
    let nanos = time.timestamp_subsec_nanos();
    if nanos == 0 {
        return whole;
    }
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    match whole
        .split_once(' ')
        .and_then(|(d, rest)| rest.split_once(' ').map(|(t, z)| (d, t, z)))
    {
        Some((date, clock, zone)) => format!("{date} {clock}.{fraction} {zone}"),
        None => whole,
    }
}

/// A `--since`/`--until` value, read as docker reads it: a duration back
/// from now (`10m`, `1h30m`, `42s`, Go's duration syntax), an RFC 3339
/// date and time (or a prefix of one: `2026-11-23`, `2026-11-23T10:00`;
/// local time when it has no zone), or Unix seconds (`1700000000`,
/// `1700000000.5`).
pub fn parse_time(value: &str) -> Result<Timestamp, BadTime> {
    let now = Local::now();
    let now = Timestamp {
        secs: now.timestamp(),
        nanos: now.timestamp_subsec_nanos(),
    };
    parse_time_at(value, now, Local::now().offset().fix())
}

/// [`parse_time`] with the current time and the local zone given.
pub fn parse_time_at(
    value: &str,
    now: Timestamp,
    local: FixedOffset,
) -> Result<Timestamp, BadTime> {
    let value = value.trim();
    if value.is_empty() {
        return Err(BadTime("an empty time".into()));
    }
    // "0" is a Unix time, not a duration.
    if value != "0" {
        if let Some(nanos) = parse_duration(value) {
            let now = i128::from(now.secs) * NANOS + i128::from(now.nanos);
            return from_nanos(now - nanos)
                .ok_or_else(|| BadTime(format!("{value:?} reaches too far back")));
        }
    }
    if value.contains(['-', 'T', ':']) {
        return parse_date(value, local).ok_or_else(|| {
            BadTime(format!(
                "{value:?} is not a date and time like 2026-11-23T10:00:00Z"
            ))
        });
    }
    parse_unix(value).ok_or_else(|| {
        BadTime(format!(
            "{value:?} is not a time: give a duration (10m, 1h30m), an RFC 3339 time or Unix seconds"
        ))
    })
}

/// A Unix time in nanoseconds, as docker prints it: RFC 3339 in the local
/// zone with nine fractional digits (`2026-11-23T10:00:00.000000000Z`).
pub fn format_nanos(nanos: i64) -> String {
    let time = Local.timestamp_nanos(nanos);
    fixed_nanos(&time)
}

fn fixed_nanos<Tz: TimeZone>(time: &DateTime<Tz>) -> String
where
    Tz::Offset: fmt::Display,
{
    if time.offset().fix().local_minus_utc() == 0 {
        time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
    } else {
        time.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string()
    }
}

const NANOS: i128 = 1_000_000_000;

fn from_nanos(nanos: i128) -> Option<Timestamp> {
    let secs = i64::try_from(nanos.div_euclid(NANOS)).ok()?;
    let nanos = u32::try_from(nanos.rem_euclid(NANOS)).ok()?;
    Some(Timestamp { secs, nanos })
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal
/// numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`).
/// Nanoseconds; `None` when it is not a duration. The one parser, shared
/// with the server's lifetimes.
pub fn parse_duration(value: &str) -> Option<i128> {
    dockwire_docker::lifetime::parse_go_duration(value)
}

/// `YYYY-MM-DD[THH[:MM[:SS[.frac]]]][Z|±HH:MM]`; local time without a zone.
fn parse_date(value: &str, local: FixedOffset) -> Option<Timestamp> {
    let (date, rest) = value.split_at(value.len().min(10));
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let (clock, zone) = split_zone(rest)?;
    let time = match clock.strip_prefix('T') {
        None if clock.is_empty() => NaiveTime::MIN,
        None => return None,
        Some(clock) => parse_clock(clock)?,
    };
    let naive = NaiveDateTime::new(date, time);
    let offset = zone.unwrap_or(local);
    let time = offset.from_local_datetime(&naive).single()?;
    Some(Timestamp {
        secs: time.timestamp(),
        nanos: time.timestamp_subsec_nanos(),
    })
}

/// Splits a trailing `Z` or `±HH:MM` off.
fn split_zone(rest: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, FixedOffset::east_opt(0)));
    }
    let Some(sign_at) = rest.rfind(['+', '-']) else {
        return Some((rest, None));
    };
    let (clock, zone) = rest.split_at(sign_at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = zone[1..].split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
    Some((clock, Some(offset)))
}

/// `HH[:MM[:SS[.frac]]]`.
fn parse_clock(clock: &str) -> Option<NaiveTime> {
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let mut field = |max: u32| -> Option<Option<u32>> {
        match parts.next() {
            None => Some(None),
            Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u32 = p.parse().ok()?;
                (n <= max).then_some(Some(n))
            }
            Some(_) => None,
        }
    };
    let hour = field(23)??;
    let minute = field(59)?;
    let second = field(59)?;
    if parts.next().is_some() {
        return None;
    }
    let nanos = match frac {
        None => 0,
        // A fraction only after the seconds.
        Some(_) if second.is_none() => return None,
        Some(frac) => fraction_nanos(frac)?,
    };
    NaiveTime::from_hms_nano_opt(hour, minute.unwrap_or(0), second.unwrap_or(0), nanos)
}

/// `.5` → 500000000: up to nine digits of a second.
fn fraction_nanos(frac: &str) -> Option<u32> {
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = frac.parse().ok()?;
    n.checked_mul(10u32.pow(u32::try_from(9 - frac.len()).ok()?))
}

/// `SECONDS[.FRACTION]`.
fn parse_unix(value: &str) -> Option<Timestamp> {
    let (secs, frac) = match value.split_once('.') {
        Some((secs, frac)) => (secs, Some(frac)),
        None => (value, None),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos = match frac {
        None => 0,
        Some(frac) => fraction_nanos(frac)?,
    };
    Some(Timestamp { secs, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp {
        secs: 1_800_000_000,
        nanos: 250_000_000,
    };

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())
    }

    fn at(value: &str) -> Result<Timestamp, BadTime> {
        parse_time_at(value, NOW, utc())
    }

    fn secs(secs: i64) -> Result<Timestamp, BadTime> {
        Ok(Timestamp { secs, nanos: 0 })
    }

    #[test]
    fn durations_count_back_from_now() {
        let back = |s: i64| {
            Ok(Timestamp {
                secs: NOW.secs - s,
                nanos: NOW.nanos,
            })
        };
        assert_eq!(at("10m"), back(600));
        assert_eq!(at("1h30m"), back(5400));
        assert_eq!(at("42s"), back(42));
        assert_eq!(at("1.5h"), back(5400));
        assert_eq!(
            at("250ms"),
            Ok(Timestamp {
                secs: NOW.secs,
                nanos: 0
            })
        );
        assert_eq!(at("-1m"), back(-60));
    }

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("2h45m"), Some((2 * 3600 + 45 * 60) * NANOS));
        assert_eq!(parse_duration("1µs"), Some(1000));
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10d"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("1h-1m"), None);
    }

    #[test]
    fn rfc3339_times_and_their_prefixes_are_read() {
        assert_eq!(at("2027-01-15T08:00:00Z"), secs(1_800_000_000));
        assert_eq!(at("2027-01-15T10:00:00+02:00"), secs(1_800_000_000));
        assert_eq!(at("2027-01-15T07:00:00-01:00"), secs(1_800_000_000));
        assert_eq!(
            at("2027-01-15T08:00:00.123456789Z"),
            Ok(Timestamp {
                secs: 1_800_000_000,
                nanos: 123_456_789
            })
        );
        assert_eq!(
            at("2027-01-15T08:00:00.5"),
            Ok(Timestamp {
                secs: 1_800_000_000,
                nanos: 500_000_000
            })
        );
        assert_eq!(at("2027-01-15T08:00"), secs(1_800_000_000));
        assert_eq!(at("2027-01-15T08"), secs(1_800_000_000));
        assert_eq!(at("2027-01-15T08Z"), secs(1_800_000_000));
        assert_eq!(at("2027-01-15"), secs(1_799_971_200));
    }

    #[test]
    fn times_without_a_zone_are_local() {
        let paris = FixedOffset::east_opt(3600).unwrap_or_else(|| unreachable!());
        assert_eq!(
            parse_time_at("2027-01-15T09:00:00", NOW, paris),
            secs(1_800_000_000)
        );
        assert_eq!(
            parse_time_at("2027-01-15T09:00:00Z", NOW, paris),
            secs(1_800_003_600)
        );
    }

    #[test]
    fn unix_seconds_are_taken_as_they_are() {
        assert_eq!(at("1700000000"), secs(1_700_000_000));
        assert_eq!(at("0"), secs(0));
        assert_eq!(
            at("1700000000.5"),
            Ok(Timestamp {
                secs: 1_700_000_000,
                nanos: 500_000_000
            })
        );
        assert_eq!(Timestamp { secs: 5, nanos: 7 }.to_string(), "5.000000007");
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "yesterday",
            "10x",
            "2027-13-01",
            "2027-01-15T25:00",
            "2027-01-15 08:00",
            "12:00",
            "1.2.3",
            "-5",
        ] {
            assert!(at(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn event_times_print_with_nine_digits_and_z_in_utc() {
        let t = utc().timestamp_nanos(1_800_000_000_000_000_042);
        assert_eq!(fixed_nanos(&t), "2027-01-15T08:00:00.000000042Z");
        let plus = FixedOffset::east_opt(5400).unwrap_or_else(|| unreachable!());
        let t = plus.timestamp_nanos(1_800_000_000_000_000_000);
        assert_eq!(fixed_nanos(&t), "2027-01-15T09:30:00.000000000+01:30");
    }
}
