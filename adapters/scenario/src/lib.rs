//! The `scenario` adapter: reads the public scenario format of bro's rules
//! engine (`shared/scenarios/README.md`: dated events with string codes) and
//! writes canonical events (`bro.v1.AdapterBatch`), and back. It lets a
//! worked legal case be loaded into a gateway, and it is the translation the
//! host's WASM-versus-native benchmark measures.

use bro_adapter_sdk::proto::{self, case_event::Kind};
use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, MessageType, SystemKind, invalid, malformed};
use serde_json::{Map, Value};

/// The adapter.
pub struct Scenario;

const CONTENT_TYPE: &str = "application/vnd.bro.scenario+json";

fn date(path: &str, v: Option<&Value>) -> Result<proto::Date, AdapterError> {
    let text = v.and_then(Value::as_str).ok_or_else(|| invalid(path, "a date YYYY-MM-DD is required"))?;
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i32>().ok();
    match (parts.as_slice(), parts.len()) {
        ([y, m, d], 3) if y.len() == 4 && m.len() == 2 && d.len() == 2 => match (num(y), num(m), num(d)) {
            (Some(year), Some(month), Some(day)) => Ok(proto::Date { year, month, day }),
            _ => Err(invalid(path, format!("{text:?} is not a date YYYY-MM-DD"))),
        },
        _ => Err(invalid(path, format!("{text:?} is not a date YYYY-MM-DD"))),
    }
}

fn text<'a>(event: &'a Map<String, Value>, path: &str, field: &str) -> Result<&'a str, AdapterError> {
    event.get(field).and_then(Value::as_str).ok_or_else(|| invalid(format!("{path}.{field}"), "is required (a string)"))
}

fn code<T: Copy>(event: &Map<String, Value>, path: &str, field: &str, codes: &[(&str, T)]) -> Result<T, AdapterError> {
    let value = text(event, path, field)?;
    codes.iter().find(|(c, _)| *c == value).map(|(_, t)| *t).ok_or_else(|| {
        let known: Vec<&str> = codes.iter().map(|(c, _)| *c).collect();
        invalid(format!("{path}.{field}"), format!("unknown code {value:?}; expected one of {known:?}"))
    })
}

const BASES: &[(&str, proto::PlacementBasis)] = &[
    ("bl46", proto::PlacementBasis::Bl46),
    ("bl47", proto::PlacementBasis::Bl47),
    ("lbu14", proto::PlacementBasis::Lbu14),
];
const REASONS: &[(&str, proto::RecommendationReason)] = &[
    ("neglect", proto::RecommendationReason::Neglect),
    ("serious_social_conditions", proto::RecommendationReason::SeriousSocialConditions),
    ("child_conditions", proto::RecommendationReason::ChildConditions),
    ("other", proto::RecommendationReason::Other),
];
const MEASURES: &[(&str, proto::SupportMeasure)] = &[
    ("bl32-1-2", proto::SupportMeasure::Bl3212),
    ("bl32-1-3", proto::SupportMeasure::Bl3213),
    ("bl32-1-5", proto::SupportMeasure::Bl3215),
    ("bl32-1-8", proto::SupportMeasure::Bl3218),
    ("bl35", proto::SupportMeasure::Bl35),
    ("other_legislation", proto::SupportMeasure::OtherLegislation),
    ("bl75", proto::SupportMeasure::Bl75),
];
const OUTCOMES: &[(&str, proto::DecisionOutcome)] =
    &[("granted", proto::DecisionOutcome::Granted), ("refused", proto::DecisionOutcome::Refused)];
const PLAN_KINDS: &[(&str, proto::PlanKind)] = &[("bl77", proto::PlanKind::Bl77), ("bl78", proto::PlanKind::Bl78)];
const END_REASONS: &[(&str, proto::PlacementEndReason)] =
    &[("homecoming", proto::PlacementEndReason::Homecoming), ("other", proto::PlacementEndReason::Other)];
const PERSON_KINDS: &[(&str, proto::SupportPersonKind)] =
    &[("professional", proto::SupportPersonKind::Professional), ("network", proto::SupportPersonKind::Network)];

fn kind(event: &Map<String, Value>, path: &str) -> Result<Kind, AdapterError> {
    let holder = || text(event, path, "custody_holder").map(str::to_owned);
    let ty = text(event, path, "type")?;
    Ok(match ty {
        "placement_recommended" => Kind::PlacementRecommended(proto::PlacementRecommended {
            basis: code(event, path, "basis", BASES)? as i32,
            siblings_under_18_in_household: event
                .get("siblings_under_18_in_household")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reason: code(event, path, "reason", REASONS)? as i32,
        }),
        "placement_started" => Kind::PlacementStarted(proto::PlacementStarted {
            basis: code(event, path, "basis", BASES)? as i32,
            site_kind: 0,
        }),
        "placement_ended" => {
            Kind::PlacementEnded(proto::PlacementEnded { reason: code(event, path, "reason", END_REASONS)? as i32 })
        }
        "support_person_offered" => {
            Kind::SupportPersonOffered(proto::SupportPersonOffered { custody_holder: holder()? })
        }
        "support_person_accepted" => {
            Kind::SupportPersonAccepted(proto::SupportPersonAccepted { custody_holder: holder()? })
        }
        "support_person_declined" => {
            Kind::SupportPersonDeclined(proto::SupportPersonDeclined { custody_holder: holder()? })
        }
        "support_person_chosen" => Kind::SupportPersonChosen(proto::SupportPersonChosen {
            custody_holder: holder()?,
            kind: code(event, path, "kind", PERSON_KINDS)? as i32,
            person: None,
        }),
        "support_person_approved" => {
            Kind::SupportPersonApproved(proto::SupportPersonApproved { custody_holder: holder()? })
        }
        "support_person_refused" => {
            Kind::SupportPersonRefused(proto::SupportPersonRefused { custody_holder: holder()?, reason: String::new() })
        }
        "support_decided" => Kind::SupportDecided(proto::SupportDecided {
            custody_holder: holder()?,
            measure: code(event, path, "measure", MEASURES)? as i32,
            outcome: code(event, path, "outcome", OUTCOMES)? as i32,
        }),
        "support_started" => Kind::SupportStarted(proto::SupportStarted {
            custody_holder: holder()?,
            measure: code(event, path, "measure", MEASURES)? as i32,
        }),
        "consent_given" => Kind::ConsentGiven(proto::ConsentGiven {
            custody_holder: holder()?,
            scope: text(event, path, "scope")?.to_owned(),
        }),
        "consent_withdrawn" => Kind::ConsentWithdrawn(proto::ConsentWithdrawn {
            custody_holder: holder()?,
            scope: text(event, path, "scope")?.to_owned(),
        }),
        "plan_prepared" => Kind::PlanPrepared(proto::PlanPrepared {
            plan_id: String::new(),
            kind: code(event, path, "kind", PLAN_KINDS)? as i32,
            covers: event
                .get("covers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            goals: Vec::new(),
        }),
        "plan_omitted" => Kind::PlanOmitted(proto::PlanOmitted {
            reasons: event.get("reasons").and_then(Value::as_str).unwrap_or_default().to_owned(),
        }),
        "revision_offered" => Kind::RevisionOffered(proto::RevisionOffered {}),
        "revision_made" => Kind::RevisionMade(proto::RevisionMade {}),
        "revision_assessed" => Kind::RevisionAssessed(proto::RevisionAssessed {}),
        "homecoming_period_started" => Kind::HomecomingPeriodStarted(proto::HomecomingPeriodStarted {}),
        "homecoming_period_ended" => Kind::HomecomingPeriodEnded(proto::HomecomingPeriodEnded {}),
        "homecoming_period_waived" => Kind::HomecomingPeriodWaived(proto::HomecomingPeriodWaived {
            reasons: event.get("reasons").and_then(Value::as_str).unwrap_or_default().to_owned(),
        }),
        "custody_holder_moved" => Kind::CustodyHolderMoved(proto::CustodyHolderMoved {
            custody_holder: holder()?,
            to_municipality: text(event, path, "to_municipality")?.to_owned(),
        }),
        "case_handover_sent" => Kind::CaseHandoverSent(proto::CaseHandoverSent {
            to_municipality: text(event, path, "to_municipality")?.to_owned(),
        }),
        "contact_suspended" => Kind::ContactSuspended(proto::ContactSuspended {}),
        "contact_resumed" => Kind::ContactResumed(proto::ContactResumed {}),
        other => return Err(invalid(format!("{path}.type"), format!("unknown event type {other:?}"))),
    })
}

/// Translates scenario JSON text to a canonical batch.
pub fn translate(body: &[u8], message_id: &str) -> Result<proto::AdapterBatch, AdapterError> {
    bro_adapter_sdk::json::within_caps(body, &bro_adapter_sdk::json::CAPS)?;
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("{}:{}", e.line(), e.column()), format!("not JSON: {e}")))?;
    let events = root
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("events", "a list of events is required"))?;
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let path = format!("events[{i}]");
        let event = e.as_object().ok_or_else(|| invalid(&path, "an event is an object"))?;
        out.push(proto::CaseEvent {
            occurred_on: Some(date(&format!("{path}.at"), event.get("at"))?),
            source: Some(proto::EventSource { system: "scenario".into(), message_id: message_id.to_owned() }),
            kind: Some(kind(event, &path)?),
            ..Default::default()
        });
    }
    Ok(proto::AdapterBatch { source_message_id: message_id.to_owned(), events: out, ..Default::default() })
}

fn render_date(d: &Option<proto::Date>) -> String {
    d.as_ref().map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)).unwrap_or_default()
}

fn name_of<T: Copy + PartialEq>(codes: &[(&'static str, T)], value: T) -> &'static str {
    codes.iter().find(|(_, t)| *t == value).map_or("", |(c, _)| *c)
}

/// Renders canonical events back to scenario events (the kinds the format has).
pub fn render(batch: &proto::AdapterBatch) -> Result<Value, AdapterError> {
    let mut events = Vec::new();
    for (i, e) in batch.events.iter().enumerate() {
        let mut o = Map::new();
        o.insert("at".into(), render_date(&e.occurred_on).into());
        let (ty, fields): (&str, Vec<(&str, Value)>) = match &e.kind {
            Some(Kind::PlacementStarted(p)) => ("placement_started", vec![("basis", name_of(BASES, p.basis()).into())]),
            Some(Kind::PlacementEnded(p)) => {
                ("placement_ended", vec![("reason", name_of(END_REASONS, p.reason()).into())])
            }
            Some(Kind::SupportPersonOffered(p)) => {
                ("support_person_offered", vec![("custody_holder", p.custody_holder.clone().into())])
            }
            Some(Kind::SupportDecided(p)) => (
                "support_decided",
                vec![
                    ("measure", name_of(MEASURES, p.measure()).into()),
                    ("outcome", name_of(OUTCOMES, p.outcome()).into()),
                    ("custody_holder", p.custody_holder.clone().into()),
                ],
            ),
            Some(Kind::ConsentGiven(p)) => (
                "consent_given",
                vec![("custody_holder", p.custody_holder.clone().into()), ("scope", p.scope.clone().into())],
            ),
            Some(Kind::PlanPrepared(p)) => ("plan_prepared", vec![("kind", name_of(PLAN_KINDS, p.kind()).into())]),
            Some(Kind::RevisionOffered(_)) => ("revision_offered", vec![]),
            Some(_) => {
                return Err(AdapterError::Unsupported(format!("events[{i}]: this event kind in scenario output")));
            }
            None => return Err(invalid(format!("events[{i}]"), "no event kind")),
        };
        o.insert("type".into(), ty.into());
        for (k, v) in fields {
            o.insert(k.into(), v);
        }
        events.push(Value::Object(o));
    }
    Ok(serde_json::json!({ "events": events }))
}

impl Adapter for Scenario {
    fn describe() -> AdapterInfo {
        let scenario = MessageType {
            name: "bro-scenario".into(),
            content_types: vec![CONTENT_TYPE.into(), "application/json".into()],
        };
        AdapterInfo {
            name: "scenario".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Journal,
            reads: vec![scenario.clone()],
            writes: vec![scenario],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        if !(message.content_type.starts_with(CONTENT_TYPE) || message.content_type.starts_with("application/json")) {
            return Err(AdapterError::Unsupported(message.content_type));
        }
        let id = message.metadata.iter().find(|(k, _)| k == "message-id").map(|(_, v)| v.as_str()).unwrap_or("");
        translate(&message.body, id)
    }

    fn from_canonical(batch: proto::AdapterBatch, _target: &str) -> Result<Message, AdapterError> {
        let body = serde_json::to_vec_pretty(&render(&batch)?).map_err(|e| AdapterError::Internal(e.to_string()))?;
        Ok(Message { content_type: CONTENT_TYPE.into(), body, metadata: vec![] })
    }
}

bro_adapter_sdk::export_adapter!(Scenario);
