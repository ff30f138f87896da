//! A § 78 holistic plan (barnets lov) as an adapter writes a sector's view of
//! it: the checks every view makes before writing (a batch with a plan
//! carries no events; the plan is named, sent as a version, in a known
//! state), the cap on its lists, the words for the sectors, and the case
//! items a conflict may name.

use crate::ids::is_external_id;
use crate::proto::{AdapterBatch, HolisticPlan, HolisticPlanState, Sector};
use crate::{AdapterError, invalid};

/// Most entries in one list of a plan view, as bro caps a list.
pub const MAX_VIEW_LIST: usize = 200;
/// Longest case item path a conflict may name, in bytes.
pub const MAX_ITEM: usize = 512;

/// What a plan view is written from, once [`checked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanToSend {
    /// The case of the plan's name: `cases/{case}`.
    pub case: String,
    /// The plan's own id: the last segment of its name.
    pub plan_id: String,
    /// The plan's state; never unspecified.
    pub state: HolisticPlanState,
}

/// Checks a batch carrying `plan` before its view is written: no events
/// beside it; a name `cases/{case}/holisticPlans/{plan}`; a version of 1 or
/// more (a proposal is not sent); a state. The first problem is refused.
pub fn checked(batch: &AdapterBatch, plan: &HolisticPlan) -> Result<PlanToSend, AdapterError> {
    if !batch.events.is_empty() {
        return Err(invalid("events", "a batch with a holistic plan carries no events"));
    }
    let parts: Vec<&str> = plan.name.split('/').collect();
    let (case, plan_id) = match parts.as_slice() {
        ["cases", case, "holisticPlans", plan] if !case.is_empty() && is_external_id(plan) => {
            (format!("cases/{case}"), (*plan).to_owned())
        }
        _ => return Err(invalid("holisticPlan.name", "is not a plan name cases/{case}/holisticPlans/{plan}")),
    };
    if plan.version < 1 {
        return Err(invalid("holisticPlan.version", "is required (1 or more): a proposal is not sent"));
    }
    let state = match HolisticPlanState::try_from(plan.state) {
        Ok(HolisticPlanState::Unspecified) | Err(_) => {
            return Err(invalid(
                "holisticPlan.state",
                "proposed, in force, agreement withdrawn or superseded is required",
            ));
        }
        Ok(state) => state,
    };
    Ok(PlanToSend { case, plan_id, state })
}

/// Refuses a list of the plan with more than [`MAX_VIEW_LIST`] entries.
pub fn capped<T>(list: &[T], field: &str) -> Result<(), AdapterError> {
    if list.len() > MAX_VIEW_LIST {
        return Err(invalid(field, format!("has {} entries; at most {MAX_VIEW_LIST} are written", list.len())));
    }
    Ok(())
}

/// A sector's Danish word; the children's authority (unspecified) is `myndighed`.
pub fn sector_word(sector: i32, field: &str) -> Result<&'static str, AdapterError> {
    match Sector::try_from(sector) {
        Ok(Sector::Unspecified) => Ok("myndighed"),
        Ok(Sector::Jobcentre) => Ok("jobcenter"),
        Ok(Sector::Psychiatry) => Ok("psykiatri"),
        Ok(Sector::AddictionTreatment) => Ok("misbrugsbehandling"),
        Ok(Sector::Health) => Ok("sundhed"),
        Ok(Sector::Other) => Ok("andet"),
        Err(_) => Err(invalid(field, "is not a sector")),
    }
}

/// Whether a conflict's item is a path within the case: 1 to [`MAX_ITEM`]
/// printable ASCII bytes, no spaces.
fn is_case_item(item: &str) -> bool {
    !item.is_empty() && item.len() <= MAX_ITEM && item.bytes().all(|b| b.is_ascii_graphic())
}

/// Refuses a conflict's items (at `at`, e.g. `holisticPlan.conflicts[0]`)
/// when there are too many or one is not a path within the case.
pub fn check_items(items: &[String], at: &str) -> Result<(), AdapterError> {
    capped(items, &format!("{at}.items"))?;
    match items.iter().position(|item| !is_case_item(item)) {
        Some(j) => Err(invalid(format!("{at}.items[{j}]"), "is not a path within the case")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, version: i64, state: HolisticPlanState) -> HolisticPlan {
        HolisticPlan { name: name.into(), version, state: state as i32, ..Default::default() }
    }

    fn refused_field(r: Result<PlanToSend, AdapterError>) -> String {
        match r {
            Err(AdapterError::Invalid(v)) => v.first().map(|f| f.field.clone()).unwrap_or_default(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_plan_is_checked_before_its_view_is_written() {
        let batch = AdapterBatch::default();
        let ok = checked(&batch, &plan("cases/c1/holisticPlans/p1", 2, HolisticPlanState::InForce));
        assert_eq!(
            ok.ok(),
            Some(PlanToSend { case: "cases/c1".into(), plan_id: "p1".into(), state: HolisticPlanState::InForce })
        );
        let named = |n: &str| checked(&batch, &plan(n, 1, HolisticPlanState::Proposed));
        assert_eq!(refused_field(named("cases//holisticPlans/p1")), "holisticPlan.name");
        assert_eq!(refused_field(named("cases/c1/plans/p1")), "holisticPlan.name");
        let unsent = plan("cases/c1/holisticPlans/p1", 0, HolisticPlanState::Proposed);
        assert_eq!(refused_field(checked(&batch, &unsent)), "holisticPlan.version");
        let stateless = plan("cases/c1/holisticPlans/p1", 1, HolisticPlanState::Unspecified);
        assert_eq!(refused_field(checked(&batch, &stateless)), "holisticPlan.state");
        let with_events = AdapterBatch { events: vec![Default::default()], ..Default::default() };
        assert_eq!(refused_field(checked(&with_events, &stateless)), "events", "events are refused first");
    }

    #[test]
    fn lists_sectors_and_items() {
        assert!(capped(&[0u8; MAX_VIEW_LIST], "x").is_ok() && capped(&[0u8; MAX_VIEW_LIST + 1], "x").is_err());
        assert_eq!(sector_word(Sector::Unspecified as i32, "s").ok(), Some("myndighed"));
        assert!(sector_word(99, "s").is_err());
        assert!(is_case_item("appointments/a1") && !is_case_item("") && !is_case_item("a b"));
        assert!(!is_case_item(&"x".repeat(MAX_ITEM + 1)));
        let items = |list: &[&str]| list.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
        assert!(check_items(&items(&["appointments/a1", "goals/g1"]), "c").is_ok());
        let refused = check_items(&items(&["goals/g1", "a b"]), "c");
        assert!(matches!(refused, Err(AdapterError::Invalid(v)) if v[0].field == "c.items[1]"));
    }
}
