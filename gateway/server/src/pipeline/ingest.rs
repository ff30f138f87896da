//! `IngestService`: a message from a configured system through its adapter,
//! matched to a case by a custody holder's identifier, appended — or kept as
//! unmatched, or stored as a rejection. Nothing of a refused message is
//! half-applied: its events are appended in one transaction or not at all.

use std::future::Future;
use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::ingest_service_server::IngestService;
use bro_domain::{CaseId, PartyId, Violations};
use bro_plugin_host::{AdapterRegistry, HostError, Message};
use bro_store::{
    AppendEvents, CaseLedger, Committed, InboxEntry, InboxKind, InboxPut, InboxQuery, InboxState, LedgerError,
    OpenCase, SourceKey,
};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{Systems, custody_holder_mut};
use crate::access::policy::{self, Grant, Rpc, Target};
use crate::access::{Caller, Principal};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging::{self, DEFAULT_PAGE_SIZE};

/// The ingest service.
pub struct IngestApi {
    ledger: Arc<CaseLedger>,
    systems: Arc<Systems>,
    adapters: Option<Arc<AdapterRegistry>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    keys: Arc<bro_store::Keyring>,
}

/// How a message's people were matched to a case.
enum Match {
    /// One case; `parties[i]` is the party of `subjects[i]` (if a custody holder).
    Case(CaseId, Vec<Option<PartyId>>),
    /// None, or several: why.
    Unmatched(String),
}

/// What a message is, for telling a retry from a reuse of its request id.
fn message_fingerprint(system: &str, message: &pb::ExternalMessage) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut metadata: Vec<_> = message.metadata.iter().collect();
    metadata.sort();
    let mut h = Sha256::new();
    for part in [b"ingest".as_slice(), system.as_bytes(), message.content_type.as_bytes(), &message.body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    for (k, v) in metadata {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    h.finalize().to_vec()
}

/// Most people one message may name.
const MAX_SUBJECTS: usize = 16;

/// The answer to a request id used before for another message.
fn reused(request_id: &str) -> ApiError {
    let id = request_id.rsplit(':').next().unwrap_or(request_id);
    LedgerError::RequestIdReused { request_id: id.to_owned() }.into()
}

fn request_id(raw: &str) -> Result<String, Violations> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Violations::one("request_id", "is required: 1 to 128 of letters, digits, '-', '_', '.', ':'"))
    }
}

impl IngestApi {
    /// The service.
    pub fn new(
        ledger: Arc<CaseLedger>,
        systems: Arc<Systems>,
        adapters: Option<Arc<AdapterRegistry>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        keys: Arc<bro_store::Keyring>,
    ) -> Self {
        IngestApi { ledger, systems, adapters, clock, metrics, keys }
    }

    async fn observe<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        self.metrics.observe(method, call).await
    }

    /// Stores a rejection (once per request id) and answers with it.
    async fn reject(&self, system: &str, request_id: &str, message: &pb::ExternalMessage, reason: String) -> ApiError {
        // The reason may quote the message (an adapter's error): no digit runs are kept.
        let reason = bro_domain::mask_digit_runs(&reason);
        let now = self.clock.now();
        let entry = InboxEntry {
            ordinal: 0,
            entry_id: uuid::Uuid::now_v7().to_string(),
            kind: InboxKind::Rejected,
            system: system.to_owned(),
            request_id: request_id.to_owned(),
            source_message_id: String::new(),
            content_type: message.content_type.clone(),
            body: message.body.clone(),
            batch: Vec::new(),
            reason: bro_domain::truncate(&reason, 4000).to_owned(),
            state: InboxState::Open,
            resolved_case: None,
            create_time: now,
            update_time: now,
        };
        let id = entry.entry_id.clone();
        match self.ledger.store().put_inbox(entry).await {
            Ok(InboxPut::Inserted) => {
                tracing::info!(system, rejection = %id, "message rejected");
                ApiError::Rejected { rejection: format!("rejections/{id}"), reason }
            }
            Ok(InboxPut::Existing(e)) if e.body != message.body => reused(request_id),
            Ok(InboxPut::Existing(e)) => {
                ApiError::Rejected { rejection: format!("rejections/{}", e.entry_id), reason: e.reason }
            }
            Err(e) => e.into(),
        }
    }

    /// Finds the one case whose custody holders include a subject.
    async fn match_case(&self, batch: &pb::AdapterBatch) -> Result<Match, ApiError> {
        let subjects: Vec<Option<bro_domain::PersonId>> = batch
            .subjects
            .iter()
            .enumerate()
            .map(|(i, s)| convert::person_id_from_pb(&format!("subjects[{i}]"), Some(s)))
            .collect::<Result<_, _>>()?;
        let parties_in = |case: &pb::Case| -> Vec<Option<PartyId>> {
            subjects
                .iter()
                .map(|s| {
                    let s = s.as_ref()?;
                    let party = case.custody_holders.iter().find(|p| {
                        convert::person_id_from_pb("identifier", p.identifier.as_ref()).ok().flatten().as_ref()
                            == Some(s)
                    })?;
                    PartyId::parse("party_id", &party.party_id).ok()
                })
                .collect()
        };
        if !batch.case.is_empty() {
            let id = CaseId::from_resource_name("case", &batch.case)?;
            let case = match self.ledger.get(&id).await {
                Ok(case) => case,
                Err(LedgerError::NotFound(_)) => {
                    return Ok(Match::Unmatched(format!("the message names {}, which does not exist", batch.case)));
                }
                Err(e) => return Err(e.into()),
            };
            let parties = parties_in(&case);
            // A message that names a case must also name one of its custody holders.
            if !subjects.is_empty() && parties.iter().all(Option::is_none) {
                return Err(Violations::one(
                    "case",
                    format!("the message names {} but none of its custody holders", batch.case),
                )
                .into());
            }
            return Ok(Match::Case(id, parties));
        }
        if subjects.is_empty() {
            return Ok(Match::Unmatched("the message names no person".into()));
        }
        // The person index: keyed hashes of each case's people, never clear identifiers.
        let mut candidates: Vec<CaseId> = Vec::new();
        for subject in batch.subjects.iter() {
            let Some(key) = self.keys.identifier_key(subject) else { continue };
            for id in self.ledger.store().find_cases_by_person(&key).await? {
                if !candidates.contains(&id) {
                    candidates.push(id);
                }
            }
        }
        let mut found = Vec::new();
        for id in candidates {
            let case = self.ledger.get(&id).await?;
            // Only custody holders count (the index also holds the child).
            let parties = parties_in(&case);
            if parties.iter().any(Option::is_some) {
                found.push((id, parties));
            }
        }
        Ok(match found.len() {
            1 => {
                let (id, parties) = found.remove(0);
                Match::Case(id, parties)
            }
            0 => Match::Unmatched("no case has a custody holder with the message's person identifier".into()),
            n => Match::Unmatched(format!("{n} cases have a custody holder with the message's person identifier")),
        })
    }

    async fn ingest(&self, caller: &Caller, req: pb::IngestRequest) -> Result<pb::IngestResponse, ApiError> {
        self.authorize(caller, Rpc::Ingest, Target::System(&req.system))?;
        let client_request_id = request_id(&req.request_id)?;
        let system = self.systems.get(&req.system).ok_or_else(|| {
            Violations::one("system", format!("{:?} is not a configured system", bro_domain::truncate(&req.system, 64)))
        })?;
        // Namespaced, so an ingest request id never meets a CaseService one or another system's.
        let request_id = format!("ingest:{}:{client_request_id}", system.name);
        let message = req.message.ok_or_else(|| Violations::one("message", "is required"))?;
        if message.body.is_empty() {
            return Err(Violations::one("message.body", "is empty").into());
        }
        // A retry gets the earlier answer; the same id for another message is refused.
        let fingerprint = message_fingerprint(&system.name, &message);
        match self.ledger.replay(&request_id, &fingerprint).await {
            Ok(Some(done)) => return Ok(appended(done, pb::IngestOutcome::Duplicate)),
            Ok(None) => {}
            Err(LedgerError::RequestIdReused { .. }) => return Err(reused(&client_request_id)),
            Err(e) => return Err(e.into()),
        }
        if let Some(entry) = self.ledger.store().find_inbox_by_request(&request_id).await? {
            if entry.body != message.body {
                return Err(reused(&client_request_id));
            }
            return match entry.kind {
                InboxKind::Unmatched => Ok(unmatched(&entry.entry_id)),
                InboxKind::Rejected => Err(ApiError::Rejected {
                    rejection: format!("rejections/{}", entry.entry_id),
                    reason: entry.reason,
                }),
            };
        }
        let adapter =
            self.adapters.as_ref().and_then(|r| r.get(&system.adapter).ok()).ok_or_else(|| ApiError::Unavailable {
                reason: "ADAPTER_UNAVAILABLE",
                message: format!("adapter {:?} of system {:?} is not loaded", system.adapter, system.name),
            })?;
        let mut metadata: Vec<(String, String)> = message.metadata.clone().into_iter().collect();
        // Another sector's system speaks for its own sector, whatever the message says.
        if let super::SystemAccess::Sector { sector, .. } = &system.access {
            metadata.retain(|(k, _)| k != "sector");
            metadata.push(("sector".into(), sector_metadata(*sector).into()));
        }
        metadata.sort();
        let input = Message { content_type: message.content_type.clone(), body: message.body.clone(), metadata };
        let translated = tokio::task::spawn_blocking(move || adapter.to_canonical(&input))
            .await
            .map_err(|e| ApiError::Unavailable { reason: "ADAPTER_FAILED", message: e.to_string() })?;
        let bytes = match translated {
            Ok(t) => match t.result {
                Ok(bytes) => bytes,
                Err(e) => {
                    return Err(self
                        .reject(&system.name, &request_id, &message, bro_plugin_host::describe_error(&e))
                        .await);
                }
            },
            // Not this message's fault: the sender retries later, nothing is stored.
            Err(
                e @ (HostError::Quarantined { .. }
                | HostError::Timeout { .. }
                | HostError::Host { .. }
                | HostError::NotLoaded(_)),
            ) => {
                return Err(ApiError::Unavailable { reason: "ADAPTER_UNAVAILABLE", message: e.to_string() });
            }
            Err(e) => return Err(self.reject(&system.name, &request_id, &message, e.to_string()).await),
        };
        let mut batch = match pb::AdapterBatch::decode(bytes.as_slice()) {
            Ok(b) => b,
            Err(e) => {
                let reason = format!("the adapter's output is not a bro.v1.AdapterBatch: {e}");
                return Err(self.reject(&system.name, &request_id, &message, reason).await);
            }
        };
        for subject in batch.subjects.iter().take(MAX_SUBJECTS) {
            if let Some(key) = caller.identifier_key(subject) {
                caller.concerns_key(key);
            }
        }
        if batch.subjects.len() > MAX_SUBJECTS {
            let reason =
                format!("the message names {} people; at most {MAX_SUBJECTS} are accepted", batch.subjects.len());
            return Err(self.reject(&system.name, &request_id, &message, reason).await);
        }
        if batch.events.is_empty() {
            let reason = "the adapter translated the message to no events".to_owned();
            return Err(self.reject(&system.name, &request_id, &message, reason).await);
        }
        if let Err(reason) = may_record(&system.access, &batch) {
            return Err(self.reject(&system.name, &request_id, &message, reason).await);
        }
        if batch.source_message_id.is_empty() {
            batch.source_message_id = message.metadata.get("message-id").cloned().unwrap_or_default();
        }
        let source = (!batch.source_message_id.is_empty())
            .then(|| SourceKey { system: system.name.clone(), message_id: batch.source_message_id.clone() });
        if let Some(key) = &source
            && let Some(record) = self.ledger.store().find_source(key).await?
        {
            let done = self.ledger.find_committed(&record.request_id).await?;
            if let Some(done) = done {
                return Ok(appended(done, pb::IngestOutcome::Duplicate));
            }
        }
        if let Some(Kind::CaseOpened(opened)) = batch.events.first().and_then(|e| e.kind.as_ref()) {
            // Only the municipality's own system opens its cases.
            let cvr = opened.placing_municipality.as_ref().map(|m| m.cvr.as_str()).unwrap_or("");
            if !matches!(&system.access, super::SystemAccess::Municipal { cvr: own } if own == cvr) {
                let why = format!("system {:?} may not open cases of municipality {cvr:?}", system.name);
                caller.refused(&why);
                return Err(ApiError::PermissionDenied(why));
            }
            return self.open_case(&batch, &message, &system.name, &request_id, source, fingerprint).await;
        }
        let matched = match self.match_case(&batch).await {
            // A municipality's system reaches only that municipality's cases.
            Ok(Match::Case(case_id, parties)) => {
                let state = self.ledger.state(&case_id).await?;
                if system.reaches(&state.placing_municipality.cvr) || system.access == super::SystemAccess::SendOnly {
                    Match::Case(case_id, parties)
                } else {
                    Match::Unmatched("no case within the system's reach has the message's person identifier".into())
                }
            }
            Ok(m) => m,
            Err(ApiError::Invalid(v)) => {
                return self.reject_after_match(system, &request_id, &message, v.to_string()).await;
            }
            Err(e) => return Err(e),
        };
        match matched {
            Match::Unmatched(reason) => {
                let now = self.clock.now();
                let entry = InboxEntry {
                    ordinal: 0,
                    entry_id: uuid::Uuid::now_v7().to_string(),
                    kind: InboxKind::Unmatched,
                    system: system.name.clone(),
                    request_id: request_id.clone(),
                    source_message_id: batch.source_message_id.clone(),
                    content_type: message.content_type.clone(),
                    body: message.body.clone(),
                    batch: batch.encode_to_vec(),
                    reason,
                    state: InboxState::Open,
                    resolved_case: None,
                    create_time: now,
                    update_time: now,
                };
                let id = entry.entry_id.clone();
                match self.ledger.store().put_inbox(entry).await? {
                    InboxPut::Inserted => Ok(unmatched(&id)),
                    InboxPut::Existing(e) if e.request_id == request_id && e.body != message.body => {
                        Err(reused(&client_request_id))
                    }
                    InboxPut::Existing(e) => Ok(unmatched(&e.entry_id)),
                }
            }
            Match::Case(case_id, parties) => {
                let events = match events_for(&batch, &parties, &system.name) {
                    Ok(events) => events,
                    Err(v) => return self.reject_after_match(system, &request_id, &message, v.to_string()).await,
                };
                // A sector cancels or ends only its own appointments and contacts.
                if let super::SystemAccess::Sector { sector, .. } = &system.access {
                    let state = self.ledger.state(&case_id).await?;
                    if let Err(reason) = only_own_items(&state, *sector, &events) {
                        return self.reject_after_match(system, &request_id, &message, reason).await;
                    }
                }
                let cmd = AppendEvents {
                    source,
                    fingerprint: Some(fingerprint),
                    ..AppendEvents::new(case_id, events, request_id.clone(), self.clock.now())
                };
                match self.ledger.append(cmd).await {
                    Ok(done) => {
                        let outcome =
                            if done.replayed { pb::IngestOutcome::Duplicate } else { pb::IngestOutcome::Appended };
                        Ok(appended(done, outcome))
                    }
                    Err(LedgerError::Invalid(v)) => {
                        let reason = format!("the case refused the events: {v}");
                        self.reject_after_match(system, &request_id, &message, reason).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

impl IngestApi {
    /// A message that opens a case (a journal's new case): the case and its
    /// first events in one transaction; its people are the new case's.
    async fn open_case(
        &self,
        batch: &pb::AdapterBatch,
        message: &pb::ExternalMessage,
        system: &str,
        request_id: &str,
        source: Option<SourceKey>,
        fingerprint: Vec<u8>,
    ) -> Result<pb::IngestResponse, ApiError> {
        let Some(Kind::CaseOpened(opened)) = batch.events.first().and_then(|e| e.kind.as_ref()) else {
            return Err(Violations::one("events[0]", "a case opens with case_opened").into());
        };
        let case_id = if batch.case.is_empty() {
            None
        } else {
            match CaseId::from_resource_name("case", &batch.case) {
                Ok(id) => Some(id),
                Err(v) => return Err(self.reject(system, request_id, message, v.to_string()).await),
            }
        };
        let subjects: Vec<Option<bro_domain::PersonId>> =
            batch.subjects.iter().map(|s| convert::person_id_from_pb("subject", Some(s)).ok().flatten()).collect();
        let parties: Vec<Option<PartyId>> = subjects
            .iter()
            .map(|s| {
                let s = s.as_ref()?;
                let party = opened.custody_holders.iter().find(|p| {
                    convert::person_id_from_pb("identifier", p.identifier.as_ref()).ok().flatten().as_ref() == Some(s)
                })?;
                PartyId::parse("party_id", &party.party_id).ok()
            })
            .collect();
        let events = match events_for(batch, &parties, system) {
            Ok(events) => events,
            Err(v) => return Err(self.reject(system, request_id, message, v.to_string()).await),
        };
        let cmd = OpenCase {
            case_id,
            events,
            request_id: request_id.to_owned(),
            now: self.clock.now(),
            source,
            fingerprint: Some(fingerprint),
        };
        match self.ledger.open(cmd).await {
            Ok(done) => {
                let outcome = if done.replayed { pb::IngestOutcome::Duplicate } else { pb::IngestOutcome::Appended };
                Ok(appended(done, outcome))
            }
            Err(LedgerError::Invalid(v)) => {
                Err(self.reject(system, request_id, message, format!("the case cannot be opened: {v}")).await)
            }
            Err(LedgerError::AlreadyExists(id)) => {
                let reason = format!("{} already exists; a message can open a case only once", id.resource_name());
                Err(self.reject(system, request_id, message, reason).await)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The batch's events for the matched case: `subjects/N` resolved to parties,
/// each event's source set to the system and message.
/// The `sector` metadata the adapters read.
fn sector_metadata(sector: pb::Sector) -> &'static str {
    match sector {
        pb::Sector::Psychiatry => "psychiatry",
        pb::Sector::AddictionTreatment => "addiction-treatment",
        pb::Sector::Jobcentre => "jobcentre",
        pb::Sector::Health => "health",
        pb::Sector::Other | pb::Sector::Unspecified => "other",
    }
}

/// Whether a system may record what its message became: a municipality's own
/// system anything; another sector's system only its own sector's items
/// (letters, plans, appointments, contacts) — never consents, legal bases or
/// the municipality's decisions; a send-only system only sector items.
fn may_record(access: &super::SystemAccess, batch: &pb::AdapterBatch) -> Result<(), String> {
    use super::SystemAccess;
    let own = match access {
        SystemAccess::Municipal { .. } => return Ok(()),
        SystemAccess::Sector { sector, .. } => Some(*sector as i32),
        SystemAccess::SendOnly => None,
    };
    for (i, event) in batch.events.iter().enumerate() {
        let sector = match &event.kind {
            Some(Kind::CorrespondenceRecorded(e)) => e.correspondence.as_ref().map(|c| c.sector),
            Some(Kind::SectorPlanRecorded(e)) => e.plan.as_ref().map(|p| p.sector),
            Some(Kind::AppointmentScheduled(e)) => e.appointment.as_ref().map(|a| a.sector),
            Some(Kind::SectorContactAdded(e)) => Some(e.sector),
            Some(Kind::AppointmentCancelled(_) | Kind::SectorContactEnded(_)) => None,
            Some(other) => {
                return Err(format!(
                    "events[{i}]: this system may not record {}; only the municipality's own systems do",
                    convert::kind_name(other)
                ));
            }
            None => continue,
        };
        if let (Some(own), Some(sector)) = (own, sector)
            && own != sector
        {
            return Err(format!("events[{i}]: this system records only its own sector's items"));
        }
    }
    Ok(())
}

/// For another sector's system: the appointments it cancels and the contacts
/// it ends must be its own sector's.
fn only_own_items(case: &bro_domain::Case, sector: pb::Sector, events: &[bro_domain::Event]) -> Result<(), String> {
    let own = |s: bro_domain::Sector| bro_api::convert::sector_to_pb(Some(s)) == sector;
    for event in events {
        match &event.kind {
            bro_domain::EventKind::AppointmentCancelled { appointment_id, .. }
                if case.appointments.iter().any(|a| &a.appointment_id == appointment_id && !own(a.sector)) =>
            {
                return Err("an appointment of another sector cannot be cancelled by this system".into());
            }
            bro_domain::EventKind::SectorContactEnded { contact_id }
                if case.sector_contacts.iter().any(|c| &c.contact_id == contact_id && !own(c.sector)) =>
            {
                return Err("a contact of another sector cannot be ended by this system".into());
            }
            _ => {}
        }
    }
    Ok(())
}

fn events_for(
    batch: &pb::AdapterBatch,
    parties: &[Option<PartyId>],
    system: &str,
) -> Result<Vec<bro_domain::Event>, Violations> {
    let mut out = Vec::with_capacity(batch.events.len());
    for (i, event) in batch.events.iter().enumerate() {
        let mut event = event.clone();
        if let Some(kind) = event.kind.as_mut()
            && let Some(holder) = custody_holder_mut(kind)
            && let Some(n) = holder.strip_prefix("subjects/")
        {
            let party = n.parse::<usize>().ok().and_then(|n| parties.get(n).cloned().flatten()).ok_or_else(|| {
                Violations::one(format!("events[{i}]"), format!("{holder} is not a custody holder of the matched case"))
            })?;
            *holder = party.as_str().to_owned();
        }
        if let Some(Kind::PlanPrepared(plan)) = event.kind.as_mut() {
            for cover in &mut plan.covers {
                if let Some(n) = cover.strip_prefix("subjects/") {
                    let party =
                        n.parse::<usize>().ok().and_then(|n| parties.get(n).cloned().flatten()).ok_or_else(|| {
                            Violations::one(
                                format!("events[{i}].plan_prepared.covers"),
                                format!("{cover} is not a custody holder of the case"),
                            )
                        })?;
                    *cover = party.as_str().to_owned();
                }
            }
        }
        event.source = Some(pb::EventSource { system: system.to_owned(), message_id: batch.source_message_id.clone() });
        out.push(convert::event_from_pb(&event).map_err(|v| v.within(&format!("events[{i}]")))?);
    }
    Ok(out)
}

fn appended(done: Committed, outcome: pb::IngestOutcome) -> pb::IngestResponse {
    pb::IngestResponse {
        outcome: outcome.into(),
        case: done.case.name.clone(),
        events: done.events,
        unmatched_message: String::new(),
    }
}

fn unmatched(entry_id: &str) -> pb::IngestResponse {
    pb::IngestResponse {
        outcome: pb::IngestOutcome::Unmatched.into(),
        case: String::new(),
        events: Vec::new(),
        unmatched_message: format!("unmatchedMessages/{entry_id}"),
    }
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

fn entry_name<'a>(field: &str, prefix: &str, name: &'a str) -> Result<&'a str, Violations> {
    name.strip_prefix(prefix).filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/')).ok_or_else(|| {
        Violations::one(field, format!("{:?} is not a name of the form {prefix}{{id}}", bro_domain::truncate(name, 80)))
    })
}

impl IngestApi {
    /// Whether a caller may see and handle an inbox entry: one from a system
    /// bound to a municipality belongs to that municipality's caseworkers (and
    /// the gateway's administrators); one from a system serving every
    /// municipality (regional psychiatry) has no owner and is everyone's.
    fn may_handle(&self, caller: &Caller, entry: &InboxEntry) -> bool {
        let owner = self.systems.get(&entry.system).and_then(|s| match &s.access {
            super::SystemAccess::Municipal { cvr } => Some(cvr.clone()),
            super::SystemAccess::Sector { .. } => s.serves.clone(),
            super::SystemAccess::SendOnly => None,
        });
        let Some(owner) = owner else { return true };
        let administrator = matches!(&caller.principal,
            Principal::Person(p) if p.roles.contains(&crate::access::Role::Administrator));
        administrator || caller.municipality(&self.systems).as_deref() == Some(owner.as_str())
    }

    /// A rejection found only after the message was matched to a case: stored
    /// as any rejection, but a system outside the municipality is told only
    /// that its message was accepted, so the answer cannot show that the
    /// person has a case.
    async fn reject_after_match(
        &self,
        system: &super::SystemConfig,
        request_id: &str,
        message: &pb::ExternalMessage,
        reason: String,
    ) -> Result<pb::IngestResponse, ApiError> {
        let rejected = self.reject(&system.name, request_id, message, reason).await;
        match system.access {
            super::SystemAccess::Municipal { .. } => Err(rejected),
            _ if matches!(rejected, ApiError::Rejected { .. }) => {
                Ok(pb::IngestResponse { outcome: pb::IngestOutcome::Accepted.into(), ..Default::default() })
            }
            _ => Err(rejected),
        }
    }

    /// What another sector's system is told: where its message went only if a
    /// consent or legal basis in its scope covers that case; otherwise (and
    /// when nothing matched) just that it was accepted.
    async fn disclose(&self, system: &str, r: pb::IngestResponse) -> Result<pb::IngestResponse, ApiError> {
        let Some(super::SystemAccess::Sector { scope, .. }) = self.systems.get(system).map(|s| &s.access) else {
            return Ok(r);
        };
        let covered = match r.outcome() {
            pb::IngestOutcome::Appended | pb::IngestOutcome::Duplicate => {
                let case_id = CaseId::from_resource_name("case", &r.case)?;
                self.ledger.state(&case_id).await?.shared_custody_holders(scope).next().is_some()
            }
            _ => false,
        };
        if covered {
            Ok(r)
        } else {
            Ok(pb::IngestResponse { outcome: pb::IngestOutcome::Accepted.into(), ..Default::default() })
        }
    }

    fn authorize(&self, caller: &Caller, rpc: Rpc, target: Target<'_>) -> Result<Grant, ApiError> {
        Ok(policy::authorize(&caller.principal, &self.systems, rpc, target).inspect_err(|d| caller.refused(&d.0))?)
    }

    async fn list_inbox(
        &self,
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
        let rows = self.ledger.store().list_inbox(&query).await?;
        let next = if rows.len() == limit {
            rows.last().map(|r| paging::encode_token(scope, r.ordinal)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    async fn resolve(
        &self,
        caller: Result<Caller, ApiError>,
        req: pb::ResolveUnmatchedMessageRequest,
    ) -> Result<pb::ResolveUnmatchedMessageResponse, ApiError> {
        let caller = caller?;
        let id = entry_name("name", "unmatchedMessages/", &req.name)?;
        let case_id = CaseId::from_resource_name("case", &req.case)?;
        let state = self.ledger.state(&case_id).await?;
        caller.concerns_case(&state);
        self.authorize(&caller, Rpc::ResolveUnmatchedMessage, Target::Case(&state))?;
        let holder = PartyId::parse("custody_holder", &req.custody_holder)?;
        let entry = self
            .ledger
            .store()
            .get_inbox(id)
            .await?
            .filter(|e| e.kind == InboxKind::Unmatched && self.may_handle(&caller, e))
            .ok_or_else(|| ApiError::NotFound { reason: "UNMATCHED_MESSAGE_NOT_FOUND", name: req.name.clone() })?;
        let request_id = format!("resolve-{}", entry.entry_id);
        if entry.state != InboxState::Open {
            if let Some(done) = self.ledger.find_committed(&request_id).await? {
                return Ok(pb::ResolveUnmatchedMessageResponse { case: Some(done.case), events: done.events });
            }
            return Err(ApiError::FailedPrecondition {
                reason: "UNMATCHED_MESSAGE_CLOSED",
                message: format!("{} is {}, not open", req.name, entry.state.as_str()),
            });
        }
        let case = self.ledger.get(&case_id).await?;
        if !case.custody_holders.iter().any(|p| p.party_id == holder.as_str()) {
            return Err(
                Violations::one("custody_holder", format!("{} has no custody holder {holder}", req.case)).into()
            );
        }
        let batch = pb::AdapterBatch::decode(entry.batch.as_slice())
            .map_err(|e| bro_store::StoreError::Corrupt(format!("unmatched message {id}: {e}")))?;
        // Every person reference of the message becomes the chosen custody holder.
        let parties = vec![Some(holder); batch.subjects.len().max(1)];
        let events = events_for(&batch, &parties, &entry.system)?;
        let source = (!entry.source_message_id.is_empty())
            .then(|| SourceKey { system: entry.system.clone(), message_id: entry.source_message_id.clone() });
        let cmd = AppendEvents {
            source,
            resolves_inbox: Some(entry.entry_id.clone()),
            ..AppendEvents::new(case_id, events, request_id, self.clock.now())
        };
        let done = self.ledger.append(cmd).await?;
        Ok(pb::ResolveUnmatchedMessageResponse { case: Some(done.case), events: done.events })
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn ingest(&self, request: Request<pb::IngestRequest>) -> Result<Response<pb::IngestResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let system =
            if self.systems.get(&request.system).is_some() { request.system.clone() } else { "unknown".into() };
        let answer = match &caller {
            Ok(caller) => {
                let answer = IngestApi::ingest(self, caller, request).await;
                if let Ok(r) = &answer {
                    caller.concerns_case_name(&r.case);
                }
                answer
            }
            Err(e) => Err(ApiError::Unauthenticated(e.to_string())),
        };
        let outcome = match &answer {
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
        };
        self.metrics.record_ingest(&system, outcome);
        // The operator's metrics count what happened; the sender is told only what it may know.
        let answer = match (answer, &caller) {
            (Ok(r), Ok(Caller { principal: Principal::System(name), .. })) => self.disclose(name, r).await,
            (answer, _) => answer,
        };

        self.observe("Ingest", async { answer }).await
    }

    async fn list_unmatched_messages(
        &self,
        request: Request<pb::ListUnmatchedMessagesRequest>,
    ) -> Result<Response<pb::ListUnmatchedMessagesResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ListUnmatchedMessages", async {
            let caller = caller?;
            self.authorize(&caller, Rpc::ListUnmatchedMessages, Target::Nothing)?;
            let (rows, next_page_token) =
                self.list_inbox(InboxKind::Unmatched, r.page_size, &r.page_token, &r.filter).await?;
            Ok(pb::ListUnmatchedMessagesResponse {
                unmatched_messages: rows.iter().filter(|e| self.may_handle(&caller, e)).map(unmatched_to_pb).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn discard_unmatched_message(
        &self,
        request: Request<pb::DiscardUnmatchedMessageRequest>,
    ) -> Result<Response<pb::DiscardUnmatchedMessageResponse>, Status> {
        let caller = Caller::of(&request);
        let name = request.into_inner().name;
        self.observe("DiscardUnmatchedMessage", async {
            let caller = caller?;
            self.authorize(&caller, Rpc::DiscardUnmatchedMessage, Target::Nothing)?;
            let id = entry_name("name", "unmatchedMessages/", &name)?;
            let store = self.ledger.store();
            let entry = store
                .get_inbox(id)
                .await?
                .filter(|e| e.kind == InboxKind::Unmatched && self.may_handle(&caller, e))
                .ok_or_else(|| ApiError::NotFound { reason: "UNMATCHED_MESSAGE_NOT_FOUND", name: name.clone() })?;
            // Discarding twice is the same as once; a resolved message stays resolved.
            if entry.state != InboxState::Discarded
                && !store.close_inbox(id, InboxState::Discarded, self.clock.now()).await?
            {
                return Err(ApiError::FailedPrecondition {
                    reason: "UNMATCHED_MESSAGE_CLOSED",
                    message: format!("{name} is {}, not open", entry.state.as_str()),
                });
            }
            let entry = store
                .get_inbox(id)
                .await?
                .ok_or_else(|| ApiError::NotFound { reason: "UNMATCHED_MESSAGE_NOT_FOUND", name: name.clone() })?;
            Ok(pb::DiscardUnmatchedMessageResponse { unmatched_message: Some(unmatched_to_pb(&entry)) })
        })
        .await
    }

    async fn resolve_unmatched_message(
        &self,
        request: Request<pb::ResolveUnmatchedMessageRequest>,
    ) -> Result<Response<pb::ResolveUnmatchedMessageResponse>, Status> {
        let caller = Caller::of(&request);
        self.observe("ResolveUnmatchedMessage", self.resolve(caller, request.into_inner())).await
    }

    async fn list_rejections(
        &self,
        request: Request<pb::ListRejectionsRequest>,
    ) -> Result<Response<pb::ListRejectionsResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ListRejections", async {
            let caller = caller?;
            self.authorize(&caller, Rpc::ListRejections, Target::Nothing)?;
            let (rows, next_page_token) =
                self.list_inbox(InboxKind::Rejected, r.page_size, &r.page_token, &r.filter).await?;
            let rejections = rows.iter().filter(|e| self.may_handle(&caller, e)).map(rejection_to_pb).collect();
            Ok(pb::ListRejectionsResponse { rejections, next_page_token })
        })
        .await
    }
}
