//! Unit tests of the 2024 rules, one group per rule, each with its edges.

use bro_domain::{EventKind, GoalAim, PlacementBasis, PlacementEndReason, PlanKind, SupportMeasure};

use crate::testkit::*;
use crate::{AdvisoryId, RuleId, Status};

use PlacementBasis::{Bl46, Bl47, Lbu14};
use SupportMeasure::{Bl32_1_2, Bl32_1_5, Bl35, Bl75, OtherLegislation};

const P1: &str = "parent-1";
const P2: &str = "parent-2";

/// A placement on 2026-01-15 with nothing else.
fn placement() -> History {
    History::default().on("2026-01-15", placed(Bl46))
}

// --- bl75 -----------------------------------------------------------------

#[test]
fn bl75_is_owed_to_each_custody_holder_for_every_basis() {
    for basis in [Bl46, Bl47, Lbu14] {
        let history = History::default().on("2026-01-15", placed(basis)).on("2026-01-15", offered(P1));
        let evaluation = history.evaluate(&[P1, P2], "2026-01-16");
        let duties = of(&evaluation, RuleId::Bl75);
        assert_eq!(duties.len(), 2);
        assert_eq!((duties[0].custody_holder.as_ref(), duties[0].status), (Some(&party(P1)), Status::Met));
        assert_eq!((duties[1].custody_holder.as_ref(), duties[1].status), (Some(&party(P2)), Status::Overdue));
        assert_eq!(duties[1].due, Some(day("2026-01-15")));
        assert_eq!(duties[0].cites, "barnets lov § 75");
    }
}

#[test]
fn bl75_counts_an_offer_made_in_connection_with_the_placement_before_its_start() {
    // Revision 2, amendment 1: an offer before the start meets the duty, on its own date.
    let history =
        History::default().on("2026-01-14", offered(P2)).on("2026-01-15", offered(P1)).on("2026-01-15", placed(Bl47));
    let evaluation = history.evaluate(&[P1, P2], "2026-01-15");
    let duties = of(&evaluation, RuleId::Bl75);
    assert_eq!((duties[0].status, duties[0].met_on, duties[0].met_by), (Status::Met, Some(day("2026-01-15")), Some(1)));
    assert_eq!((duties[1].status, duties[1].met_on, duties[1].met_by), (Status::Met, Some(day("2026-01-14")), Some(0)));
}

#[test]
fn bl75_an_offer_of_the_previous_placement_does_not_count_for_the_next() {
    let history = History::default()
        .on("2025-06-01", placed(Bl46))
        .on("2025-06-01", offered(P1))
        .on("2025-12-01", EventKind::PlacementEnded { reason: PlacementEndReason::Homecoming })
        .on("2026-01-10", offered(P2))
        .on("2026-02-01", placed(Bl47));
    let evaluation = history.evaluate(&[P1, P2], "2026-02-01");
    let duties = of(&evaluation, RuleId::Bl75);
    let of_second: Vec<_> = duties.iter().filter(|d| d.trigger == day("2026-02-01")).collect();
    // parent-1's offer was made in the first placement; on the due date the duty is open.
    assert_eq!((of_second[0].status, of_second[0].met_on), (Status::Open, None));
    // parent-2 was offered after the first placement ended, before the second started.
    assert_eq!((of_second[1].status, of_second[1].met_on), (Status::Met, Some(day("2026-01-10"))));
    let of_first: Vec<_> = duties.iter().filter(|d| d.trigger == day("2025-06-01")).collect();
    assert_eq!(of_first[1].status, Status::Overdue, "the offer after the first placement ended is the second's");
}

#[test]
fn bl75_late_offer_meets_on_its_date_and_each_placement_has_its_own_duty() {
    let history = placement()
        .on("2026-02-01", offered(P1))
        .on("2026-03-01", EventKind::PlacementEnded { reason: PlacementEndReason::Homecoming })
        .on("2026-06-01", placed(Bl47));
    let evaluation = history.evaluate(&[P1], "2026-06-10");
    let duties = of(&evaluation, RuleId::Bl75);
    assert_eq!(duties.len(), 2);
    assert_eq!((duties[0].status, duties[0].met_on), (Status::Met, Some(day("2026-02-01"))));
    assert_eq!((duties[1].status, duties[1].due), (Status::Overdue, Some(day("2026-06-01"))));
}

// --- bl75-approval --------------------------------------------------------

#[test]
fn bl75_approval_has_no_deadline_and_is_met_by_the_next_decision() {
    let history = placement()
        .on("2026-01-15", offered(P1))
        .on("2026-01-16", accepted(P1))
        .on("2026-01-17", chosen(P1))
        .on("2026-01-20", EventKind::SupportPersonRefused { custody_holder: party(P1), reason: String::new() })
        .on("2026-01-21", chosen(P1));
    let evaluation = history.evaluate(&[P1], "2030-01-01");
    let duties = of(&evaluation, RuleId::Bl75Approval);
    assert_eq!(duties.len(), 2);
    assert_eq!((duties[0].status, duties[0].met_on), (Status::Met, Some(day("2026-01-20"))));
    // Years later, still open: there is no deadline.
    assert_eq!((duties[1].status, duties[1].due), (Status::Open, None));
}

#[test]
fn bl75_approval_is_per_custody_holder() {
    let history = placement()
        .on("2026-01-15", offered(P1))
        .on("2026-01-15", offered(P2))
        .on("2026-01-17", chosen(P1))
        .on("2026-01-17", chosen(P2))
        .on("2026-01-18", approved(P2));
    let evaluation = history.evaluate(&[P1, P2], "2026-02-01");
    let duties = of(&evaluation, RuleId::Bl75Approval);
    assert_eq!((duties[0].custody_holder.as_ref(), duties[0].status), (Some(&party(P1)), Status::Open));
    assert_eq!((duties[1].custody_holder.as_ref(), duties[1].status), (Some(&party(P2)), Status::Met));
}

// --- bl76 -----------------------------------------------------------------

#[test]
fn bl76_is_met_by_a_refusal_but_not_by_a_decision_before_the_placement() {
    let history = History::default()
        .on("2026-01-10", granted(P1, Bl35))
        .on("2026-01-15", placed(Bl46))
        .on("2026-01-20", refused(P2, Bl32_1_5));
    let evaluation = history.evaluate(&[P1, P2], "2026-02-01");
    let duty = only(&evaluation, RuleId::Bl76);
    assert_eq!((duty.status, duty.met_on, duty.custody_holder.as_ref()), (Status::Met, Some(day("2026-01-20")), None));
    let before = History::default().on("2026-01-10", granted(P1, Bl35)).on("2026-01-15", placed(Bl46));
    assert_eq!(only(&before.evaluate(&[P1], "2026-02-01"), RuleId::Bl76).status, Status::Overdue);
}

// --- bl32-consent ---------------------------------------------------------

#[test]
fn bl32_consent_holds_only_if_given_before_and_not_withdrawn() {
    let history = placement()
        .on("2026-01-16", consent(P1, "bl32"))
        .on("2026-01-17", granted(P1, Bl32_1_2)) // met by the consent of 01-16
        .on("2026-01-18", withdrawn(P1, "bl32"))
        .on("2026-01-19", granted(P1, Bl32_1_5)) // violated: withdrawn
        .on("2026-01-20", consent(P1, "bl32")) // does not cure the grant of 01-19
        .on("2026-01-21", refused(P1, Bl32_1_2)) // a refusal needs no consent
        .on("2026-01-22", granted(P1, Bl35)); // not a § 32 stk. 1 measure
    let evaluation = history.evaluate(&[P1], "2026-02-01");
    let duties = of(&evaluation, RuleId::Bl32Consent);
    assert_eq!(duties.len(), 2);
    assert_eq!((duties[0].status, duties[0].met_on, duties[0].met_by), (Status::Met, Some(day("2026-01-16")), Some(1)));
    assert_eq!((duties[1].status, duties[1].met_on, duties[1].due), (Status::Violated, None, Some(day("2026-01-19"))));
}

#[test]
fn bl32_consent_needs_that_parents_consent_in_scope_bl32() {
    let history = placement()
        .on("2026-01-16", consent(P2, "bl32"))
        .on("2026-01-16", consent(P1, "share:jobcenter"))
        .on("2026-01-17", granted(P1, Bl32_1_2));
    let duty = only(&history.evaluate(&[P1, P2], "2026-01-17"), RuleId::Bl32Consent);
    assert_eq!((duty.status, duty.custody_holder.as_ref()), (Status::Violated, Some(&party(P1))));
}

#[test]
fn bl32_consent_withdrawn_after_the_grant_leaves_it_met() {
    let history = placement()
        .on("2026-01-16", consent(P1, "bl32"))
        .on("2026-01-17", granted(P1, Bl32_1_2))
        .on("2026-01-17", withdrawn(P1, "bl32"));
    assert_eq!(only(&history.evaluate(&[P1], "2026-03-01"), RuleId::Bl32Consent).status, Status::Met);
}

// --- bl77 -----------------------------------------------------------------

/// A placement with support starting on 2026-01-20.
fn supported() -> History {
    placement().on("2026-01-15", offered(P1)).on("2026-01-20", started(P1, Bl75))
}

#[test]
fn bl77_needs_a_support_start_and_is_triggered_once() {
    assert!(of(&placement().evaluate(&[P1], "2026-03-01"), RuleId::Bl77).is_empty());
    let history = supported().on("2026-02-01", started(P1, OtherLegislation));
    let duty = only(&history.evaluate(&[P1], "2026-03-01"), RuleId::Bl77);
    assert_eq!((duty.trigger, duty.due, duty.status), (day("2026-01-20"), Some(day("2026-01-20")), Status::Overdue));
    assert_eq!(duty.cites, "barnets lov § 77, stk. 1");
}

#[test]
fn bl77_plan_prepared_before_support_already_meets_it() {
    let history = placement().on("2026-01-16", plan77()).on("2026-01-20", started(P1, Bl35));
    let duty = only(&history.evaluate(&[P1], "2026-03-01"), RuleId::Bl77);
    assert_eq!((duty.status, duty.met_on), (Status::Met, Some(day("2026-01-16"))));
}

#[test]
fn bl77_omission_counts_only_with_reasons() {
    let blank = supported().on("2026-01-21", omitted(" \n\t"));
    assert_eq!(only(&blank.evaluate(&[P1], "2026-03-01"), RuleId::Bl77).status, Status::Overdue);
    let reasoned = supported().on("2026-01-21", omitted("no contact possible"));
    assert_eq!(only(&reasoned.evaluate(&[P1], "2026-03-01"), RuleId::Bl77).status, Status::Met);
}

#[test]
fn bl77_holistic_plan_counts_from_the_last_covered_consent() {
    let history = supported()
        .on("2026-01-22", plan78(&[P1, P2]))
        .on("2026-01-23", consent(P1, "bl78"))
        .on("2026-01-23", consent(P2, "share:psychiatry"));
    let evaluation = history.evaluate(&[P1, P2], "2026-03-01");
    assert_eq!(only(&evaluation, RuleId::Bl77).status, Status::Overdue);
    let completed = history.on("2026-02-03", consent(P2, "bl78"));
    let duty = only(&completed.evaluate(&[P1, P2], "2026-03-01"), RuleId::Bl77);
    assert_eq!((duty.status, duty.met_on, duty.met_by), (Status::Met, Some(day("2026-02-03")), Some(6)));
}

#[test]
fn bl77_reopens_on_withdrawal_and_is_met_again_by_renewed_consent() {
    let history = supported()
        .on("2026-01-22", consent(P1, "bl78"))
        .on("2026-01-23", plan78(&[P1]))
        .on("2026-03-02", withdrawn(P1, "bl78"));
    let duty = only(&history.evaluate(&[P1], "2026-03-03"), RuleId::Bl77);
    assert_eq!(
        (duty.status, duty.due, duty.reopened_on, duty.met_on),
        (Status::Overdue, Some(day("2026-03-02")), Some(day("2026-03-02")), None)
    );
    // Evaluated before the withdrawal, it was met.
    let before = only(&history.evaluate(&[P1], "2026-03-01"), RuleId::Bl77);
    assert_eq!((before.status, before.due, before.reopened_on), (Status::Met, Some(day("2026-01-20")), None));
    let renewed = history.on("2026-03-10", consent(P1, "bl78"));
    let duty = only(&renewed.evaluate(&[P1], "2026-04-01"), RuleId::Bl77);
    assert_eq!((duty.status, duty.due, duty.met_on), (Status::Met, Some(day("2026-03-02")), Some(day("2026-03-10"))));
}

#[test]
fn bl77_withdrawal_before_support_starts_does_not_reopen() {
    let history = placement()
        .on("2026-01-16", plan78(&[P1]))
        .on("2026-01-16", consent(P1, "bl78"))
        .on("2026-01-17", withdrawn(P1, "bl78"))
        .on("2026-01-20", started(P1, Bl35));
    let duty = only(&history.evaluate(&[P1], "2026-01-20"), RuleId::Bl77);
    assert_eq!((duty.status, duty.due, duty.reopened_on), (Status::Open, Some(day("2026-01-20")), None));
}

#[test]
fn bl77_plan_prepared_while_the_holistic_plan_holds_survives_the_withdrawal() {
    let history = supported()
        .on("2026-01-22", consent(P1, "bl78"))
        .on("2026-01-23", plan78(&[P1]))
        .on("2026-02-10", plan77())
        .on("2026-03-02", withdrawn(P1, "bl78"));
    let duty = only(&history.evaluate(&[P1], "2026-04-01"), RuleId::Bl77);
    assert_eq!((duty.status, duty.met_on, duty.reopened_on), (Status::Met, Some(day("2026-01-23")), None));
}

// --- bl77-2 ---------------------------------------------------------------

#[test]
fn bl77_2_needs_bl47_siblings_and_neglect_or_serious_social_conditions() {
    use bro_domain::RecommendationReason::{ChildConditions, Neglect, Other, SeriousSocialConditions};
    let recommended = |basis, siblings, reason| EventKind::PlacementRecommended {
        basis,
        siblings_under_18_in_household: siblings,
        reason,
    };
    let cases = [
        (recommended(Bl47, true, Neglect), 1),
        (recommended(Bl47, true, SeriousSocialConditions), 1),
        (recommended(Bl47, true, ChildConditions), 0),
        (recommended(Bl47, true, Other), 0),
        (recommended(Bl47, false, Neglect), 0),
        (recommended(Bl46, true, Neglect), 0),
        (recommended(Lbu14, true, SeriousSocialConditions), 0),
    ];
    for (event, expected) in cases {
        let history = History::default().on("2026-02-02", event.clone()).on("2026-02-03", declined(P1));
        let evaluation = history.evaluate(&[P1], "2026-02-03");
        let duties = of(&evaluation, RuleId::Bl77Stk2);
        assert_eq!(duties.len(), expected, "{event:?}");
        if let Some(duty) = duties.first() {
            assert_eq!((duty.status, duty.due), (Status::Overdue, Some(day("2026-02-02"))));
            assert_eq!(duty.cites, "barnets lov § 77, stk. 2");
        }
    }
}

// --- bl78-consent ---------------------------------------------------------

#[test]
fn bl78_consent_per_covered_holder_late_consent_counts() {
    let history = placement()
        .on("2026-01-16", consent(P1, "bl78"))
        .on("2026-01-17", withdrawn(P1, "bl78"))
        .on("2026-01-20", plan78(&[P1, P2]))
        .on("2026-02-05", consent(P2, "bl78"));
    let evaluation = history.evaluate(&[P1, P2], "2026-03-01");
    let duties = of(&evaluation, RuleId::Bl78Consent);
    assert_eq!(duties.len(), 2);
    // parent-1's consent was withdrawn before the plan: it does not hold.
    assert_eq!((duties[0].status, duties[0].due), (Status::Overdue, Some(day("2026-01-20"))));
    assert_eq!((duties[1].status, duties[1].met_on), (Status::Met, Some(day("2026-02-05"))));
    assert!(of(&placement().on("2026-01-20", plan77()).evaluate(&[P1], "2026-03-01"), RuleId::Bl78Consent).is_empty());
}

// --- bl79-2 ---------------------------------------------------------------

#[test]
fn bl79_2_needs_a_plan_in_the_placement() {
    let no_plan = placement().on("2026-02-01", omitted("reasons given"));
    assert!(of(&no_plan.evaluate(&[P1], "2026-06-01"), RuleId::Bl79Stk2).is_empty());
    let after_end = placement()
        .on("2026-02-01", EventKind::PlacementEnded { reason: PlacementEndReason::Other })
        .on("2026-02-02", plan77());
    assert!(of(&after_end.evaluate(&[P1], "2026-06-01"), RuleId::Bl79Stk2).is_empty());
}

#[test]
fn bl79_2_is_due_three_months_after_the_placement_and_met_late() {
    let history = History::default()
        .on("2025-01-31", placed(Bl46))
        .on("2025-02-20", plan(PlanKind::Bl78, &[P1], Vec::new()))
        .on("2025-05-02", EventKind::RevisionOffered);
    let duty = only(&history.evaluate(&[P1], "2025-06-01"), RuleId::Bl79Stk2);
    assert_eq!(
        (duty.trigger, duty.due, duty.status, duty.met_on),
        (day("2025-02-20"), Some(day("2025-04-30")), Status::Met, Some(day("2025-05-02")))
    );
}

#[test]
fn bl79_2_offer_before_the_plan_does_not_count() {
    let history = placement().on("2026-01-20", EventKind::RevisionOffered).on("2026-01-25", plan77());
    let duty = only(&history.evaluate(&[P1], "2026-04-16"), RuleId::Bl79Stk2);
    assert_eq!((duty.status, duty.due), (Status::Overdue, Some(day("2026-04-15"))));
}

// --- bl79-3 ---------------------------------------------------------------

#[test]
fn bl79_3_chains_revisions_and_assessments() {
    let history = History::default()
        .on("2028-02-29", EventKind::RevisionMade)
        .on("2028-02-29", EventKind::RevisionAssessed)
        .on("2029-03-01", EventKind::RevisionAssessed);
    let evaluation = history.evaluate(&[P1], "2029-03-01");
    let duties = of(&evaluation, RuleId::Bl79Stk3);
    assert_eq!(duties.len(), 3);
    assert_eq!((duties[0].status, duties[0].met_by), (Status::Met, Some(1)));
    // Due 2029-02-28 (leap-day clamp), met a day late: still met, on its date.
    assert_eq!(
        (duties[1].due, duties[1].status, duties[1].met_on),
        (Some(day("2029-02-28")), Status::Met, Some(day("2029-03-01")))
    );
    assert_eq!((duties[2].due, duties[2].status), (Some(day("2030-03-01")), Status::Open));
}

// --- bl100-3 and bl103-2 --------------------------------------------------

#[test]
fn bl100_3_open_met_violated_overdue() {
    let start = || History::default().on("2025-12-31", EventKind::HomecomingPeriodStarted);
    let status = |history: History, today| only(&history.evaluate(&[P1], today), RuleId::Bl100Stk3).status;
    assert_eq!(status(start(), "2026-06-30"), Status::Open);
    assert_eq!(status(start(), "2026-07-01"), Status::Overdue);
    assert_eq!(status(start().on("2026-06-30", EventKind::HomecomingPeriodEnded), "2026-07-01"), Status::Met);
    let late = start().on("2026-07-05", EventKind::HomecomingPeriodEnded);
    let duty = only(&late.evaluate(&[P1], "2026-08-01"), RuleId::Bl100Stk3);
    assert_eq!((duty.status, duty.met_on, duty.met_by), (Status::Violated, Some(day("2026-07-05")), Some(1)));
    // Evaluated before the late end happened, it was overdue.
    assert_eq!(status(late, "2026-07-03"), Status::Overdue);
}

#[test]
fn bl103_2_resumed_by_the_due_date_or_violated() {
    let start = || History::default().on("2026-01-05", EventKind::ContactSuspended);
    let duty = |history: History| only(&history.evaluate(&[P1], "2026-04-01"), RuleId::Bl103Stk2);
    let on_time = duty(start().on("2026-03-02", EventKind::ContactResumed));
    assert_eq!((on_time.due, on_time.status), (Some(day("2026-03-02")), Status::Met));
    assert_eq!(duty(start().on("2026-03-03", EventKind::ContactResumed)).status, Status::Violated);
    assert_eq!(duty(start()).status, Status::Overdue);
    assert_eq!(on_time.cites, "barnets lov § 103, stk. 2");
}

// --- the evaluation as a whole --------------------------------------------

#[test]
fn events_after_today_are_not_yet_in_effect() {
    let history = supported().on("2026-02-01", plan77());
    let evaluation = history.evaluate(&[P1], "2026-01-25");
    assert_eq!(only(&evaluation, RuleId::Bl77).status, Status::Overdue);
    assert!(of(&evaluation, RuleId::Bl79Stk2).is_empty());
}

#[test]
fn obligations_come_in_trigger_order_under_the_named_rule_set() {
    let history = supported().on("2026-01-22", plan77());
    let evaluation = history.evaluate(&[P1], "2026-03-01");
    assert_eq!(evaluation.ruleset, "barnets-lov-2024-01-01");
    assert!(evaluation.obligations.windows(2).all(|pair| pair[0].trigger <= pair[1].trigger));
    let rules: Vec<&str> = evaluation.obligations.iter().map(|o| o.rule.as_str()).collect();
    assert_eq!(rules, ["bl75", "bl76", "bl77", "bl79-2"]);
}

#[test]
fn an_empty_case_has_no_obligations() {
    let evaluation = History::default().evaluate(&[], "2026-01-01");
    assert!(evaluation.obligations.is_empty() && evaluation.advisories.is_empty());
}

// --- advisories -----------------------------------------------------------

fn advisories(history: &History, holders: &[&str], today: &str) -> Vec<(AdvisoryId, Option<String>)> {
    history
        .evaluate(holders, today)
        .advisories
        .into_iter()
        .map(|advisory| (advisory.id, advisory.custody_holder.map(|holder| holder.to_string())))
        .collect()
}

#[test]
fn repeat_offer_advisory_follows_the_latest_answer() {
    let declined_once = placement().on("2026-01-15", offered(P1)).on("2026-01-16", declined(P1));
    assert_eq!(
        advisories(&declined_once, &[P1, P2], "2026-02-01"),
        [(AdvisoryId::RepeatSupportPersonOffer, Some(P1.to_owned()))]
    );
    let offered_again = History { events: declined_once.events.clone() }.on("2026-02-01", offered(P1));
    assert!(advisories(&offered_again, &[P1], "2026-02-01").is_empty());
    let accepted_later = History { events: declined_once.events.clone() }.on("2026-01-20", accepted(P1));
    assert!(advisories(&accepted_later, &[P1], "2026-02-01").is_empty());
    // Declined again after the new offer: the advice comes back.
    let declined_again = offered_again.on("2026-02-02", declined(P1));
    assert_eq!(advisories(&declined_again, &[P1], "2026-02-02").len(), 1);
}

#[test]
fn goal_advisories_read_the_current_plans_only() {
    let vague = vec![goal("g1", "  ", Some(GoalAim::Contact)), goal("g2", "attends contact weekly", None)];
    let history = placement().on("2026-01-20", plan(PlanKind::Bl77, &[], vague));
    let found = advisories(&history, &[P1], "2026-02-01");
    assert_eq!(found, [(AdvisoryId::GoalWithoutChangeInParents, None), (AdvisoryId::GoalWithoutAim, None)]);
    let message = &history.evaluate(&[P1], "2026-02-01").advisories[0].message;
    assert!(message.contains("\"g1\"") && message.contains("parent action plan"), "{message}");
    // A later § 77 plan with good goals supersedes the vague one.
    let revised = history.on(
        "2026-03-01",
        plan(PlanKind::Bl77, &[], vec![goal("g1", "keeps a daily routine", Some(GoalAim::Homecoming))]),
    );
    assert!(advisories(&revised, &[P1], "2026-03-01").is_empty());
}

#[test]
fn several_sectors_without_a_holistic_plan_in_force() {
    use bro_domain::Sector::{Jobcentre, Psychiatry};
    let contacts = placement()
        .on("2026-01-16", sector_contact("c1", P1, Jobcentre))
        .on("2026-01-16", sector_contact("c2", P1, Jobcentre))
        .on("2026-01-17", sector_contact("c3", P2, Psychiatry));
    assert!(advisories(&contacts, &[P1, P2], "2026-02-01").is_empty(), "one sector each");
    let two_sectors = contacts.on("2026-01-18", sector_contact("c4", P1, Psychiatry));
    let expected = [(AdvisoryId::NoCoordinatorForSeveralSectors, Some(P1.to_owned()))];
    assert_eq!(advisories(&two_sectors, &[P1, P2], "2026-02-01"), expected);
    let unconsented = two_sectors.on("2026-01-20", plan78(&[P1]));
    assert_eq!(advisories(&unconsented, &[P1, P2], "2026-02-01"), expected);
    let consented = unconsented.on("2026-01-21", consent(P1, "bl78"));
    assert_eq!(advisories(&consented, &[P1, P2], "2026-02-01"), expected, "in force, but nobody named");
    let message = &consented.evaluate(&[P1, P2], "2026-02-01").advisories[0].message;
    assert!(message.contains("names no coordinator"), "{message}");
    let coordinator = bro_domain::Coordinator {
        person: bro_domain::ContactPerson { display_name: "K".into(), phone: "1".into(), ..Default::default() },
        ..Default::default()
    };
    let plan_id = match &consented.events.iter().rev().nth(1).expect("the plan").kind {
        EventKind::PlanPrepared { plan_id, .. } => plan_id.clone(),
        other => panic!("not the plan: {other:?}"),
    };
    let consented = consented.on("2026-01-21", EventKind::PlanCoordinatorNamed { plan_id, coordinator });
    assert!(advisories(&consented, &[P1, P2], "2026-02-01").is_empty());
    let ended = History { events: consented.events.clone() }
        .on("2026-01-22", withdrawn(P1, "bl78"))
        .on("2026-01-23", EventKind::SectorContactEnded { contact_id: "c4".into() });
    assert!(advisories(&ended, &[P1, P2], "2026-02-01").is_empty());
}
