//! `bro.v1.CaseService`: create, read, list, append and watch cases.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_service_server::CaseService;
use bro_domain::{CaseId, Violation, Violations};
use bro_store::{AppendEvents, CaseLedger, CaseQuery, CreateCase};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::access::policy::{self, Grant, Rpc, Target};
use crate::access::views::SectorScope;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging::{self, DEFAULT_PAGE_SIZE};

/// Longest accepted request id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The case service.
pub struct CaseApi {
    ledger: Arc<CaseLedger>,
    systems: Arc<crate::pipeline::Systems>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl CaseApi {
    /// A service over a ledger; `shutdown` ends open watch streams.
    pub fn new(
        ledger: Arc<CaseLedger>,
        systems: Arc<crate::pipeline::Systems>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Self {
        CaseApi { ledger, systems, clock, metrics, shutdown }
    }

    /// Loads a case, notes it for the audit record, and asks the policy.
    async fn authorize_case(
        &self,
        caller: &Caller,
        rpc: Rpc,
        case_id: &CaseId,
    ) -> Result<(Arc<bro_domain::Case>, Grant), ApiError> {
        let state = self.ledger.state(case_id).await?;
        caller.concerns_case(&state);
        let grant =
            policy::authorize(&caller.principal, &self.systems, rpc, Target::Case(&state)).inspect_err(|d| {
                caller.refused(&d.0);
            })?;
        Ok((state, grant))
    }

    /// Asks the policy about a municipality's cases.
    fn authorize_municipality(&self, caller: &Caller, rpc: Rpc, cvr: &str) -> Result<(), ApiError> {
        policy::authorize(&caller.principal, &self.systems, rpc, Target::Municipality(cvr)).inspect_err(|d| {
            caller.refused(&d.0);
        })?;
        Ok(())
    }

    /// Runs one RPC: times it, counts its outcome, logs it without personal data.
    async fn observe<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        self.metrics.observe(method, call).await
    }
}

/// A request id, or a fresh one when the client sent none (no idempotency then).
pub(crate) fn request_id(raw: &str) -> Result<String, Violations> {
    if raw.is_empty() {
        return Ok(format!("gen-{}", uuid::Uuid::new_v4()));
    }
    let ok = raw.len() <= MAX_REQUEST_ID_LEN
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok && (raw.starts_with("ingest:") || raw.starts_with("resolve-")) {
        Err(Violations::one("request_id", "the prefixes \"ingest:\" and \"resolve-\" are reserved for the gateway"))
    } else if ok {
        Ok(raw.to_owned())
    } else {
        Err(Violations::one(
            "request_id",
            format!("use 1 to {MAX_REQUEST_ID_LEN} of letters, digits, '-', '_', '.', ':' (a UUID is ideal)"),
        ))
    }
}

fn case_name(field: &str, name: &str) -> Result<CaseId, Violations> {
    CaseId::from_resource_name(field, name)
}

/// Converts submitted events, naming each violation `events[i].…`.
fn events_from_pb(events: &[pb::CaseEvent]) -> Result<Vec<bro_domain::Event>, Violations> {
    let mut out = Vec::with_capacity(events.len());
    let mut violations: Vec<Violation> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if matches!(e.kind, Some(pb::case_event::Kind::CaseOpened(_))) {
            violations
                .push(Violation::new(format!("events[{i}].case_opened"), "case_opened is recorded by CreateCase only"));
            continue;
        }
        match convert::event_from_pb(e) {
            Ok(ev) => out.push(ev),
            Err(v) => violations.extend(v.within(&format!("events[{i}]")).0),
        }
    }
    if violations.is_empty() { Ok(out) } else { Err(Violations(violations)) }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchCaseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl CaseService for CaseApi {
    async fn create_case(
        &self,
        request: Request<pb::CreateCaseRequest>,
    ) -> Result<Response<pb::CreateCaseResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("CreateCase", async {
            let caller = caller?;
            let request_id = request_id(&req.request_id)?;
            let case_id = match req.case_id.as_str() {
                "" => None,
                id => Some(CaseId::parse("case_id", id)?),
            };
            let opening =
                convert::opening_from_pb(req.child.as_ref(), &req.custody_holders, req.placing_municipality.as_ref())?;
            let cvr = req.placing_municipality.as_ref().map(|m| m.cvr.as_str()).unwrap_or("");
            self.authorize_municipality(&caller, Rpc::CreateCase, cvr)?;
            let opened_on = match &req.opened_on {
                None => self.clock.today(),
                Some(_) => convert::date_from_pb("opened_on", req.opened_on.as_ref())?,
            };
            let committed = self
                .ledger
                .create(CreateCase { case_id, opened_on, opening, request_id, now: self.clock.now() })
                .await?;
            caller.concerns_projection(&committed.case);
            tracing::info!(case = %committed.case.name, replayed = committed.replayed, "case created");
            Ok(pb::CreateCaseResponse { case: Some(committed.case) })
        })
        .await
    }

    async fn get_case(&self, request: Request<pb::GetCaseRequest>) -> Result<Response<pb::GetCaseResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("GetCase", async {
            let caller = caller?;
            let id = case_name("name", &req.name)?;
            let (state, grant) = self.authorize_case(&caller, Rpc::GetCase, &id).await?;
            let case = self.ledger.get(&id).await?;
            let case = match grant {
                Grant::Full => crate::obligations::evaluate_case(&self.ledger, case, self.clock.today()).await?,
                Grant::Sector { sector, scope } => SectorScope::new(&state, sector, &scope).case_view(&case),
            };
            Ok(pb::GetCaseResponse { case: Some(case) })
        })
        .await
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("ListCases", async {
            let caller = caller?;
            let limit = paging::page_size(req.page_size, DEFAULT_PAGE_SIZE)?;
            let mut filter = paging::parse_case_filter(&req.filter)?;
            // Without a municipality in the filter, the caller's own is meant.
            let cvr =
                filter.placing_municipality.clone().or_else(|| caller.municipality(&self.systems)).unwrap_or_default();
            self.authorize_municipality(&caller, Rpc::ListCases, &cvr)?;
            filter.placing_municipality = Some(cvr);
            let scope = format!("cases|{}", req.filter.trim());
            let after = paging::decode_token(&req.page_token, &scope)?;
            let mut query = CaseQuery { municipality_cvr: filter.placing_municipality, after_ordinal: after, limit };
            let Some(wanted) = filter.obligations else {
                let (cases, next) = self.ledger.list(&query).await?;
                cases.iter().for_each(|c| caller.concerns_projection(c));
                return Ok(pb::ListCasesResponse {
                    cases,
                    next_page_token: next.map(|n| paging::encode_token(&scope, n)).unwrap_or_default(),
                });
            };
            // Filtering on obligations evaluates each case for today; scan
            // store pages until the page is full or the cases run out.
            let today = self.clock.today();
            let mut cases = Vec::new();
            let last_scanned = 'scan: loop {
                let (page, next) = self.ledger.list(&query).await?;
                for case in page {
                    let name = case.name.clone();
                    let evaluated = crate::obligations::evaluate_case(&self.ledger, case.clone(), today).await?;
                    let matches = evaluated.obligations.iter().any(|o| match wanted {
                        paging::ObligationFilter::Due => {
                            o.status() == pb::ObligationStatus::Open || o.status() == pb::ObligationStatus::Overdue
                        }
                        paging::ObligationFilter::Open => o.status() == pb::ObligationStatus::Open,
                        paging::ObligationFilter::Overdue => o.status() == pb::ObligationStatus::Overdue,
                    });
                    if matches {
                        cases.push(case);
                    }
                    if cases.len() == limit {
                        break 'scan Some(name);
                    }
                }
                match next {
                    Some(n) => query.after_ordinal = n,
                    None => break None,
                }
            };
            // The token continues after the last case looked at.
            let next_page_token = match last_scanned {
                Some(name) => {
                    let id = CaseId::from_resource_name("name", &name)?;
                    let ordinal = self.ledger.ordinal(&id).await?;
                    paging::encode_token(&scope, ordinal)
                }
                None => String::new(),
            };
            cases.iter().for_each(|c| caller.concerns_projection(c));
            Ok(pb::ListCasesResponse { cases, next_page_token })
        })
        .await
    }

    async fn append_case_events(
        &self,
        request: Request<pb::AppendCaseEventsRequest>,
    ) -> Result<Response<pb::AppendCaseEventsResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("AppendCaseEvents", async {
            let caller = caller?;
            let case_id = case_name("parent", &req.parent)?;
            self.authorize_case(&caller, Rpc::AppendCaseEvents, &case_id).await?;
            let request_id = request_id(&req.request_id)?;
            let expected_version = match req.etag.as_str() {
                "" => None,
                etag => Some(convert::version_from_etag("etag", etag)?),
            };
            if req.events.len() > bro_store::MAX_EVENTS_PER_APPEND {
                return Err(Violations::one(
                    "events",
                    format!(
                        "{} events in one request; at most {} are allowed",
                        req.events.len(),
                        bro_store::MAX_EVENTS_PER_APPEND
                    ),
                )
                .into());
            }
            let events = events_from_pb(&req.events)?;
            let committed = self
                .ledger
                .append(AppendEvents {
                    expected_version,
                    ..AppendEvents::new(case_id, events, request_id, self.clock.now())
                })
                .await?;
            tracing::info!(
                case = %committed.case.name,
                events = committed.events.len(),
                version = committed.case.version,
                replayed = committed.replayed,
                "events appended"
            );
            Ok(pb::AppendCaseEventsResponse { events: committed.events, case: Some(committed.case) })
        })
        .await
    }

    async fn list_case_events(
        &self,
        request: Request<pb::ListCaseEventsRequest>,
    ) -> Result<Response<pb::ListCaseEventsResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("ListCaseEvents", async {
            let caller = caller?;
            let case_id = case_name("parent", &req.parent)?;
            let (state, grant) = self.authorize_case(&caller, Rpc::ListCaseEvents, &case_id).await?;
            let limit = paging::page_size(req.page_size, 100)?;
            let scope = format!("events|{case_id}");
            let after = paging::decode_token(&req.page_token, &scope)?;
            let events = self.ledger.events(&case_id, after, limit).await?;
            let next = (events.len() == limit)
                .then(|| events.last().map(|e| paging::encode_token(&scope, e.sequence as u64)))
                .flatten();
            let events = match grant {
                Grant::Full => events,
                Grant::Sector { sector, scope } => {
                    let view = SectorScope::new(&state, sector, &scope);
                    events.into_iter().filter(|e| view.event_visible(e)).collect()
                }
            };
            Ok(pb::ListCaseEventsResponse { events, next_page_token: next.unwrap_or_default() })
        })
        .await
    }

    type WatchCaseStream = WatchStream;

    async fn watch_case(&self, request: Request<pb::WatchCaseRequest>) -> Result<Response<WatchStream>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.observe("WatchCase", async {
            let caller = caller?;
            let case_id = case_name("name", &req.name)?;
            self.authorize_case(&caller, Rpc::WatchCase, &case_id).await?;
            if req.after_sequence < 0 {
                return Err(Violations::one("after_sequence", "is negative").into());
            }
            // Subscribe before reading history, so nothing falls between the two.
            let changes = self.ledger.subscribe();
            self.ledger.get(&case_id).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let watcher = Watcher {
                ledger: self.ledger.clone(),
                case_id,
                last_sent: req.after_sequence as u64,
                tx,
                shutdown: self.shutdown.clone(),
            };
            tokio::spawn(watcher.run(changes));
            let stream: WatchStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
            Ok(stream)
        })
        .await
    }
}

/// Feeds one `WatchCase` stream: history first, then live changes, resyncing
/// from the store whenever the live feed lags or shows a gap.
struct Watcher {
    ledger: Arc<CaseLedger>,
    case_id: CaseId,
    last_sent: u64,
    tx: tokio::sync::mpsc::Sender<Result<pb::WatchCaseResponse, Status>>,
    shutdown: CancellationToken,
}

impl Watcher {
    async fn run(mut self, mut changes: tokio::sync::broadcast::Receiver<Arc<bro_store::CaseChange>>) {
        if self.catch_up().await.is_err() {
            return;
        }
        loop {
            let change = tokio::select! {
                () = self.shutdown.cancelled() => {
                    let _ = self.tx.send(Err(Status::unavailable("the gateway is shutting down; watch again"))).await;
                    return;
                }
                () = self.tx.closed() => return,
                change = changes.recv() => change,
            };
            let result = match change {
                Ok(change) if change.case_id == self.case_id => self.forward(&change.events).await,
                Ok(_) => Ok(()),
                Err(RecvError::Lagged(_)) => self.catch_up().await,
                Err(RecvError::Closed) => return,
            };
            if result.is_err() {
                return;
            }
        }
    }

    async fn forward(&mut self, events: &[pb::CaseEvent]) -> Result<(), ()> {
        if events.first().is_some_and(|e| e.sequence as u64 > self.last_sent + 1) {
            return self.catch_up().await;
        }
        for e in events {
            if e.sequence as u64 > self.last_sent {
                self.send(e.clone()).await?;
            }
        }
        Ok(())
    }

    async fn catch_up(&mut self) -> Result<(), ()> {
        loop {
            let page = match self.ledger.events(&self.case_id, self.last_sent, 500).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = self.tx.send(Err(ApiError::from(e).into())).await;
                    return Err(());
                }
            };
            if page.is_empty() {
                return Ok(());
            }
            for e in page {
                self.send(e).await?;
            }
        }
    }

    async fn send(&mut self, event: pb::CaseEvent) -> Result<(), ()> {
        self.last_sent = event.sequence as u64;
        self.tx.send(Ok(pb::WatchCaseResponse { event: Some(event) })).await.map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_and_gateway_prefixes_reserved() {
        assert_eq!(request_id("create-1").expect("valid"), "create-1");
        assert!(request_id("").expect("generated").starts_with("gen-"));
        for reserved in ["ingest:psykiatri:abc", "resolve-0193"] {
            let err = request_id(reserved).expect_err("reserved");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        assert!(request_id("has space").is_err());
    }
}
