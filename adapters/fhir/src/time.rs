//! Dates and times for FHIR: the SDK's calendar, Danish local time and ISO
//! 8601 forms (an adapter has no clock or time-zone database). A FHIR
//! `instant` is an ISO 8601 date-time with seconds and an offset.

pub use bro_adapter_sdk::time::*;

/// Parses a FHIR `instant` (`YYYY-MM-DDThh:mm:ss[.f…]` with `Z` or `±hh:mm`)
/// in the years 1 to 9999.
pub fn parse_instant(text: &str) -> Option<prost_types::Timestamp> {
    parse_datetime(text, Offset::Required).filter(in_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_need_an_offset() {
        let t = parse_instant("2026-03-30T10:00:00+02:00");
        assert_eq!(t, parse_instant("2026-03-30T08:00:00Z"));
        assert_eq!(parse_instant("2026-03-30T10:00:00"), None);
        assert_eq!(parse_instant("2026-03-30"), None);
        assert_eq!(t.map(|t| format_datetime(&t)).as_deref(), Some("2026-03-30T10:00:00+02:00"));
    }
}
