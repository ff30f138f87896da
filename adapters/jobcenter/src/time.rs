//! Dates and times for the Momentum document: the SDK's calendar, Danish local time and
//! ISO 8601 forms (an adapter has no clock or time-zone database).

pub use bro_adapter_sdk::time::*;
