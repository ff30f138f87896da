//! Ingest, step by step: a message from a configured system is
//! [deduplicated](Ingestion::dedupe), [translated](Ingestion::translate) by
//! the system's adapter, [screened](Ingestion::screen) by the sharing law,
//! [matched](Ingestion::match_case) to a case by a custody holder's
//! identifier (or the case it names), and [appended](Ingestion::append) — or
//! kept as unmatched, or stored as a rejection naming why. Nothing of a
//! refused message is half-applied: its events are appended in one
//! transaction or not at all.

use std::time::Duration;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_domain::{CaseId, PartyId, PersonId, Violations};
use bro_plugin_host::{HostError, Message};
use bro_rules::sharing::{self, Submitted};
use bro_store::{
    AppendEvents, AppendObserver as _, Committed, InboxEntry, InboxKind, InboxPut, InboxState, LedgerError, OpenCase,
    SourceKey, Stage,
};
use prost::Message as _;

use super::subjects;
use crate::access::Caller;
use crate::context::Context;
use crate::error::ApiError;
use crate::systems::{SystemAccess, SystemConfig};

/// Most people one message may name.
const MAX_SUBJECTS: usize = 16;

/// One ingest request on its way through the steps.
pub struct Ingestion<'a> {
    ctx: &'a Context,
    system: &'a SystemConfig,
    /// The client's own request id (what its answers name).
    client_request_id: &'a str,
    /// The request id the gateway writes under: `ingest:{system}:{client's}`.
    request_id: String,
    message: pb::ExternalMessage,
    /// What tells a retry from a reuse of the request id.
    fingerprint: Vec<u8>,
}

/// How a message's people were matched to a case.
enum Match {
    /// One case; `parties[i]` is the party of `subjects[i]` (if a custody holder).
    Case(CaseId, Vec<Option<PartyId>>),
    /// None, or several: why.
    Unmatched(String),
}

/// An inbox entry for `message` of `system` (unmatched, or rejected).
pub fn inbox_entry(
    ctx: &Context,
    kind: InboxKind,
    system: &str,
    request_id: &str,
    message: &pb::ExternalMessage,
    batch: Option<&pb::AdapterBatch>,
    reason: String,
) -> InboxEntry {
    let now = ctx.clock.now();
    InboxEntry {
        ordinal: 0,
        entry_id: ctx.clock.new_id(),
        kind,
        system: system.to_owned(),
        request_id: request_id.to_owned(),
        source_message_id: batch.map(|b| b.source_message_id.clone()).unwrap_or_default(),
        content_type: message.content_type.clone(),
        body: message.body.clone(),
        batch: batch.map(|b| b.encode_to_vec()).unwrap_or_default(),
        reason,
        state: InboxState::Open,
        resolved_case: None,
        create_time: now,
        update_time: now,
    }
}

/// The answer of an appended (or earlier appended) message.
pub fn appended(done: Committed, outcome: pb::IngestOutcome) -> pb::IngestResponse {
    pb::IngestResponse {
        outcome: outcome.into(),
        case: done.case.name.clone(),
        events: done.events,
        unmatched_message: String::new(),
    }
}

/// The answer of a message kept as unmatched.
fn unmatched(entry_id: &str) -> pb::IngestResponse {
    pb::IngestResponse {
        outcome: pb::IngestOutcome::Unmatched.into(),
        case: String::new(),
        events: Vec::new(),
        unmatched_message: format!("unmatchedMessages/{entry_id}"),
    }
}

/// The answer to a request id used before for another message.
fn reused(client_request_id: &str) -> ApiError {
    LedgerError::RequestIdReused { request_id: client_request_id.to_owned() }.into()
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

/// An adapter's event as the sharing law screens it: its type and, for a
/// sector's item, the sector it names.
fn submitted(kind: &Kind) -> Submitted<'static> {
    let sector = match kind {
        Kind::CorrespondenceRecorded(e) => e.correspondence.as_ref().map(|c| c.sector),
        Kind::SectorPlanRecorded(e) => e.plan.as_ref().map(|p| p.sector),
        Kind::AppointmentScheduled(e) => e.appointment.as_ref().map(|a| a.sector),
        Kind::SectorContactAdded(e) => Some(e.sector),
        _ => None,
    };
    let sector = sector.and_then(|s| pb::Sector::try_from(s).ok()).and_then(convert::sector_from_pb);
    Submitted { event_type: convert::kind_name(kind), sector }
}

/// The batch's events for a case: `subjects/N` resolved to `parties[N]`,
/// each event's source set to the system and message.
pub fn events_for(
    batch: &pb::AdapterBatch,
    parties: &[Option<PartyId>],
    system: &str,
) -> Result<Vec<bro_domain::Event>, Violations> {
    let mut out = Vec::with_capacity(batch.events.len());
    for (i, event) in batch.events.iter().enumerate() {
        let at = format!("events[{i}]");
        let mut event = event.clone();
        subjects::resolve(&mut event, parties).map_err(|v| v.within(&at))?;
        event.source = Some(pb::EventSource { system: system.to_owned(), message_id: batch.source_message_id.clone() });
        out.push(convert::event_from_pb(&event).map_err(|v| v.within(&at))?);
    }
    Ok(out)
}

/// The party of each of the batch's subjects among `holders` (the case's
/// custody holders).
fn parties_among(subjects: &[Option<PersonId>], holders: &[pb::Party]) -> Vec<Option<PartyId>> {
    subjects
        .iter()
        .map(|s| {
            let s = s.as_ref()?;
            let party = holders.iter().find(|p| {
                convert::person_id_from_pb("identifier", p.identifier.as_ref()).ok().flatten().as_ref() == Some(s)
            })?;
            PartyId::parse("party_id", &party.party_id).ok()
        })
        .collect()
}

impl<'a> Ingestion<'a> {
    /// Ingest of `message` from `system` under the client's request id.
    pub fn new(
        ctx: &'a Context,
        system: &'a SystemConfig,
        client_request_id: &'a str,
        message: pb::ExternalMessage,
    ) -> Ingestion<'a> {
        let request_id = format!("ingest:{}:{client_request_id}", system.name);
        let fingerprint = message_fingerprint(&system.name, &message);
        Ingestion { ctx, system, client_request_id, request_id, message, fingerprint }
    }

    /// The whole way: every step in order.
    pub async fn run(&self, caller: &Caller) -> Result<pb::IngestResponse, ApiError> {
        if let Some(earlier) = self.dedupe().await? {
            return earlier;
        }
        let batch = self.translate().await?;
        let batch = self.screen(caller, batch).await?;
        let source = (!batch.source_message_id.is_empty())
            .then(|| SourceKey { system: self.system.name.clone(), message_id: batch.source_message_id.clone() });
        if let Some(key) = &source
            && let Some(record) = self.ctx.store().find_source(key).await?
            && let Some(done) = self.ctx.ledger.find_committed(&record.request_id).await?
        {
            return Ok(appended(done, pb::IngestOutcome::Duplicate));
        }
        if let Some(Kind::CaseOpened(opened)) = batch.events.first().and_then(|e| e.kind.as_ref()) {
            // Only the municipality's own system opens its cases.
            let cvr = opened.placing_municipality.as_ref().map(|m| m.cvr.as_str()).unwrap_or("");
            if !matches!(&self.system.access, SystemAccess::Municipal { cvr: own } if own == cvr) {
                let why = format!("system {:?} may not open cases of municipality {cvr:?}", self.system.name);
                caller.refused(&why);
                return Err(ApiError::PermissionDenied(why));
            }
            let audit = self.ctx.audit_write(caller).await?;
            return self.open_case(&batch, opened, source, audit).await;
        }
        match self.match_case(&batch).await {
            Ok(Match::Unmatched(reason)) => self.keep_unmatched(&batch, reason).await,
            Ok(Match::Case(case_id, parties)) => {
                caller.concerns_case_name(&case_id.resource_name());
                let audit = self.ctx.audit_write(caller).await?;
                self.append(&batch, case_id, &parties, source, audit).await
            }
            Err(ApiError::Invalid(v)) => self.reject_after_match(v.to_string()).await,
            Err(e) => Err(e),
        }
    }

    /// Step 1: a retry gets the earlier answer (appended, unmatched or
    /// rejected); the same request id for another message is refused.
    async fn dedupe(&self) -> Result<Option<Result<pb::IngestResponse, ApiError>>, ApiError> {
        match self.ctx.ledger.replay(&self.request_id, &self.fingerprint).await {
            Ok(Some(done)) => return Ok(Some(Ok(appended(done, pb::IngestOutcome::Duplicate)))),
            Ok(None) => {}
            Err(LedgerError::RequestIdReused { .. }) => return Err(reused(self.client_request_id)),
            Err(e) => return Err(e.into()),
        }
        let Some(entry) = self.ctx.store().find_inbox_by_request(&self.request_id).await? else { return Ok(None) };
        if entry.body != self.message.body {
            return Err(reused(self.client_request_id));
        }
        Ok(Some(match entry.kind {
            InboxKind::Unmatched => Ok(unmatched(&entry.entry_id)),
            InboxKind::Rejected => {
                Err(ApiError::Rejected { rejection: format!("rejections/{}", entry.entry_id), reason: entry.reason })
            }
        }))
    }

    /// Step 2: the system's adapter translates the message to a canonical
    /// batch. A failure of the moment (the adapter quarantined, out of time)
    /// is `UNAVAILABLE` and stores nothing: the sender retries. A refusal or
    /// a crash on this message is a stored rejection.
    async fn translate(&self) -> Result<pb::AdapterBatch, ApiError> {
        let adapter = self.ctx.adapters.as_ref().and_then(|r| r.get(&self.system.adapter).ok()).ok_or_else(|| {
            ApiError::Unavailable {
                reason: "ADAPTER_UNAVAILABLE",
                message: format!("adapter {:?} of system {:?} is not loaded", self.system.adapter, self.system.name),
            }
        })?;
        let mut metadata: Vec<(String, String)> = self.message.metadata.clone().into_iter().collect();
        // Another sector's system speaks for its own sector, whatever the message says.
        if let SystemAccess::Sector { sector, .. } = &self.system.access {
            metadata.retain(|(k, _)| k != "sector");
            metadata.push(("sector".into(), sector_metadata(*sector).into()));
        }
        metadata.sort();
        let input =
            Message { content_type: self.message.content_type.clone(), body: self.message.body.clone(), metadata };
        let sender = self.system.name.clone();
        let translated = tokio::task::spawn_blocking(move || adapter.to_canonical(&sender, &input))
            .await
            .map_err(|e| ApiError::Unavailable { reason: "ADAPTER_FAILED", message: e.to_string() })?;
        if let Ok(t) = &translated {
            self.ctx.metrics.stage_finished(Stage::Adapter, t.report.wall_time);
        }
        let bytes = match translated {
            Ok(t) => match t.result {
                Ok(bytes) => bytes,
                Err(e) => return Err(self.reject(bro_plugin_host::describe_error(&e)).await),
            },
            // Not this message's fault (a busy, quarantined or broken adapter,
            // the sender throttled): it retries later, nothing is stored.
            Err(e) if e.is_transient() => return Err(retry_later(&e)),
            // This message's fault (a limit it broke, a crash on it): a
            // stored rejection naming the limit, so retries stop.
            Err(e) => return Err(self.reject(e.to_string()).await),
        };
        match pb::AdapterBatch::decode(bytes.as_slice()) {
            Ok(batch) => Ok(batch),
            Err(e) => Err(self.reject(format!("the adapter's output is not a bro.v1.AdapterBatch: {e}")).await),
        }
    }

    /// Step 3: the batch names at most [`MAX_SUBJECTS`] people and at least
    /// one event, and the sharing law lets the system record what it says
    /// (its people are noted for the call's audit record either way).
    async fn screen(&self, caller: &Caller, mut batch: pb::AdapterBatch) -> Result<pb::AdapterBatch, ApiError> {
        for subject in batch.subjects.iter().take(MAX_SUBJECTS) {
            if let Some(key) = caller.identifier_key(subject) {
                caller.concerns_key(key);
            }
        }
        if batch.subjects.len() > MAX_SUBJECTS {
            let reason =
                format!("the message names {} people; at most {MAX_SUBJECTS} are accepted", batch.subjects.len());
            return Err(self.reject(reason).await);
        }
        if batch.events.is_empty() {
            return Err(self.reject("the adapter translated the message to no events".into()).await);
        }
        let events: Vec<Option<Submitted<'_>>> = batch.events.iter().map(|e| e.kind.as_ref().map(submitted)).collect();
        if let Err(reason) = sharing::may_record(self.system.recorder(), &events) {
            return Err(self.reject(reason).await);
        }
        if batch.source_message_id.is_empty() {
            batch.source_message_id = self.message.metadata.get("message-id").cloned().unwrap_or_default();
        }
        Ok(batch)
    }

    /// Step 4: the one case whose custody holders include a subject (through
    /// the keyed-hash person index, never clear identifiers), or the case the
    /// message names, within the system's reach.
    async fn match_case(&self, batch: &pb::AdapterBatch) -> Result<Match, ApiError> {
        let subjects: Vec<Option<PersonId>> = batch
            .subjects
            .iter()
            .enumerate()
            .map(|(i, s)| convert::person_id_from_pb(&format!("subjects[{i}]"), Some(s)))
            .collect::<Result<_, _>>()?;
        let ledger = &self.ctx.ledger;
        let matched = if !batch.case.is_empty() {
            let id = CaseId::from_resource_name("case", &batch.case)?;
            let case = match ledger.get(&id).await {
                Ok(case) => case,
                Err(LedgerError::NotFound(_)) => {
                    return Ok(Match::Unmatched(format!("the message names {}, which does not exist", batch.case)));
                }
                Err(e) => return Err(e.into()),
            };
            let parties = parties_among(&subjects, &case.custody_holders);
            // A message that names a case must also name one of its custody holders.
            if !subjects.is_empty() && parties.iter().all(Option::is_none) {
                let why = format!("the message names {} but none of its custody holders", batch.case);
                return Err(Violations::one("case", why).into());
            }
            Match::Case(id, parties)
        } else if subjects.is_empty() {
            Match::Unmatched("the message names no person".into())
        } else {
            let mut candidates: Vec<CaseId> = Vec::new();
            for subject in &batch.subjects {
                let Some(key) = self.ctx.keys.identifier_key(subject) else { continue };
                for id in self.ctx.store().find_cases_by_person(&key).await? {
                    if !candidates.contains(&id) {
                        candidates.push(id);
                    }
                }
            }
            let mut found = Vec::new();
            for id in candidates {
                // Only custody holders count (the index also holds the child).
                let parties = parties_among(&subjects, &ledger.get(&id).await?.custody_holders);
                if parties.iter().any(Option::is_some) {
                    found.push((id, parties));
                }
            }
            match found.len() {
                1 => {
                    let (id, parties) = found.remove(0);
                    Match::Case(id, parties)
                }
                0 => Match::Unmatched("no case has a custody holder with the message's person identifier".into()),
                n => Match::Unmatched(format!("{n} cases have a custody holder with the message's person identifier")),
            }
        };
        // A municipality's system reaches only that municipality's cases.
        if let Match::Case(id, _) = &matched {
            let case = ledger.state(id).await?;
            let reaches = self.system.reaches(&case.placing_municipality.cvr);
            if !reaches {
                let why = "no case within the system's reach has the message's person identifier";
                return Ok(Match::Unmatched(why.into()));
            }
        }
        Ok(matched)
    }

    /// Step 5 (matched): the events are appended to the case in one
    /// transaction, with the source message's key; another sector changes
    /// only its own items.
    async fn append(
        &self,
        batch: &pb::AdapterBatch,
        case_id: CaseId,
        parties: &[Option<PartyId>],
        source: Option<SourceKey>,
        audit: Vec<pb::AuditRecord>,
    ) -> Result<pb::IngestResponse, ApiError> {
        let events = match events_for(batch, parties, &self.system.name) {
            Ok(events) => events,
            Err(v) => return self.reject_after_match(v.to_string()).await,
        };
        if let sharing::Recorder::Sector(sector) = self.system.recorder() {
            let case = self.ctx.ledger.state(&case_id).await?;
            if let Err(reason) = sharing::only_own_items(&case, sector, &events) {
                return self.reject_after_match(reason).await;
            }
        }
        let cmd = AppendEvents {
            source,
            fingerprint: Some(self.fingerprint.clone()),
            audit,
            ..AppendEvents::new(case_id, events, self.request_id.clone(), self.ctx.clock.now())
        };
        match self.ctx.ledger.append(cmd).await {
            Ok(done) => {
                let outcome = if done.replayed { pb::IngestOutcome::Duplicate } else { pb::IngestOutcome::Appended };
                Ok(appended(done, outcome))
            }
            Err(LedgerError::Invalid(v)) => self.reject_after_match(format!("the case refused the events: {v}")).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Step 5 (unmatched): the message waits for a caseworker in the inbox.
    async fn keep_unmatched(&self, batch: &pb::AdapterBatch, reason: String) -> Result<pb::IngestResponse, ApiError> {
        let entry = inbox_entry(
            self.ctx,
            InboxKind::Unmatched,
            &self.system.name,
            &self.request_id,
            &self.message,
            Some(batch),
            reason,
        );
        let id = entry.entry_id.clone();
        match self.ctx.store().put_inbox(entry).await? {
            InboxPut::Inserted => Ok(unmatched(&id)),
            InboxPut::Existing(e) if e.request_id == self.request_id && e.body != self.message.body => {
                Err(reused(self.client_request_id))
            }
            InboxPut::Existing(e) => Ok(unmatched(&e.entry_id)),
        }
    }

    /// Step 5 (a message that opens a case, a journal's new case): the case
    /// and its first events in one transaction; its people are the new case's.
    async fn open_case(
        &self,
        batch: &pb::AdapterBatch,
        opened: &pb::CaseOpened,
        source: Option<SourceKey>,
        audit: Vec<pb::AuditRecord>,
    ) -> Result<pb::IngestResponse, ApiError> {
        let case_id = if batch.case.is_empty() {
            None
        } else {
            match CaseId::from_resource_name("case", &batch.case) {
                Ok(id) => Some(id),
                Err(v) => return Err(self.reject(v.to_string()).await),
            }
        };
        let subjects: Vec<Option<PersonId>> =
            batch.subjects.iter().map(|s| convert::person_id_from_pb("subject", Some(s)).ok().flatten()).collect();
        let parties = parties_among(&subjects, &opened.custody_holders);
        let events = match events_for(batch, &parties, &self.system.name) {
            Ok(events) => events,
            Err(v) => return Err(self.reject(v.to_string()).await),
        };
        let cmd = OpenCase {
            case_id,
            events,
            request_id: self.request_id.clone(),
            now: self.ctx.clock.now(),
            source,
            fingerprint: Some(self.fingerprint.clone()),
            audit,
        };
        match self.ctx.ledger.open(cmd).await {
            Ok(done) => {
                let outcome = if done.replayed { pb::IngestOutcome::Duplicate } else { pb::IngestOutcome::Appended };
                Ok(appended(done, outcome))
            }
            Err(LedgerError::Invalid(v)) => Err(self.reject(format!("the case cannot be opened: {v}")).await),
            Err(LedgerError::AlreadyExists(id)) => {
                let reason = format!("{} already exists; a message can open a case only once", id.resource_name());
                Err(self.reject(reason).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a rejection (once per request id) and answers with it.
    async fn reject(&self, reason: String) -> ApiError {
        // The reason may quote the message (an adapter's error): no digit runs are kept.
        let reason = bro_domain::mask_digit_runs(&reason);
        let stored = bro_domain::truncate(&reason, 4000).to_owned();
        let entry = inbox_entry(
            self.ctx,
            InboxKind::Rejected,
            &self.system.name,
            &self.request_id,
            &self.message,
            None,
            stored,
        );
        let id = entry.entry_id.clone();
        match self.ctx.store().put_inbox(entry).await {
            Ok(InboxPut::Inserted) => {
                tracing::info!(system = %self.system.name, rejection = %id, "message rejected");
                ApiError::Rejected { rejection: format!("rejections/{id}"), reason }
            }
            Ok(InboxPut::Existing(e)) if e.body != self.message.body => reused(self.client_request_id),
            Ok(InboxPut::Existing(e)) => {
                ApiError::Rejected { rejection: format!("rejections/{}", e.entry_id), reason: e.reason }
            }
            Err(e) => e.into(),
        }
    }

    /// A rejection found only after the message was matched to a case:
    /// stored as any rejection, but a system outside the municipality is told
    /// only that its message was accepted, so the answer cannot show that the
    /// person has a case.
    async fn reject_after_match(&self, reason: String) -> Result<pb::IngestResponse, ApiError> {
        let rejected = self.reject(reason).await;
        match self.system.access {
            SystemAccess::Municipal { .. } => Err(rejected),
            _ if matches!(rejected, ApiError::Rejected { .. }) => {
                Ok(pb::IngestResponse { outcome: pb::IngestOutcome::Accepted.into(), ..Default::default() })
            }
            _ => Err(rejected),
        }
    }
}

/// `UNAVAILABLE` with a retry delay for an adapter failure that is not the message's.
fn retry_later(e: &HostError) -> ApiError {
    let reason = match e {
        HostError::Busy { .. } => "ADAPTER_BUSY",
        HostError::Quarantined { .. } => "ADAPTER_QUARANTINED",
        HostError::Throttled { .. } => "SENDER_THROTTLED",
        _ => "ADAPTER_UNAVAILABLE",
    };
    let retry_after = e.retry_after().unwrap_or(Duration::from_secs(1));
    ApiError::RetryLater { reason, message: e.to_string(), retry_after }
}
