//! Pure barnets-lov rules engine: from a case's events and a day, the
//! municipality's obligations towards the parents of a placed child, with
//! their statuses, and advisories on practice.
//!
//! The engine does no IO, keeps no clock and runs no async code: the
//! evaluation day is passed in. [`evaluate`] applies the [`RuleSet`] in force
//! on that day (barnets lov, from 2024-01-01) and names it in the
//! [`Evaluation`]. Each rule cites its paragraph in its documentation and in
//! its output ([`Obligation::cites`]).
//!
//! The [`scenario`] module reads the public scenario format of
//! `shared/scenarios` and checks an evaluation against a scenario's
//! expectations; [`render_json`] prints an evaluation in the format of
//! `bro rules eval`.
//!
//! ```
//! let scenario = bro_rules::scenario::parse(r#"{
//!     "name": "placement with an offer on the day",
//!     "today": "2026-03-01",
//!     "custody_holders": ["parent-1"],
//!     "events": [
//!         {"at": "2026-01-15", "type": "placement_started", "basis": "bl46"},
//!         {"at": "2026-01-15", "type": "support_person_offered", "custody_holder": "parent-1"}
//!     ],
//!     "expect": [
//!         {"rule": "bl75", "custody_holder": "parent-1", "status": "met", "met_on": "2026-01-15"},
//!         {"rule": "bl76", "status": "overdue", "due": "2026-01-15"}
//!     ]
//! }"#).unwrap();
//! let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
//! assert_eq!(evaluation.ruleset, "barnets-lov-2024-01-01");
//! assert!(bro_rules::scenario::check(&scenario, &evaluation).is_empty());
//! ```

mod barnets_lov_2024;
pub mod coordination;
mod dates;
mod facts;
pub mod holistic;
mod model;
mod render;
mod rule;
mod ruleset;
pub mod scenario;
pub mod sharing;

#[cfg(test)]
mod next_change_tests;
#[cfg(test)]
mod testkit;

use bro_domain::{Date, Event, PartyId, RecordedEvent};

pub use dates::{add_days, add_months, add_weeks};
pub use model::{Advisory, AdvisoryId, Evaluation, Obligation, RuleId, Status};
pub use render::render_json;
pub use ruleset::RuleSet;

/// The engine's revision: raised whenever what a rule finds for some
/// history changes (an amendment, a fix), so that evaluations stored by an
/// earlier revision (the server's worklist index) are made again.
pub const ENGINE_REVISION: u32 = 2;

/// Evaluates a case on `today`.
///
/// `custody_holders` are the parents the per-holder duties are owed to.
/// `events` must be in application order (by date, then by their order within
/// a day); the caller sorts them. Events dated after `today` have not
/// happened yet and are ignored; `case_opened` and the sector-contact events
/// create no obligations (the sector contacts feed an advisory).
///
/// The rule set is the one in force on `today` ([`RuleSet::in_force_on`]).
/// Events before 2024-01-01 are evaluated under barnets lov too: the rules of
/// serviceloven that governed before are out of scope.
pub fn evaluate(custody_holders: &[PartyId], events: &[Event], today: Date) -> Evaluation {
    RuleSet::in_force_on(today).evaluate(custody_holders, events, today)
}

/// An evaluation of a recorded history, with the sequence of each event it
/// evaluated: an obligation's `triggered_by` and `met_by` index into
/// [`EvaluatedHistory::sequences`].
#[derive(Clone, Debug)]
pub struct EvaluatedHistory {
    /// The evaluation.
    pub evaluation: Evaluation,
    /// The recorded sequence of each evaluated event, in the order evaluated.
    pub sequences: Vec<u64>,
}

impl EvaluatedHistory {
    /// The recorded sequence of evaluated event `index`, if there is one.
    pub fn sequence(&self, index: usize) -> Option<u64> {
        self.sequences.get(index).copied()
    }
}

/// Evaluates a recorded history (in any order) on `today`: the events are
/// applied in [`bro_domain::legal_order`], as the case itself applies them.
pub fn evaluate_history(custody_holders: &[PartyId], history: &[RecordedEvent], today: Date) -> EvaluatedHistory {
    let order = bro_domain::legal_order(history);
    let sequences = order.iter().map(|&i| history[i].sequence).collect();
    let events: Vec<Event> = order.iter().map(|&i| history[i].event.clone()).collect();
    EvaluatedHistory { evaluation: evaluate(custody_holders, &events, today), sequences }
}
