//! `bro.v1.IngestService`: a configured system sends a message (the steps
//! are [`crate::pipeline::ingest`]'s), and caseworkers and administrators
//! work the inbox — unmatched messages listed, resolved into a case or
//! discarded, rejections listed. A sender is told only what it may know.

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::ingest_service_server::IngestService;
use bro_domain::{CaseId, PartyId, Violations};
use bro_store::{AppendEvents, InboxEntry, InboxKind, InboxQuery, InboxState, SourceKey};
use prost::Message as _;

use crate::access::audit::batch_person_keys;
use crate::access::policy::{Rpc, Target};
use crate::access::{Caller, Principal, Role};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::names;
use crate::paging::{self, DEFAULT_PAGE_SIZE};
use crate::pipeline::ingest::{Ingestion, events_for};
use crate::systems::SystemAccess;

/// The ingest service.
pub struct IngestApi {
    ctx: Context,
}

fn unmatched_to_pb(e: &InboxEntry) -> pb::UnmatchedMessage {
    let event_types = pb::AdapterBatch::decode(e.batch.as_slice())
        .map(|b| b.events.iter().filter_map(|e| e.kind.as_ref().map(|k| convert::kind_name(k).to_owned())).collect())
        .unwrap_or_default();
    pb::UnmatchedMessage {
        name: format!("unmatchedMessages/{}", e.entry_id),
        system: e.system.clone(),
        source_message_id: e.source_message_id.clone(),
        reason: e.reason.clone(),
        event_types,
        state: e.state.as_str().to_owned(),
        resolved_case: e.resolved_case.as_ref().map(CaseId::resource_name).unwrap_or_default(),
        create_time: Some(convert::timestamp_to_pb(e.create_time)),
    }
}

fn rejection_to_pb(e: &InboxEntry) -> pb::Rejection {
    pb::Rejection {
        name: format!("rejections/{}", e.entry_id),
        system: e.system.clone(),
        request_id: e.request_id.strip_prefix(&format!("ingest:{}:", e.system)).unwrap_or(&e.request_id).to_owned(),
        reason: e.reason.clone(),
        content_type: e.content_type.clone(),
        size_bytes: e.body.len() as i64,
        create_time: Some(convert::timestamp_to_pb(e.create_time)),
    }
}

/// What the operator's metrics count a message's answer as.
fn outcome_label(answer: &Result<pb::IngestResponse, ApiError>) -> &'static str {
    match answer {
        Ok(r) => match r.outcome() {
            pb::IngestOutcome::Appended => "appended",
            pb::IngestOutcome::Duplicate => "duplicate",
            pb::IngestOutcome::Unmatched => "unmatched",
            pb::IngestOutcome::Accepted => "accepted",
            pb::IngestOutcome::Unspecified => "unknown",
        },
        Err(ApiError::Rejected { .. }) => "rejected",
        Err(ApiError::Unavailable { .. }) => "unavailable",
        Err(_) => "refused",
    }
}

impl IngestApi {
    /// The service over the gateway's context.
    pub fn new(ctx: Context) -> Self {
        IngestApi { ctx }
    }

    /// Checks a request and runs it through the pipeline's steps.
    async fn checked_ingest(&self, caller: &Caller, req: pb::IngestRequest) -> Result<pb::IngestResponse, ApiError> {
        self.ctx.authorize(caller, Rpc::Ingest, Target::System(&req.system))?;
        let client_request_id = names::required_request_id(&req.request_id)?;
        let system = self.ctx.systems.get(&req.system).ok_or_else(|| {
            Violations::one("system", format!("{:?} is not a configured system", bro_domain::truncate(&req.system, 64)))
        })?;
        let message = req.message.ok_or_else(|| Violations::one("message", "is required"))?;
        if message.body.is_empty() {
            return Err(Violations::one("message.body", "is empty").into());
        }
        Ingestion::new(&self.ctx, system, client_request_id, message).run(caller).await
    }

    /// What another sector's system is told: where its message went only if a
    /// consent or legal basis in its scope covers that case; otherwise (and
    /// when nothing matched) just that it was accepted.
    async fn disclose(&self, system: &str, r: pb::IngestResponse) -> Result<pb::IngestResponse, ApiError> {
        let Some(SystemAccess::Sector { scope, .. }) = self.ctx.systems.get(system).map(|s| &s.access) else {
            return Ok(r);
        };
        let covered = match r.outcome() {
            pb::IngestOutcome::Appended | pb::IngestOutcome::Duplicate => {
                let case_id = CaseId::from_resource_name("case", &r.case)?;
                self.ctx
                    .ledger
                    .state(&case_id)
                    .await?
                    .shared_custody_holders(scope, self.ctx.clock.today())
                    .next()
                    .is_some()
            }
            _ => false,
        };
        if covered {
            Ok(r)
        } else {
            Ok(pb::IngestResponse { outcome: pb::IngestOutcome::Accepted.into(), ..Default::default() })
        }
    }

    /// The municipality an inbox entry belongs to: the one the sending system
    /// is bound to; else the one the message is addressed to; else, for an
    /// unmatched message, the one municipality whose cases have a custody
    /// holder with one of its people's identifiers. `None` when none of these
    /// names exactly one municipality: then only administrators see it.
    async fn owner_of(&self, entry: &InboxEntry) -> Result<Option<String>, ApiError> {
        let bound = self.ctx.systems.get(&entry.system).and_then(|s| match &s.access {
            SystemAccess::Municipal { cvr } => Some(cvr.clone()),
            SystemAccess::Sector { .. } => s.serves.clone(),
            SystemAccess::Unbound => None,
        });
        if bound.is_some() || entry.kind != InboxKind::Unmatched {
            return Ok(bound);
        }
        let Ok(batch) = pb::AdapterBatch::decode(entry.batch.as_slice()) else { return Ok(None) };
        if bro_domain::check_cvr("addressed_municipality", &batch.addressed_municipality).is_ok() {
            return Ok(Some(batch.addressed_municipality));
        }
        let mut municipalities: Vec<String> = Vec::new();
        for subject in &batch.subjects {
            let Some(key) = self.ctx.keys.identifier_key(subject) else { continue };
            for case_id in self.ctx.store().find_cases_by_person(&key).await? {
                let case = self.ctx.ledger.state(&case_id).await?;
                let holds = case.custody_holders.iter().any(|p| {
                    p.identifier.as_ref().is_some_and(|id| self.ctx.keys.person_key(id.kind_name(), id.expose()) == key)
                });
                if holds && !municipalities.contains(&case.placing_municipality.cvr) {
                    municipalities.push(case.placing_municipality.cvr.clone());
                }
            }
        }
        Ok(match municipalities.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
    }

    /// Whether a caller may see and handle an inbox entry: the gateway's
    /// administrators every one; a caseworker those of their municipality
    /// ([`IngestApi::owner_of`]).
    async fn may_handle(&self, caller: &Caller, entry: &InboxEntry) -> Result<bool, ApiError> {
        let administrator = matches!(&caller.principal, Principal::Person(p) if p.roles.contains(&Role::Administrator));
        if administrator {
            return Ok(true);
        }
        let Some(mine) = caller.municipality(&self.ctx.systems) else { return Ok(false) };
        Ok(self.owner_of(entry).await?.as_deref() == Some(mine.as_str()))
    }

    /// The open or closed unmatched message `name`, if the caller may handle it.
    async fn unmatched_entry(&self, caller: &Caller, name: &str) -> Result<InboxEntry, ApiError> {
        let id = names::id_in("name", "unmatchedMessages/", name)?;
        let not_found = || ApiError::NotFound { reason: "UNMATCHED_MESSAGE_NOT_FOUND", name: name.to_owned() };
        let entry = self.ctx.store().get_inbox(id).await?.filter(|e| e.kind == InboxKind::Unmatched);
        match entry {
            Some(entry) if self.may_handle(caller, &entry).await? => Ok(entry),
            _ => Err(not_found()),
        }
    }

    /// Notes the people an unmatched message names for the call's audit
    /// record: listing, resolving or discarding it is a look at them.
    fn concerns_people_of(&self, caller: &Caller, entry: &InboxEntry) {
        if let Ok(batch) = pb::AdapterBatch::decode(entry.batch.as_slice()) {
            batch_person_keys(&self.ctx.keys, &batch).into_iter().for_each(|key| caller.concerns_key(key));
        }
    }

    /// A page of the inbox, of the entries the caller may handle.
    async fn list_inbox(
        &self,
        caller: &Caller,
        kind: InboxKind,
        page_size: i32,
        page_token: &str,
        filter: &str,
    ) -> Result<(Vec<InboxEntry>, String), ApiError> {
        let scope = kind.as_str();
        let limit = paging::page_size(page_size, DEFAULT_PAGE_SIZE)?;
        let after = if page_token.is_empty() { 0 } else { paging::decode_token(page_token, scope)? };
        let mut query = InboxQuery { kind, state: None, system: None, after_ordinal: after, limit };
        for (field, value) in paging::parse_terms(filter, &["state", "system"])? {
            match field.as_str() {
                "state" => {
                    query.state = Some(InboxState::parse(&value).ok_or_else(|| {
                        Violations::one("filter.state", "is one of \"open\", \"resolved\", \"discarded\"")
                    })?)
                }
                _ => query.system = Some(value),
            }
        }
        let rows = self.ctx.store().list_inbox(&query).await?;
        let next = if rows.len() == limit {
            rows.last().map(|r| paging::encode_token(scope, r.ordinal)).unwrap_or_default()
        } else {
            String::new()
        };
        let mut mine = Vec::with_capacity(rows.len());
        for row in rows {
            if self.may_handle(caller, &row).await? {
                mine.push(row);
            }
        }
        Ok((mine, next))
    }

    /// Appends an unmatched message to the case a caseworker chose, its
    /// people as the chosen custody holder, in one transaction with closing
    /// the entry.
    async fn resolve_unmatched_message(
        &self,
        caller: Caller,
        req: pb::ResolveUnmatchedMessageRequest,
    ) -> Result<pb::ResolveUnmatchedMessageResponse, ApiError> {
        let caller = &caller;
        names::id_in("name", "unmatchedMessages/", &req.name)?;
        let case_id = CaseId::from_resource_name("case", &req.case)?;
        self.ctx.authorize_case(caller, Rpc::ResolveUnmatchedMessage, &case_id).await?;
        let holder = PartyId::parse("custody_holder", &req.custody_holder)?;
        let entry = self.unmatched_entry(caller, &req.name).await?;
        self.concerns_people_of(caller, &entry);
        let request_id = format!("resolve-{}", entry.entry_id);
        if entry.state != InboxState::Open {
            if let Some(done) = self.ctx.ledger.find_committed(&request_id).await? {
                return Ok(pb::ResolveUnmatchedMessageResponse { case: Some(done.case), events: done.events });
            }
            return Err(ApiError::FailedPrecondition {
                reason: "UNMATCHED_MESSAGE_CLOSED",
                message: format!("{} is {}, not open", req.name, entry.state.as_str()),
            });
        }
        let case = self.ctx.ledger.get(&case_id).await?;
        if !case.custody_holders.iter().any(|p| p.party_id == holder.as_str()) {
            let why = format!("{} has no custody holder {holder}", req.case);
            return Err(Violations::one("custody_holder", why).into());
        }
        let batch = pb::AdapterBatch::decode(entry.batch.as_slice())
            .map_err(|e| bro_store::StoreError::Corrupt(format!("unmatched message {}: {e}", entry.entry_id)))?;
        // The message must be about the chosen parent, or the caseworker says why it is.
        let chosen = case.custody_holders.iter().find(|p| p.party_id == holder.as_str());
        let chosen_key = chosen.and_then(|p| p.identifier.as_ref()).and_then(|id| caller.identifier_key(id));
        let names_them = batch.subjects.iter().any(|s| chosen_key.is_some() && caller.identifier_key(s) == chosen_key);
        if !names_them {
            let reason = bro_domain::mask_digit_runs(req.override_reason.trim());
            if reason.is_empty() {
                let why = format!(
                    "none of the people {} names has {holder}'s identifier; give override_reason to attach it anyway",
                    req.name
                );
                return Err(Violations::one("custody_holder", why).into());
            }
            caller.note(&format!("override: {}", bro_domain::truncate(&reason, 200)));
        }
        // Every person reference of the message becomes the chosen custody holder.
        let parties = vec![Some(holder); batch.subjects.len().max(1)];
        let events = events_for(&batch, &parties, &entry.system)?;
        let source = (!entry.source_message_id.is_empty())
            .then(|| SourceKey { system: entry.system.clone(), message_id: entry.source_message_id.clone() });
        let audit = self.ctx.audit_write(caller).await?;
        let cmd = AppendEvents {
            source,
            resolves_inbox: Some(entry.entry_id.clone()),
            audit,
            ..AppendEvents::new(case_id, events, request_id, self.ctx.clock.now())
        };
        let done = self.ctx.ledger.append(cmd).await?;
        Ok(pb::ResolveUnmatchedMessageResponse { case: Some(done.case), events: done.events })
    }
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl IngestApi {
    async fn ingest(&self, caller: Caller, req: pb::IngestRequest) -> Result<pb::IngestResponse, ApiError> {
        let system = if self.ctx.systems.get(&req.system).is_some() { req.system.clone() } else { "unknown".into() };
        let answer = self.checked_ingest(&caller, req).await;
        if let Ok(r) = &answer {
            caller.concerns_case_name(&r.case);
        }
        self.ctx.metrics.record_ingest(&system, outcome_label(&answer));
        // The operator's metrics count what happened; the sender is told only what it may know.
        match (answer, &caller.principal) {
            (Ok(r), Principal::System(name)) => self.disclose(name, r).await,
            (answer, _) => answer,
        }
    }

    async fn list_unmatched_messages(
        &self,
        caller: Caller,
        r: pb::ListUnmatchedMessagesRequest,
    ) -> Result<pb::ListUnmatchedMessagesResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ListUnmatchedMessages, Target::Nothing)?;
        let (rows, next_page_token) =
            self.list_inbox(&caller, InboxKind::Unmatched, r.page_size, &r.page_token, &r.filter).await?;
        rows.iter().for_each(|e| self.concerns_people_of(&caller, e));
        let unmatched_messages = rows.iter().map(unmatched_to_pb).collect();
        Ok(pb::ListUnmatchedMessagesResponse { unmatched_messages, next_page_token })
    }

    async fn discard_unmatched_message(
        &self,
        caller: Caller,
        req: pb::DiscardUnmatchedMessageRequest,
    ) -> Result<pb::DiscardUnmatchedMessageResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::DiscardUnmatchedMessage, Target::Nothing)?;
        let name = req.name;
        let entry = self.unmatched_entry(&caller, &name).await?;
        self.concerns_people_of(&caller, &entry);
        // Discarding twice is the same as once; a resolved message stays resolved.
        let store = self.ctx.store();
        if entry.state != InboxState::Discarded
            && !store.close_inbox(&entry.entry_id, InboxState::Discarded, self.ctx.clock.now()).await?
        {
            return Err(ApiError::FailedPrecondition {
                reason: "UNMATCHED_MESSAGE_CLOSED",
                message: format!("{name} is {}, not open", entry.state.as_str()),
            });
        }
        let entry = store
            .get_inbox(&entry.entry_id)
            .await?
            .ok_or_else(|| ApiError::NotFound { reason: "UNMATCHED_MESSAGE_NOT_FOUND", name: name.clone() })?;
        Ok(pb::DiscardUnmatchedMessageResponse { unmatched_message: Some(unmatched_to_pb(&entry)) })
    }

    async fn list_rejections(
        &self,
        caller: Caller,
        r: pb::ListRejectionsRequest,
    ) -> Result<pb::ListRejectionsResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ListRejections, Target::Nothing)?;
        let (rows, next_page_token) =
            self.list_inbox(&caller, InboxKind::Rejected, r.page_size, &r.page_token, &r.filter).await?;
        let rejections = rows.iter().map(rejection_to_pb).collect();
        Ok(pb::ListRejectionsResponse { rejections, next_page_token })
    }
}

grpc_service! {
    IngestService, IngestApi {
        rpc Ingest => ingest(pb::IngestRequest) -> pb::IngestResponse;
        rpc ListUnmatchedMessages => list_unmatched_messages(pb::ListUnmatchedMessagesRequest)
            -> pb::ListUnmatchedMessagesResponse;
        rpc DiscardUnmatchedMessage => discard_unmatched_message(pb::DiscardUnmatchedMessageRequest)
            -> pb::DiscardUnmatchedMessageResponse;
        rpc ResolveUnmatchedMessage => resolve_unmatched_message(pb::ResolveUnmatchedMessageRequest)
            -> pb::ResolveUnmatchedMessageResponse;
        rpc ListRejections => list_rejections(pb::ListRejectionsRequest) -> pb::ListRejectionsResponse;
    }
}
