//! End-to-end: the worklist read from its index is exactly the worklist
//! evaluated on read. Random histories are appended to cases of two
//! municipalities while the server's clock moves to random days (forward
//! and back); after each round, every page of `ListDueObligations` and of
//! `ListCases` with an obligations filter is compared with what `GetCase`
//! (the rules evaluated on read, for every case) says.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::obligation_service_client::ObligationServiceClient;
use bro_domain::Timestamp;
use bro_e2e::*;
use bro_server::ServeOptions;
use bro_server::access::client::AuthChannel;
use bro_server::clock::Clock;

type R = anyhow::Result<()>;

/// A clock the test moves.
struct SteppedClock(AtomicI64);

impl SteppedClock {
    fn set_day(&self, day: chrono::NaiveDate) {
        let noon = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
        self.0.store(noon.timestamp(), Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_timestamp(self.0.load(Ordering::SeqCst), 0).expect("a valid time")
    }
}

fn holder_kind(rng: &mut SeededRng) -> Kind {
    let holder = if rng.below(2) == 0 { "parent-1" } else { "parent-2" }.to_owned();
    let measure =
        [pb::SupportMeasure::Bl75, pb::SupportMeasure::Bl3212, pb::SupportMeasure::Bl35][rng.below(3) as usize];
    match rng.below(9) {
        0 => Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder }),
        1 => Kind::SupportPersonAccepted(pb::SupportPersonAccepted { custody_holder: holder }),
        2 => Kind::SupportPersonDeclined(pb::SupportPersonDeclined { custody_holder: holder }),
        3 => Kind::SupportPersonChosen(pb::SupportPersonChosen {
            custody_holder: holder,
            kind: pb::SupportPersonKind::Network.into(),
            person: None,
        }),
        4 => Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: holder }),
        5 => Kind::SupportDecided(pb::SupportDecided {
            custody_holder: holder,
            measure: measure.into(),
            outcome: if rng.below(3) == 0 { pb::DecisionOutcome::Refused } else { pb::DecisionOutcome::Granted }.into(),
        }),
        6 => Kind::SupportStarted(pb::SupportStarted { custody_holder: holder, measure: measure.into() }),
        7 => Kind::ConsentGiven(pb::ConsentGiven { custody_holder: holder, scope: "bl78".into() }),
        _ => Kind::PlanPrepared(pb::PlanPrepared {
            plan_id: String::new(),
            kind: pb::PlanKind::Bl78.into(),
            covers: vec![holder],
            goals: vec![],
        }),
    }
}

fn random_kind(rng: &mut SeededRng) -> Kind {
    let basis = [pb::PlacementBasis::Bl46, pb::PlacementBasis::Bl47][rng.below(2) as usize];
    match rng.below(12) {
        0 | 1 => Kind::PlacementStarted(pb::PlacementStarted { basis: basis.into(), site_kind: 0 }),
        2 => Kind::PlacementRecommended(pb::PlacementRecommended {
            basis: basis.into(),
            siblings_under_18_in_household: rng.below(2) == 0,
            reason: pb::RecommendationReason::Neglect.into(),
        }),
        3 => Kind::PlacementEnded(pb::PlacementEnded { reason: pb::PlacementEndReason::Homecoming.into() }),
        4 => Kind::PlanPrepared(pb::PlanPrepared {
            plan_id: String::new(),
            kind: pb::PlanKind::Bl77.into(),
            covers: vec![],
            goals: vec![],
        }),
        5 => Kind::RevisionOffered(pb::RevisionOffered {}),
        6 => Kind::RevisionMade(pb::RevisionMade {}),
        7 => Kind::HomecomingPeriodStarted(pb::HomecomingPeriodStarted {}),
        _ => holder_kind(rng),
    }
}

/// The worklist's order: dated first, soonest first, then by case, then
/// in the case's own order.
fn order_key(case: &str, position: usize, o: &pb::Obligation) -> (bool, Option<(i32, i32, i32)>, String, usize) {
    let due = o.due_date.as_ref().map(|d| (d.year, d.month, d.day));
    (due.is_none(), due, case.to_owned(), position)
}

/// Every case of `cvr` with its obligations as `GetCase` evaluates them.
async fn evaluated_on_read(
    cases: &mut CaseServiceClient<AuthChannel>,
    cvr: &str,
) -> anyhow::Result<Vec<(String, Vec<pb::Obligation>)>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = cases
            .list_cases(pb::ListCasesRequest {
                filter: format!("placing_municipality = \"{cvr}\""),
                page_size: 7,
                page_token: token,
            })
            .await?
            .into_inner();
        for case in page.cases {
            let read = cases.get_case(pb::GetCaseRequest { name: case.name.clone() }).await?.into_inner();
            out.push((case.name, read.case.expect("case").obligations));
        }
        token = page.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}

fn due(o: &pb::Obligation) -> bool {
    matches!(o.status(), pb::ObligationStatus::Open | pb::ObligationStatus::Overdue)
}

/// The worklist evaluated on read: the reference the index must equal.
fn reference(
    evaluated: &[(String, Vec<pb::Obligation>)],
    status: pb::ObligationStatus,
    due_limit: Option<(i32, i32, i32)>,
) -> Vec<(String, pb::Obligation)> {
    let mut items: Vec<_> = evaluated
        .iter()
        .flat_map(|(case, obligations)| obligations.iter().enumerate().map(move |(i, o)| (case, i, o)))
        .filter(|(_, _, o)| due(o) && (status == pb::ObligationStatus::Unspecified || o.status() == status))
        .filter(|(_, _, o)| match due_limit {
            None => true,
            Some(limit) => o.due_date.as_ref().is_some_and(|d| (d.year, d.month, d.day) <= limit),
        })
        .collect();
    items.sort_by_key(|(case, i, o)| order_key(case, *i, o));
    items.into_iter().map(|(case, _, o)| (case.clone(), o.clone())).collect()
}

async fn from_index(
    worklist: &mut ObligationServiceClient<AuthChannel>,
    cvr: &str,
    status: pb::ObligationStatus,
    due_limit: Option<(i32, i32, i32)>,
    page_size: i32,
) -> anyhow::Result<Vec<(String, pb::Obligation)>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = worklist
            .list_due_obligations(pb::ListDueObligationsRequest {
                placing_municipality: cvr.into(),
                due_on_or_before: due_limit.map(|(year, month, day)| pb::Date { year, month, day }),
                status: status.into(),
                page_size,
                page_token: token,
            })
            .await?
            .into_inner();
        assert!(page.obligations.len() <= page_size as usize);
        out.extend(page.obligations.into_iter().map(|d| (d.case, d.obligation.expect("obligation"))));
        token = page.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}

async fn cases_from_index(
    cases: &mut CaseServiceClient<AuthChannel>,
    cvr: &str,
    filter: &str,
    page_size: i32,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = cases
            .list_cases(pb::ListCasesRequest {
                filter: format!("placing_municipality = \"{cvr}\" AND obligations = \"{filter}\""),
                page_size,
                page_token: token,
            })
            .await?
            .into_inner();
        out.extend(page.cases.into_iter().map(|c| c.name));
        token = page.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}

#[tokio::test]
async fn the_worklist_index_equals_evaluating_every_case_on_random_histories_and_days() -> R {
    let clock = Arc::new(SteppedClock(AtomicI64::new(0)));
    clock.set_day("2026-01-10".parse()?);
    let gw = TestGateway::start_with(ServeOptions { clock: clock.clone(), ..Default::default() }).await?;
    let municipalities = ["12345678", "87654321"];
    let mut rng = SeededRng(0x5eed_2026);
    let mut cases: Vec<(String, &str)> = Vec::new();
    for i in 0..18 {
        let cvr = municipalities[usize::from(i % 3 == 0)];
        let id = format!("case-{i:02}");
        CaseServiceClient::new(gw.caseworker(cvr).await?).create_case(new_case(&id, cvr)).await?;
        cases.push((id, cvr));
    }
    let (mut request, mut stored, mut compared) = (0, 0, 0);
    for round in 0..14 {
        let today = rng.day("2026-01-01", 520);
        clock.set_day(today);
        // New events on random cases, some dated after today.
        for _ in 0..12 {
            let (case, cvr) = &cases[rng.below(cases.len() as u64) as usize];
            let on = rng.day("2026-01-10", 420).to_string();
            let events: Vec<_> = (0..1 + rng.below(3)).map(|_| event(&on, random_kind(&mut rng))).collect();
            request += 1;
            let mut client = CaseServiceClient::new(gw.caseworker(cvr).await?);
            // Events the case refuses are refused whole; the others are stored.
            match client.append_case_events(append(case, &format!("r{request}"), events, "")).await {
                Ok(_) => stored += 1,
                Err(status) => assert_eq!(status.code(), tonic::Code::InvalidArgument, "round {round}: {status:?}"),
            }
        }
        for cvr in municipalities {
            let mut reader = CaseServiceClient::new(gw.caseworker(cvr).await?);
            let mut worklist = ObligationServiceClient::new(gw.caseworker(cvr).await?);
            let evaluated = evaluated_on_read(&mut reader, cvr).await?;
            for status in [pb::ObligationStatus::Unspecified, pb::ObligationStatus::Open, pb::ObligationStatus::Overdue]
            {
                let limit = (rng.below(3) == 0).then(|| {
                    let d = rng.day("2026-01-01", 600);
                    (chrono::Datelike::year(&d), chrono::Datelike::month(&d) as i32, chrono::Datelike::day(&d) as i32)
                });
                let page_size = 1 + rng.below(9) as i32;
                let expected = reference(&evaluated, status, limit);
                let listed = from_index(&mut worklist, cvr, status, limit, page_size).await?;
                compared += expected.len();
                assert_eq!(
                    listed, expected,
                    "round {round}, {today}, {cvr}, {status:?}, due by {limit:?}, pages of {page_size}"
                );
            }
            for (filter, wanted) in [
                ("due", None),
                ("open", Some(pb::ObligationStatus::Open)),
                ("overdue", Some(pb::ObligationStatus::Overdue)),
            ] {
                let expected: Vec<String> = evaluated
                    .iter()
                    .filter(|(_, obligations)| {
                        obligations.iter().any(|o| due(o) && wanted.is_none_or(|w| o.status() == w))
                    })
                    .map(|(case, _)| case.clone())
                    .collect();
                let page_size = 1 + rng.below(5) as i32;
                let listed = cases_from_index(&mut reader, cvr, filter, page_size).await?;
                assert_eq!(listed, expected, "round {round}, {today}, {cvr}, obligations = {filter}");
            }
        }
    }
    // The histories must have given the index something to get wrong.
    assert!(stored > 60 && compared > 300, "{stored} appends stored, {compared} items compared");
    gw.stop().await
}

#[tokio::test]
async fn get_case_evaluates_again_when_the_day_or_the_case_changes() -> R {
    let clock = Arc::new(SteppedClock(AtomicI64::new(0)));
    clock.set_day("2026-02-01".parse()?);
    let gw = TestGateway::start_with(ServeOptions { clock: clock.clone(), ..Default::default() }).await?;
    let mut cases = CaseServiceClient::new(gw.caseworker(TEST_CVR).await?);
    cases.create_case(new_case("c1", TEST_CVR)).await?;
    cases.append_case_events(append("c1", "placed", vec![placement_started("2026-02-01")], "")).await?;
    let bl75 = |case: &pb::Case, holder: &str| {
        let o = case.obligations.iter().find(|o| o.rule == "bl75" && o.custody_holder == holder);
        o.map(|o| o.status()).expect("a § 75 duty")
    };
    let read = |mut cases: CaseServiceClient<AuthChannel>| async move {
        let case = cases.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case;
        anyhow::Ok(case.expect("case"))
    };
    let first = read(cases.clone()).await?;
    assert_eq!(bl75(&first, "parent-1"), pb::ObligationStatus::Open, "due on the placement day");
    assert_eq!(read(cases.clone()).await?, first, "read again the same day: the same answer");

    clock.set_day("2026-02-02".parse()?);
    let cases = CaseServiceClient::new(gw.caseworker(TEST_CVR).await?);
    let next_day = read(cases.clone()).await?;
    assert_eq!(bl75(&next_day, "parent-1"), pb::ObligationStatus::Overdue, "a day later the duty is overdue");
    assert_eq!(next_day.evaluated_on, Some(date("2026-02-02")));

    let mut writer = cases.clone();
    writer.append_case_events(append("c1", "offer", vec![offered("2026-02-02", "parent-1")], "")).await?;
    let appended = read(cases.clone()).await?;
    assert_ne!(bl75(&appended, "parent-1"), pb::ObligationStatus::Overdue, "the offer is counted at once");
    assert_eq!(bl75(&appended, "parent-2"), pb::ObligationStatus::Overdue);

    // Back to the placement day (a clock set back): evaluated for that day again.
    clock.set_day("2026-02-01".parse()?);
    let cases = CaseServiceClient::new(gw.caseworker(TEST_CVR).await?);
    let earlier = read(cases).await?;
    assert_eq!(bl75(&earlier, "parent-2"), pb::ObligationStatus::Open);
    gw.stop().await
}
