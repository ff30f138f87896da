//! Legal date arithmetic: calendar months clamped to the month's end, weeks
//! of seven days, and days.

use bro_domain::Date;
use chrono::{Days, Months};

/// `date` plus `months` calendar months, clamped to the last day of the
/// target month (31 January + 1 month = 28 or 29 February). Dates beyond
/// chrono's range saturate at [`Date::MAX`] rather than fail: a deadline that
/// far away is never reached.
pub fn add_months(date: Date, months: u32) -> Date {
    date.checked_add_months(Months::new(months)).unwrap_or(Date::MAX)
}

/// `date` plus `weeks` weeks of seven days, saturating like [`add_months`].
pub fn add_weeks(date: Date, weeks: u32) -> Date {
    add_days(date, 7 * weeks)
}

/// `date` plus `days` days, saturating like [`add_months`].
pub fn add_days(date: Date, days: u32) -> Date {
    date.checked_add_days(Days::new(u64::from(days))).unwrap_or(Date::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn months_clamp_to_month_end() {
        assert_eq!(add_months(day("2025-01-31"), 3), day("2025-04-30"));
        assert_eq!(add_months(day("2026-01-31"), 1), day("2026-02-28"));
        assert_eq!(add_months(day("2027-11-30"), 3), day("2028-02-29"));
        assert_eq!(add_months(day("2028-02-29"), 12), day("2029-02-28"));
        assert_eq!(add_months(day("2025-12-31"), 6), day("2026-06-30"));
        assert_eq!(add_months(Date::MAX, 1), Date::MAX);
    }

    #[test]
    fn weeks_are_seven_days() {
        assert_eq!(add_weeks(day("2025-09-01"), 8), day("2025-10-27"));
        assert_eq!(add_weeks(day("2028-01-10"), 8), day("2028-03-06"));
        assert_eq!(add_weeks(Date::MAX, 8), Date::MAX);
    }

    #[test]
    fn days_cross_months_and_saturate() {
        assert_eq!(add_days(day("2026-02-02"), 14), day("2026-02-16"));
        assert_eq!(add_days(day("2028-02-20"), 14), day("2028-03-05"));
        assert_eq!(add_days(Date::MAX, 1), Date::MAX);
    }
}
