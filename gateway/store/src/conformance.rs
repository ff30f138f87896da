//! The conformance suite every [`EventStore`] backend must pass.
//!
//! A backend crate calls [`run_all`] from a test with a [`Harness`] that makes
//! fresh stores and reopens them. The suite checks the backend directly
//! (sequences, conditional appends, idempotency records, atomicity, paging,
//! durability across reopen) and through a [`CaseLedger`] (validation leaves
//! nothing behind, etags, concurrent writers).

use std::sync::Arc;

use async_trait::async_trait;
use bro_domain::{
    CaseId, Child, ConsentScope, Date, Event, EventKind, Organisation, Party, PartyId, PlacementBasis, Timestamp,
};
use bro_proto::v1 as pb;

use crate::{
    AppendBatch, AppendEvents, AppendOutcome, CaseLedger, CaseQuery, CreateCase, DeliveryQuery, DeliveryState,
    DeliveryUpdate, EventStore, InboxEntry, InboxKind, InboxPut, InboxQuery, InboxState, LeaseToken, LedgerError,
    NewDelivery, RequestRecord, SourceKey, StoreError, StoredCase, StoredEvent, StoredSnapshot, snapshot,
};
use crate::{DueItem, DueQuery, DueStatus, WorklistEntry, due_sort_key};

/// Makes stores for the suite.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    type Store: EventStore;
    /// A new, empty store.
    async fn fresh(&self) -> Self::Store;
    /// Closes `store` and opens the same data again.
    async fn reopen(&self, store: Self::Store) -> Self::Store;
}

/// Runs every check; panics with a message naming the first that fails.
pub async fn run_all<H: Harness>(h: &H) {
    sequences_are_gap_free_and_paged(h).await;
    conditional_append_refuses_wrong_versions(h).await;
    request_ids_make_appends_idempotent(h).await;
    malformed_batches_store_nothing(h).await;
    cases_list_in_creation_order_with_filter(h).await;
    the_person_index_follows_each_append(h).await;
    data_survives_reopen(h).await;
    closed_store_refuses_calls(h).await;
    ledger_refuses_invalid_events_and_stores_nothing(h).await;
    ledger_is_idempotent_and_checks_etags(h).await;
    ledger_serialises_concurrent_writers(h).await;
    concurrent_appends_each_get_their_own_outcome(h).await;
    source_messages_are_stored_once(h).await;
    deliveries_are_enqueued_with_their_events_and_move_by_state(h).await;
    delivery_leases_share_queues_among_workers(h).await;
    jobs_run_once_per_period(h).await;
    plan_link_revocations_only_move_on(h).await;
    inbox_entries_are_idempotent_and_resolved_with_an_append(h).await;
    the_worklist_index_goes_stale_with_appends_and_days(h).await;
    worklist_pages_are_ordered_and_filtered(h).await;
    snapshots_spare_replays_and_agree_with_them(h).await;
}

fn case_id(s: &str) -> CaseId {
    CaseId::parse("case_id", s).expect("valid id")
}

fn day(s: &str) -> Date {
    s.parse().expect("valid date")
}

fn now() -> Timestamp {
    Timestamp::from_timestamp(1_790_000_000, 0).expect("valid timestamp")
}

/// A raw batch of `n` events after `version`, with a request id (also for
/// a backend's own tests).
pub fn raw_batch(case: &str, version: u64, n: u64, request_id: &str, cvr: &str) -> AppendBatch {
    let last = version + n;
    AppendBatch {
        case_id: case_id(case),
        expected_version: version,
        events: (version + 1..=last)
            .map(|sequence| StoredEvent {
                sequence,
                occurred_on: day("2026-01-01"),
                record_time: now(),
                request_id: request_id.into(),
                payload: format!("payload {sequence}").into_bytes(),
            })
            .collect(),
        projection: StoredCase {
            case_id: case_id(case),
            ordinal: 0,
            version: last,
            municipality_cvr: cvr.into(),
            create_time: now(),
            update_time: now(),
            projection: format!("projection at {last}").into_bytes(),
        },
        request: RequestRecord {
            request_id: request_id.into(),
            case_id: case_id(case),
            fingerprint: request_id.as_bytes().to_vec(),
            first_sequence: version + 1,
            last_sequence: last,
        },
        source: None,
        deliveries: Vec::new(),
        resolves_inbox: None,
        person_keys: Vec::new(),
        snapshot: None,
        audit: Vec::new(),
    }
}

async fn append_ok<S: EventStore>(store: &S, batch: AppendBatch) {
    let outcome = store.append(batch).await.expect("append succeeds");
    assert_eq!(outcome, AppendOutcome::Appended, "a new request id appends");
}

async fn sequences_are_gap_free_and_paged<H: Harness>(h: &H) {
    let store = h.fresh().await;
    append_ok(&store, raw_batch("c1", 0, 3, "r1", "29189846")).await;
    append_ok(&store, raw_batch("c1", 3, 4, "r2", "29189846")).await;
    let all = store.read_events(&case_id("c1"), 0, 100).await.expect("read");
    let seqs: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "sequences are 1..=n without gaps");
    assert_eq!(all[4].payload, b"payload 5", "payloads are stored byte for byte");
    assert_eq!(all[4].request_id, "r2");
    assert_eq!(all[4].occurred_on, day("2026-01-01"));
    let page = store.read_events(&case_id("c1"), 2, 3).await.expect("read page");
    assert_eq!(page.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![3, 4, 5], "paging by sequence");
    let case = store.get_case(&case_id("c1")).await.expect("get").expect("exists");
    assert_eq!(case.version, 7, "projection written with the events");
    assert_eq!(case.projection, b"projection at 7");
    assert!(store.get_case(&case_id("nope")).await.expect("get").is_none());
    assert!(store.read_events(&case_id("nope"), 0, 10).await.expect("read").is_empty());
}

async fn conditional_append_refuses_wrong_versions<H: Harness>(h: &H) {
    let store = h.fresh().await;
    append_ok(&store, raw_batch("c1", 0, 2, "r1", "29189846")).await;
    let err = store.append(raw_batch("c1", 1, 1, "r2", "29189846")).await.expect_err("stale version");
    assert!(matches!(err, StoreError::Conflict { expected: 1, actual: 2, .. }), "{err}");
    let err = store.append(raw_batch("c1", 0, 1, "r3", "29189846")).await.expect_err("case exists");
    assert!(matches!(err, StoreError::Conflict { expected: 0, actual: 2, .. }), "{err}");
    let err = store.append(raw_batch("c2", 5, 1, "r4", "29189846")).await.expect_err("no such case");
    assert!(matches!(err, StoreError::Conflict { expected: 5, actual: 0, .. }), "{err}");
    assert_eq!(store.read_events(&case_id("c1"), 0, 100).await.expect("read").len(), 2, "nothing added");
    assert!(store.find_request("r2").await.expect("find").is_none(), "refused requests leave no record");
}

async fn request_ids_make_appends_idempotent<H: Harness>(h: &H) {
    let store = h.fresh().await;
    append_ok(&store, raw_batch("c1", 0, 2, "r1", "29189846")).await;
    // The same request again, even written against the old version.
    let again = store.append(raw_batch("c1", 0, 2, "r1", "29189846")).await.expect("replay");
    let AppendOutcome::AlreadyApplied(record) = again else { panic!("a known request id must not append again") };
    assert_eq!((record.first_sequence, record.last_sequence), (1, 2));
    assert!(store.fingerprint_matches(&record, b"r1"), "the record is of the request's fingerprint");
    assert!(!store.fingerprint_matches(&record, b"r2"), "and of no other");
    assert_eq!(store.read_events(&case_id("c1"), 0, 100).await.expect("read").len(), 2, "no duplicates");
    let found = store.find_request("r1").await.expect("find").expect("recorded");
    assert_eq!(found, record);
}

async fn malformed_batches_store_nothing<H: Harness>(h: &H) {
    let store = h.fresh().await;
    let mut gap = raw_batch("c1", 0, 3, "r1", "29189846");
    gap.events[1].sequence = 7;
    assert!(matches!(store.append(gap).await, Err(StoreError::InvalidBatch(_))), "a gap is refused");
    let mut empty = raw_batch("c1", 0, 1, "r2", "29189846");
    empty.events.clear();
    assert!(matches!(store.append(empty).await, Err(StoreError::InvalidBatch(_))), "no events is refused");
    assert!(store.get_case(&case_id("c1")).await.expect("get").is_none(), "nothing was stored");
    assert!(store.find_request("r1").await.expect("find").is_none());
}

async fn cases_list_in_creation_order_with_filter<H: Harness>(h: &H) {
    let store = h.fresh().await;
    for (i, name) in ["zeta", "alpha", "mid", "beta"].iter().enumerate() {
        let cvr = if i % 2 == 0 { "29189846" } else { "55133018" };
        append_ok(&store, raw_batch(name, 0, 1, &format!("r-{name}"), cvr)).await;
    }
    let page1 = store.list_cases(&CaseQuery { limit: 3, ..Default::default() }).await.expect("list");
    let names: Vec<&str> = page1.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"], "creation order, not name order");
    let after = page1.last().expect("non-empty").ordinal;
    let page2 =
        store.list_cases(&CaseQuery { after_ordinal: after, limit: 3, ..Default::default() }).await.expect("list");
    assert_eq!(page2.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), ["beta"]);
    let filtered = store
        .list_cases(&CaseQuery { municipality_cvr: Some("55133018".into()), limit: 10, ..Default::default() })
        .await
        .expect("list");
    assert_eq!(filtered.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), ["alpha", "beta"]);
}

async fn the_person_index_follows_each_append<H: Harness>(h: &H) {
    let store = h.fresh().await;
    let (anna, bo, carl) = (b"key-anna".to_vec(), b"key-bo".to_vec(), b"key-carl".to_vec());
    let first = AppendBatch { person_keys: vec![anna.clone(), bo.clone()], ..raw_batch("c1", 0, 1, "r1", "29189846") };
    append_ok(&store, first).await;
    let other = AppendBatch { person_keys: vec![anna.clone()], ..raw_batch("c2", 0, 1, "r2", "29189846") };
    append_ok(&store, other).await;
    assert_eq!(store.find_cases_by_person(&anna).await.expect("find"), [case_id("c1"), case_id("c2")]);
    assert_eq!(store.find_cases_by_person(&bo).await.expect("find"), [case_id("c1")]);
    // The index is what the last append says: bo leaves c1, carl joins it.
    let changed =
        AppendBatch { person_keys: vec![anna.clone(), carl.clone()], ..raw_batch("c1", 1, 1, "r3", "29189846") };
    append_ok(&store, changed).await;
    assert!(store.find_cases_by_person(&bo).await.expect("find").is_empty(), "the person index must follow the case");
    assert_eq!(store.find_cases_by_person(&carl).await.expect("find"), [case_id("c1")]);
    // A refused append leaves the index alone.
    let stale = AppendBatch { person_keys: vec![bo.clone()], ..raw_batch("c1", 1, 1, "r4", "29189846") };
    assert!(store.append(stale).await.is_err());
    assert!(store.find_cases_by_person(&bo).await.expect("find").is_empty());
    let store = h.reopen(store).await;
    assert_eq!(store.find_cases_by_person(&anna).await.expect("find").len(), 2, "the index survives a reopen");
}

async fn data_survives_reopen<H: Harness>(h: &H) {
    let store = h.fresh().await;
    append_ok(&store, raw_batch("c1", 0, 2, "r1", "29189846")).await;
    append_ok(&store, raw_batch("c1", 2, 1, "r2", "29189846")).await;
    let store = h.reopen(store).await;
    assert_eq!(store.read_events(&case_id("c1"), 0, 100).await.expect("read").len(), 3, "events survive");
    assert_eq!(store.get_case(&case_id("c1")).await.expect("get").expect("case").version, 3);
    assert!(store.find_request("r2").await.expect("find").is_some(), "request records survive");
    append_ok(&store, raw_batch("c1", 3, 1, "r3", "29189846")).await;
}

async fn closed_store_refuses_calls<H: Harness>(h: &H) {
    let store = h.fresh().await;
    store.close().await.expect("close");
    let err = store.append(raw_batch("c1", 0, 1, "r1", "29189846")).await.expect_err("closed");
    assert!(matches!(err, StoreError::Closed), "{err}");
}

fn party(id: &str) -> PartyId {
    PartyId::parse("party_id", id).expect("valid party id")
}

fn opening() -> EventKind {
    EventKind::CaseOpened {
        child: Child { identifier: None, journal_reference: "27.24.00-G01-7-26".into() },
        custody_holders: vec![
            Party { party_id: party("parent-1"), identifier: None, display_name: "Test Forælder".into() },
            Party { party_id: party("parent-2"), identifier: None, display_name: "Prøve Forælder".into() },
        ],
        placing_municipality: Organisation { cvr: "29189846".into(), ..Default::default() },
    }
}

async fn new_case(ledger: &CaseLedger, id: &str) {
    ledger
        .create(CreateCase {
            case_id: Some(case_id(id)),
            opened_on: day("2026-01-01"),
            opening: opening(),
            request_id: format!("create-{id}"),
            now: now(),
            audit: Vec::new(),
        })
        .await
        .expect("create");
}

fn event(on: &str, kind: EventKind) -> Event {
    Event { occurred_on: day(on), kind, source: None }
}

fn append(id: &str, request_id: &str, events: Vec<Event>, expected_version: Option<u64>) -> AppendEvents {
    AppendEvents { expected_version, ..AppendEvents::new(case_id(id), events, request_id.into(), now()) }
}

async fn ledger_refuses_invalid_events_and_stores_nothing<H: Harness>(h: &H) {
    let ledger = CaseLedger::new(Arc::new(h.fresh().await));
    new_case(&ledger, "c1").await;
    let events = vec![
        event("2026-01-10", EventKind::PlacementStarted { basis: PlacementBasis::Bl46, site_kind: None }),
        event("2026-01-11", EventKind::SupportPersonApproved { custody_holder: party("parent-1") }),
    ];
    let err = ledger.append(append("c1", "bad-1", events, None)).await.expect_err("approval before choice");
    let LedgerError::Invalid(v) = err else { panic!("expected Invalid, got {err}") };
    assert_eq!(v.0[0].field, "events[1].support_person_approved.custody_holder");
    let unknown = vec![event("2026-01-10", EventKind::SupportPersonOffered { custody_holder: party("parent-3") })];
    let err = ledger.append(append("c1", "bad-2", unknown, None)).await.expect_err("unknown custody holder");
    assert!(err.to_string().contains("parent-3"), "{err}");
    let history = ledger.events(&case_id("c1"), 0, 100).await.expect("events");
    assert_eq!(history.len(), 1, "only case_opened is stored");
    assert!(ledger.store().find_request("bad-1").await.expect("find").is_none());
    let missing = ledger.append(append("nope", "r", vec![event("2026-01-10", EventKind::RevisionOffered)], None)).await;
    assert!(matches!(missing, Err(LedgerError::NotFound(_))));
}

async fn ledger_is_idempotent_and_checks_etags<H: Harness>(h: &H) {
    let ledger = CaseLedger::new(Arc::new(h.fresh().await));
    new_case(&ledger, "c1").await;
    let scope = ConsentScope::parse("scope", "share:jobcenter").expect("scope");
    let give = vec![event("2026-01-05", EventKind::ConsentGiven { custody_holder: party("parent-1"), scope })];
    let first = ledger.append(append("c1", "r1", give.clone(), Some(1))).await.expect("append");
    assert_eq!(first.events.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![2]);
    assert!(!first.replayed);
    let again = ledger.append(append("c1", "r1", give.clone(), Some(1))).await.expect("retry");
    assert!(again.replayed, "a retry is answered from the record");
    assert_eq!(again.events, first.events, "a retry returns the same events");
    let reused = ledger.append(append("c1", "r1", vec![event("2026-01-06", EventKind::RevisionOffered)], None)).await;
    assert!(matches!(reused, Err(LedgerError::RequestIdReused { .. })), "{reused:?}");
    let stale = ledger.append(append("c1", "r2", vec![event("2026-01-06", EventKind::RevisionOffered)], Some(1))).await;
    assert!(matches!(stale, Err(LedgerError::EtagMismatch { expected: 1, actual: 2, .. })), "{stale:?}");
    let case: pb::Case = ledger.get(&case_id("c1")).await.expect("get");
    assert_eq!(case.version, 2);
    assert_eq!(case.consents.len(), 1);
    let dup = ledger
        .create(CreateCase {
            case_id: Some(case_id("c1")),
            opened_on: day("2026-01-01"),
            opening: opening(),
            request_id: "another".into(),
            now: now(),
            audit: Vec::new(),
        })
        .await;
    assert!(matches!(dup, Err(LedgerError::AlreadyExists(_))), "{dup:?}");
}

async fn ledger_serialises_concurrent_writers<H: Harness>(h: &H) {
    let ledger = Arc::new(CaseLedger::new(Arc::new(h.fresh().await)));
    new_case(&ledger, "c1").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let e = vec![event("2026-02-01", EventKind::RevisionAssessed)];
                ledger.append(append("c1", &format!("t{t}-{i}"), e, None)).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let events = ledger.events(&case_id("c1"), 0, 1000).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=81).collect::<Vec<_>>(), "80 appends + opening, gap-free");
    assert_eq!(ledger.get(&case_id("c1")).await.expect("get").revisions.len(), 80);
}

/// Appends arriving together (which a backend may commit as one group)
/// each succeed or fail on their own: a stale version, a reused request id
/// or a lost race for a new case takes nothing of the others with it.
async fn concurrent_appends_each_get_their_own_outcome<H: Harness>(h: &H) {
    let store = Arc::new(h.fresh().await);
    append_ok(store.as_ref(), raw_batch("c0", 0, 2, "r0", "29189846")).await;
    let mut batches: Vec<AppendBatch> =
        (1..=8).map(|i| raw_batch(&format!("g{i}"), 0, i, &format!("good-{i}"), "29189846")).collect();
    batches.push(raw_batch("c0", 1, 1, "stale", "29189846"));
    batches.push(raw_batch("c9", 0, 1, "r0", "29189846"));
    batches.push(raw_batch("g1", 0, 3, "g1-again", "29189846"));
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let store = store.clone();
            let request_id = batch.request.request_id.clone();
            tokio::spawn(async move { (request_id, store.append(batch).await) })
        })
        .collect();
    let mut g1_created = 0;
    for task in tasks {
        let (request_id, outcome) = task.await.expect("task");
        match request_id.as_str() {
            "stale" => assert!(matches!(outcome, Err(StoreError::Conflict { actual: 2, .. })), "{outcome:?}"),
            "r0" => assert!(
                matches!(&outcome, Ok(AppendOutcome::AlreadyApplied(r)) if r.case_id == case_id("c0")),
                "a reused request id is answered with its first record: {outcome:?}"
            ),
            "good-1" | "g1-again" => match outcome {
                Ok(AppendOutcome::Appended) => g1_created += 1,
                Err(StoreError::Conflict { expected: 0, .. }) => {}
                other => panic!("{request_id}: {other:?}"),
            },
            _ => assert_eq!(outcome.expect("append"), AppendOutcome::Appended, "{request_id}"),
        }
    }
    assert_eq!(g1_created, 1, "one of two creations of the same case wins");
    for i in 2..=8u64 {
        let case = store.get_case(&case_id(&format!("g{i}"))).await.expect("get").expect("written");
        assert_eq!(case.version, i);
        assert_eq!(store.read_events(&case_id(&format!("g{i}")), 0, 100).await.expect("read").len() as u64, i);
    }
    assert_eq!(
        store.get_case(&case_id("c0")).await.expect("get").expect("c0").version,
        2,
        "the stale batch wrote nothing"
    );
    assert!(store.get_case(&case_id("c9")).await.expect("get").is_none(), "the reused request id wrote nothing");
    assert!(store.find_request("stale").await.expect("find").is_none());
}

fn source(system: &str, id: &str) -> Option<SourceKey> {
    Some(SourceKey { system: system.into(), message_id: id.into() })
}

fn delivery(id: &str, system: &str, case: &str, first: u64, last: u64) -> NewDelivery {
    NewDelivery {
        delivery_id: id.into(),
        system: system.into(),
        case_id: case_id(case),
        first_sequence: first,
        last_sequence: last,
        payload: format!("batch {id}").into_bytes(),
        create_time: now(),
        replay_of: String::new(),
    }
}

async fn source_messages_are_stored_once<H: Harness>(h: &H) {
    let store = h.fresh().await;
    let first = AppendBatch { source: source("medcom", "msg-1"), ..raw_batch("c1", 0, 2, "r1", "29189846") };
    append_ok(&store, first).await;
    // The same source message under another request id stores nothing.
    let again = AppendBatch { source: source("medcom", "msg-1"), ..raw_batch("c1", 2, 1, "r2", "29189846") };
    let AppendOutcome::AlreadyApplied(record) = store.append(again).await.expect("append") else {
        panic!("a known source message must not append again")
    };
    assert_eq!(record.request_id, "r1", "the first request's record comes back");
    assert_eq!(store.read_events(&case_id("c1"), 0, 10).await.expect("read").len(), 2);
    assert!(store.find_request("r2").await.expect("find").is_none());
    // The same id from another system is another message.
    let other = AppendBatch { source: source("sdi", "msg-1"), ..raw_batch("c1", 2, 1, "r3", "29189846") };
    append_ok(&store, other).await;
    let found = store.find_source(&SourceKey { system: "medcom".into(), message_id: "msg-1".into() }).await;
    assert_eq!(found.expect("find").map(|r| r.request_id), Some("r1".into()));
    let store = h.reopen(store).await;
    let found = store.find_source(&SourceKey { system: "sdi".into(), message_id: "msg-1".into() }).await;
    assert_eq!(found.expect("find").map(|r| r.request_id), Some("r3".into()), "source keys are durable");
}

async fn deliveries_are_enqueued_with_their_events_and_move_by_state<H: Harness>(h: &H) {
    let store = h.fresh().await;
    let batch = AppendBatch {
        deliveries: vec![delivery("d1", "jobcenter", "c1", 1, 2), delivery("d2", "medcom", "c1", 1, 2)],
        ..raw_batch("c1", 0, 2, "r1", "29189846")
    };
    append_ok(&store, batch).await;
    // A refused append enqueues nothing.
    let stale = AppendBatch {
        deliveries: vec![delivery("d3", "jobcenter", "c1", 1, 1)],
        ..raw_batch("c1", 0, 1, "r2", "29189846")
    };
    store.append(stale).await.expect_err("stale version");
    assert!(
        store.get_delivery("d3").await.expect("get").is_none(),
        "the outbox is written with the events or not at all"
    );
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(due.iter().map(|d| d.new.delivery_id.as_str()).collect::<Vec<_>>(), vec!["d1", "d2"]);
    assert_eq!(due[0].state, DeliveryState::Pending);
    assert_eq!(due[0].new.payload, b"batch d1");
    let later = now() + chrono::Duration::seconds(30);
    // An update naming another system or case than the row's changes nothing.
    let astray = DeliveryUpdate {
        delivery_id: "d1".into(),
        system: "medcom".into(),
        case_id: case_id("c1"),
        from: DeliveryState::Pending,
        to: DeliveryState::Delivered,
        attempts: 1,
        next_attempt_time: now(),
        last_error: String::new(),
        rendered: Some(("application/xml".into(), b"<astray/>".to_vec())),
        update_time: now(),
        lease: None,
    };
    assert!(!store.update_delivery(astray.clone()).await.expect("update"), "another system's update");
    let astray = DeliveryUpdate { system: "jobcenter".into(), case_id: case_id("c2"), ..astray };
    assert!(!store.update_delivery(astray).await.expect("update"), "another case's update");
    let retry = DeliveryUpdate {
        delivery_id: "d1".into(),
        system: "jobcenter".into(),
        case_id: case_id("c1"),
        from: DeliveryState::Pending,
        to: DeliveryState::Pending,
        attempts: 1,
        next_attempt_time: later,
        last_error: "connection refused".into(),
        rendered: None,
        update_time: now(),
        lease: None,
    };
    assert!(store.update_delivery(retry.clone()).await.expect("update"));
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(due.len(), 1, "a delivery waits for its next attempt");
    // A later delivery of the same case to the same system waits behind it, however many there are.
    for i in 0..70 {
        store.enqueue_delivery(delivery(&format!("q{i}"), "jobcenter", "c1", 3, 3)).await.expect("enqueue");
    }
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|d| d.new.delivery_id.as_str()).collect::<Vec<_>>(),
        vec!["d2"],
        "only queue heads are due"
    );
    let due = store.due_deliveries(later, 10).await.expect("due");
    assert_eq!(
        due.iter().map(|d| d.new.delivery_id.as_str()).collect::<Vec<_>>(),
        vec!["d2", "d1"],
        "the head comes back when due (by due time)"
    );
    let done = DeliveryUpdate {
        to: DeliveryState::Delivered,
        attempts: 2,
        last_error: String::new(),
        rendered: Some(("application/xml".into(), b"<x/>".to_vec())),
        ..retry.clone()
    };
    assert!(store.update_delivery(done.clone()).await.expect("update"));
    assert!(!store.update_delivery(done).await.expect("update"), "a change from a state it has left is refused");
    let d1 = store.get_delivery("d1").await.expect("get").expect("exists");
    assert_eq!((d1.state, d1.attempts), (DeliveryState::Delivered, 2));
    assert_eq!(d1.rendered, Some(("application/xml".into(), b"<x/>".to_vec())));
    let due = store.due_deliveries(later, 10).await.expect("due");
    assert!(due.iter().any(|d| d.new.delivery_id == "q0"), "the next in line is due once the head is delivered");
    store
        .enqueue_delivery(NewDelivery { replay_of: "d1".into(), ..delivery("d4", "jobcenter", "c1", 1, 2) })
        .await
        .expect("enqueue");
    let q = DeliveryQuery { system: Some("jobcenter".into()), limit: 100, ..DeliveryQuery::default() };
    let listed = store.list_deliveries(&q).await.expect("list");
    assert_eq!(listed.len(), 72);
    assert_eq!((listed[0].new.delivery_id.as_str(), listed[71].new.delivery_id.as_str()), ("d1", "d4"));
    assert_eq!(listed[71].new.replay_of, "d1");
    let q = DeliveryQuery {
        state: Some(DeliveryState::Pending),
        after_ordinal: listed[0].ordinal,
        limit: 1,
        ..DeliveryQuery::default()
    };
    assert_eq!(store.list_deliveries(&q).await.expect("list").len(), 1, "paged and filtered by state");
    let store = h.reopen(store).await;
    assert_eq!(store.get_delivery("d1").await.expect("get").map(|d| d.state), Some(DeliveryState::Delivered));
}

fn inbox(id: &str, kind: InboxKind, request_id: &str, source_message_id: &str) -> InboxEntry {
    InboxEntry {
        ordinal: 0,
        entry_id: id.into(),
        kind,
        system: "medcom".into(),
        request_id: request_id.into(),
        source_message_id: source_message_id.into(),
        content_type: "application/xml".into(),
        body: b"<Emessage/>".to_vec(),
        batch: b"batch".to_vec(),
        reason: "no case has this custody holder".into(),
        state: InboxState::Open,
        resolved_case: None,
        create_time: now(),
        update_time: now(),
    }
}

/// A worker's change under a lease: `d` moves from pending to `to`.
fn leased_update(d: &str, system: &str, to: DeliveryState, token: &LeaseToken, at: Timestamp) -> DeliveryUpdate {
    DeliveryUpdate {
        delivery_id: d.into(),
        system: system.into(),
        case_id: case_id("c1"),
        from: DeliveryState::Pending,
        to,
        attempts: 1,
        next_attempt_time: at,
        last_error: String::new(),
        rendered: None,
        update_time: at,
        lease: Some(token.clone()),
    }
}

async fn delivery_leases_share_queues_among_workers<H: Harness>(h: &H) {
    let store = Arc::new(h.fresh().await);
    let batch = AppendBatch {
        deliveries: vec![delivery("d1", "jobcenter", "c1", 1, 1), delivery("d3", "medcom", "c1", 1, 1)],
        ..raw_batch("c1", 0, 1, "r1", "29189846")
    };
    append_ok(&*store, batch).await;
    store.enqueue_delivery(delivery("d2", "jobcenter", "c1", 1, 1)).await.expect("enqueue");
    let lease_for = chrono::Duration::seconds(30);
    let ids = |claimed: &[crate::ClaimedDelivery]| {
        let mut ids: Vec<String> = claimed.iter().map(|c| c.delivery.new.delivery_id.clone()).collect();
        ids.sort();
        ids
    };
    let a = store.claim_deliveries("worker-a", now(), now() + lease_for, 10).await.expect("claim");
    assert_eq!(ids(&a), vec!["d1", "d3"], "a worker claims the heads of the queues");
    assert!(a.iter().all(|c| c.lease.token.holder == "worker-a" && c.lease.expire_time == now() + lease_for));
    assert_eq!(a.iter().find(|c| c.delivery.new.delivery_id == "d1").expect("d1").delivery.new.payload, b"batch d1");
    assert!(
        store.claim_deliveries("worker-b", now(), now() + lease_for, 10).await.expect("claim").is_empty(),
        "a queue another worker holds is not claimed"
    );
    assert_eq!(store.live_leases(now()).await.expect("leases").len(), 2);
    let lease_of = |claimed: &[crate::ClaimedDelivery], id: &str| {
        claimed.iter().find(|c| c.delivery.new.delivery_id == id).expect("claimed").lease.clone()
    };
    let (a_jobcenter, a_medcom) = (lease_of(&a, "d1"), lease_of(&a, "d3"));

    // Released, a queue is claimed again at once, under a higher epoch.
    store.release_lease("medcom", &case_id("c1"), &a_medcom.token).await.expect("release");
    let b = store.claim_deliveries("worker-b", now(), now() + lease_for, 10).await.expect("claim");
    assert_eq!(ids(&b), vec!["d3"]);
    let b_medcom = lease_of(&b, "d3");
    assert!(b_medcom.token.epoch > a_medcom.token.epoch, "every claim raises the queue's epoch");
    // The earlier holder's result is refused; the current holder's is kept, and ends its lease.
    let stale = leased_update("d3", "medcom", DeliveryState::Dead, &a_medcom.token, now());
    assert!(!store.update_delivery(stale).await.expect("update"), "a replaced lease records nothing");
    assert_eq!(store.get_delivery("d3").await.expect("get").expect("d3").state, DeliveryState::Pending);
    let done = leased_update("d3", "medcom", DeliveryState::Delivered, &b_medcom.token, now());
    assert!(store.update_delivery(done.clone()).await.expect("update"));
    assert!(!store.update_delivery(done).await.expect("update"), "an ended lease records nothing more");
    assert_eq!(store.get_delivery("d3").await.expect("get").expect("d3").state, DeliveryState::Delivered);
    let live = store.live_leases(now()).await.expect("leases");
    assert_eq!(live, vec![a_jobcenter.clone()], "only worker a's jobcenter lease is live");

    // An expired lease is claimed by another worker; its holder can neither renew nor record.
    let later = a_jobcenter.expire_time + chrono::Duration::seconds(1);
    assert!(store.live_leases(later).await.expect("leases").is_empty(), "an expired lease is not live");
    let b = store.claim_deliveries("worker-b", later, later + lease_for, 10).await.expect("claim");
    assert_eq!(ids(&b), vec!["d1"], "the head of the expired queue, not the one behind it");
    let b_jobcenter = lease_of(&b, "d1");
    assert!(b_jobcenter.token.epoch > a_jobcenter.token.epoch);
    assert!(!store.renew_lease(&a_jobcenter, later + lease_for).await.expect("renew"), "a replaced lease");
    let stale = leased_update("d1", "jobcenter", DeliveryState::Delivered, &a_jobcenter.token, later);
    assert!(!store.update_delivery(stale).await.expect("update"));
    // The holder renews; a retry under the lease ends it and the head waits for its next attempt.
    let renewed = later + lease_for * 2;
    assert!(store.renew_lease(&b_jobcenter, renewed).await.expect("renew"));
    let live = store.live_leases(later + lease_for + chrono::Duration::seconds(1)).await.expect("leases");
    assert_eq!(live.iter().map(|l| l.expire_time).collect::<Vec<_>>(), vec![renewed], "renewed");
    let retry_at = later + chrono::Duration::seconds(60);
    let retry = leased_update("d1", "jobcenter", DeliveryState::Pending, &b_jobcenter.token, retry_at);
    assert!(store.update_delivery(retry).await.expect("update"));
    assert!(store.live_leases(later).await.expect("leases").is_empty());
    assert!(store.claim_deliveries("worker-a", later, later + lease_for, 10).await.expect("claim").is_empty());
    let c = store.claim_deliveries("worker-a", retry_at, retry_at + lease_for, 10).await.expect("claim");
    assert_eq!(ids(&c), vec!["d1"], "the queue's order holds: d2 waits behind d1");
    let done = DeliveryUpdate {
        attempts: 2,
        ..leased_update("d1", "jobcenter", DeliveryState::Delivered, &c[0].lease.token, retry_at)
    };
    assert!(store.update_delivery(done).await.expect("update"));
    let c = store.claim_deliveries("worker-a", retry_at, retry_at + lease_for, 10).await.expect("claim");
    assert_eq!(ids(&c), vec!["d2"], "then the next in line");
    store.release_lease("jobcenter", &case_id("c1"), &c[0].lease.token).await.expect("release");

    // Workers claiming at once never share a queue, and all queues are claimed.
    for i in 0..24 {
        store.enqueue_delivery(delivery(&format!("m{i}"), &format!("system-{i}"), "c1", 1, 1)).await.expect("enqueue");
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_deliveries(&format!("w{w}"), retry_at, retry_at + lease_for, 3).await;
                let got = got.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.delivery.new.delivery_id));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("claimer"));
    }
    all.sort();
    let mut want: Vec<String> = (0..24).map(|i| format!("m{i}")).chain(["d2".to_owned()]).collect();
    want.sort();
    assert_eq!(all, want, "every queue claimed exactly once");
    assert_eq!(store.live_leases(retry_at).await.expect("leases").len(), 25);
}

async fn jobs_run_once_per_period<H: Harness>(h: &H) {
    let store = Arc::new(h.fresh().await);
    let every = chrono::Duration::minutes(5);
    assert!(store.claim_job("export", now(), every).await.expect("claim"), "a job never run is due");
    assert!(!store.claim_job("export", now(), every).await.expect("claim"), "run once per period");
    let almost = now() + every - chrono::Duration::seconds(1);
    assert!(!store.claim_job("export", almost, every).await.expect("claim"));
    assert!(store.claim_job("sweep", almost, every).await.expect("claim"), "each job has its own period");
    // Many asking at once at the next period: one runs it.
    let next = now() + every;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_job("export", next, every).await.expect("claim") })
        })
        .collect();
    let mut ran = 0;
    for task in tasks {
        ran += usize::from(task.await.expect("task"));
    }
    assert_eq!(ran, 1, "one of those asking at once runs the job");
    let store = h.reopen(Arc::try_unwrap(store).ok().expect("the only handle")).await;
    assert!(!store.claim_job("export", next, every).await.expect("claim"), "the last run is durable");
}

async fn plan_link_revocations_only_move_on<H: Harness>(h: &H) {
    let store = h.fresh().await;
    assert_eq!(store.plan_links_revoked_at(b"link-a").await.expect("read"), None, "never revoked");
    store.revoke_plan_links(b"link-a", now()).await.expect("revoke");
    let earlier = now() - chrono::Duration::hours(1);
    store.revoke_plan_links(b"link-a", earlier).await.expect("revoke");
    assert_eq!(
        store.plan_links_revoked_at(b"link-a").await.expect("read"),
        Some(now()),
        "an earlier time is no change"
    );
    let later = now() + chrono::Duration::milliseconds(1);
    store.revoke_plan_links(b"link-a", later).await.expect("revoke");
    assert_eq!(store.plan_links_revoked_at(b"link-b").await.expect("read"), None, "each key its own");
    let store = h.reopen(store).await;
    assert_eq!(store.plan_links_revoked_at(b"link-a").await.expect("read"), Some(later), "durable, to the millisecond");
}

async fn inbox_entries_are_idempotent_and_resolved_with_an_append<H: Harness>(h: &H) {
    let store = h.fresh().await;
    let put = store.put_inbox(inbox("u1", InboxKind::Unmatched, "q1", "msg-1")).await.expect("put");
    assert_eq!(put, InboxPut::Inserted);
    // The same request, or the same source message under another request, is the stored entry.
    for again in [inbox("u2", InboxKind::Unmatched, "q1", "msg-9"), inbox("u3", InboxKind::Unmatched, "q2", "msg-1")] {
        let InboxPut::Existing(existing) = store.put_inbox(again).await.expect("put") else {
            panic!("a repeated message must not be queued twice")
        };
        assert_eq!(existing.entry_id, "u1");
    }
    let put = store.put_inbox(inbox("x1", InboxKind::Rejected, "q3", "")).await.expect("put");
    assert_eq!(put, InboxPut::Inserted);
    assert_eq!(store.find_inbox_by_request("q3").await.expect("find").map(|e| e.entry_id), Some("x1".into()));
    let q = InboxQuery { kind: InboxKind::Unmatched, state: None, system: None, after_ordinal: 0, limit: 10 };
    let listed = store.list_inbox(&q).await.expect("list");
    assert_eq!(listed.iter().map(|e| e.entry_id.as_str()).collect::<Vec<_>>(), vec!["u1"], "listed by kind");
    // Resolving appends and closes the entry in one transaction.
    let resolve = AppendBatch { resolves_inbox: Some("u1".into()), ..raw_batch("c1", 0, 1, "r1", "29189846") };
    append_ok(&store, resolve).await;
    let u1 = store.get_inbox("u1").await.expect("get").expect("exists");
    assert_eq!((u1.state, u1.resolved_case), (InboxState::Resolved, Some(case_id("c1"))));
    let twice = AppendBatch { resolves_inbox: Some("u1".into()), ..raw_batch("c1", 1, 1, "r2", "29189846") };
    store.append(twice).await.expect_err("an entry resolves once");
    assert_eq!(
        store.read_events(&case_id("c1"), 0, 10).await.expect("read").len(),
        1,
        "the refused append stored nothing"
    );
    assert!(store.close_inbox("x1", InboxState::Discarded, now()).await.expect("close"));
    assert!(!store.close_inbox("x1", InboxState::Discarded, now()).await.expect("close"), "only open entries close");
    // The same message appended under its source key resolves its waiting entry.
    store.put_inbox(inbox("u9", InboxKind::Unmatched, "q9", "msg-9")).await.expect("put");
    let by_source = AppendBatch { source: source("medcom", "msg-9"), ..raw_batch("c1", 1, 1, "r3", "29189846") };
    append_ok(&store, by_source).await;
    let u9 = store.get_inbox("u9").await.expect("get").expect("exists");
    assert_eq!((u9.state, u9.resolved_case), (InboxState::Resolved, Some(case_id("c1"))));
    let store = h.reopen(store).await;
    assert_eq!(store.get_inbox("x1").await.expect("get").map(|e| e.state), Some(InboxState::Discarded));
}

/// An index entry of `case` at `version`, evaluated on `on`, holding until
/// `until`, with items `(due, overdue)`.
fn entry(
    case: &str,
    version: u64,
    cvr: &str,
    on: &str,
    until: Option<&str>,
    items: &[(Option<&str>, bool)],
) -> WorklistEntry {
    WorklistEntry {
        case_id: case_id(case),
        version,
        municipality_cvr: cvr.into(),
        revision: "rules-1".into(),
        evaluated_on: day(on),
        valid_until: until.map(day),
        items: items
            .iter()
            .enumerate()
            .map(|(position, (due, overdue))| DueItem {
                sort_key: due_sort_key(due.map(day), &case_id(case), position),
                overdue: *overdue,
                due_on: due.map(day),
                obligation: format!("{case} obligation {position}").into_bytes(),
            })
            .collect(),
    }
}

async fn stale<S: EventStore>(store: &S, cvr: &str, today: &str) -> Vec<String> {
    let mut cases: Vec<String> = store
        .stale_worklist(cvr, day(today), 100)
        .await
        .expect("stale")
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    cases.sort();
    cases
}

async fn the_worklist_index_goes_stale_with_appends_and_days<H: Harness>(h: &H) {
    let store = h.fresh().await;
    append_ok(&store, raw_batch("c1", 0, 2, "r1", "29189846")).await;
    append_ok(&store, raw_batch("c2", 0, 1, "r2", "29189846")).await;
    append_ok(&store, raw_batch("c3", 0, 1, "r3", "55133018")).await;
    assert_eq!(stale(&store, "29189846", "2026-03-01").await, ["c1", "c2"], "a new case's entry is stale");
    assert_eq!(stale(&store, "55133018", "2026-03-01").await, ["c3"]);

    let stored = store
        .put_worklist(vec![
            entry("c1", 2, "29189846", "2026-03-01", Some("2026-03-10"), &[(Some("2026-03-09"), false)]),
            entry("c2", 1, "29189846", "2026-03-01", None, &[]),
            // Evaluated for a version the case is not at: refused.
            entry("c3", 7, "55133018", "2026-03-01", None, &[]),
        ])
        .await
        .expect("put");
    assert_eq!(stored, 2, "only entries of the case's current version are stored");
    assert!(stale(&store, "29189846", "2026-03-01").await.is_empty());
    assert!(stale(&store, "29189846", "2026-03-09").await.is_empty(), "fresh until the day before valid_until");
    assert_eq!(stale(&store, "29189846", "2026-03-10").await, ["c1"], "stale from valid_until on");
    assert_eq!(stale(&store, "29189846", "2026-02-28").await, ["c1", "c2"], "stale on a day before its evaluation");
    assert_eq!(stale(&store, "55133018", "2026-03-01").await, ["c3"]);

    // An append makes the entry stale in its own transaction; an entry
    // evaluated before it is refused.
    append_ok(&store, raw_batch("c2", 1, 1, "r4", "29189846")).await;
    assert_eq!(stale(&store, "29189846", "2026-03-01").await, ["c2"]);
    assert_eq!(store.put_worklist(vec![entry("c2", 1, "29189846", "2026-03-01", None, &[])]).await.expect("put"), 0);
    assert_eq!(stale(&store, "29189846", "2026-03-01").await, ["c2"]);
    // A refused append leaves the entry alone.
    store.put_worklist(vec![entry("c2", 2, "29189846", "2026-03-01", None, &[])]).await.expect("put");
    store.append(raw_batch("c2", 1, 1, "r5", "29189846")).await.expect_err("stale version");
    assert!(stale(&store, "29189846", "2026-03-01").await.is_empty());

    // Another rules revision: everything evaluated by the old one is stale.
    assert_eq!(store.reset_worklist("rules-1").await.expect("reset"), 0, "same revision: nothing to do");
    assert_eq!(store.reset_worklist("rules-2").await.expect("reset"), 2);
    assert_eq!(stale(&store, "29189846", "2026-03-01").await, ["c1", "c2"]);
    let store = h.reopen(store).await;
    assert_eq!(stale(&store, "29189846", "2026-03-01").await, ["c1", "c2"], "the index survives a reopen");
}

async fn worklist_pages_are_ordered_and_filtered<H: Harness>(h: &H) {
    let store = h.fresh().await;
    for (case, cvr) in [("a", "29189846"), ("b", "29189846"), ("c", "29189846"), ("x", "55133018")] {
        append_ok(&store, raw_batch(case, 0, 1, &format!("r-{case}"), cvr)).await;
    }
    store
        .put_worklist(vec![
            entry("a", 1, "29189846", "2026-03-01", None, &[(None, false), (Some("2026-02-01"), true)]),
            entry("b", 1, "29189846", "2026-03-01", None, &[(Some("2026-04-01"), false), (Some("2026-02-01"), true)]),
            entry("c", 1, "29189846", "2026-03-01", None, &[]),
            entry("x", 1, "55133018", "2026-03-01", None, &[(Some("2026-01-01"), true)]),
        ])
        .await
        .expect("put");
    let query = |status, due: Option<&str>, after: &str, limit| DueQuery {
        municipality_cvr: "29189846".into(),
        status,
        due_on_or_before: due.map(day),
        after_key: after.into(),
        limit,
    };
    let names = |items: &[crate::StoredDueItem]| -> Vec<String> {
        items.iter().map(|i| String::from_utf8_lossy(&i.item.obligation).into_owned()).collect()
    };
    let all = store.due_items(&query(DueStatus::Any, None, "", 10)).await.expect("page");
    assert_eq!(
        names(&all),
        ["a obligation 1", "b obligation 1", "b obligation 0", "a obligation 0"],
        "soonest first, then by case, undated last; another municipality's items are not listed"
    );
    assert_eq!(all[0].case_id, case_id("a"));
    assert_eq!(all[2].item.due_on, Some(day("2026-04-01")));
    let first = store.due_items(&query(DueStatus::Any, None, "", 2)).await.expect("page");
    let rest = store.due_items(&query(DueStatus::Any, None, &first[1].item.sort_key, 10)).await.expect("page");
    assert_eq!(names(&rest), ["b obligation 0", "a obligation 0"], "pages continue after the last key");
    let overdue = store.due_items(&query(DueStatus::Overdue, None, "", 10)).await.expect("page");
    assert_eq!(names(&overdue), ["a obligation 1", "b obligation 1"]);
    let open = store.due_items(&query(DueStatus::Open, Some("2026-04-01"), "", 10)).await.expect("page");
    assert_eq!(names(&open), ["b obligation 0"], "a due limit leaves out later and undated items");

    let listed = |due| {
        let store = &store;
        async move {
            let query = CaseQuery { municipality_cvr: Some("29189846".into()), due, limit: 10, ..Default::default() };
            let cases = store.list_cases(&query).await.expect("list");
            cases.iter().map(|c| c.case_id.as_str().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(Some(DueStatus::Any)).await, ["a", "b"], "cases with due obligations, in creation order");
    assert_eq!(listed(Some(DueStatus::Open)).await, ["a", "b"]);
    assert_eq!(listed(Some(DueStatus::Overdue)).await, ["a", "b"]);
    assert_eq!(listed(None).await, ["a", "b", "c"]);

    // A case that moves to another municipality leaves the old worklist at once.
    append_ok(&store, raw_batch("b", 1, 1, "r-b-moved", "55133018")).await;
    let after_move = store.due_items(&query(DueStatus::Any, None, "", 10)).await.expect("page");
    assert_eq!(names(&after_move), ["a obligation 1", "a obligation 0"]);
    assert_eq!(stale(&store, "55133018", "2026-03-01").await, ["b"]);
}

/// `n` valid events from `first` on, of several kinds, a few a day.
fn varied_history(first: &str, n: usize) -> Vec<Event> {
    let scope = ConsentScope::parse("scope", "share:jobcenter").expect("scope");
    (0..n)
        .map(|i| {
            let on = (day(first) + chrono::Days::new(i as u64 / 4)).to_string();
            let kind = match i % 4 {
                0 => EventKind::ConsentGiven { custody_holder: party("parent-1"), scope: scope.clone() },
                1 => EventKind::SupportPersonOffered { custody_holder: party("parent-2") },
                2 => EventKind::ConsentWithdrawn { custody_holder: party("parent-1"), scope: scope.clone() },
                _ => EventKind::RevisionOffered,
            };
            event(&on, kind)
        })
        .collect()
}

/// The state of a case as a full replay of its history gives it.
async fn replayed(ledger: &CaseLedger, id: &str) -> bro_domain::Case {
    let history = ledger.history(&case_id(id)).await.expect("history");
    bro_domain::Case::replay(case_id(id), &history).expect("replays")
}

async fn snapshots_spare_replays_and_agree_with_them<H: Harness>(h: &H) {
    let store: Arc<dyn EventStore> = Arc::new(h.fresh().await);
    let ledger = CaseLedger::new(store.clone());
    new_case(&ledger, "c1").await;
    assert_eq!(store.get_snapshot(&case_id("c1")).await.expect("get"), None, "none for a short case");
    assert_eq!(store.case_version(&case_id("c1")).await.expect("version"), Some(1));
    assert_eq!(store.case_version(&case_id("none")).await.expect("version"), None);
    // One append crossing the interval writes the state after it.
    let crossing = snapshot::SNAPSHOT_INTERVAL as usize + 44;
    ledger.append(append("c1", "long", varied_history("2026-01-10", crossing), None)).await.expect("append");
    let written = store.get_snapshot(&case_id("c1")).await.expect("get").expect("a snapshot");
    assert_eq!(store.case_version(&case_id("c1")).await.expect("version"), Some(crossing as u64 + 1));
    assert_eq!(written.version, crossing as u64 + 1);
    assert_eq!(snapshot::decode(&written).as_ref(), Some(&*ledger.state(&case_id("c1")).await.expect("state")));
    // A batch that fails writes no snapshot.
    let mut stale = raw_batch("c1", 3, 1, "stale", "29189846");
    stale.snapshot = Some(StoredSnapshot { version: 4, state: b"{}".to_vec() });
    assert!(matches!(store.append(stale).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.get_snapshot(&case_id("c1")).await.expect("get").as_ref(), Some(&written));
    // Later events on top: a cold ledger starts from the snapshot and agrees with a replay.
    ledger.append(append("c1", "more", varied_history("2026-06-01", 6), None)).await.expect("append");
    let cold = CaseLedger::new(store.clone());
    let state = cold.state(&case_id("c1")).await.expect("state");
    assert_eq!(state.version, crossing as u64 + 7);
    assert_eq!(*state, replayed(&cold, "c1").await);
    assert_eq!(*state, *ledger.state(&case_id("c1")).await.expect("state"));
    // A backdated event after the snapshot reorders the history: a replay it is.
    let backdated = vec![event("2026-01-11", EventKind::RevisionOffered)];
    ledger.append(append("c1", "backdated", backdated, None)).await.expect("append");
    let cold = CaseLedger::new(store.clone());
    let state = cold.state(&case_id("c1")).await.expect("state");
    assert_eq!(*state, replayed(&cold, "c1").await);
    assert_eq!(
        state.revisions.iter().filter(|r| r.on == day("2026-01-11")).count(),
        2,
        "one from before, one backdated"
    );
}
