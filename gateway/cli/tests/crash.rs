//! Crash test of the `bro` binary: a burst of concurrent appends against
//! `bro serve`, a SIGKILL in the middle of it, a restart on the same data
//! directory, and then the durability promise is checked through the public
//! API: every acknowledged append is stored exactly once with the sequences it
//! was acknowledged with, histories are gap-free, appends are atomic, and a
//! retry of any request (acknowledged or cut off by the crash) is idempotent.
//! The second server is stopped with SIGTERM and must exit cleanly (status 0).

#![cfg(unix)]
#![allow(clippy::print_stderr)] // The test reports what the burst did, for whoever reads a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_e2e::{ServeIdentity, append, new_case, revision_offered};
use bro_server::access::client::AuthChannel;
use futures::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Cases the burst writes to.
const CASES: usize = 4;
/// Concurrent writer tasks.
const WRITERS: usize = 16;
/// The server is killed once this many appends were acknowledged…
const KILL_AFTER_ACKS: usize = 400;
/// …or once the burst ran this long with at least `MIN_ACKS` acknowledged.
const KILL_AFTER: Duration = Duration::from_millis(2000);
/// Fewer acknowledged appends than this would make the test meaningless.
const MIN_ACKS: usize = 16;
/// Generous limits for a loaded CI machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
const CALL_LIMIT: Duration = Duration::from_secs(30);
const BURST_LIMIT: Duration = Duration::from_secs(30);
const EXIT_LIMIT: Duration = Duration::from_secs(30);
/// The day every burst event occurred on (all the same: appends stay in order).
const EVENT_DAY: &str = "2026-02-01";

fn case_id(i: usize) -> String {
    format!("crash-{i}")
}

/// The append a request id stands for; a retry rebuilds exactly this.
fn append_request(case: &str, request_id: &str, events: usize) -> pb::AppendCaseEventsRequest {
    append(case, request_id, (0..events).map(|_| revision_offered(EVENT_DAY)).collect(), "")
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a probe listener");
    listener.local_addr().expect("probe address").port()
}

/// A `bro serve` child process; killed (and reaped) on drop if still running.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn spawn(data_dir: &Path, log: PathBuf, config: &Path) -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stderr = std::fs::File::create(&log).expect("create the server log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bro"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--log-format")
            .arg("json")
            .env_remove("BRO_CONFIG")
            .env_remove("BRO_ADMIN_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn `bro serve`");
        Server { child, addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log.display()))
    }

    /// Waits until the server answers the gRPC health check for the case
    /// service; fails if the process exits or the limit passes first.
    async fn wait_ready(&mut self) -> Channel {
        let start = Instant::now();
        let mut last_error = String::from("no attempt yet");
        while start.elapsed() < STARTUP_LIMIT {
            if let Some(status) = self.child.try_wait().expect("poll the server process") {
                panic!("`bro serve` exited during startup with {status}; its log:\n{}", self.log_text());
            }
            match self.probe().await {
                Ok(channel) => return channel,
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "`bro serve` on {} did not become healthy within {STARTUP_LIMIT:?} (last error: {last_error}); its log:\n{}",
            self.addr,
            self.log_text()
        );
    }

    async fn probe(&self) -> Result<Channel, String> {
        let channel = Channel::from_shared(self.url())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut health = HealthClient::new(channel.clone());
        let check = health.check(HealthCheckRequest { service: "bro.v1.CaseService".into() });
        let response = tokio::time::timeout(Duration::from_secs(5), check)
            .await
            .map_err(|_| "health check timed out".to_owned())?
            .map_err(|s| format!("health check: {s}"))?
            .into_inner();
        if response.status == ServingStatus::Serving as i32 {
            Ok(channel)
        } else {
            Err(format!("health status {}", response.status))
        }
    }

    /// Waits for the process to exit, failing after `EXIT_LIMIT`.
    async fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server process") {
                return status;
            }
            assert!(
                start.elapsed() < EXIT_LIMIT,
                "`bro serve` did not exit within {EXIT_LIMIT:?}; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One append the burst sent.
#[derive(Clone, Debug)]
struct Sent {
    case: String,
    events: usize,
}

/// What the writers did, shared between them.
#[derive(Default)]
struct Book {
    /// Every append sent (or about to be), by request id.
    sent: BTreeMap<String, Sent>,
    /// Acknowledged appends: request id → the sequences in the response.
    acked: BTreeMap<String, Vec<i64>>,
    /// Anything that went wrong before the kill.
    unexpected: Vec<String>,
}

/// Appends 1–3 events at a time, round-robin over the cases, until the server
/// is killed; records what was sent and what was acknowledged.
async fn writer(
    w: usize,
    url: String,
    identity: Arc<ServeIdentity>,
    book: Arc<Mutex<Book>>,
    killed: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) {
    let channel = match Channel::from_shared(url).expect("valid url").connect().await {
        Ok(c) => c,
        Err(e) => {
            book.lock().unwrap().unexpected.push(format!("writer {w} cannot connect: {e}"));
            return;
        }
    };
    let mut client = CaseServiceClient::new(identity.caseworker(channel, "12345678"));
    for i in 0usize.. {
        if killed.load(Ordering::SeqCst) {
            return;
        }
        let case = case_id((w + i) % CASES);
        let events = 1 + (w * 7 + i) % 3;
        let request_id = format!("w{w}-r{i}");
        book.lock().unwrap().sent.insert(request_id.clone(), Sent { case: case.clone(), events });
        let call = client.append_case_events(append_request(&case, &request_id, events));
        let outcome = tokio::time::timeout(CALL_LIMIT, call).await;
        let mut book = book.lock().unwrap();
        match outcome {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                let sequences: Vec<i64> = response.events.iter().map(|e| e.sequence).collect();
                let consecutive = sequences.windows(2).all(|p| p[1] == p[0] + 1);
                if sequences.len() != events
                    || !consecutive
                    || response.events.iter().any(|e| e.request_id != request_id)
                {
                    book.unexpected.push(format!(
                        "{request_id}: acknowledged {events} events with sequences {sequences:?} and request ids {:?}",
                        response.events.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>()
                    ));
                }
                book.acked.insert(request_id, sequences);
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Err(status)) => {
                if !killed.load(Ordering::SeqCst) {
                    book.unexpected.push(format!("{request_id} failed before the kill: {status:?}"));
                }
                return;
            }
            Err(_) => {
                if !killed.load(Ordering::SeqCst) {
                    book.unexpected.push(format!("{request_id} timed out after {CALL_LIMIT:?} before the kill"));
                }
                return;
            }
        }
    }
}

/// A case's full history, following page tokens.
async fn history(client: &mut CaseServiceClient<AuthChannel>, case: &str) -> Vec<pb::CaseEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_case_events(pb::ListCaseEventsRequest { parent: format!("cases/{case}"), page_size: 100, page_token })
            .await
            .unwrap_or_else(|s| panic!("ListCaseEvents of {case} after the restart: {s:?}"))
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Request id → sequences, over all cases; checks the sequences are 1..=n
/// and the case's version is n. Problems are appended to `problems`.
async fn stored_requests(
    client: &mut CaseServiceClient<AuthChannel>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, (String, Vec<i64>)> {
    let mut stored: BTreeMap<String, (String, Vec<i64>)> = BTreeMap::new();
    for c in 0..CASES {
        let case = case_id(c);
        let events = history(client, &case).await;
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
        let expected: Vec<i64> = (1..=events.len() as i64).collect();
        if sequences != expected {
            problems.push(format!("{case}: sequences are not exactly 1..={}: {sequences:?}", events.len()));
        }
        let version = client
            .get_case(pb::GetCaseRequest { name: format!("cases/{case}") })
            .await
            .unwrap_or_else(|s| panic!("GetCase {case}: {s:?}"))
            .into_inner()
            .case
            .expect("GetCase returns a case")
            .version;
        if version != events.len() as i64 {
            problems.push(format!("{case}: version {version} but {} events in its history", events.len()));
        }
        for e in &events {
            let entry = stored.entry(e.request_id.clone()).or_insert_with(|| (case.clone(), Vec::new()));
            if entry.0 != case {
                problems.push(format!("request {} has events in both {} and {case}", e.request_id, entry.0));
            }
            entry.1.push(e.sequence);
        }
    }
    stored
}

/// Checks every stored request against what was sent: whole (atomic) and on
/// the right case; acknowledged ones exactly as acknowledged.
fn check_against_book(stored: &BTreeMap<String, (String, Vec<i64>)>, book: &Book, problems: &mut Vec<String>) {
    for (request_id, sequences) in &book.acked {
        match stored.get(request_id) {
            None => problems.push(format!("LOST: acknowledged request {request_id} ({sequences:?}) is not stored")),
            Some((_, got)) if got != sequences => problems.push(format!(
                "acknowledged request {request_id} was acknowledged with sequences {sequences:?} but is stored at {got:?}"
            )),
            Some(_) => {}
        }
    }
    for (request_id, (case, sequences)) in stored {
        if let Some(create) = request_id.strip_prefix("create-") {
            if create != case || *sequences != [1] {
                problems.push(format!("{case}: creation request {request_id} stored at {sequences:?}"));
            }
            continue;
        }
        match book.sent.get(request_id) {
            None => problems.push(format!("{case}: events {sequences:?} carry unknown request id {request_id:?}")),
            Some(sent) if sent.case != *case => {
                problems.push(format!("request {request_id} was sent to {} but stored in {case}", sent.case));
            }
            Some(sent) if sent.events != sequences.len() => problems.push(format!(
                "request {request_id} carried {} events but {} are stored ({sequences:?}): not atomic or duplicated",
                sent.events,
                sequences.len()
            )),
            Some(_) => {}
        }
    }
}

fn fail_on(problems: &[String], stage: &str, book: &Book) {
    assert!(
        problems.is_empty(),
        "{stage}: {} problem(s) ({} appends sent, {} acknowledged):\n  {}",
        problems.len(),
        book.sent.len(),
        book.acked.len(),
        problems.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");

    // 1. Start the server and create the cases.
    let identity = Arc::new(ServeIdentity::prepare(&dir.path().join("idp")).expect("identities"));
    // Every writer is the same caseworker: lift the per-client limit for the burst.
    let config =
        identity.config_file(dir.path(), "[rate_limit]\nper_second = 100000.0\nburst = 100000.0\n").expect("config");
    let mut first = Server::spawn(&data_dir, dir.path().join("first.log"), &config);
    let channel = first.wait_ready().await;
    let mut client = CaseServiceClient::new(identity.caseworker(channel, "12345678"));
    for c in 0..CASES {
        client.create_case(new_case(&case_id(c), "12345678")).await.unwrap_or_else(|s| panic!("CreateCase: {s:?}"));
    }
    drop(client);

    // 2. Burst, then SIGKILL while the writers are still sending.
    let book = Arc::new(Mutex::new(Book::default()));
    let killed = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(w, first.url(), identity.clone(), book.clone(), killed.clone(), acks.clone())))
        .collect();
    // The kill comes from a plain thread, so it is not queued behind the
    // writers on the test's runtime: appends are really in flight.
    let killer = {
        let (book, killed, acks) = (book.clone(), killed.clone(), acks.clone());
        tokio::task::spawn_blocking(move || -> Result<(Server, Duration), String> {
            let burst = Instant::now();
            loop {
                let n = acks.load(Ordering::SeqCst);
                if n >= KILL_AFTER_ACKS || (n >= MIN_ACKS && burst.elapsed() >= KILL_AFTER) {
                    break;
                }
                let failures = book.lock().unwrap().unexpected.clone();
                if !failures.is_empty() || burst.elapsed() >= BURST_LIMIT {
                    killed.store(true, Ordering::SeqCst);
                    return Err(format!(
                        "{n} appends acknowledged in {:?}; failures:\n  {}\nserver log:\n{}",
                        burst.elapsed(),
                        failures.join("\n  "),
                        first.log_text()
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            killed.store(true, Ordering::SeqCst);
            first.child.kill().expect("SIGKILL the server");
            let status = first.child.wait().expect("reap the killed server");
            assert_eq!(status.signal(), Some(9), "the first server should die of SIGKILL, not {status}");
            Ok((first, burst.elapsed()))
        })
    };
    for w in writers {
        tokio::time::timeout(CALL_LIMIT, w).await.expect("a writer hangs after the kill").expect("writer task");
    }
    let (first, burst) = killer.await.expect("killer thread").unwrap_or_else(|e| panic!("the burst failed: {e}"));
    drop(first);
    let book = Arc::try_unwrap(book).ok().expect("writers are done").into_inner().unwrap();
    fail_on(&book.unexpected, "during the burst", &book);
    let in_flight: Vec<&String> = book.sent.keys().filter(|r| !book.acked.contains_key(*r)).collect();
    eprintln!(
        "killed after {burst:?}: {} appends sent, {} acknowledged, {} in flight",
        book.sent.len(),
        book.acked.len(),
        in_flight.len()
    );
    assert!(book.acked.len() >= MIN_ACKS, "too few acknowledged appends to test anything");

    // 3. Restart on the same data directory; check what survived.
    let mut second = Server::spawn(&data_dir, dir.path().join("second.log"), &config);
    let channel = second.wait_ready().await;
    let mut client = CaseServiceClient::new(identity.caseworker(channel, "12345678"));
    let mut problems = Vec::new();
    let stored = stored_requests(&mut client, &mut problems).await;
    check_against_book(&stored, &book, &mut problems);
    fail_on(&problems, "after the restart", &book);
    let committed_in_flight = in_flight.iter().filter(|r| stored.contains_key(**r)).count();
    eprintln!("{committed_in_flight} of {} in-flight appends had committed before the kill", in_flight.len());

    // Retry everything, `WRITERS` at a time: acknowledged requests replay, in-flight
    // ones replay or land now.
    let retries = futures::stream::iter(book.sent.iter().map(|(request_id, sent)| {
        let mut client = client.clone();
        async move {
            let result = client.append_case_events(append_request(&sent.case, request_id, sent.events)).await;
            (request_id, sent, result)
        }
    }))
    .buffer_unordered(WRITERS)
    .collect::<Vec<_>>()
    .await;
    for (request_id, sent, result) in retries {
        let response = match result {
            Ok(r) => r.into_inner(),
            Err(s) => {
                problems.push(format!("retry of {request_id} after the restart failed: {s:?}"));
                continue;
            }
        };
        let sequences: Vec<i64> = response.events.iter().map(|e| e.sequence).collect();
        if let Some(before) = stored.get(request_id).map(|(_, s)| s) {
            if sequences != *before {
                problems.push(format!("retry of stored request {request_id} returned {sequences:?}, not {before:?}"));
            }
        } else if sequences.len() != sent.events {
            problems.push(format!("retry of {request_id} stored {sequences:?} for {} events", sent.events));
        }
        if response.events.iter().any(|e| e.request_id != *request_id) {
            problems.push(format!("retry of {request_id} returned events of another request"));
        }
    }
    fail_on(&problems, "retrying every request", &book);
    let after = stored_requests(&mut client, &mut problems).await;
    check_against_book(&after, &book, &mut problems);
    for request_id in book.sent.keys() {
        if !after.contains_key(request_id) {
            problems.push(format!("request {request_id} is not stored even after its retry"));
        }
    }
    for (request_id, (_, sequences)) in &stored {
        if after.get(request_id).map(|(_, s)| s) != Some(sequences) {
            problems.push(format!("retries moved or changed request {request_id} (was at {sequences:?})"));
        }
    }
    let events: usize = after.values().map(|(_, s)| s.len()).sum();
    let expected = CASES + book.sent.values().map(|s| s.events).sum::<usize>();
    if events != expected {
        problems.push(format!("{events} events stored in all, expected {expected}"));
    }
    fail_on(&problems, "after retrying every request", &book);

    // 4. SIGTERM (with a client still connected): a graceful, successful exit.
    let pid = second.child.id().to_string();
    let kill = Command::new("kill").arg("-TERM").arg(&pid).status().expect("run kill(1)");
    assert!(kill.success(), "kill -TERM {pid} failed: {kill}");
    let status = second.wait_exit().await;
    drop(client);
    let log = second.log_text();
    assert!(status.success(), "`bro serve` should exit 0 on SIGTERM, not {status}; its log:\n{log}");
    let messages: Vec<String> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}"));
            v.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned()
        })
        .collect();
    for wanted in ["SIGTERM received", "gateway stopped"] {
        assert!(messages.iter().any(|m| m == wanted), "no {wanted:?} in the log of the second server:\n{log}");
    }

    // 5. The audit log verifies, and every stored append — those cut off by
    // the kill included — was recorded before it committed.
    let verify = Command::new(env!("CARGO_BIN_EXE_bro"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("run bro audit verify");
    assert!(verify.status.success(), "bro audit verify: {}", String::from_utf8_lossy(&verify.stdout));
    let (records, _) = bro_store_sqlite::SqliteAuditLog::read_all(&data_dir).expect("read the audit log");
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for stored_record in records {
        let record = <pb::AuditRecord as prost::Message>::decode(stored_record.record.as_slice()).expect("decodes");
        if record.method.ends_with("/AppendCaseEvents") && record.outcome == "STARTED" {
            *recorded.entry(record.case).or_default() += 1;
        }
    }
    let mut appends: BTreeMap<String, usize> = BTreeMap::new();
    for (case, sequences) in after.values() {
        // The case's opening came from CreateCase; every other request is an append.
        if !sequences.contains(&1) {
            *appends.entry(format!("cases/{case}")).or_default() += 1;
        }
    }
    for (case, stored_appends) in appends {
        let records = recorded.get(&case).copied().unwrap_or(0);
        assert!(
            records >= stored_appends,
            "{case}: {stored_appends} appends stored, {records} recorded before committing"
        );
    }
}
