//! The worklist index: per case, the obligations that were open or overdue
//! when the rules last evaluated it, the day that evaluation was made and
//! the first day it may stop holding. The server keeps it (it owns the
//! rules and the clock); a backend stores it beside the case and marks a
//! case's entry stale in the same transaction as every append to the case,
//! so an entry that looks fresh always describes the case as stored.

use bro_domain::{CaseId, Date};

/// Which due obligations a query wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DueStatus {
    /// Open (not yet past due) or overdue.
    Any,
    /// Open only.
    Open,
    /// Overdue only.
    Overdue,
}

impl DueStatus {
    /// Whether an item with this overdue flag is wanted.
    pub fn wants(self, overdue: bool) -> bool {
        match self {
            DueStatus::Any => true,
            DueStatus::Open => !overdue,
            DueStatus::Overdue => overdue,
        }
    }
}

/// One open or overdue obligation of a case in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueItem {
    /// The item's place in its municipality's worklist ([`due_sort_key`]);
    /// unique within the municipality.
    pub sort_key: String,
    /// Past its due date on the evaluation day.
    pub overdue: bool,
    /// Its due date, if it has one.
    pub due_on: Option<Date>,
    /// Protobuf bytes of the `bro.v1.Obligation` (sealed at rest by
    /// [`crate::SealedStore`]).
    pub obligation: Vec<u8>,
}

/// A case's index entry, as evaluated for one version of the case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorklistEntry {
    /// The case.
    pub case_id: CaseId,
    /// The case version evaluated: the entry is stored only if the case is
    /// still at it.
    pub version: u64,
    /// The placing municipality at that version.
    pub municipality_cvr: String,
    /// What evaluated it (the rules' revision): entries of another revision
    /// are stale after [`crate::EventStore::reset_worklist`].
    pub revision: String,
    /// The day it was evaluated for.
    pub evaluated_on: Date,
    /// The first day it may no longer hold (a due date passes, a dated
    /// event takes effect); `None`: it holds until the case changes.
    pub valid_until: Option<Date>,
    /// The open and overdue obligations, in the case's evaluation order.
    pub items: Vec<DueItem>,
}

/// A page of one municipality's worklist, in [`due_sort_key`] order.
#[derive(Clone, Debug)]
pub struct DueQuery {
    /// The placing municipality.
    pub municipality_cvr: String,
    /// Open, overdue or both.
    pub status: DueStatus,
    /// Only items due on or before this day (items without a due date are left out).
    pub due_on_or_before: Option<Date>,
    /// Only items after this sort key (paging; empty: from the start).
    pub after_key: String,
    /// At most this many.
    pub limit: usize,
}

/// An item of a worklist page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDueItem {
    /// The case it belongs to.
    pub case_id: CaseId,
    /// The item.
    pub item: DueItem,
}

/// A day as the backends store it: days from the common era (one number
/// for SQLite and PostgreSQL alike, so a copy moves numbers, not formats).
pub fn day_number(day: Date) -> i64 {
    use chrono::Datelike;
    i64::from(day.num_days_from_ce())
}

/// The day [`day_number`] gave `n`, if it is one.
pub fn from_day_number(n: i64) -> Option<Date> {
    i32::try_from(n).ok().and_then(Date::from_num_days_from_ce_opt)
}

/// The worklist's order as one byte-comparable key: items with a due date
/// first, soonest first; then by case; then in the case's own evaluation
/// order (`position`). Backends compare keys bytewise (binary collation).
pub fn due_sort_key(due_on: Option<Date>, case_id: &CaseId, position: usize) -> String {
    // Days from the common era, shifted to stay non-negative for any date chrono holds.
    let day = due_on.map_or(0, |d| day_number(d) + 1_000_000_000);
    let undated = u8::from(due_on.is_none());
    // 0x1f sorts below every character an id may hold, so a shorter id sorts first.
    format!("{undated}{day:011}\u{1f}{case_id}\u{1f}{position:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_soonest_first_undated_last_then_by_case_and_position() {
        let day = |s: &str| Some(s.parse::<Date>().expect("date"));
        let case = |s: &str| CaseId::parse("case", s).expect("id");
        let mut keys = vec![
            due_sort_key(None, &case("a"), 0),
            due_sort_key(day("2026-03-01"), &case("b"), 2),
            due_sort_key(day("2026-03-01"), &case("ab"), 0),
            due_sort_key(day("2026-03-01"), &case("a"), 10),
            due_sort_key(day("2026-03-01"), &case("a"), 9),
            due_sort_key(day("2025-12-31"), &case("z"), 0),
            due_sort_key(day("0001-01-01"), &case("z"), 0),
        ];
        keys.sort();
        let expected = vec![
            due_sort_key(day("0001-01-01"), &case("z"), 0),
            due_sort_key(day("2025-12-31"), &case("z"), 0),
            due_sort_key(day("2026-03-01"), &case("a"), 9),
            due_sort_key(day("2026-03-01"), &case("a"), 10),
            due_sort_key(day("2026-03-01"), &case("ab"), 0),
            due_sort_key(day("2026-03-01"), &case("b"), 2),
            due_sort_key(None, &case("a"), 0),
        ];
        assert_eq!(keys, expected);
    }
}
