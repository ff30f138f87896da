//! Golden tests: the rendered JSON of whole scenarios, reviewed by hand and
//! pinned with `expect_test` (refresh with `UPDATE_EXPECT=1` and review the diff).

use expect_test::{Expect, expect};

/// Parses, evaluates and renders `text`, comparing the pretty JSON with `golden`.
fn assert_rendered(text: &str, golden: Expect) {
    let scenario = bro_rules::scenario::parse(text).expect("scenario parses");
    let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
    let rendered = serde_json::to_string_pretty(&bro_rules::render_json(&evaluation)).expect("JSON renders");
    golden.assert_eq(&rendered);
}

#[test]
fn shared_placement_with_consent() {
    assert_rendered(
        include_str!("../../../../shared/scenarios/01-placement-with-consent.json"),
        expect![[r#"
            {
              "advisories": [],
              "obligations": [
                {
                  "cites": "barnets lov § 75",
                  "custody_holder": "parent-1",
                  "due": "2026-01-15",
                  "duty": "decide on offering the custody holder a support person",
                  "met_by": 1,
                  "met_on": "2026-01-15",
                  "rule": "bl75",
                  "status": "met",
                  "trigger": "2026-01-15",
                  "triggered_by": 0
                },
                {
                  "cites": "barnets lov § 75",
                  "custody_holder": "parent-2",
                  "due": "2026-01-15",
                  "duty": "decide on offering the custody holder a support person",
                  "met_by": 2,
                  "met_on": "2026-01-15",
                  "rule": "bl75",
                  "status": "met",
                  "trigger": "2026-01-15",
                  "triggered_by": 0
                },
                {
                  "cites": "barnets lov § 76",
                  "due": "2026-01-15",
                  "duty": "decide on support to the parents during the placement",
                  "met_by": 8,
                  "met_on": "2026-02-01",
                  "rule": "bl76",
                  "status": "met",
                  "trigger": "2026-01-15",
                  "triggered_by": 0
                },
                {
                  "cites": "barnets lov § 75",
                  "custody_holder": "parent-1",
                  "duty": "approve or refuse the support person the custody holder chose",
                  "met_by": 5,
                  "met_on": "2026-01-20",
                  "rule": "bl75-approval",
                  "status": "met",
                  "trigger": "2026-01-18",
                  "triggered_by": 4
                },
                {
                  "cites": "barnets lov § 77, stk. 1",
                  "due": "2026-01-22",
                  "duty": "prepare a parent action plan",
                  "met_by": 9,
                  "met_on": "2026-02-10",
                  "rule": "bl77",
                  "status": "met",
                  "trigger": "2026-01-22",
                  "triggered_by": 6
                },
                {
                  "cites": "barnets lov § 32, stk. 2",
                  "custody_holder": "parent-1",
                  "due": "2026-02-01",
                  "duty": "hold the custody holder's consent when granting a § 32 stk. 1 measure",
                  "met_by": 7,
                  "met_on": "2026-01-30",
                  "rule": "bl32-consent",
                  "status": "met",
                  "trigger": "2026-02-01",
                  "triggered_by": 8
                },
                {
                  "cites": "barnets lov § 79, stk. 2",
                  "due": "2026-04-15",
                  "duty": "offer a revision of the plan within 3 months of the placement",
                  "rule": "bl79-2",
                  "status": "open",
                  "trigger": "2026-02-10",
                  "triggered_by": 9
                }
              ],
              "ruleset": "barnets-lov-2024-01-01",
              "today": "2026-03-01"
            }"#]],
    );
}

#[test]
fn shared_bl78_consent_withdrawn() {
    assert_rendered(
        include_str!("../../../../shared/scenarios/03-bl78-consent-withdrawn.json"),
        expect![[r#"
            {
              "advisories": [],
              "obligations": [
                {
                  "cites": "barnets lov § 75",
                  "custody_holder": "parent-1",
                  "due": "2026-01-01",
                  "duty": "decide on offering the custody holder a support person",
                  "met_by": 1,
                  "met_on": "2026-01-01",
                  "rule": "bl75",
                  "status": "met",
                  "trigger": "2026-01-01",
                  "triggered_by": 0
                },
                {
                  "cites": "barnets lov § 76",
                  "due": "2026-01-01",
                  "duty": "decide on support to the parents during the placement",
                  "met_by": 6,
                  "met_on": "2026-01-10",
                  "rule": "bl76",
                  "status": "met",
                  "trigger": "2026-01-01",
                  "triggered_by": 0
                },
                {
                  "cites": "barnets lov § 75",
                  "custody_holder": "parent-1",
                  "duty": "approve or refuse the support person the custody holder chose",
                  "met_by": 4,
                  "met_on": "2026-01-04",
                  "rule": "bl75-approval",
                  "status": "met",
                  "trigger": "2026-01-03",
                  "triggered_by": 3
                },
                {
                  "cites": "barnets lov § 77, stk. 1",
                  "due": "2026-05-01",
                  "duty": "prepare a parent action plan",
                  "reopened_on": "2026-05-01",
                  "rule": "bl77",
                  "status": "overdue",
                  "trigger": "2026-01-05",
                  "triggered_by": 5
                },
                {
                  "cites": "barnets lov § 78",
                  "custody_holder": "parent-1",
                  "due": "2026-01-20",
                  "duty": "record the custody holder's consent to the holistic plan replacing the parent plan",
                  "met_by": 8,
                  "met_on": "2026-02-01",
                  "rule": "bl78-consent",
                  "status": "met",
                  "trigger": "2026-01-20",
                  "triggered_by": 7
                },
                {
                  "cites": "barnets lov § 79, stk. 2",
                  "due": "2026-04-01",
                  "duty": "offer a revision of the plan within 3 months of the placement",
                  "rule": "bl79-2",
                  "status": "overdue",
                  "trigger": "2026-01-20",
                  "triggered_by": 7
                }
              ],
              "ruleset": "barnets-lov-2024-01-01",
              "today": "2026-05-10"
            }"#]],
    );
}

#[test]
fn consent_withdrawn_new_plan_prepared() {
    assert_rendered(
        include_str!("../scenarios/07-consent-withdrawn-new-plan-prepared.json"),
        expect![[r#"
        {
          "advisories": [],
          "obligations": [
            {
              "cites": "barnets lov § 75",
              "custody_holder": "parent-1",
              "due": "2025-09-01",
              "duty": "decide on offering the custody holder a support person",
              "met_by": 1,
              "met_on": "2025-09-01",
              "rule": "bl75",
              "status": "met",
              "trigger": "2025-09-01",
              "triggered_by": 0
            },
            {
              "cites": "barnets lov § 76",
              "due": "2025-09-01",
              "duty": "decide on support to the parents during the placement",
              "met_by": 4,
              "met_on": "2025-09-05",
              "rule": "bl76",
              "status": "met",
              "trigger": "2025-09-01",
              "triggered_by": 0
            },
            {
              "cites": "barnets lov § 32, stk. 2",
              "custody_holder": "parent-1",
              "due": "2025-09-05",
              "duty": "hold the custody holder's consent when granting a § 32 stk. 1 measure",
              "met_by": 3,
              "met_on": "2025-09-04",
              "rule": "bl32-consent",
              "status": "met",
              "trigger": "2025-09-05",
              "triggered_by": 4
            },
            {
              "cites": "barnets lov § 77, stk. 1",
              "due": "2026-01-12",
              "duty": "prepare a parent action plan",
              "met_by": 11,
              "met_on": "2026-01-30",
              "reopened_on": "2026-01-12",
              "rule": "bl77",
              "status": "met",
              "trigger": "2025-09-08",
              "triggered_by": 5
            },
            {
              "cites": "barnets lov § 78",
              "custody_holder": "parent-1",
              "due": "2025-09-15",
              "duty": "record the custody holder's consent to the holistic plan replacing the parent plan",
              "met_by": 6,
              "met_on": "2025-09-10",
              "rule": "bl78-consent",
              "status": "met",
              "trigger": "2025-09-15",
              "triggered_by": 7
            },
            {
              "cites": "barnets lov § 79, stk. 2",
              "due": "2025-12-01",
              "duty": "offer a revision of the plan within 3 months of the placement",
              "met_by": 9,
              "met_on": "2025-11-20",
              "rule": "bl79-2",
              "status": "met",
              "trigger": "2025-09-15",
              "triggered_by": 7
            }
          ],
          "ruleset": "barnets-lov-2024-01-01",
          "today": "2026-03-01"
        }"#]],
    );
}

#[test]
fn repeated_placement() {
    assert_rendered(
        include_str!("../scenarios/23-repeated-placement.json"),
        expect![[r#"
        {
          "advisories": [
            {
              "custody_holder": "parent-1",
              "id": "repeat-support-person-offer",
              "message": "parent-1 declined the offer of a support person on 2026-09-21 and has not been offered one since; parents may accept later, so repeat the offer when it is meaningful to them"
            }
          ],
          "obligations": [
            {
              "cites": "barnets lov § 75",
              "custody_holder": "parent-1",
              "due": "2025-03-03",
              "duty": "decide on offering the custody holder a support person",
              "met_by": 1,
              "met_on": "2025-03-03",
              "rule": "bl75",
              "status": "met",
              "trigger": "2025-03-03",
              "triggered_by": 0
            },
            {
              "cites": "barnets lov § 76",
              "due": "2025-03-03",
              "duty": "decide on support to the parents during the placement",
              "met_by": 2,
              "met_on": "2025-03-05",
              "rule": "bl76",
              "status": "met",
              "trigger": "2025-03-03",
              "triggered_by": 0
            },
            {
              "cites": "barnets lov § 77, stk. 1",
              "due": "2025-03-10",
              "duty": "prepare a parent action plan",
              "met_by": 4,
              "met_on": "2025-03-24",
              "rule": "bl77",
              "status": "met",
              "trigger": "2025-03-10",
              "triggered_by": 3
            },
            {
              "cites": "barnets lov § 79, stk. 2",
              "due": "2025-06-03",
              "duty": "offer a revision of the plan within 3 months of the placement",
              "met_by": 5,
              "met_on": "2025-05-26",
              "rule": "bl79-2",
              "status": "met",
              "trigger": "2025-03-24",
              "triggered_by": 4
            },
            {
              "cites": "barnets lov § 100, stk. 3",
              "due": "2026-02-28",
              "duty": "end the homecoming period within 6 months",
              "met_by": 7,
              "met_on": "2026-03-02",
              "rule": "bl100-3",
              "status": "violated",
              "trigger": "2025-08-31",
              "triggered_by": 6
            },
            {
              "cites": "barnets lov § 100",
              "due": "2026-03-02",
              "duty": "decide on a homecoming period when the placement ends in a homecoming",
              "met_by": 6,
              "met_on": "2025-08-31",
              "rule": "bl100-1",
              "status": "met",
              "trigger": "2026-03-02",
              "triggered_by": 8
            },
            {
              "cites": "barnets lov § 75",
              "custody_holder": "parent-1",
              "due": "2026-09-14",
              "duty": "decide on offering the custody holder a support person",
              "met_by": 10,
              "met_on": "2026-09-14",
              "rule": "bl75",
              "status": "met",
              "trigger": "2026-09-14",
              "triggered_by": 9
            },
            {
              "cites": "barnets lov § 76",
              "due": "2026-09-14",
              "duty": "decide on support to the parents during the placement",
              "rule": "bl76",
              "status": "overdue",
              "trigger": "2026-09-14",
              "triggered_by": 9
            }
          ],
          "ruleset": "barnets-lov-2024-01-01",
          "today": "2026-10-01"
        }"#]],
    );
}
