//! What a rule sees: the events in effect on the evaluation day, and the
//! shape of a rule's finding before the rule set turns it into an
//! [`Obligation`](crate::Obligation).

use bro_domain::{ConsentScope, Date, Event, EventKind, PartyId};

/// The case as the rules see it on one day.
pub(crate) struct Facts<'a> {
    /// The custody holders the per-holder duties are owed to.
    pub custody_holders: &'a [PartyId],
    /// The events dated on or before `today`, in application order, each with
    /// its index in the caller's slice. Positions in this list are what the
    /// rules compare ("after", "before"); the indexes are what they report.
    pub events: Vec<(usize, &'a Event)>,
}

impl<'a> Facts<'a> {
    /// Facts for `today`. Events dated after `today` have not happened yet on
    /// that day and are left out, so a history can be evaluated "as of" any day.
    pub fn new(custody_holders: &'a [PartyId], events: &'a [Event], today: Date) -> Self {
        let events = events.iter().enumerate().filter(|(_, event)| event.occurred_on <= today).collect();
        Facts { custody_holders, events }
    }

    /// Every event with its position, index, date and kind.
    pub fn iter(&self) -> impl Iterator<Item = Positioned<'a>> + '_ {
        self.events.iter().enumerate().map(|(position, &(index, event))| Positioned {
            position,
            index,
            on: event.occurred_on,
            kind: &event.kind,
        })
    }

    /// The events after `position`, in order.
    pub fn after(&self, position: usize) -> impl Iterator<Item = Positioned<'a>> + '_ {
        self.iter().skip(position.saturating_add(1))
    }

    /// The events dated on or after `date`, in order. Same-day events listed
    /// before a trigger count: the law's deadlines are in days, not in order.
    pub fn on_or_after(&self, date: Date) -> impl Iterator<Item = Positioned<'a>> + '_ {
        self.iter().filter(move |event| event.on >= date)
    }

    /// The consent of `holder` in `scope` that holds just before `position`
    /// (given earlier in application order, not withdrawn since), if any. A
    /// consent given again while one holds keeps the earlier one.
    pub fn consent_holding_before(&self, holder: &PartyId, scope: &str, position: usize) -> Option<Positioned<'a>> {
        let mut holding = None;
        for event in self.iter().take(position) {
            match event.kind {
                EventKind::ConsentGiven { custody_holder, scope: given }
                    if custody_holder == holder && given.as_str() == scope =>
                {
                    holding = holding.or(Some(event));
                }
                EventKind::ConsentWithdrawn { custody_holder, scope: withdrawn }
                    if custody_holder == holder && withdrawn.as_str() == scope =>
                {
                    holding = None;
                }
                _ => {}
            }
        }
        holding
    }
}

/// One placement's part of the case: from just after the previous placement
/// ended (or the first event) to the end of this placement, its end
/// included (or the last event). Plans, support and recommendations belong
/// to the part they fall in.
pub(crate) struct Window {
    /// First position.
    pub start: usize,
    /// One past the last position.
    pub end: usize,
    /// Whether a placement starts in it (a case that was never placed is one
    /// part, and counts as placed: its support owes a plan all the same).
    pub placed: bool,
}

/// The case cut into placements' parts.
pub(crate) fn placement_windows(facts: &Facts<'_>) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut start = 0;
    let mut placed = false;
    for event in facts.iter() {
        match event.kind {
            EventKind::PlacementStarted { .. } => placed = true,
            EventKind::PlacementEnded { .. } => {
                windows.push(Window { start, end: event.position + 1, placed });
                start = event.position + 1;
                placed = false;
            }
            _ => {}
        }
    }
    let never_placed = windows.is_empty() && !placed;
    if start < facts.events.len() || windows.is_empty() {
        windows.push(Window { start, end: facts.events.len(), placed: placed || never_placed });
    }
    windows
}

/// One event with where it sits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Positioned<'a> {
    /// Position among the events in effect.
    pub position: usize,
    /// Index in the caller's slice.
    pub index: usize,
    /// Its legal date.
    pub on: Date,
    /// What happened.
    pub kind: &'a EventKind,
}

/// Whether `kind` gives consent of `holder` in `scope`.
pub(crate) fn gives_consent(kind: &EventKind, holder: &PartyId, scope: &str) -> bool {
    matches!(kind, EventKind::ConsentGiven { custody_holder, scope: given }
        if custody_holder == holder && given.as_str() == scope)
}

/// The consent scope of § 32 stk. 2, as text.
pub(crate) const BL32_SCOPE: &str = ConsentScope::BL32;
/// The consent scope of § 78, as text.
pub(crate) const BL78_SCOPE: &str = ConsentScope::BL78;

/// How a duty turned out, before the rule set dates it against `today`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not met (yet).
    Pending,
    /// Met by the event at `index`, dated `on`.
    Met {
        /// Date of the meeting event.
        on: Date,
        /// Its index.
        index: usize,
    },
    /// Breached for good; the late event that showed it, if there was one.
    Violated {
        /// The late event's date and index.
        late: Option<(Date, usize)>,
    },
}

impl Outcome {
    /// Met by `event`.
    pub fn met_by(event: Positioned<'_>) -> Outcome {
        Outcome::Met { on: event.on, index: event.index }
    }
}

/// What a rule found: one duty, without the rule set's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Owed to; `None` for a duty of the case.
    pub custody_holder: Option<PartyId>,
    /// The trigger's date.
    pub trigger: Date,
    /// The trigger's index in the caller's slice.
    pub triggered_by: usize,
    /// Deadline, if any.
    pub due: Option<Date>,
    /// How it turned out.
    pub outcome: Outcome,
    /// When it reopened after being met, if it did.
    pub reopened_on: Option<Date>,
}

impl Finding {
    /// A finding triggered by `trigger`, owed to `custody_holder`, due `due`.
    pub fn new(trigger: Positioned<'_>, custody_holder: Option<PartyId>, due: Option<Date>, outcome: Outcome) -> Self {
        Finding { custody_holder, trigger: trigger.on, triggered_by: trigger.index, due, outcome, reopened_on: None }
    }
}
