//! The public scenario format of `shared/scenarios`: a case's dated events, a
//! day, and the obligations expected on that day.
//!
//! [`parse`] reads a scenario from text (no file IO here) into domain events
//! and typed expectations, rejecting anything it does not understand with a
//! [`ScenarioError`] that names the place — never a panic. [`check`] compares
//! an [`Evaluation`](crate::Evaluation) with a scenario's expectations under the format's
//! comparison rules.

mod check;
mod error;
mod events;
mod json;

use bro_domain::{Date, Event, PartyId};

use crate::{AdvisoryId, RuleId, Status};

pub use crate::render::render_json;
pub use check::check;
pub use error::ScenarioError;

use json::{Fields, as_array, as_str, choose, quote};

/// The most custody holders a case has (as `bro_domain` allows).
const MAX_CUSTODY_HOLDERS: usize = 4;

/// A worked case: events, a day, and what the rules must report that day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// What the case shows.
    pub name: String,
    /// The evaluation day.
    pub today: Date,
    /// The custody holders (1 to 4, distinct).
    pub custody_holders: Vec<PartyId>,
    /// The events, in application order, as domain events.
    pub events: Vec<Event>,
    /// Every obligation expected, grouped by (rule, custody holder) in
    /// trigger-date order within each group.
    pub expect: Vec<ExpectedObligation>,
    /// Advisories that must be reported (others may be too).
    pub expect_advisories: Vec<AdvisoryId>,
}

/// One expected obligation. Only the fields given are compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedObligation {
    /// The rule.
    pub rule: RuleId,
    /// The custody holder, for per-holder rules; `None` for duties of the case.
    pub custody_holder: Option<PartyId>,
    /// The trigger date, if given (an extension of the public format).
    pub trigger: Option<Date>,
    /// The status, if given.
    pub status: Option<Status>,
    /// The due date, if given.
    pub due: Option<Date>,
    /// The date of the event that met it, if given.
    pub met_on: Option<Date>,
    /// A free-text note on how the expectation was derived (an extension of
    /// the public format; never compared).
    pub note: Option<String>,
}

/// Reads a scenario from JSON text.
///
/// Every field is checked: dates are `YYYY-MM-DD`, event types and their
/// fields are those of `shared/scenarios/README.md` (unknown fields are
/// rejected, so a typo cannot pass silently), custody holders must be listed,
/// consent scopes must parse ([`bro_domain::ConsentScope::parse`]), events
/// must be in date order. `plan_prepared` becomes a plan
/// with id `plan-{index+1}` and no goals. `expect` and `expect_advisories`
/// may be left out (nothing expected); expected entries may carry two
/// extensions of the public format, `trigger` (compared) and `note` (not).
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let root: serde_json::Value = serde_json::from_str(text).map_err(|error| ScenarioError::Json {
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    let top = Fields::new(&root, "", &["name", "today", "custody_holders", "events", "expect", "expect_advisories"])?;
    let name = top.string("name")?.to_owned();
    let today = top.date("today")?;
    let custody_holders = custody_holders(top.required("custody_holders")?)?;
    let events = events::parse_all(as_array(top.required("events")?, "events")?, &custody_holders)?;
    let expect = match top.optional("expect") {
        Some(value) => as_array(value, "expect")?
            .iter()
            .enumerate()
            .map(|(index, item)| expected_obligation(item, &format!("expect[{index}]"), &custody_holders))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let expect_advisories = match top.optional("expect_advisories") {
        Some(value) => as_array(value, "expect_advisories")?
            .iter()
            .enumerate()
            .map(|(index, item)| advisory_id(item, &format!("expect_advisories[{index}]")))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Scenario { name, today, custody_holders, events, expect, expect_advisories })
}

/// The `custody_holders` list: 1 to 4 distinct valid party ids.
fn custody_holders(value: &serde_json::Value) -> Result<Vec<PartyId>, ScenarioError> {
    let items = as_array(value, "custody_holders")?;
    if items.is_empty() || items.len() > MAX_CUSTODY_HOLDERS {
        return Err(ScenarioError::invalid(
            "custody_holders",
            format!("has {} entries; a case has 1 to {MAX_CUSTODY_HOLDERS} custody holders", items.len()),
        ));
    }
    let mut holders: Vec<PartyId> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let path = format!("custody_holders[{index}]");
        let holder = PartyId::parse(&path, as_str(item, &path)?)
            .map_err(|violations| ScenarioError::from_violations(&path, &violations))?;
        if holders.contains(&holder) {
            return Err(ScenarioError::invalid(&path, format!("{:?} is listed twice", holder.as_str())));
        }
        holders.push(holder);
    }
    Ok(holders)
}

/// One of the scenario's custody holders, named at `path`.
fn known_holder(text: &str, path: &str, known: &[PartyId]) -> Result<PartyId, ScenarioError> {
    known.iter().find(|holder| holder.as_str() == text).cloned().ok_or_else(|| ScenarioError::UnknownCustodyHolder {
        path: path.to_owned(),
        value: quote(text),
        known: known.iter().map(|holder| holder.as_str().to_owned()).collect(),
    })
}

/// One entry of `expect`.
fn expected_obligation(
    value: &serde_json::Value,
    path: &str,
    known: &[PartyId],
) -> Result<ExpectedObligation, ScenarioError> {
    let fields = Fields::new(value, path, &["rule", "custody_holder", "trigger", "status", "due", "met_on", "note"])?;
    let rule_choices: Vec<(&str, RuleId)> = RuleId::ALL.iter().map(|rule| (rule.as_str(), *rule)).collect();
    let rule = fields.choice("rule", "rule", &rule_choices)?;
    let holder_path = fields.path_of("custody_holder");
    let custody_holder = match fields.optional_string("custody_holder")? {
        Some(_) if !rule.is_per_custody_holder() => {
            return Err(ScenarioError::invalid(
                &holder_path,
                format!("{rule} is a duty of the case, not of one custody holder; leave custody_holder out"),
            ));
        }
        Some(text) => Some(known_holder(text, &holder_path, known)?),
        None if rule.is_per_custody_holder() => {
            return Err(ScenarioError::invalid(
                &holder_path,
                format!("is required: {rule} is owed to each custody holder separately"),
            ));
        }
        None => None,
    };
    let status_choices: Vec<(&str, Status)> = Status::ALL.iter().map(|status| (status.as_str(), *status)).collect();
    let status = match fields.optional_string("status")? {
        Some(text) => Some(choose(text, &fields.path_of("status"), "status", &status_choices)?),
        None => None,
    };
    Ok(ExpectedObligation {
        rule,
        custody_holder,
        trigger: fields.optional_date("trigger")?,
        status,
        due: fields.optional_date("due")?,
        met_on: fields.optional_date("met_on")?,
        note: fields.optional_string("note")?.map(str::to_owned),
    })
}

/// One entry of `expect_advisories`.
fn advisory_id(value: &serde_json::Value, path: &str) -> Result<AdvisoryId, ScenarioError> {
    let choices: Vec<(&str, AdvisoryId)> = AdvisoryId::ALL.iter().map(|id| (id.as_str(), *id)).collect();
    choose(as_str(value, path)?, path, "advisory", &choices)
}

#[cfg(test)]
mod tests;
