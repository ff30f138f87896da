//! `bro.v1.CaseService`: create, read, list, append and watch cases.

use std::pin::Pin;
use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_service_server::CaseService;
use bro_domain::{CaseId, Violation, Violations};
use bro_store::{AppendEvents, CaseQuery, CreateCase, DueStatus};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::Status;

use crate::access::Caller;
use crate::access::policy::{self, Grant, Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::names;
use crate::paging::{self, DEFAULT_PAGE_SIZE};

/// The case service.
pub struct CaseApi {
    pub(super) ctx: Context,
}

impl CaseApi {
    /// The service over the gateway's context.
    pub fn new(ctx: Context) -> Self {
        CaseApi { ctx }
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

/// The handlers, each run by [`Context::handle`] through the table below.
impl CaseApi {
    async fn create_case(
        &self,
        caller: Caller,
        req: pb::CreateCaseRequest,
    ) -> Result<pb::CreateCaseResponse, ApiError> {
        let request_id = names::write_request_id(&req.request_id)?;
        let case_id = match req.case_id.as_str() {
            "" => None,
            id => Some(CaseId::parse("case_id", id)?),
        };
        let opening =
            convert::opening_from_pb(req.child.as_ref(), &req.custody_holders, req.placing_municipality.as_ref())?;
        let cvr = req.placing_municipality.as_ref().map(|m| m.cvr.as_str()).unwrap_or("");
        self.ctx.authorize(&caller, Rpc::CreateCase, Target::Municipality(cvr))?;
        let opened_on = match &req.opened_on {
            None => self.ctx.clock.today(),
            Some(_) => convert::date_from_pb("opened_on", req.opened_on.as_ref())?,
        };
        // The case and people it is about, for the record of the write.
        if let Some(id) = &case_id {
            caller.concerns_case_name(&id.resource_name());
        }
        let people = req.custody_holders.iter().filter_map(|p| p.identifier.as_ref());
        for id in people.chain(req.child.as_ref().and_then(|c| c.identifier.as_ref())) {
            if let Some(key) = caller.identifier_key(id) {
                caller.concerns_key(key);
            }
        }
        let audit = self.ctx.audit_write(&caller).await?;
        let now = self.ctx.clock.now();
        let committed =
            self.ctx.ledger.create(CreateCase { case_id, opened_on, opening, request_id, now, audit }).await?;
        caller.concerns_projection(&committed.case);
        tracing::info!(case = %committed.case.name, replayed = committed.replayed, "case created");
        Ok(pb::CreateCaseResponse { case: Some(committed.case) })
    }

    async fn get_case(&self, caller: Caller, req: pb::GetCaseRequest) -> Result<pb::GetCaseResponse, ApiError> {
        let id = case_name("name", &req.name)?;
        let (state, mut case, grant) = self.ctx.authorize_case_projection(&caller, Rpc::GetCase, &id).await?;
        // From the state: a projection stored before letters and appointments left it has no counts.
        case.correspondence_count = i32::try_from(state.correspondence.len()).unwrap_or(i32::MAX);
        case.appointment_count = i32::try_from(state.appointments.len()).unwrap_or(i32::MAX);
        let case = match grant {
            Grant::Full => self.ctx.worklist.evaluated_case(case, self.ctx.clock.today()).await?,
            Grant::Sector(scope) => bro_api::views::sector_view_to_pb(&scope.view(&state)),
        };
        Ok(pb::GetCaseResponse { case: Some(case) })
    }

    async fn list_cases(&self, caller: Caller, req: pb::ListCasesRequest) -> Result<pb::ListCasesResponse, ApiError> {
        let limit = paging::page_size(req.page_size, DEFAULT_PAGE_SIZE)?;
        let mut filter = paging::parse_case_filter(&req.filter)?;
        // Without a municipality in the filter, the caller's own is meant.
        let cvr =
            filter.placing_municipality.clone().or_else(|| caller.municipality(&self.ctx.systems)).unwrap_or_default();
        self.ctx.authorize(&caller, Rpc::ListCases, Target::Municipality(&cvr))?;
        filter.placing_municipality = Some(cvr.clone());
        let scope = format!("cases|{}", req.filter.trim());
        let after = paging::decode_token(&req.page_token, &scope)?;
        let (cases, next) = match filter.obligations {
            None => {
                let query =
                    CaseQuery { municipality_cvr: filter.placing_municipality, after_ordinal: after, limit, due: None };
                self.ctx.ledger.list(&query).await?
            }
            Some(wanted) => {
                let due = match wanted {
                    paging::ObligationFilter::Due => DueStatus::Any,
                    paging::ObligationFilter::Open => DueStatus::Open,
                    paging::ObligationFilter::Overdue => DueStatus::Overdue,
                };
                let today = self.ctx.clock.today();
                self.ctx.worklist.cases_page(&cvr, due, after, limit, today).await?
            }
        };
        let next_page_token = next.map(|n| paging::encode_token(&scope, n)).unwrap_or_default();
        cases.iter().for_each(|c| caller.concerns_projection(c));
        Ok(pb::ListCasesResponse { cases, next_page_token })
    }

    async fn append_case_events(
        &self,
        caller: Caller,
        req: pb::AppendCaseEventsRequest,
    ) -> Result<pb::AppendCaseEventsResponse, ApiError> {
        let case_id = case_name("parent", &req.parent)?;
        self.ctx.authorize_case(&caller, Rpc::AppendCaseEvents, &case_id).await?;
        let request_id = names::write_request_id(&req.request_id)?;
        let expected_version = match req.etag.as_str() {
            "" => None,
            etag => Some(convert::version_from_etag("etag", etag)?),
        };
        if req.events.len() > bro_store::MAX_EVENTS_PER_APPEND {
            let why = format!(
                "{} events in one request; at most {} are allowed",
                req.events.len(),
                bro_store::MAX_EVENTS_PER_APPEND
            );
            return Err(Violations::one("events", why).into());
        }
        let events = events_from_pb(&req.events)?;
        let now = self.ctx.clock.now();
        let audit = self.ctx.audit_write(&caller).await?;
        let append = AppendEvents { expected_version, audit, ..AppendEvents::new(case_id, events, request_id, now) };
        let committed = self.ctx.ledger.append(append).await?;
        tracing::info!(
            case = %committed.case.name,
            events = committed.events.len(),
            version = committed.case.version,
            replayed = committed.replayed,
            "events appended"
        );
        Ok(pb::AppendCaseEventsResponse { events: committed.events, case: Some(committed.case) })
    }

    async fn list_case_events(
        &self,
        caller: Caller,
        req: pb::ListCaseEventsRequest,
    ) -> Result<pb::ListCaseEventsResponse, ApiError> {
        let case_id = case_name("parent", &req.parent)?;
        let (_, grant) = self.ctx.authorize_case(&caller, Rpc::ListCaseEvents, &case_id).await?;
        let limit = paging::page_size(req.page_size, 100)?;
        let scope = format!("events|{case_id}");
        let after = paging::decode_token(&req.page_token, &scope)?;
        let events = self.ctx.ledger.events(&case_id, after, limit).await?;
        let next = (events.len() == limit)
            .then(|| events.last().map(|e| paging::encode_token(&scope, e.sequence as u64)))
            .flatten();
        let events = granted_events(&grant, events);
        Ok(pb::ListCaseEventsResponse { events, next_page_token: next.unwrap_or_default() })
    }

    async fn watch_case(&self, caller: Caller, req: pb::WatchCaseRequest) -> Result<WatchStream, ApiError> {
        let case_id = case_name("name", &req.name)?;
        self.ctx.authorize_case(&caller, Rpc::WatchCase, &case_id).await?;
        if req.after_sequence < 0 {
            return Err(Violations::one("after_sequence", "is negative").into());
        }
        let terms = self.ctx.streams.open(&caller, self.ctx.clock.now())?;
        // Subscribe before reading history, so nothing falls between the two.
        let changes = self.ctx.ledger.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let watcher = Watcher {
            ctx: self.ctx.clone(),
            caller,
            terms,
            case_id,
            last_sent: req.after_sequence as u64,
            tx,
            resync: self.ctx.resync.subscribe(),
        };
        tokio::spawn(watcher.run(changes));
        let stream: WatchStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
        Ok(stream)
    }
}

/// The events a grant lets the caller see: all of them, or another
/// sector's own items of the covered parents. A stored event always reads
/// back; one that did not would not be shown.
fn granted_events(grant: &Grant, events: Vec<pb::CaseEvent>) -> Vec<pb::CaseEvent> {
    match grant {
        Grant::Full => events,
        Grant::Sector(scope) => {
            events.into_iter().filter(|e| convert::event_from_pb(e).is_ok_and(|ev| scope.may_see(&ev.kind))).collect()
        }
    }
}

grpc_service! {
    CaseService, CaseApi {
        type WatchCaseStream = WatchStream;
        rpc CreateCase => create_case(pb::CreateCaseRequest) -> pb::CreateCaseResponse;
        rpc GetCase => get_case(pb::GetCaseRequest) -> pb::GetCaseResponse;
        rpc ListCases => list_cases(pb::ListCasesRequest) -> pb::ListCasesResponse;
        rpc AppendCaseEvents => append_case_events(pb::AppendCaseEventsRequest) -> pb::AppendCaseEventsResponse;
        rpc ListCaseEvents => list_case_events(pb::ListCaseEventsRequest) -> pb::ListCaseEventsResponse;
        rpc WatchCase => watch_case(pb::WatchCaseRequest) -> WatchStream;
        rpc ListCorrespondence => list_correspondence(pb::ListCorrespondenceRequest) -> pb::ListCorrespondenceResponse;
        rpc GetCorrespondence => get_correspondence(pb::GetCorrespondenceRequest) -> pb::GetCorrespondenceResponse;
        rpc ListAppointments => list_appointments(pb::ListAppointmentsRequest) -> pb::ListAppointmentsResponse;
        rpc GetAppointment => get_appointment(pb::GetAppointmentRequest) -> pb::GetAppointmentResponse;
    }
}

/// Feeds one `WatchCase` stream: history first, then live changes, resyncing
/// from the store whenever the live feed lags or shows a gap. Before each
/// batch it sends — and every few seconds when idle — it checks that the
/// caller still may watch: the token has not expired, the stream has not
/// outlived its limit, and the policy still allows the case as it is now
/// (a case moved to another municipality ends it); and each batch is
/// audited before it leaves.
struct Watcher {
    ctx: Context,
    caller: Caller,
    terms: crate::context::StreamTerms,
    case_id: CaseId,
    last_sent: u64,
    tx: tokio::sync::mpsc::Sender<Result<pb::WatchCaseResponse, Status>>,
    resync: tokio::sync::watch::Receiver<u64>,
}

impl Watcher {
    async fn run(mut self, mut changes: tokio::sync::broadcast::Receiver<Arc<bro_store::CaseChange>>) {
        if self.catch_up().await.is_err() {
            return;
        }
        let shutdown = self.ctx.stopping.clone();
        loop {
            let next_check = self.terms.next_check(self.ctx.clock.now());
            let change = tokio::select! {
                () = tokio::time::sleep(next_check) => {
                    if self.still_allowed().await.is_err() {
                        return;
                    }
                    continue;
                }
                () = shutdown.cancelled() => {
                    let stopping = ApiError::Unavailable {
                        reason: "SHUTTING_DOWN",
                        message: "the gateway is shutting down; watch again".into(),
                    };
                    let _ = self.tx.send(Err(stopping.into())).await;
                    return;
                }
                () = self.tx.closed() => return,
                Ok(()) = self.resync.changed() => {
                    if self.catch_up().await.is_err() {
                        return;
                    }
                    continue;
                }
                change = changes.recv() => change,
            };
            let result =
                match change {
                    // Another replica's append: read what this stream has not sent.
                    Ok(change) if change.case_id == self.case_id && change.remote => {
                        if change.version > self.last_sent { self.catch_up().await } else { Ok(()) }
                    }
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
        let new: Vec<pb::CaseEvent> = events.iter().filter(|e| e.sequence as u64 > self.last_sent).cloned().collect();
        self.send_batch(new).await
    }

    async fn catch_up(&mut self) -> Result<(), ()> {
        loop {
            let page = match self.ctx.ledger.events(&self.case_id, self.last_sent, 500).await {
                Ok(page) => page,
                Err(e) => return self.end(ApiError::from(e)).await,
            };
            if page.is_empty() {
                return Ok(());
            }
            self.send_batch(page).await?;
        }
    }

    /// Ends the stream with `error`.
    async fn end<T>(&self, error: ApiError) -> Result<T, ()> {
        let _ = self.tx.send(Err(error.into())).await;
        Err(())
    }

    /// What of the case the caller still may watch (all of it, or a
    /// sector's share as consents and legal bases stand today); if nothing,
    /// the stream ends saying why.
    async fn still_allowed(&self) -> Result<Grant, ()> {
        if let Some(ended) = self.terms.ended(self.ctx.clock.now()) {
            return self.end(ended).await;
        }
        let case = match self.ctx.ledger.state(&self.case_id).await {
            Ok(case) => case,
            Err(e) => return self.end(ApiError::from(e)).await,
        };
        let today = self.ctx.clock.today();
        let principal = &self.caller.principal;
        match policy::authorize(principal, &self.ctx.systems, Rpc::WatchCase, Target::Case(&case), today) {
            Ok(grant) => Ok(grant),
            Err(denied) => {
                tracing::info!(case = %self.case_id, "a watch ended: the caller may no longer watch the case");
                self.end(ApiError::PermissionDenied(denied.0)).await
            }
        }
    }

    /// Sends events after checking access and recording them (one audit
    /// record per batch, written before they leave).
    async fn send_batch(&mut self, events: Vec<pb::CaseEvent>) -> Result<(), ()> {
        let Some(last) = events.last().map(|e| e.sequence as u64) else { return Ok(()) };
        let events = granted_events(&self.still_allowed().await?, events);
        let Some(first) = events.first().map(|e| e.sequence) else {
            self.last_sent = last;
            return Ok(());
        };
        let detail = format!("sent {} events, {first} to {last}", events.len());
        let record = self.caller.stream_record(self.ctx.clock.now(), detail);
        if self.ctx.trail.record(record).await.is_err() {
            return self.end(ApiError::audit_unavailable()).await;
        }
        for event in events {
            self.tx.send(Ok(pb::WatchCaseResponse { event: Some(event) })).await.map_err(|_| ())?;
        }
        self.last_sent = last;
        Ok(())
    }
}
