//! An evaluation as JSON, in the output format of `bro rules eval`
//! (`shared/scenarios/README.md`).

use serde_json::{Map, Value, json};

use crate::{Advisory, Evaluation, Obligation};

/// Renders an evaluation as JSON:
/// `{"ruleset", "today", "obligations": [...], "advisories": [...]}`.
///
/// Each obligation has `rule`, `custody_holder` (absent for a duty of the
/// case), `trigger`, `triggered_by`, `status`, `due` (absent without a
/// deadline), `met_on` and `met_by` (when an event met it, or showed a
/// violation), `reopened_on` (when it reopened), `duty` and `cites`. Each
/// advisory has `id`, `custody_holder` (when it concerns one) and `message`.
/// Dates are `YYYY-MM-DD`; `triggered_by` and `met_by` are indexes into the
/// evaluated events.
pub fn render_json(evaluation: &Evaluation) -> Value {
    json!({
        "ruleset": evaluation.ruleset,
        "today": evaluation.today.to_string(),
        "obligations": evaluation.obligations.iter().map(render_obligation).collect::<Vec<_>>(),
        "advisories": evaluation.advisories.iter().map(render_advisory).collect::<Vec<_>>(),
    })
}

fn render_obligation(obligation: &Obligation) -> Value {
    let mut out = Map::new();
    out.insert("rule".into(), obligation.rule.as_str().into());
    if let Some(holder) = &obligation.custody_holder {
        out.insert("custody_holder".into(), holder.as_str().into());
    }
    out.insert("trigger".into(), obligation.trigger.to_string().into());
    out.insert("triggered_by".into(), obligation.triggered_by.into());
    out.insert("status".into(), obligation.status.as_str().into());
    if let Some(due) = obligation.due {
        out.insert("due".into(), due.to_string().into());
    }
    if let Some(met_on) = obligation.met_on {
        out.insert("met_on".into(), met_on.to_string().into());
    }
    if let Some(met_by) = obligation.met_by {
        out.insert("met_by".into(), met_by.into());
    }
    if let Some(reopened_on) = obligation.reopened_on {
        out.insert("reopened_on".into(), reopened_on.to_string().into());
    }
    out.insert("duty".into(), obligation.duty.into());
    out.insert("cites".into(), obligation.cites.into());
    Value::Object(out)
}

fn render_advisory(advisory: &Advisory) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), advisory.id.as_str().into());
    if let Some(holder) = &advisory.custody_holder {
        out.insert("custody_holder".into(), holder.as_str().into());
    }
    out.insert("message".into(), advisory.message.clone().into());
    Value::Object(out)
}
