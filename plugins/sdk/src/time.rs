//! Dates and times without a clock or a time-zone database, for adapters
//! (which get neither): the proleptic Gregorian calendar, Danish local time
//! (Europe/Copenhagen, the EU summer-time rule), ISO 8601 dates and
//! date-times, and the canonical model's dates (`bro.v1.Date`) checked for
//! writing.
//!
//! Summer time (+02:00) runs from the last Sunday of March 01:00 UTC to the
//! last Sunday of October 01:00 UTC; the rest of the year is +01:00. Denmark
//! has followed that rule since 1996; earlier instants are converted by the
//! same rule.

use prost_types::Timestamp;

use crate::{AdapterError, invalid, proto};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// A calendar date: year, month 1..=12, day 1..=31.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ymd {
    /// The year.
    pub year: i32,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month.
    pub day: u32,
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Whether a date exists and lies in the canonical model's years 1900..=9999.
pub fn is_canonical(d: Ymd) -> bool {
    (1900..=9999).contains(&d.year)
        && (1..=12).contains(&d.month)
        && (1..=days_in_month(d.year, d.month)).contains(&d.day)
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub fn days_from_civil(d: Ymd) -> i64 {
    let y = i64::from(d.year) - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(d.month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> Ymd {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Ymd { year, month, day }
}

/// The day number of the last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> i64 {
    let last = days_from_civil(Ymd { year, month, day: days_in_month(year, month) });
    // 1970-01-01 was a Thursday: (days + 4) mod 7 is 0 on Sundays.
    last - (last + 4).rem_euclid(7)
}

/// The Copenhagen UTC offset, in seconds, at the UTC instant `utc`.
pub fn copenhagen_offset(utc: i64) -> i64 {
    let year = civil_from_days(utc.div_euclid(DAY)).year;
    let start = last_sunday(year, 3) * DAY + HOUR;
    let end = last_sunday(year, 10) * DAY + HOUR;
    if (start..end).contains(&utc) { 2 * HOUR } else { HOUR }
}

/// The UTC instant of a Copenhagen wall-clock time (`local` seconds since
/// 1970-01-01 00:00 local). An hour that occurs twice is read as summer time,
/// an hour that does not exist as winter time.
pub fn copenhagen_to_utc(local: i64) -> i64 {
    let summer = local - 2 * HOUR;
    if copenhagen_offset(summer) == 2 * HOUR { summer } else { local - HOUR }
}

/// The Copenhagen calendar date of a timestamp.
pub fn copenhagen_date(t: &Timestamp) -> Ymd {
    civil_from_days((t.seconds + copenhagen_offset(t.seconds)).div_euclid(DAY))
}

/// Midnight in Copenhagen at the start of `d`.
pub fn copenhagen_midnight(d: Ymd) -> Timestamp {
    Timestamp { seconds: copenhagen_to_utc(days_from_civil(d) * DAY), nanos: 0 }
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

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn two_digits(s: &str) -> Option<u32> {
    if s.len() == 2 { digits(s) } else { None }
}

/// Whether a time without an offset is accepted (as Copenhagen time).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The text must end in `Z` or `±hh:mm`.
    Required,
    /// A missing offset means Copenhagen time.
    Optional,
}

/// Parses an ISO 8601 date-time `YYYY-MM-DDThh:mm:ss[.fffffffff][Z|±hh:mm]`.
pub fn parse_datetime(text: &str, offset: Offset) -> Option<Timestamp> {
    let (date, rest) = text.split_once('T')?;
    let ymd = parse_date(date)?;
    // The offset starts at the first Z, + or - after the time of day.
    let split = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(split);
    let (hms, fraction) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let (hour, minute, second) = (two_digits(parts.next()?)?, two_digits(parts.next()?)?, two_digits(parts.next()?)?);
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let nanos = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<i32>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let local = days_from_civil(ymd) * DAY + i64::from(hour) * HOUR + i64::from(minute) * 60 + i64::from(second);
    let seconds = match zone {
        "" if offset == Offset::Optional => copenhagen_to_utc(local),
        "" => return None,
        "Z" => local,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z.get(1..)?.split_once(':')?;
            let (oh, om) = (two_digits(h)?, two_digits(m)?);
            if oh > 14 || om > 59 {
                return None;
            }
            local - sign * (i64::from(oh) * HOUR + i64::from(om) * 60)
        }
    };
    Some(Timestamp { seconds, nanos })
}

/// Whether a timestamp lies in the years 1 to 9999 with valid nanos.
pub fn in_range(t: &Timestamp) -> bool {
    (-62_135_596_800..=253_402_300_799).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos)
}

/// Formats a timestamp in Copenhagen time with its offset, e.g.
/// `2026-05-01T12:00:00+02:00`; fractions of a second only when present.
pub fn format_datetime(t: &Timestamp) -> String {
    let offset = copenhagen_offset(t.seconds);
    let local = t.seconds + offset;
    let date = civil_from_days(local.div_euclid(DAY));
    let in_day = local.rem_euclid(DAY);
    let (hour, minute, second) = (in_day / HOUR, (in_day % HOUR) / 60, in_day % 60);
    let mut out = format!("{}T{hour:02}:{minute:02}:{second:02}", format_date(date));
    if t.nanos > 0 {
        let fraction = format!("{:09}", t.nanos);
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push_str(if offset == 2 * HOUR { "+02:00" } else { "+01:00" });
    out
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Ymd) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// A canonical date (`bro.v1.Date`) as a [`Ymd`], if it is one the
/// canonical model allows ([`is_canonical`]).
pub fn canonical_date(d: &proto::Date) -> Option<Ymd> {
    let ymd = Ymd { year: d.year, month: d.month.max(0) as u32, day: d.day.max(0) as u32 };
    is_canonical(ymd).then_some(ymd)
}

/// A canonical date as `YYYY-MM-DD` for a written message, or a refusal at
/// `field`: absent though `required`, or not a date in the years 1900 to
/// 9999. Absent and not required is empty.
pub fn date_text(d: Option<&proto::Date>, field: &str, required: bool) -> Result<String, AdapterError> {
    match d {
        None if required => Err(invalid(field, "is required")),
        None => Ok(String::new()),
        Some(d) => {
            canonical_date(d).map(format_date).ok_or_else(|| invalid(field, "is not a date in the years 1900 to 9999"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_sundays_of_2024_and_2025() {
        assert_eq!(civil_from_days(last_sunday(2024, 3)), ymd(2024, 3, 31));
        assert_eq!(civil_from_days(last_sunday(2024, 10)), ymd(2024, 10, 27));
        assert_eq!(civil_from_days(last_sunday(2025, 3)), ymd(2025, 3, 30));
        assert_eq!(civil_from_days(last_sunday(2025, 10)), ymd(2025, 10, 26));
    }

    fn ymd(year: i32, month: u32, day: u32) -> Ymd {
        Ymd { year, month, day }
    }

    #[test]
    fn civil_days_round_trip() {
        for z in [-800_000, -1, 0, 1, 10_957, 19_844, 2_932_896] {
            assert_eq!(days_from_civil(civil_from_days(z)), z);
        }
        assert_eq!(civil_from_days(19_844), ymd(2024, 5, 1));
    }

    #[test]
    fn midnight_has_the_offset_of_its_season() {
        assert_eq!(format_datetime(&copenhagen_midnight(ymd(2026, 1, 15))), "2026-01-15T00:00:00+01:00");
        assert_eq!(format_datetime(&copenhagen_midnight(ymd(2026, 6, 1))), "2026-06-01T00:00:00+02:00");
        // The day of the March switch starts in winter time.
        assert_eq!(format_datetime(&copenhagen_midnight(ymd(2026, 3, 29))), "2026-03-29T00:00:00+01:00");
        assert_eq!(copenhagen_date(&copenhagen_midnight(ymd(2026, 10, 25))), ymd(2026, 10, 25));
    }

    #[test]
    fn datetimes_parse_with_and_without_offsets() {
        let t = parse_datetime("2026-05-01T12:00:00+02:00", Offset::Required);
        assert_eq!(t, parse_datetime("2026-05-01T10:00:00Z", Offset::Required));
        assert_eq!(t, parse_datetime("2026-05-01T12:00:00", Offset::Optional));
        assert_eq!(parse_datetime("2026-05-01T12:00:00", Offset::Required), None);
        let late = parse_datetime("2026-05-01T22:30:00Z", Offset::Required).unwrap_or_default();
        assert_eq!(copenhagen_date(&late), ymd(2026, 5, 2));
        let f = parse_datetime("2026-01-01T10:00:00.25-00:30", Offset::Required).unwrap_or_default();
        assert_eq!(format_datetime(&f), "2026-01-01T11:30:00.25+01:00");
        for bad in ["", "2026-05-01", "2026-02-30T00:00:00Z", "2026-05-01T24:00:00Z", "2026-05-01T12:00Z", "x"] {
            assert_eq!(parse_datetime(bad, Offset::Optional), None, "{bad}");
        }
    }

    #[test]
    fn canonical_dates_are_checked() {
        assert!(is_canonical(ymd(2024, 2, 29)));
        assert!(!is_canonical(ymd(2026, 2, 29)));
        assert!(!is_canonical(ymd(1899, 12, 31)));
        assert_eq!(parse_date("2026-13-01"), None);
    }

    #[test]
    fn canonical_dates_are_written_or_refused() {
        let date = |year, month, day| proto::Date { year, month, day };
        assert_eq!(canonical_date(&date(2026, 3, 30)), Some(ymd(2026, 3, 30)));
        assert_eq!(canonical_date(&date(2026, -1, 30)), None);
        assert_eq!(date_text(Some(&date(2026, 3, 30)), "d", true).ok().as_deref(), Some("2026-03-30"));
        assert_eq!(date_text(None, "d", false).ok().as_deref(), Some(""));
        let refused = |r: Result<String, AdapterError>| match r {
            Err(AdapterError::Invalid(v)) => v.first().map(|f| f.description.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        assert_eq!(refused(date_text(None, "d", true)), "is required");
        assert_eq!(
            refused(date_text(Some(&date(1899, 12, 31)), "d", false)),
            "is not a date in the years 1900 to 9999"
        );
    }
}
