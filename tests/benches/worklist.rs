//! The worklist over 10,000 cases of one municipality, before and after
//! its index, in one run: a page of 50 due obligations by evaluating every
//! case on read (what `ListDueObligations` did before issue 15) and from
//! the index (`Worklist::due_page`, in process), the first page after
//! every entry went stale (all 10,000 evaluated once), and the same pages
//! through gRPC (`ListDueObligations`, `ListCases` with `obligations =
//! "due"`) on a real gateway over the same store.
//!
//! Run with `cargo bench -p bro-e2e --bench worklist` (add `-- --quick` for
//! 2,000 cases). See BENCHMARKS.md.

#![allow(clippy::print_stdout)] // A bench binary reports its results on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_api::v1::obligation_service_client::ObligationServiceClient;
use bro_domain::{
    CaseId, Child, Date, Event, EventKind, Organisation, Party, PartyId, PlacementBasis, PlanKind, Timestamp,
};
use bro_e2e::{SeededRng, TestGateway, test_keys};
use bro_server::ServeOptions;
use bro_server::clock::{Clock, FixedClock};
use bro_server::worklist::{Worklist, evaluation_of};
use bro_store::{CaseLedger, CaseQuery, DueStatus, EventStore, OpenCase, SealedStore};
use bro_store_sqlite::SqliteStore;

const CVR: &str = "29189846";
const PAGE: usize = 50;

fn party(id: &str) -> PartyId {
    PartyId::parse("party", id).expect("id")
}

fn at(day: Date, kind: EventKind) -> Event {
    Event { occurred_on: day, kind, source: None }
}

/// A placement case opened in the 18 months before today: a mix of met,
/// open and overdue duties, 4 to 8 events.
fn history(rng: &mut SeededRng, today: Date) -> Vec<Event> {
    let opened = today - chrono::Days::new(1 + rng.below(540));
    let day = |offset: u64| opened + chrono::Days::new(offset);
    let holders = ["parent-1", "parent-2"];
    let mut events = vec![
        at(
            opened,
            EventKind::CaseOpened {
                child: Child { identifier: None, journal_reference: "27.24.00-G01".into() },
                custody_holders: holders
                    .iter()
                    .map(|h| Party { party_id: party(h), identifier: None, display_name: String::new() })
                    .collect(),
                placing_municipality: Organisation { cvr: CVR.into(), ..Default::default() },
            },
        ),
        at(day(1 + rng.below(10)), EventKind::PlacementStarted { basis: PlacementBasis::Bl46, site_kind: None }),
    ];
    let placed = events[1].occurred_on;
    for holder in holders {
        if rng.below(10) < 7 {
            events.push(at(placed, EventKind::SupportPersonOffered { custody_holder: party(holder) }));
        }
    }
    if rng.below(2) == 0 {
        let kind =
            EventKind::PlanPrepared { plan_id: "plan-1".into(), kind: PlanKind::Bl77, covers: vec![], goals: vec![] };
        events.push(at(placed + chrono::Days::new(rng.below(40)), kind));
    }
    if rng.below(3) == 0 {
        events.push(at(placed + chrono::Days::new(60 + rng.below(60)), EventKind::RevisionOffered));
    }
    events.retain(|e| e.occurred_on <= today);
    events.sort_by_key(|e| e.occurred_on);
    events
}

/// Opens `cases` cases in `data_dir`, 32 at a time (their commits grouped).
async fn populate(data_dir: &std::path::Path, cases: usize, today: Date, now: Timestamp) {
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(data_dir).expect("open the store"));
    let sealed: Arc<dyn EventStore> = Arc::new(SealedStore::new(store.clone(), test_keys(data_dir)));
    let ledger = Arc::new(CaseLedger::new(sealed));
    let mut rng = SeededRng(2026);
    let histories: Vec<Vec<Event>> = (0..cases).map(|_| history(&mut rng, today)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let queue = Arc::new(std::sync::Mutex::new(histories.into_iter().enumerate().collect::<Vec<_>>()));
    for _ in 0..32 {
        let (ledger, queue) = (ledger.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                let Some((i, events)) = queue.lock().expect("queue").pop() else { return };
                let case_id = CaseId::parse("case", &format!("case-{i:05}")).expect("id");
                let cmd = OpenCase {
                    case_id: Some(case_id),
                    events,
                    request_id: format!("open-{i}"),
                    now,
                    source: None,
                    fingerprint: None,
                    audit: Vec::new(),
                };
                ledger.open(cmd).await.expect("a valid history");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("populating task");
    }
    store.close().await.expect("close the store");
}

/// The worklist as it was computed before the index: every case of the
/// municipality evaluated, the due obligations sorted, one page cut.
async fn page_by_evaluating_every_case(ledger: &CaseLedger, today: Date) -> Vec<pb::DueObligation> {
    let mut due = Vec::new();
    let mut query = CaseQuery { municipality_cvr: Some(CVR.into()), after_ordinal: 0, limit: 500, due: None };
    loop {
        let (cases, next) = ledger.list(&query).await.expect("list");
        for case in cases {
            let name = case.name.clone();
            let evaluated = evaluation_of(ledger, &case, today).await.expect("evaluate");
            let evaluated = bro_api::evaluation::with_evaluation(case, &evaluated, today);
            for (position, o) in evaluated.obligations.into_iter().enumerate() {
                if matches!(o.status(), pb::ObligationStatus::Open | pb::ObligationStatus::Overdue) {
                    let key = o.due_date.as_ref().map(|d| (d.year, d.month, d.day));
                    due.push(((key.is_none(), key, name.clone(), position), o));
                }
            }
        }
        match next {
            Some(after) => query.after_ordinal = after,
            None => break,
        }
    }
    due.sort_by(|a, b| a.0.cmp(&b.0));
    due.into_iter().take(PAGE).map(|((_, _, case, _), o)| pb::DueObligation { case, obligation: Some(o) }).collect()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

struct Row {
    name: String,
    samples: Vec<Duration>,
}

impl Row {
    fn new(name: &str, mut samples: Vec<Duration>) -> Row {
        samples.sort();
        Row { name: name.into(), samples }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cases = if quick { 2_000 } else { 10_000 };
    let pages = if quick { 50 } else { 200 };
    let now: Timestamp = "2026-06-01T10:00:00Z".parse().expect("time");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
    let today = clock.today();
    let temp = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    populate(temp.path(), cases, today, now).await;
    let populated = started.elapsed();

    // In process: the ledger over the same sealed store the gateway uses.
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(temp.path()).expect("reopen"));
    let sealed: Arc<dyn EventStore> = Arc::new(SealedStore::new(store.clone(), test_keys(temp.path())));
    let ledger = Arc::new(CaseLedger::new(sealed));
    let worklist = Worklist::new(ledger.clone(), clock.clone());

    let mut before = Vec::new();
    let mut reference = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        reference = page_by_evaluating_every_case(&ledger, today).await;
        before.push(t.elapsed());
    }

    // Every entry is stale: the first page evaluates all cases once.
    let t = Instant::now();
    let first = worklist.due_page(CVR, DueStatus::Any, None, String::new(), PAGE, today).await.expect("first page");
    let cold = vec![t.elapsed()];
    assert_eq!(first.obligations, reference, "the index gives the page evaluating every case gives");

    let mut after = Vec::new();
    let mut after_key = String::new();
    let mut due_items = 0;
    for _ in 0..pages {
        let t = Instant::now();
        let page = worklist.due_page(CVR, DueStatus::Any, None, after_key.clone(), PAGE, today).await.expect("page");
        after.push(t.elapsed());
        due_items += page.obligations.len();
        // Walk the whole worklist, page after page, and start again at its end.
        after_key = page.next_after.unwrap_or_default();
    }
    drop((worklist, ledger));
    store.close().await.expect("close");
    // The data directory's lock goes with the last handle.
    drop(store);

    // Through gRPC, on a real gateway over the same data.
    let gw = TestGateway::start_in(temp.path().to_path_buf(), ServeOptions { clock, ..Default::default() })
        .await
        .expect("gateway");
    let mut obligations = ObligationServiceClient::new(gw.caseworker(CVR).await.expect("channel"));
    let mut case_list = CaseServiceClient::new(gw.caseworker(CVR).await.expect("channel"));
    let (mut grpc_due, mut grpc_cases) = (Vec::new(), Vec::new());
    let mut token = String::new();
    let mut case_token = String::new();
    for _ in 0..pages {
        let t = Instant::now();
        let page = obligations
            .list_due_obligations(pb::ListDueObligationsRequest {
                placing_municipality: CVR.into(),
                page_size: PAGE as i32,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListDueObligations")
            .into_inner();
        grpc_due.push(t.elapsed());
        token = page.next_page_token;
        let t = Instant::now();
        let page = case_list
            .list_cases(pb::ListCasesRequest {
                filter: format!("placing_municipality = \"{CVR}\" AND obligations = \"due\""),
                page_size: PAGE as i32,
                page_token: case_token.clone(),
            })
            .await
            .expect("ListCases")
            .into_inner();
        grpc_cases.push(t.elapsed());
        case_token = page.next_page_token;
    }
    drop((obligations, case_list));
    gw.stop().await.expect("stop");

    let rows = [
        Row::new("Before: evaluate every case on read, one page of 50 (in process)", before),
        Row::new("After: first page with every entry stale (all cases evaluated once)", cold),
        Row::new("After: a page of 50 from the index (in process, walking all pages)", after),
        Row::new("After: gRPC ListDueObligations, page of 50", grpc_due),
        Row::new("After: gRPC ListCases, obligations = \"due\", page of 50", grpc_cases),
    ];
    println!(
        "\nworklist over {cases} cases of one municipality ({} s to open them; {due_items} items read in {pages} pages; SQLite WAL, synchronous=FULL)\n",
        populated.as_secs()
    );
    println!("| Measurement | Samples | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} |",
            row.name,
            row.samples.len(),
            ms(percentile(&row.samples, 50)),
            ms(percentile(&row.samples, 99))
        );
    }
    let p50 = |row: &Row| percentile(&row.samples, 50).as_secs_f64();
    println!("\n| Ratio | Value |\n|---|---:|");
    println!("| Before / after, page of 50 (p50, in process) | {:.0} |", p50(&rows[0]) / p50(&rows[2]));
}
