//! The rules engine's evaluation on the wire: obligations with the sequences
//! of the events that triggered and met them, and advisories.

use bro_proto::convert::date_to_pb;
use bro_proto::v1 as pb;
use bro_rules::{EvaluatedHistory, Status};

/// A status on the wire.
pub fn status_to_pb(status: Status) -> pb::ObligationStatus {
    match status {
        Status::Open => pb::ObligationStatus::Open,
        Status::Overdue => pb::ObligationStatus::Overdue,
        Status::Met => pb::ObligationStatus::Met,
        Status::Violated => pb::ObligationStatus::Violated,
    }
}

/// The obligations of an evaluated history, naming events by sequence.
pub fn obligations_to_pb(evaluated: &EvaluatedHistory) -> Vec<pb::Obligation> {
    let sequence = |index: Option<usize>| index.and_then(|i| evaluated.sequence(i)).map_or(0, |s| s as i64);
    evaluated
        .evaluation
        .obligations
        .iter()
        .map(|o| pb::Obligation {
            rule: o.rule.as_str().to_owned(),
            cites: o.cites.to_owned(),
            duty: o.duty.to_owned(),
            custody_holder: o.custody_holder.as_ref().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            trigger_date: Some(date_to_pb(o.trigger)),
            status: status_to_pb(o.status).into(),
            due_date: o.due.map(date_to_pb),
            met_on: o.met_on.map(date_to_pb),
            met_by_sequence: sequence(o.met_by),
            triggered_by_sequence: sequence(Some(o.triggered_by)),
            reopened_on: o.reopened_on.map(date_to_pb),
        })
        .collect()
}

/// The advisories of an evaluation.
pub fn advisories_to_pb(evaluated: &EvaluatedHistory) -> Vec<pb::Advisory> {
    evaluated
        .evaluation
        .advisories
        .iter()
        .map(|a| pb::Advisory {
            id: a.id.as_str().to_owned(),
            custody_holder: a.custody_holder.as_ref().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            message: a.message.clone(),
        })
        .collect()
}

/// `case` with its obligations and advisories as evaluated on `today`.
pub fn with_evaluation(mut case: pb::Case, evaluated: &EvaluatedHistory, today: bro_domain::Date) -> pb::Case {
    case.obligations = obligations_to_pb(evaluated);
    case.advisories = advisories_to_pb(evaluated);
    case.ruleset = evaluated.evaluation.ruleset.to_owned();
    case.evaluated_on = Some(date_to_pb(today));
    case
}
