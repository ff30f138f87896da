//! Dates and times without a clock or a time-zone database: the proleptic
//! Gregorian calendar, Danish local time (Europe/Copenhagen, the EU summer-time
//! rule) and the FHIR `dateTime` text form.
//!
//! Summer time (+02:00) runs from the last Sunday of March 01:00 UTC to the
//! last Sunday of October 01:00 UTC; the rest of the year is +01:00. Denmark
//! has followed that rule since 1996, which covers every message this adapter
//! meets; earlier instants are converted by the same rule.

use prost_types::Timestamp;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

pub use bro_adapter_sdk::time::{
    Ymd, civil_from_days, copenhagen_date, copenhagen_offset, copenhagen_to_utc, days_from_civil, days_in_month,
};

/// A timestamp from a Copenhagen local date and time of day.
pub fn from_copenhagen(d: Ymd, hour: u32, minute: u32, second: u32) -> Timestamp {
    let local = days_from_civil(d) * DAY + i64::from(hour) * HOUR + i64::from(minute) * 60 + i64::from(second);
    Timestamp { seconds: copenhagen_to_utc(local), nanos: 0 }
}

/// Parses `YYYY-MM-DD`, checking that the date exists.
pub fn parse_date(text: &str) -> Option<Ymd> {
    let b = text.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let year = digits(text.get(0..4)?)? as i32;
    let month = digits(text.get(5..7)?)?;
    let day = digits(text.get(8..10)?)?;
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day) && year >= 1).then_some(Ymd {
        year,
        month,
        day,
    })
}

/// Parses `hh:mm` or `hh:mm:ss` into hours, minutes and seconds.
pub fn parse_time(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    let second = match parts.next() {
        Some(s) => two_digits(s)?,
        None => 0,
    };
    (parts.next().is_none() && hour < 24 && minute < 60 && second < 60).then_some((hour, minute, second))
}

fn two_digits(s: &str) -> Option<u32> {
    if s.len() == 2 { digits(s) } else { None }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a FHIR `dateTime` or `instant`: `YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]`,
/// or a bare date (`YYYY-MM-DD`, read as midnight in Copenhagen). A time without
/// an offset is read as Copenhagen time.
pub fn parse_fhir_datetime(text: &str) -> Option<Timestamp> {
    let (date, rest) = match text.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (text, None),
    };
    let ymd = parse_date(date)?;
    let Some(rest) = rest else { return Some(from_copenhagen(ymd, 0, 0, 0)) };
    // The offset starts at the first Z, + or - after the time of day.
    let split = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(split);
    let (hms, fraction) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let (hour, minute, second) = parse_time(hms)?;
    if hms.len() != 8 {
        return None;
    }
    let nanos = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            padded.parse::<i32>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let local = days_from_civil(ymd) * DAY + i64::from(hour) * HOUR + i64::from(minute) * 60 + i64::from(second);
    let seconds = match zone {
        "" => copenhagen_to_utc(local),
        "Z" => local,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om, _) = parse_time(z.get(1..)?)?;
            if z.len() != 6 {
                return None;
            }
            local - sign * (i64::from(oh) * HOUR + i64::from(om) * 60)
        }
    };
    Some(Timestamp { seconds, nanos })
}

/// Formats a timestamp as a FHIR `dateTime` in Copenhagen time with its offset,
/// e.g. `2024-05-01T12:00:00+02:00`; fractions of a second only when present.
pub fn format_fhir_datetime(t: &Timestamp) -> String {
    let offset = copenhagen_offset(t.seconds);
    let (date, hour, minute, second) = split_local(t.seconds + offset);
    let mut out = format!("{:04}-{:02}-{:02}T{hour:02}:{minute:02}:{second:02}", date.year, date.month, date.day);
    if t.nanos > 0 {
        let fraction = format!("{:09}", t.nanos);
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push_str(if offset == 2 * HOUR { "+02:00" } else { "+01:00" });
    out
}

/// The Copenhagen local date and `hh:mm` of a timestamp (OIOXML's `Date` and `Time`).
pub fn copenhagen_date_and_minute(t: &Timestamp) -> (Ymd, u32, u32) {
    let (date, hour, minute, _) = split_local(t.seconds + copenhagen_offset(t.seconds));
    (date, hour, minute)
}

fn split_local(local: i64) -> (Ymd, u32, u32, u32) {
    let date = civil_from_days(local.div_euclid(DAY));
    let in_day = local.rem_euclid(DAY);
    (date, (in_day / HOUR) as u32, ((in_day % HOUR) / 60) as u32, (in_day % 60) as u32)
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Ymd) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(year: i32, month: u32, day: u32) -> Ymd {
        Ymd { year, month, day }
    }

    #[test]
    fn civil_days_round_trip() {
        for z in [-800_000, -1, 0, 1, 10_957, 19_844, 2_932_896] {
            assert_eq!(days_from_civil(civil_from_days(z)), z);
        }
        assert_eq!(days_from_civil(ymd(1970, 1, 1)), 0);
        assert_eq!(civil_from_days(19_844), ymd(2024, 5, 1));
    }

    #[test]
    fn offsets_switch_at_one_utc() {
        // 2024-03-31 00:59:59 UTC is winter time, 01:00:00 UTC summer time.
        let switch = days_from_civil(ymd(2024, 3, 31)) * DAY + HOUR;
        assert_eq!(copenhagen_offset(switch - 1), HOUR);
        assert_eq!(copenhagen_offset(switch), 2 * HOUR);
        let back = days_from_civil(ymd(2024, 10, 27)) * DAY + HOUR;
        assert_eq!(copenhagen_offset(back - 1), 2 * HOUR);
        assert_eq!(copenhagen_offset(back), HOUR);
    }

    #[test]
    fn local_times_on_both_sides_of_the_switches() {
        // 01:59 local on 31 March 2024 is winter time; 03:00 is summer time.
        let before = from_copenhagen(ymd(2024, 3, 31), 1, 59, 0);
        assert_eq!(format_fhir_datetime(&before), "2024-03-31T01:59:00+01:00");
        let after = from_copenhagen(ymd(2024, 3, 31), 3, 0, 0);
        assert_eq!(format_fhir_datetime(&after), "2024-03-31T03:00:00+02:00");
        assert_eq!(after.seconds - before.seconds, 60);
        // 02:30 on 27 October happens twice: read as summer time, then one hour on.
        let twice = from_copenhagen(ymd(2024, 10, 27), 2, 30, 0);
        assert_eq!(format_fhir_datetime(&twice), "2024-10-27T02:30:00+02:00");
        let later = Timestamp { seconds: twice.seconds + HOUR, nanos: 0 };
        assert_eq!(format_fhir_datetime(&later), "2024-10-27T02:30:00+01:00");
        // Winter and summer examples of the samples.
        assert_eq!(from_copenhagen(ymd(1998, 12, 13), 12, 10, 0).seconds, 913_547_400);
        assert_eq!(format_fhir_datetime(&from_copenhagen(ymd(2024, 5, 1), 12, 0, 0)), "2024-05-01T12:00:00+02:00");
    }

    #[test]
    fn the_danish_date_of_an_instant_late_in_the_evening() {
        let t = parse_fhir_datetime("2024-05-01T22:30:00Z").unwrap_or_default();
        assert_eq!(copenhagen_date(&t), ymd(2024, 5, 2));
        let t = parse_fhir_datetime("2024-01-01T22:30:00Z").unwrap_or_default();
        assert_eq!(copenhagen_date(&t), ymd(2024, 1, 1));
    }

    #[test]
    fn fhir_datetimes_parse_and_format() {
        let t = parse_fhir_datetime("2024-05-01T12:00:00+02:00");
        assert_eq!(t, Some(Timestamp { seconds: 1_714_557_600, nanos: 0 }));
        assert_eq!(parse_fhir_datetime("2024-05-01T10:00:00Z"), t);
        assert_eq!(parse_fhir_datetime("2024-05-01T12:00:00"), t);
        let f = parse_fhir_datetime("2024-05-01T10:00:00.25-00:30");
        assert_eq!(f, Some(Timestamp { seconds: 1_714_557_600 + 1800, nanos: 250_000_000 }));
        assert_eq!(format_fhir_datetime(&f.unwrap_or_default()), "2024-05-01T12:30:00.25+02:00");
        assert_eq!(parse_fhir_datetime("2024-01-15"), Some(from_copenhagen(ymd(2024, 1, 15), 0, 0, 0)));
        for bad in ["", "2024", "2024-02-30", "2024-05-01T25:00:00Z", "2024-05-01T12:00Z", "2024-05-01T12:00:00+2", "x"]
        {
            assert_eq!(parse_fhir_datetime(bad), None, "{bad}");
        }
    }
}
