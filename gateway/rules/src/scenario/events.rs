//! Scenario events: each JSON event read into a `bro_domain::Event`.

use bro_domain::{
    ConsentScope, DecisionOutcome, Event, EventKind, PartyId, PlacementBasis, PlacementEndReason, PlanKind,
    RecommendationReason, SupportMeasure, SupportPersonKind,
};
use serde_json::Value;

use super::json::{Fields, as_array, as_str, quote};
use super::{ScenarioError, known_holder};

/// Placement bases: § 46, § 47 and LBU § 14.
const BASES: &[(&str, PlacementBasis)] =
    &[("bl46", PlacementBasis::Bl46), ("bl47", PlacementBasis::Bl47), ("lbu14", PlacementBasis::Lbu14)];
/// Why a placement was recommended.
const REASONS: &[(&str, RecommendationReason)] = &[
    ("neglect", RecommendationReason::Neglect),
    ("serious_social_conditions", RecommendationReason::SeriousSocialConditions),
    ("child_conditions", RecommendationReason::ChildConditions),
    ("other", RecommendationReason::Other),
];
/// Why a placement ended.
const END_REASONS: &[(&str, PlacementEndReason)] =
    &[("homecoming", PlacementEndReason::Homecoming), ("other", PlacementEndReason::Other)];
/// Who a chosen support person is.
const PERSON_KINDS: &[(&str, SupportPersonKind)] =
    &[("professional", SupportPersonKind::Professional), ("network", SupportPersonKind::Network)];
/// The § 76 measures a decision can be about.
const DECIDED_MEASURES: &[(&str, SupportMeasure)] = &[
    ("bl32-1-2", SupportMeasure::Bl32_1_2),
    ("bl32-1-3", SupportMeasure::Bl32_1_3),
    ("bl32-1-5", SupportMeasure::Bl32_1_5),
    ("bl32-1-8", SupportMeasure::Bl32_1_8),
    ("bl35", SupportMeasure::Bl35),
    ("other_legislation", SupportMeasure::OtherLegislation),
];
/// The measures support can start under: the § 76 ones and the support person.
const STARTED_MEASURES: &[(&str, SupportMeasure)] = &[
    ("bl32-1-2", SupportMeasure::Bl32_1_2),
    ("bl32-1-3", SupportMeasure::Bl32_1_3),
    ("bl32-1-5", SupportMeasure::Bl32_1_5),
    ("bl32-1-8", SupportMeasure::Bl32_1_8),
    ("bl35", SupportMeasure::Bl35),
    ("other_legislation", SupportMeasure::OtherLegislation),
    ("bl75", SupportMeasure::Bl75),
];
/// The outcomes of a § 76 decision.
const OUTCOMES: &[(&str, DecisionOutcome)] =
    &[("granted", DecisionOutcome::Granted), ("refused", DecisionOutcome::Refused)];
/// Parent action plan (§ 77) or holistic plan (§ 78).
const PLAN_KINDS: &[(&str, PlanKind)] = &[("bl77", PlanKind::Bl77), ("bl78", PlanKind::Bl78)];

/// The fields each event type has, besides `at` and `type`.
fn fields_of(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "placement_recommended" => &["at", "type", "basis", "siblings_under_18_in_household", "reason"],
        "placement_started" => &["at", "type", "basis"],
        "placement_ended" => &["at", "type", "reason"],
        "support_person_offered"
        | "support_person_accepted"
        | "support_person_declined"
        | "support_person_approved"
        | "support_person_refused" => &["at", "type", "custody_holder"],
        "support_person_chosen" => &["at", "type", "custody_holder", "kind"],
        "support_decided" => &["at", "type", "measure", "outcome", "custody_holder"],
        "support_started" => &["at", "type", "measure", "custody_holder"],
        "consent_given" | "consent_withdrawn" => &["at", "type", "custody_holder", "scope"],
        "plan_prepared" => &["at", "type", "kind", "covers"],
        "plan_omitted" | "homecoming_period_waived" => &["at", "type", "reasons"],
        "custody_holder_moved" => &["at", "type", "custody_holder", "to_municipality"],
        "case_handover_sent" => &["at", "type", "to_municipality"],
        "revision_offered"
        | "revision_made"
        | "revision_assessed"
        | "homecoming_period_started"
        | "homecoming_period_ended"
        | "contact_suspended"
        | "contact_resumed" => &["at", "type"],
        _ => return None,
    })
}

/// Reads every event and checks date order. State contradictions (an approval
/// with no choice, say) are not refused here: the engine evaluates any
/// history it is given, and the gateway's API is where a case's invariants
/// are enforced on the way in.
pub(super) fn parse_all(items: &[Value], custody_holders: &[PartyId]) -> Result<Vec<Event>, ScenarioError> {
    let mut events: Vec<Event> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let event = parse_event(item, index, custody_holders)?;
        if let Some(previous) = events.last().map(|event| event.occurred_on)
            && event.occurred_on < previous
        {
            return Err(ScenarioError::OutOfOrder { index, date: event.occurred_on, previous });
        }
        events.push(event);
    }
    Ok(events)
}

/// Reads `events[index]`.
fn parse_event(value: &Value, index: usize, known: &[PartyId]) -> Result<Event, ScenarioError> {
    let path = format!("events[{index}]");
    // The type decides which fields are allowed, so it is read first.
    let type_path = format!("{path}.type");
    let type_name = match value.get("type") {
        Some(type_value) => as_str(type_value, &type_path)?,
        None if value.is_object() => return Err(ScenarioError::MissingField { path: type_path }),
        // Not an object: `Fields::new` says so.
        None => "",
    };
    let allowed = if value.is_object() {
        fields_of(type_name).ok_or_else(|| ScenarioError::UnknownEventType { index, type_name: quote(type_name) })?
    } else {
        &[]
    };
    let fields = Fields::new(value, &path, allowed)?;
    let occurred_on = fields.date("at")?;
    // A field naming one of the scenario's custody holders.
    let holder = |name: &str| -> Result<PartyId, ScenarioError> {
        known_holder(fields.string(name)?, &fields.path_of(name), known)
    };
    // A field holding a municipality's CVR number.
    let municipality = |name: &str| -> Result<String, ScenarioError> {
        let path = fields.path_of(name);
        let cvr = fields.string(name)?;
        bro_domain::check_cvr(&path, cvr).map_err(|violations| ScenarioError::from_violations(&path, &violations))?;
        Ok(cvr.to_owned())
    };
    let kind = match type_name {
        "placement_recommended" => EventKind::PlacementRecommended {
            basis: fields.choice("basis", "legal basis", BASES)?,
            siblings_under_18_in_household: fields.boolean("siblings_under_18_in_household")?,
            reason: fields.choice("reason", "reason", REASONS)?,
        },
        "placement_started" => {
            EventKind::PlacementStarted { basis: fields.choice("basis", "legal basis", BASES)?, site_kind: None }
        }
        "placement_ended" => EventKind::PlacementEnded { reason: fields.choice("reason", "end reason", END_REASONS)? },
        "support_person_offered" => EventKind::SupportPersonOffered { custody_holder: holder("custody_holder")? },
        "support_person_accepted" => EventKind::SupportPersonAccepted { custody_holder: holder("custody_holder")? },
        "support_person_declined" => EventKind::SupportPersonDeclined { custody_holder: holder("custody_holder")? },
        "support_person_chosen" => EventKind::SupportPersonChosen {
            custody_holder: holder("custody_holder")?,
            kind: fields.choice("kind", "support person kind", PERSON_KINDS)?,
            person: None,
        },
        "support_person_approved" => EventKind::SupportPersonApproved { custody_holder: holder("custody_holder")? },
        "support_person_refused" => {
            EventKind::SupportPersonRefused { custody_holder: holder("custody_holder")?, reason: String::new() }
        }
        "support_decided" => {
            if fields.optional("measure").and_then(Value::as_str) == Some("bl75") {
                return Err(ScenarioError::invalid(
                    &fields.path_of("measure"),
                    "bl75 is the support person: record it with support_person_* events, not support_decided",
                ));
            }
            EventKind::SupportDecided {
                custody_holder: holder("custody_holder")?,
                measure: fields.choice("measure", "measure", DECIDED_MEASURES)?,
                outcome: fields.choice("outcome", "outcome", OUTCOMES)?,
            }
        }
        "support_started" => EventKind::SupportStarted {
            custody_holder: holder("custody_holder")?,
            measure: fields.choice("measure", "measure", STARTED_MEASURES)?,
        },
        "consent_given" | "consent_withdrawn" => {
            let custody_holder = holder("custody_holder")?;
            let scope_path = fields.path_of("scope");
            let scope = ConsentScope::parse(&scope_path, fields.string("scope")?)
                .map_err(|violations| ScenarioError::from_violations(&scope_path, &violations))?;
            if type_name == "consent_given" {
                EventKind::ConsentGiven { custody_holder, scope }
            } else {
                EventKind::ConsentWithdrawn { custody_holder, scope }
            }
        }
        "plan_prepared" => {
            let kind = fields.choice("kind", "plan kind", PLAN_KINDS)?;
            let covers_path = fields.path_of("covers");
            let covers = match (kind, fields.optional("covers")) {
                (PlanKind::Bl78, None) => {
                    return Err(ScenarioError::MissingField { path: covers_path });
                }
                (PlanKind::Bl77, Some(_)) => {
                    return Err(ScenarioError::invalid(
                        &covers_path,
                        "only a bl78 holistic plan names the custody holders it covers",
                    ));
                }
                (PlanKind::Bl77, None) => Vec::new(),
                (PlanKind::Bl78, Some(list)) => {
                    let items = as_array(list, &covers_path)?;
                    if items.is_empty() {
                        return Err(ScenarioError::invalid(
                            &covers_path,
                            "a bl78 holistic plan covers one or both custody holders; the list is empty",
                        ));
                    }
                    items
                        .iter()
                        .enumerate()
                        .map(|(at, item)| {
                            let item_path = format!("{covers_path}[{at}]");
                            known_holder(as_str(item, &item_path)?, &item_path, known)
                        })
                        .collect::<Result<_, _>>()?
                }
            };
            EventKind::PlanPrepared {
                plan_id: format!("plan-{}", index.saturating_add(1)),
                kind,
                covers,
                goals: Vec::new(),
            }
        }
        "plan_omitted" => EventKind::PlanOmitted { reasons: fields.string("reasons")?.to_owned() },
        "revision_offered" => EventKind::RevisionOffered,
        "revision_made" => EventKind::RevisionMade,
        "revision_assessed" => EventKind::RevisionAssessed,
        "homecoming_period_started" => EventKind::HomecomingPeriodStarted,
        "homecoming_period_ended" => EventKind::HomecomingPeriodEnded,
        "homecoming_period_waived" => {
            EventKind::HomecomingPeriodWaived { reasons: fields.string("reasons")?.to_owned() }
        }
        "custody_holder_moved" => EventKind::CustodyHolderMoved {
            custody_holder: holder("custody_holder")?,
            to_municipality: municipality("to_municipality")?,
        },
        "case_handover_sent" => EventKind::CaseHandoverSent { to_municipality: municipality("to_municipality")? },
        "contact_suspended" => EventKind::ContactSuspended,
        "contact_resumed" => EventKind::ContactResumed,
        // `fields_of` knows exactly the types above.
        other => {
            return Err(ScenarioError::UnknownEventType { index, type_name: quote(other) });
        }
    };
    Ok(Event { occurred_on, kind, source: None })
}
