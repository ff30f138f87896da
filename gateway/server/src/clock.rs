//! The server's clock: the only place "now" and "today" come from, and the
//! only place in the server that reads a clock at all (a tidy test checks
//! it): record times, deadlines of tokens and links, the rate limiter and
//! generated ids take `now` from a [`Clock`]; durations for metrics come
//! from a [`Stopwatch`].

use bro_domain::{Date, Timestamp};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// A source of time. Tests pass a fixed one; production uses [`SystemClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Today's date in Denmark (Europe/Copenhagen), the date legal deadlines use.
    fn today(&self) -> Date {
        danish_date(self.now())
    }

    /// A fresh id that sorts by the time it was made (a UUID v7 of now).
    fn new_id(&self) -> String {
        bro_store::time_ordered_id(self.now())
    }
}

/// Measures how long something takes, on the monotonic clock: for metrics
/// and logs, never for anything recorded.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(std::time::SystemTime::now())
    }
}

/// A clock stopped at one instant, for tests and replays.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The calendar date in Denmark at `t`: UTC+1, or UTC+2 in summer time
/// (EU rule: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
/// last Sunday of October).
pub fn danish_date(t: Timestamp) -> Date {
    danish_local_time(t).date()
}

/// The wall-clock time in Denmark at `t` (Europe/Copenhagen, by the EU rule).
pub fn danish_local_time(t: Timestamp) -> chrono::NaiveDateTime {
    let year = t.year();
    let summer_start = last_sunday_0100_utc(year, 3);
    let summer_end = last_sunday_0100_utc(year, 10);
    let offset = if t >= summer_start && t < summer_end { 2 } else { 1 };
    (t + Duration::hours(offset)).naive_utc()
}

fn last_sunday_0100_utc(year: i32, month: u32) -> Timestamp {
    let mut day = NaiveDate::from_ymd_opt(year, month + 1, 1).expect("valid month") - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0).expect("valid time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn danish_midnight_is_not_utc_midnight() {
        // 23:30 UTC in winter is 00:30 the next day in Copenhagen.
        assert_eq!(danish_date(at("2026-01-14T23:30:00Z")).to_string(), "2026-01-15");
        // 22:30 UTC in summer is 00:30 the next day too.
        assert_eq!(danish_date(at("2026-07-14T22:30:00Z")).to_string(), "2026-07-15");
        assert_eq!(danish_date(at("2026-07-14T21:30:00Z")).to_string(), "2026-07-14");
        // Summer time 2026 starts 29 March 01:00 UTC.
        assert_eq!(danish_date(at("2026-03-28T22:59:00Z")).to_string(), "2026-03-28");
        assert_eq!(danish_date(at("2026-03-29T22:30:00Z")).to_string(), "2026-03-30");
    }
}
