//! `bro` on PostgreSQL, as an operator would run it: `bro serve` refuses an
//! unmigrated database and names the command that fixes it; `bro store
//! migrate` creates the schema; two `bro serve` replicas on the one
//! database take concurrent appends to the same cases, every acknowledged
//! append is there exactly once with gap-free sequences, and `bro audit
//! verify --store` finds the chain both replicas wrote whole.
//!
//! The server is `BRO_TEST_POSTGRES` (default: the local one); without one
//! the test is skipped, except in CI (`CI` set), where it fails.

#![cfg(unix)]
#![allow(clippy::print_stderr)] // A skipped test says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_e2e::process::{ServeProcess as Replica, fresh_database, postgres_admin};
use bro_e2e::{ServeIdentity, append, new_case, revision_offered};
use tokio_postgres::NoTls;

const REPLICAS: usize = 2;
const APPENDS_PER_WRITER: usize = 15;

fn bro(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bro"))
        .args(args)
        .env_remove("BRO_CONFIG")
        .env_remove("BRO_STORE")
        .env_remove("BRO_DATA_DIR")
        .output()
        .expect("run bro")
}

/// A case's whole history (these cases hold fewer than 1,000 events).
async fn history(
    client: &mut CaseServiceClient<bro_server::access::client::AuthChannel>,
    case: &str,
) -> Vec<pb::CaseEvent> {
    let request = pb::ListCaseEventsRequest { parent: format!("cases/{case}"), page_size: 1000, ..Default::default() };
    client.list_case_events(request).await.expect("events").into_inner().events
}

/// A `bro serve` replica of this binary.
fn replica(config: &Path, data_dir: &Path, log: PathBuf) -> Replica {
    Replica::spawn(Path::new(env!("CARGO_BIN_EXE_bro")), config, data_dir, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_share_cases_and_one_audit_chain() {
    let Some(admin) = postgres_admin().await else { return };
    let name = format!("bro_test_cli_{}", std::process::id());
    let url = fresh_database(&admin, &name).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let identity = Arc::new(ServeIdentity::prepare(&dir.path().join("idp")).expect("identities"));
    let key_file = dir.path().join("bro.key");
    assert!(bro(&["keygen", "--out", key_file.to_str().expect("utf-8")]).status.success());
    let extra = format!(
        "key_file = \"{}\"\n[rate_limit]\nper_second = 100000.0\nburst = 100000.0\n[store]\nurl = \"{url}\"\n",
        key_file.display()
    );
    let config = identity.config_file(dir.path(), &extra).expect("config");

    // 1. An unmigrated database is refused, naming the fix.
    let refused = bro(&["serve", "--config", config.to_str().expect("utf-8"), "--listen", "127.0.0.1:0"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("bro store migrate"), "{said}");

    // 2. Migrate (twice: the second does nothing).
    for _ in 0..2 {
        let migrated = bro(&["store", "migrate", "--store", &url]);
        assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
        let said = String::from_utf8_lossy(&migrated.stdout);
        assert!(said.contains(&format!("schema version {}", bro_store_postgres::SCHEMA_VERSION)), "{said}");
    }

    // 3. Two replicas; writers on each append to the same two cases at once.
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|r| replica(&config, &dir.path().join(format!("data-{r}")), dir.path().join(format!("r{r}.log"))))
        .collect();
    let mut clients = Vec::new();
    for replica in &mut replicas {
        let channel = replica.channel().await;
        clients.push(CaseServiceClient::new(identity.caseworker(channel, bro_e2e::TEST_CVR)));
    }
    clients[0].create_case(new_case("shared-1", bro_e2e::TEST_CVR)).await.expect("create on replica 0");
    clients[1].create_case(new_case("shared-2", bro_e2e::TEST_CVR)).await.expect("create on replica 1");
    let writers: Vec<_> = (0..REPLICAS * 2)
        .map(|w| {
            let mut client = clients[w % REPLICAS].clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..APPENDS_PER_WRITER {
                    let case = if i % 2 == 0 { "shared-1" } else { "shared-2" };
                    let request_id = format!("w{w}-{i}");
                    let request = append(case, &request_id, vec![revision_offered("2026-02-01")], "");
                    let response = client.append_case_events(request).await.expect("append").into_inner();
                    acked.push((request_id, response.events[0].sequence));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }

    // 4. Each replica sees every acknowledged append once, in a gap-free history.
    for client in &mut clients {
        for case in ["shared-1", "shared-2"] {
            let events = history(client, case).await;
            let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
            assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>(), "{case} is gap-free");
            let read = client.get_case(pb::GetCaseRequest { name: format!("cases/{case}") }).await.expect("get");
            assert_eq!(read.into_inner().case.expect("case").version, events.len() as i64);
        }
    }
    let total = REPLICAS * 2 * APPENDS_PER_WRITER;
    assert_eq!(acked.len(), total);
    let mut stored = 0;
    for case in ["shared-1", "shared-2"] {
        let events = history(&mut clients[0], case).await;
        stored += events.len() - 1;
        for (request_id, sequence) in acked.iter().filter(|(r, _)| events.iter().any(|e| &e.request_id == r)) {
            let found: Vec<i64> = events.iter().filter(|e| &e.request_id == request_id).map(|e| e.sequence).collect();
            assert_eq!(found, [*sequence], "{request_id} is stored once, where it was acknowledged");
        }
    }
    assert_eq!(stored, total, "every acknowledged append is stored, and nothing else");
    drop(clients);
    for replica in replicas {
        replica.stop();
    }

    // 5. One audit chain, written by both replicas, whole.
    let verify = bro(&["audit", "verify", "--store", &url, "--key-file", key_file.to_str().expect("utf-8")]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(said.contains("audit log intact"), "{said}");
    eprintln!("{total} appends through {REPLICAS} replicas on one database; bro audit verify: {}", said.trim());
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bro_store_copy_moves_a_sqlite_gateway_to_postgres_whole() {
    use bro_store::{CaseQuery, DeliveryQuery, EventStore, InboxEntry, InboxKind, InboxQuery, InboxState, NewDelivery};
    let Some(admin) = postgres_admin().await else { return };
    let name = format!("bro_test_copy_{}", std::process::id());
    let url = fresh_database(&admin, &name).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");

    // A gateway on SQLite: three cases, histories with a letter; its calls fill the audit log.
    let gw =
        bro_e2e::TestGateway::start_in(data_dir.clone(), bro_server::ServeOptions::default()).await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    for c in 0..3 {
        let case = format!("copied-{c}");
        client.create_case(new_case(&case, bro_e2e::TEST_CVR)).await.expect("create");
        let events = vec![revision_offered("2026-02-01"), bro_e2e::letter_to_psychiatry("2026-02-02", "parent-1", c)];
        client.append_case_events(append(&case, &format!("h-{c}"), events, "")).await.expect("append");
        client.get_case(pb::GetCaseRequest { name: format!("cases/{case}") }).await.expect("read");
    }
    drop(client);
    gw.stop().await.expect("stop");
    // A delivery and an unmatched message, as the pipeline leaves them.
    let source = bro_store_sqlite::SqliteStore::open(&data_dir).expect("reopen");
    let case_id = bro_domain::CaseId::parse("case", "copied-1").expect("id");
    let now = chrono::DateTime::from_timestamp(1_772_445_600, 0).expect("a time");
    let delivery = NewDelivery {
        delivery_id: "d-1".into(),
        system: "journal".into(),
        case_id: case_id.clone(),
        first_sequence: 2,
        last_sequence: 3,
        payload: b"sealed elsewhere".to_vec(),
        create_time: now,
        replay_of: String::new(),
    };
    source.enqueue_delivery(delivery).await.expect("enqueue");
    let entry = InboxEntry {
        ordinal: 0,
        entry_id: "u-1".into(),
        kind: InboxKind::Unmatched,
        system: "psykiatri".into(),
        request_id: "in-1".into(),
        source_message_id: "m-1".into(),
        content_type: "application/xml".into(),
        body: b"<message/>".to_vec(),
        batch: b"batch".to_vec(),
        reason: "no case has these people".into(),
        state: InboxState::Open,
        resolved_case: None,
        create_time: now,
        update_time: now,
    };
    source.put_inbox(entry).await.expect("inbox");
    source.revoke_plan_links(b"a link key", now).await.expect("revoke");
    source.close().await.expect("close");
    drop(source);
    let from = data_dir.to_str().expect("utf-8");

    // Refused into an unmigrated database; copied into a migrated one; refused a second time.
    let refused = bro(&["store", "copy", "--from", from, "--to", &url]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bro store migrate"));
    assert!(bro(&["store", "migrate", "--store", &url]).status.success());
    let copied = bro(&["store", "copy", "--from", from, "--to", &url]);
    let said = String::from_utf8_lossy(&copied.stdout);
    assert!(copied.status.success(), "{said}{}", String::from_utf8_lossy(&copied.stderr));
    assert!(said.contains("cases: 3 rows") && said.contains("deliveries: 1 rows"), "{said}");
    assert!(said.contains("plan_link_revocations: 1 rows"), "{said}");
    let again = bro(&["store", "copy", "--from", from, "--to", &url]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("copy only into an empty one"));

    // The same reads give the same answers on both.
    let sqlite = bro_store_sqlite::SqliteStore::open(&data_dir).expect("reopen");
    let postgres = bro_store_postgres::PostgresStore::open(&url).await.expect("open");
    let all = CaseQuery { limit: 100, ..Default::default() };
    assert_eq!(sqlite.list_cases(&all).await.expect("list"), postgres.list_cases(&all).await.expect("list"));
    for c in 0..3 {
        let id = bro_domain::CaseId::parse("case", &format!("copied-{c}")).expect("id");
        let events = sqlite.read_events(&id, 0, 100).await.expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(events, postgres.read_events(&id, 0, 100).await.expect("events"));
        assert_eq!(
            sqlite.find_request(&format!("h-{c}")).await.expect("r"),
            postgres.find_request(&format!("h-{c}")).await.expect("r")
        );
    }
    let deliveries = DeliveryQuery { limit: 10, ..Default::default() };
    assert_eq!(
        sqlite.list_deliveries(&deliveries).await.expect("list"),
        postgres.list_deliveries(&deliveries).await.expect("list")
    );
    let inbox = InboxQuery { kind: InboxKind::Unmatched, state: None, system: None, after_ordinal: 0, limit: 10 };
    assert_eq!(sqlite.list_inbox(&inbox).await.expect("list"), postgres.list_inbox(&inbox).await.expect("list"));
    assert_eq!(postgres.stale_worklist(bro_e2e::TEST_CVR, now.date_naive(), 10).await.expect("stale").len(), 3);
    // New rows continue after the copied ordinals.
    postgres
        .enqueue_delivery(NewDelivery {
            delivery_id: "d-2".into(),
            ..sqlite.get_delivery("d-1").await.expect("get").expect("d-1").new
        })
        .await
        .expect("enqueue");
    let listed = postgres.list_deliveries(&deliveries).await.expect("list");
    assert!(listed[1].ordinal > listed[0].ordinal);
    sqlite.close().await.expect("close");
    postgres.close().await.expect("close");

    // The audit chain verifies on the target, with as many records as the source.
    let key = data_dir.join("test.key");
    let key = key.to_str().expect("utf-8");
    let on_sqlite = bro(&["audit", "verify", "--data-dir", from, "--key-file", key]);
    let on_postgres = bro(&["audit", "verify", "--store", &url, "--key-file", key]);
    assert!(on_postgres.status.success(), "{}", String::from_utf8_lossy(&on_postgres.stdout));
    assert_eq!(String::from_utf8_lossy(&on_sqlite.stdout), String::from_utf8_lossy(&on_postgres.stdout));
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
}

/// What one writer did: an append of a caseworker's letter, or an ingest of
/// psychiatry's XDIS91 letter; each to one of the cases.
#[derive(Clone, Copy, Debug)]
enum Write {
    Letter(usize),
    Ingest(usize),
}

const KILLED: usize = 1;
const WATCHING: usize = 2;
const CASES: usize = 4;
const LETTERS: usize = 45;
const INGESTS: usize = 24;
const LEASE_SECS: u64 = 2;

/// Runs one write on the replicas in turn from `first` until one
/// acknowledges it (the same request id each time: a retry, not a second write).
async fn write_somewhere(
    cases: &mut [CaseServiceClient<bro_server::access::client::AuthChannel>],
    ingest: &mut [bro_api::v1::ingest_service_client::IngestServiceClient<bro_server::access::client::AuthChannel>],
    cprs: &[String],
    template: &[u8],
    first: usize,
    write: Write,
) -> String {
    let start = Instant::now();
    for attempt in 0.. {
        let r = (first + attempt) % cases.len();
        let acked = match write {
            Write::Letter(n) => {
                let case = format!("rep-{}", n % CASES);
                let letter = bro_e2e::letter_to_psychiatry("2026-03-02", "mother", n);
                cases[r].append_case_events(append(&case, &format!("letter-{n}"), vec![letter], "")).await.map(drop)
            }
            Write::Ingest(n) => {
                let request = pb::IngestRequest {
                    system: "psykiatri".into(),
                    message: Some(pb::ExternalMessage {
                        content_type: "application/xml".into(),
                        body: bro_e2e::xdis91_letter(template, &cprs[n % CASES], n),
                        metadata: Default::default(),
                    }),
                    request_id: format!("ingest-{n}"),
                };
                ingest[r].ingest(request).await.map(|answer| {
                    let outcome = answer.into_inner().outcome();
                    assert!(
                        matches!(outcome, pb::IngestOutcome::Appended | pb::IngestOutcome::Duplicate),
                        "ingest-{n} was {outcome:?}"
                    );
                })
            }
        };
        match acked {
            Ok(()) => return format!("{write:?}"),
            Err(status) => {
                assert!(
                    matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled),
                    "{write:?} on replica {r}: {status:?}"
                );
                assert!(start.elapsed() < Duration::from_secs(60), "{write:?} found no replica to take it");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    unreachable!("the loop returns or fails")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_writes_deliveries_and_watches_and_lose_nothing_to_a_sigkill() {
    use bro_api::v1::delivery_service_client::DeliveryServiceClient;
    use bro_api::v1::ingest_service_client::IngestServiceClient;
    use bro_server::access::{Purpose, Role};
    let Some(admin) = postgres_admin().await else { return };
    let name = format!("bro_test_replicas_{}", std::process::id());
    let url = fresh_database(&admin, &name).await;
    assert!(bro(&["store", "migrate", "--store", &url]).status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let public = bro_e2e::package_adapter(Path::new(env!("CARGO_BIN_EXE_bro")), dir.path(), "medcom");
    let receiver = bro_e2e::receiver::Receiver::start(0, 0).await.expect("receiver");
    receiver.set_delay_ms(30);
    let identity = Arc::new(ServeIdentity::prepare(&dir.path().join("idp")).expect("identities"));
    let key_file = dir.path().join("bro.key");
    assert!(bro(&["keygen", "--out", key_file.to_str().expect("utf-8")]).status.success());
    let heads = dir.path().join("audit-heads.txt");
    // One signing key for all replicas: the heads any of them exports verify under it.
    let signing_key = dir.path().join("audit-signing.key");
    assert!(bro(&["keygen", "--audit-signing", "--out", signing_key.to_str().expect("utf-8")]).status.success());
    let extra = format!(
        "key_file = \"{}\"\n[rate_limit]\nper_second = 100000.0\nburst = 100000.0\n\
         [audit]\nhead_export_secs = 1\nhead_export_file = \"{}\"\nsigning_key = \"{}\"\n\
         [store]\nurl = \"{url}\"\ndelivery_lease_secs = {LEASE_SECS}\n\
         [adapters]\ndirectory = \"{}\"\n[adapters.vendors.ops]\nkey = \"{public}\"\nadapters = [\"medcom\"]\n\
         [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\ntarget = \"xdis91\"\nsector = \"psychiatry\"\n\
         client_id = \"psykiatri\"\nsubscribe = [\"correspondence_recorded\"]\n\
         transport = {{ kind = \"http\", url = \"{}\" }}\nbackoff_base_ms = 50\nbackoff_max_ms = 500\nmax_attempts = 100\n",
        key_file.display(),
        heads.display(),
        signing_key.display(),
        dir.path().join("adapters").display(),
        receiver.url()
    );
    let config = identity.config_file(dir.path(), &extra).expect("config");
    let mut replicas: Vec<Replica> = (0..3)
        .map(|r| replica(&config, &dir.path().join(format!("data-{r}")), dir.path().join(format!("r{r}.log"))))
        .collect();
    let (mut cases, mut ingest) = (Vec::new(), Vec::new());
    for replica in &mut replicas {
        let channel = replica.channel().await;
        cases.push(CaseServiceClient::new(identity.caseworker(channel.clone(), bro_e2e::TEST_CVR)));
        ingest.push(IngestServiceClient::new(identity.system(channel, "psykiatri")));
    }
    let cprs = bro_e2e::synthetic_cprs(CASES);
    for (c, cpr) in cprs.iter().enumerate() {
        let case = format!("rep-{c}");
        let mut create = new_case(&case, bro_e2e::TEST_CVR);
        create.custody_holders = vec![bro_e2e::parent("mother", cpr, "Mor Testesen")];
        cases[c % 3].create_case(create).await.expect("create");
        let consent = bro_e2e::event(
            "2026-02-01",
            pb::case_event::Kind::ConsentGiven(pb::ConsentGiven {
                custody_holder: "mother".into(),
                scope: "share:psychiatry".into(),
            }),
        );
        cases[(c + 1) % 3]
            .append_case_events(append(&case, &format!("consent-{c}"), vec![consent], ""))
            .await
            .expect("consent");
    }

    // A watch on one replica of a case every replica writes to.
    let mut watch = cases[WATCHING]
        .watch_case(pb::WatchCaseRequest { name: "cases/rep-0".into(), after_sequence: 0 })
        .await
        .expect("watch")
        .into_inner();
    let watched = Arc::new(std::sync::Mutex::new(Vec::new()));
    let watching = {
        let watched = watched.clone();
        tokio::spawn(async move {
            while let Ok(Some(item)) = watch.message().await {
                watched.lock().expect("lock").push(item.event.expect("event").sequence);
            }
        })
    };

    // The burst: three writers, each starting on its own replica, letters and ingests interleaved.
    let template = bro_e2e::medcom_fixture("DIS91_1.in.xml");
    let mut writes: Vec<Write> = (0..LETTERS).map(Write::Letter).collect();
    writes.extend((0..INGESTS).map(Write::Ingest));
    writes.sort_by_key(|w| match w {
        Write::Letter(n) => n * INGESTS,
        Write::Ingest(n) => n * LETTERS + 1,
    });
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (mut cases, mut ingest, cprs, template) =
                (cases.clone(), ingest.clone(), cprs.clone(), template.clone());
            let (acked, mine) = (acked.clone(), writes.iter().copied().skip(w).step_by(3).collect::<Vec<_>>());
            tokio::spawn(async move {
                for write in mine {
                    let done = write_somewhere(&mut cases, &mut ingest, &cprs, &template, w, write).await;
                    acked.lock().expect("lock").push(done);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        })
        .collect();
    // SIGKILL one replica in the middle of the burst and of the delivery run.
    let start = Instant::now();
    while acked.lock().expect("lock").len() < writes.len() / 3 || receiver.unique().len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(120), "the burst did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_pid = replicas[KILLED].child.id();
    replicas[KILLED].child.kill().expect("SIGKILL");
    replicas[KILLED].child.wait().expect("reaped");
    let (acked_at_kill, delivered_at_kill) = (acked.lock().expect("lock").len(), receiver.unique().len());
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(acked.lock().expect("lock").len(), writes.len(), "every write was acknowledged by some replica");

    // Every acknowledged write is stored exactly once, in gap-free histories.
    let survivor = 0;
    let mut letters_stored = std::collections::BTreeMap::new();
    let mut stored_events = Vec::new();
    for c in 0..CASES {
        let events = history(&mut cases[survivor], &format!("rep-{c}")).await;
        stored_events.push(events.len());
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>(), "rep-{c} is gap-free");
        for e in &events {
            if let Some(pb::case_event::Kind::CorrespondenceRecorded(r)) = &e.kind {
                let id = r.correspondence.as_ref().expect("letter").message_id.clone();
                *letters_stored.entry(id).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(letters_stored.len(), LETTERS + INGESTS, "every letter and every ingested message is stored");
    assert!(letters_stored.values().all(|n| *n == 1), "none twice: {letters_stored:?}");

    // The watch on the third replica saw every event of its case, in order, wherever it was written.
    let version = history(&mut cases[survivor], "rep-0").await.len() as i64;
    let start = Instant::now();
    while watched.lock().expect("lock").len() < version as usize {
        assert!(start.elapsed() < Duration::from_secs(30), "the watch fell behind: {:?}", watched.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*watched.lock().expect("lock"), (1..=version).collect::<Vec<_>>(), "in order, none skipped");
    watching.abort();

    // Every delivery arrives, at least once, under one key, in order per case.
    let operator = identity.person(replicas[survivor].channel().await, Role::Administrator, Purpose::Operations);
    let mut deliveries = DeliveryServiceClient::new(operator);
    let start = Instant::now();
    let delivered = loop {
        let request = pb::ListDeliveriesRequest { page_size: 1000, ..Default::default() };
        let all = deliveries.list_deliveries(request).await.expect("list").into_inner().deliveries;
        let done = all.iter().all(|d| d.state() == pb::DeliveryState::Delivered);
        if done && all.len() >= LETTERS && receiver.unique().len() == all.len() {
            break all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "deliveries did not all arrive: {} of {}",
            receiver.unique().len(),
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let keys: std::collections::HashSet<String> =
        delivered.iter().map(|d| d.name.trim_start_matches("deliveries/").to_owned()).collect();
    let received: std::collections::HashSet<String> = receiver.unique().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, received, "each idempotency key is one delivery, and every delivery arrived");
    let case_of: std::collections::HashMap<String, (String, i64)> = delivered
        .iter()
        .map(|d| (d.name.trim_start_matches("deliveries/").to_owned(), (d.case.clone(), d.first_sequence)))
        .collect();
    let (mut seen, mut order) = (std::collections::HashSet::new(), std::collections::BTreeMap::new());
    let all = receiver.all();
    for r in &all {
        if seen.insert(r.key.clone()) {
            let (case, sequence) = &case_of[&r.key];
            order.entry(case.clone()).or_insert_with(Vec::new).push(*sequence);
        }
    }
    for (case, sequences) in &order {
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{case}: deliveries overtook each other: {sequences:?}");
    }

    // Each replica reports its pool and the leases on /metrics.
    for r in [0, WATCHING] {
        let metrics = replicas[r].metrics();
        for line in
            ["bro_store_pool_connections{state=\"idle\"}", "bro_delivery_leases_held ", "bro_delivery_leases_live "]
        {
            assert!(metrics.contains(line), "{line} missing from replica {r}'s metrics:\n{metrics}");
        }
    }

    // The dead replica holds no lease once its leases expired.
    tokio::time::sleep(Duration::from_secs(LEASE_SECS + 1)).await;
    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let now_micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_micros() as i64;
    let held: i64 = db
        .query_one(
            "SELECT count(*) FROM delivery_leases WHERE holder LIKE $1 AND expire_time > $2",
            &[&format!("pid{killed_pid}-%"), &now_micros],
        )
        .await
        .expect("leases")
        .get(0);
    assert_eq!(held, 0, "the killed replica still holds leases");
    let live: i64 = db
        .query_one("SELECT count(*) FROM delivery_leases WHERE expire_time > $1", &[&now_micros])
        .await
        .expect("leases")
        .get(0);
    assert_eq!(live, 0, "nothing is left to deliver, so no lease is held");
    drop(db);

    drop((cases, ingest, deliveries));
    for (r, replica) in replicas.into_iter().enumerate() {
        if r != KILLED {
            replica.stop();
        }
    }
    let verify = bro(&[
        "audit",
        "verify",
        "--store",
        &url,
        "--key-file",
        key_file.to_str().expect("utf-8"),
        "--head",
        heads.to_str().expect("utf-8"),
        "--signing-key",
        signing_key.to_str().expect("utf-8"),
    ]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.contains("extends all"), "every replica's signed head holds: {said}");

    // Each stored write has exactly one record committed with it, the killed replica's too, all chained.
    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let waiting: i64 = db.query_one("SELECT count(*) FROM audit_pending", &[]).await.expect("pending").get(0);
    assert_eq!(waiting, 0, "every committed write's record is chained");
    let mut committed = std::collections::BTreeMap::new();
    for row in db.query("SELECT record FROM audit_records ORDER BY sequence", &[]).await.expect("records") {
        let record = <pb::AuditRecord as prost::Message>::decode(row.get::<_, &[u8]>(0)).expect("a record");
        if record.outcome == "COMMITTED" {
            *committed.entry(record.case.clone()).or_insert(0usize) += 1;
        }
    }
    drop(db);
    for (c, events) in stored_events.iter().enumerate() {
        let case = format!("cases/rep-{c}");
        // One event per write: the creation, the consent, the letters and the ingested messages.
        assert_eq!(committed.get(&case), Some(events), "{case}: one record per stored write");
    }

    // The audit head was exported once a second by one replica, not by each.
    let exported = std::fs::read_to_string(&heads).expect("the head export file");
    let lines: Vec<(chrono::DateTime<chrono::FixedOffset>, u64)> = bro_store::SignedHead::parse_lines(&exported)
        .expect("signed heads, one JSON line each")
        .iter()
        .map(|head| {
            let empty = head.sequence == 0 && head.chain_value.is_empty();
            assert!(empty || head.chain_value.len() == 64, "a 32-byte chain value in hex: {head:?}");
            (chrono::DateTime::parse_from_rfc3339(&head.time).expect("a time"), head.sequence)
        })
        .collect();
    assert!(lines.len() >= 3, "the export ran: {exported}");
    for pair in lines.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= chrono::Duration::seconds(1), "exported twice in one period: {exported}");
        assert!(pair[1].1 >= pair[0].1, "the head only moves on: {exported}");
    }
    eprintln!(
        "3 replicas: {} writes ({acked_at_kill} acknowledged before the SIGKILL), {} deliveries ({delivered_at_kill} \
         arrived before it; {} requests in all)",
        writes.len(),
        keys.len(),
        all.len()
    );
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
}
