//! The ingest → deliver pipeline: which systems exist, what each is sent
//! (the [`Systems`] delivery planner behind the transactional outbox), the
//! ingest service, the delivery service and the delivery worker.

pub mod deliveries;
pub mod distribution;
pub mod ingest;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_domain::{Case, Timestamp};
use bro_rules::coordination::CoordinationPolicy;
use bro_store::{DeliveryPlanner, NewDelivery};

use crate::access::views::SectorScope;
use prost::Message as _;

/// How a system receives its deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The system only sends; it receives nothing.
    None,
    /// POST to a URL with an `Idempotency-Key` header.
    Http {
        /// The receiving URL (`http://…`).
        url: String,
    },
    /// Atomic write of one file per delivery into a drop directory.
    File {
        /// The drop directory.
        dir: PathBuf,
    },
    /// The system streams its deliveries over gRPC and acknowledges them.
    Pull,
}

/// What a system may read and be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemAccess {
    /// It only sends (ingest); it reads nothing and is sent nothing.
    SendOnly,
    /// A system of the municipality itself (its journal or case system): the
    /// cases that municipality places, in full.
    Municipal {
        /// The municipality's CVR number.
        cvr: String,
    },
    /// Another sector's system: only its own sector's items, of custody
    /// holders whose consent in `scope` holds.
    Sector {
        /// Its sector.
        sector: pb::Sector,
        /// The consent scope that covers it, e.g. `share:jobcenter`.
        scope: String,
    },
}

impl SystemAccess {
    /// The usual consent scope of a sector: `share:jobcenter`,
    /// `share:psychiatry`, `share:addiction-treatment`, `share:health`.
    pub fn default_scope(sector: pb::Sector) -> Option<&'static str> {
        match sector {
            pb::Sector::Jobcentre => Some("share:jobcenter"),
            pb::Sector::Psychiatry => Some("share:psychiatry"),
            pb::Sector::AddictionTreatment => Some("share:addiction-treatment"),
            pb::Sector::Health => Some("share:health"),
            pb::Sector::Other | pb::Sector::Unspecified => None,
        }
    }
}

/// One configured external system.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// Its id, e.g. `psykiatri-regionh`.
    pub name: String,
    /// The adapter that translates its messages.
    pub adapter: String,
    /// The `from-canonical` target (the format it wants).
    pub target: String,
    /// Event types it is sent, e.g. `correspondence_recorded`.
    pub subscribe: Vec<String>,
    /// How it receives.
    pub transport: Transport,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// What it may read and be sent.
    pub access: SystemAccess,
    /// The client id its client-credentials tokens carry, if it uses tokens.
    pub client_id: Option<String>,
    /// SHA-256 fingerprints (hex) of the client certificates it may present.
    pub certificates: Vec<String>,
    /// For another sector's system: the one municipality (CVR) whose cases it
    /// serves, e.g. a municipal jobcentre; none: every municipality's here.
    pub serves: Option<String>,
}

impl SystemConfig {
    /// A system with the default retry policy (8 attempts, 2 s doubling to 10 min).
    pub fn new(name: &str, adapter: &str, target: &str, subscribe: &[&str], transport: Transport) -> Self {
        SystemConfig {
            name: name.into(),
            adapter: adapter.into(),
            target: target.into(),
            subscribe: subscribe.iter().map(|s| (*s).to_owned()).collect(),
            transport,
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            access: SystemAccess::SendOnly,
            client_id: None,
            certificates: Vec::new(),
            serves: None,
        }
    }

    /// Whether a case of municipality `cvr` is within this system's reach.
    pub fn reaches(&self, cvr: &str) -> bool {
        match &self.access {
            SystemAccess::SendOnly => false,
            SystemAccess::Municipal { cvr: own } => own == cvr,
            SystemAccess::Sector { .. } => self.serves.as_deref().is_none_or(|own| own == cvr),
        }
    }

    /// The same system with `access`.
    pub fn with_access(mut self, access: SystemAccess) -> Self {
        self.access = access;
        self
    }

    /// The same system authenticating with client-credentials tokens for `client_id`.
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, with a
    /// jitter of up to half the delay that differs between deliveries.
    pub fn backoff(&self, attempts: u32, delivery_id: &str) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.backoff_max);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&(delivery_id, attempts), &mut h);
        let fraction = (std::hash::Hasher::finish(&h) % 1000) as f64 / 2000.0;
        capped + capped.mul_f64(fraction)
    }
}

/// The configured systems; plans the outbox of every write.
#[derive(Clone, Debug, Default)]
pub struct Systems {
    systems: Vec<SystemConfig>,
}

impl Systems {
    /// The systems, checked: unique names, known event types.
    pub fn new(systems: Vec<SystemConfig>) -> Result<Self, String> {
        for (i, s) in systems.iter().enumerate() {
            bro_domain::check_id("name", &s.name).map_err(|v| format!("system {:?}: {v}", s.name))?;
            if systems[..i].iter().any(|t| t.name == s.name) {
                return Err(format!("system {:?} is configured twice", s.name));
            }
            for ty in &s.subscribe {
                if !EVENT_TYPES.contains(&ty.as_str()) && ty != HOLISTIC_PLAN {
                    return Err(format!(
                        "system {:?} subscribes to {ty:?}, which is neither an event type nor {HOLISTIC_PLAN:?}",
                        s.name
                    ));
                }
            }
            if s.transport == Transport::None && !s.subscribe.is_empty() {
                return Err(format!("system {:?} subscribes to events but has no transport", s.name));
            }
            if s.access == SystemAccess::SendOnly && !s.subscribe.is_empty() {
                return Err(format!(
                    "system {:?} subscribes to events but is send-only: give it a municipality or a sector",
                    s.name
                ));
            }
            match &s.access {
                SystemAccess::Municipal { cvr } => {
                    bro_domain::check_cvr("municipality", cvr).map_err(|v| format!("system {:?}: {v}", s.name))?;
                }
                SystemAccess::Sector { sector, scope } => {
                    if *sector == pb::Sector::Unspecified {
                        return Err(format!("system {:?}: the sector is required", s.name));
                    }
                    bro_domain::ConsentScope::parse("consent_scope", scope)
                        .ok()
                        .filter(|c| c.as_str().starts_with("share:"))
                        .ok_or_else(|| format!("system {:?}: consent_scope must be share:{{recipient}}", s.name))?;
                    let sendable = |t: &String| SECTOR_EVENT_TYPES.contains(&t.as_str()) || t == HOLISTIC_PLAN;
                    if let Some(ty) = s.subscribe.iter().find(|t| !sendable(t)) {
                        return Err(format!(
                            "system {:?} is another sector's system and cannot be sent {ty:?}; it may subscribe to {}, {HOLISTIC_PLAN}",
                            s.name,
                            SECTOR_EVENT_TYPES.join(", ")
                        ));
                    }
                }
                SystemAccess::SendOnly => {}
            }
            if let Some(cvr) = &s.serves {
                if !matches!(s.access, SystemAccess::Sector { .. }) {
                    return Err(format!("system {:?}: only another sector's system serves one municipality", s.name));
                }
                bro_domain::check_cvr("municipality", cvr).map_err(|v| format!("system {:?}: {v}", s.name))?;
            }
            for fingerprint in &s.certificates {
                if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("system {:?}: certificate_sha256 must be 64 hex digits", s.name));
                }
                let taken =
                    systems[..i].iter().any(|t| t.certificates.iter().any(|f| f.eq_ignore_ascii_case(fingerprint)));
                if taken {
                    return Err(format!("system {:?}: its certificate is pinned to another system too", s.name));
                }
            }
            if let Some(client) = &s.client_id
                && (client.is_empty() || systems[..i].iter().any(|t| t.client_id.as_ref() == Some(client)))
            {
                return Err(format!("system {:?}: client_id must be non-empty and unique", s.name));
            }
            if s.max_attempts == 0 {
                return Err(format!("system {:?}: max_attempts must be at least 1", s.name));
            }
            if s.backoff_base.is_zero()
                || s.backoff_max < s.backoff_base
                || s.backoff_max > Duration::from_secs(7 * 86_400)
            {
                return Err(format!("system {:?}: backoff must be 0 < base <= max <= 7 days", s.name));
            }
            if let Transport::Http { url } = &s.transport {
                let uri: Result<hyper::Uri, _> = url.parse();
                let ok = uri.as_ref().is_ok_and(|u| {
                    u.scheme_str() == Some("http")
                        && u.host().is_some()
                        && !u.authority().is_some_and(|a| a.as_str().contains('@'))
                });
                if !ok {
                    return Err(format!(
                        "system {:?}: {url:?} is not an http://host[:port]/path URL without credentials",
                        s.name
                    ));
                }
            }
        }
        Ok(Systems { systems })
    }

    /// A system by name.
    pub fn get(&self, name: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.name == name)
    }

    /// The system a client certificate (SHA-256, hex) is pinned to.
    pub fn by_certificate(&self, sha256_hex: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.certificates.iter().any(|f| f.eq_ignore_ascii_case(sha256_hex)))
    }

    /// The system with a token client id.
    pub fn by_client_id(&self, client_id: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.client_id.as_deref() == Some(client_id))
    }

    /// All systems.
    pub fn all(&self) -> &[SystemConfig] {
        &self.systems
    }
}

/// The subscription to § 78 holistic plans: the system is sent its view of
/// each plan of a case whenever that view changes.
pub const HOLISTIC_PLAN: &str = "holistic_plan";

/// Every event type name, as in `CaseEvent.kind`.
pub const EVENT_TYPES: &[&str] = &[
    "case_opened",
    "placement_recommended",
    "placement_started",
    "placement_ended",
    "support_person_offered",
    "support_person_accepted",
    "support_person_declined",
    "support_person_chosen",
    "support_person_approved",
    "support_person_refused",
    "support_decided",
    "support_started",
    "consent_given",
    "consent_withdrawn",
    "plan_prepared",
    "plan_omitted",
    "revision_offered",
    "revision_made",
    "revision_assessed",
    "homecoming_period_started",
    "homecoming_period_ended",
    "contact_suspended",
    "contact_resumed",
    "sector_contact_added",
    "sector_contact_ended",
    "correspondence_recorded",
    "sector_plan_recorded",
    "appointment_scheduled",
    "appointment_cancelled",
    "legal_basis_recorded",
    "legal_basis_ended",
    "plan_coordinator_named",
    "plan_goals_updated",
];

/// The event types another sector's system may be sent.
pub const SECTOR_EVENT_TYPES: &[&str] = &[
    "consent_given",
    "consent_withdrawn",
    "legal_basis_recorded",
    "legal_basis_ended",
    "sector_contact_added",
    "sector_contact_ended",
    "correspondence_recorded",
    "sector_plan_recorded",
    "appointment_scheduled",
    "appointment_cancelled",
];

/// The custody-holder reference of an event, for reading and rewriting.
pub fn custody_holder_mut(kind: &mut Kind) -> Option<&mut String> {
    Some(match kind {
        Kind::SupportPersonOffered(e) => &mut e.custody_holder,
        Kind::SupportPersonAccepted(e) => &mut e.custody_holder,
        Kind::SupportPersonDeclined(e) => &mut e.custody_holder,
        Kind::SupportPersonChosen(e) => &mut e.custody_holder,
        Kind::SupportPersonApproved(e) => &mut e.custody_holder,
        Kind::SupportPersonRefused(e) => &mut e.custody_holder,
        Kind::SupportDecided(e) => &mut e.custody_holder,
        Kind::SupportStarted(e) => &mut e.custody_holder,
        Kind::ConsentGiven(e) => &mut e.custody_holder,
        Kind::ConsentWithdrawn(e) => &mut e.custody_holder,
        Kind::LegalBasisRecorded(e) => &mut e.custody_holder,
        Kind::LegalBasisEnded(e) => &mut e.custody_holder,
        Kind::SectorContactAdded(e) => &mut e.custody_holder,
        Kind::CorrespondenceRecorded(e) => &mut e.correspondence.as_mut()?.custody_holder,
        Kind::SectorPlanRecorded(e) => &mut e.plan.as_mut()?.custody_holder,
        Kind::AppointmentScheduled(e) => &mut e.appointment.as_mut()?.custody_holder,
        _ => return None,
    })
}

fn is_sector_kind(kind: &Kind) -> bool {
    matches!(kind, Kind::CorrespondenceRecorded(_) | Kind::SectorPlanRecorded(_) | Kind::AppointmentScheduled(_))
}

/// The batch a system is sent for `events` of `case`: only the types it
/// subscribes to, never events that came from the system itself; for another
/// sector's system, only what its consent scope covers ([`sector_filter`]).
pub fn outbound_batch(system: &SystemConfig, case: &pb::Case, events: &[pb::CaseEvent]) -> Option<pb::AdapterBatch> {
    let view = match &system.access {
        SystemAccess::SendOnly => return None,
        SystemAccess::Municipal { cvr } => {
            if case.placing_municipality.as_ref().is_none_or(|m| &m.cvr != cvr) {
                return None;
            }
            None
        }
        SystemAccess::Sector { sector, scope } => {
            if !system.reaches(case.placing_municipality.as_ref().map_or("", |m| m.cvr.as_str())) {
                return None;
            }
            Some(SectorScope::of_projection(case, *sector, scope))
        }
    };
    let chosen: Vec<pb::CaseEvent> = events
        .iter()
        .filter(|e| {
            e.kind.as_ref().is_some_and(|k| system.subscribe.iter().any(|s| s == bro_api::convert::kind_name(k)))
        })
        .filter(|e| e.source.as_ref().is_none_or(|s| s.system != system.name))
        .filter(|e| view.as_ref().is_none_or(|v| sector_may_receive(v, e)))
        .cloned()
        .collect();
    if chosen.is_empty() {
        return None;
    }
    let parties: Vec<pb::Party> = match &view {
        None => case.custody_holders.clone(),
        Some(_) => {
            let named: Vec<String> = chosen.iter().filter_map(holder_of).collect();
            case.custody_holders.iter().filter(|p| named.contains(&p.party_id)).cloned().collect()
        }
    };
    Some(batch_for(case.name.clone(), &parties, chosen))
}

/// Whether another sector's system may be sent `event`: what its view shows,
/// and the withdrawal of a consent in its own scope (it must know to stop).
pub fn sector_may_receive(view: &SectorScope, event: &pb::CaseEvent) -> bool {
    view.event_visible(event)
        || matches!(&event.kind, Some(Kind::ConsentWithdrawn(w)) if w.scope == view.scope())
        || matches!(&event.kind, Some(Kind::LegalBasisEnded(e)) if e.scope == view.scope())
}

fn holder_of(event: &pb::CaseEvent) -> Option<String> {
    let mut kind = event.kind.clone()?;
    custody_holder_mut(&mut kind).map(|h| h.clone())
}

/// An adapter batch of `events` about `parties`: sector items name their
/// custody holder as `subjects/N`, letters carry the person's identifier.
fn batch_for(case: String, parties: &[pb::Party], mut events: Vec<pb::CaseEvent>) -> pb::AdapterBatch {
    let subjects: Vec<pb::PersonIdentifier> = parties.iter().filter_map(|p| p.identifier.clone()).collect();
    let subject_of = |party: &str| {
        let identifier = parties.iter().find(|p| p.party_id == party)?.identifier.as_ref()?;
        subjects.iter().position(|s| s == identifier)
    };
    for event in &mut events {
        let Some(kind) = event.kind.as_mut() else { continue };
        let sector = is_sector_kind(kind);
        if let Kind::CorrespondenceRecorded(c) = kind
            && let Some(m) = c.correspondence.as_mut()
            && m.person.is_none()
        {
            m.person = parties.iter().find(|p| p.party_id == m.custody_holder).and_then(|p| p.identifier.clone());
        }
        if sector
            && let Some(holder) = custody_holder_mut(kind)
            && let Some(i) = subject_of(holder)
        {
            *holder = format!("subjects/{i}");
        }
    }
    pb::AdapterBatch {
        subjects,
        case,
        source_message_id: String::new(),
        events,
        parties: parties.to_vec(),
        holistic_plan: None,
    }
}

/// A planned batch cut down to what `system` may still be sent, checked
/// against the case as it is now: a consent withdrawn since the batch was
/// planned stops its sector items, queued ones included. `None`: nothing
/// may be sent any more.
pub fn still_sendable(system: &SystemConfig, case: &pb::Case, batch: pb::AdapterBatch) -> Option<pb::AdapterBatch> {
    if let Some(plan) = &batch.holistic_plan {
        return distribution::plan_still_sendable(system, case, plan, &batch.parties).then_some(batch);
    }
    let view = match &system.access {
        SystemAccess::SendOnly => return None,
        SystemAccess::Municipal { cvr } => {
            return case.placing_municipality.as_ref().is_some_and(|m| &m.cvr == cvr).then_some(batch);
        }
        SystemAccess::Sector { sector, scope } => {
            if !system.reaches(case.placing_municipality.as_ref().map_or("", |m| m.cvr.as_str())) {
                return None;
            }
            SectorScope::of_projection(case, *sector, scope)
        }
    };
    // Back from `subjects/N` to party ids, to judge each event by the case as it is.
    let party_of_subject = |reference: &str| -> Option<String> {
        let i: usize = reference.strip_prefix("subjects/")?.parse().ok()?;
        let identifier = batch.subjects.get(i)?;
        batch.parties.iter().find(|p| p.identifier.as_ref() == Some(identifier)).map(|p| p.party_id.clone())
    };
    let events: Vec<pb::CaseEvent> = batch
        .events
        .into_iter()
        .filter_map(|mut event| {
            if let Some(kind) = event.kind.as_mut()
                && is_sector_kind(kind)
                && let Some(holder) = custody_holder_mut(kind)
                && let Some(party) = party_of_subject(holder)
            {
                *holder = party;
            }
            if let Some(Kind::CorrespondenceRecorded(c)) = event.kind.as_mut()
                && let Some(m) = c.correspondence.as_mut()
            {
                m.person = None;
            }
            sector_may_receive(&view, &event).then_some(event)
        })
        .collect();
    if events.is_empty() {
        return None;
    }
    let named: Vec<String> = events.iter().filter_map(holder_of).collect();
    let parties: Vec<pb::Party> =
        case.custody_holders.iter().filter(|p| named.contains(&p.party_id)).cloned().collect();
    Some(batch_for(batch.case, &parties, events))
}

/// The outbox planner: each configured system's deliveries of a write —
/// the events it subscribes to, and its view of every § 78 holistic plan
/// whose view changed ([`distribution`]).
pub struct Outbox {
    systems: Arc<Systems>,
    coordination: Arc<CoordinationPolicy>,
}

impl Outbox {
    /// The planner for `systems`, checking plans by `coordination`.
    pub fn new(systems: Arc<Systems>, coordination: Arc<CoordinationPolicy>) -> Self {
        Outbox { systems, coordination }
    }
}

impl DeliveryPlanner for Outbox {
    fn plan(&self, before: Option<&Case>, case: &Case, events: &[pb::CaseEvent], now: Timestamp) -> Vec<NewDelivery> {
        let projection = bro_api::convert::case_to_pb(case);
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Vec::new() };
        let delivery = |system: &SystemConfig, batch: pb::AdapterBatch| NewDelivery {
            delivery_id: uuid::Uuid::now_v7().to_string(),
            system: system.name.clone(),
            case_id: case.id.clone(),
            first_sequence: first.sequence as u64,
            last_sequence: last.sequence as u64,
            payload: batch.encode_to_vec(),
            create_time: now,
            replay_of: String::new(),
        };
        let mut out: Vec<NewDelivery> = self
            .systems
            .systems
            .iter()
            .filter_map(|system| Some(delivery(system, outbound_batch(system, &projection, events)?)))
            .collect();
        for (system, batch) in
            distribution::plan_views(&self.systems, &self.coordination, before, case, &projection, now)
        {
            out.push(delivery(system, batch));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn every_event_type_is_known_to_subscriptions() {
        let set = prost_types::FileDescriptorSet::decode(bro_api::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let event = set
            .file
            .iter()
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == "CaseEvent")
            .expect("bro.v1.CaseEvent");
        let kinds: Vec<&str> = event.field.iter().filter(|f| f.oneof_index.is_some()).map(|f| f.name()).collect();
        assert_eq!(kinds, EVENT_TYPES, "EVENT_TYPES must list CaseEvent's kinds, in order");
    }

    #[test]
    fn systems_are_checked() {
        let municipal = SystemAccess::Municipal { cvr: "29189846".into() };
        let http = |url: &str| {
            SystemConfig::new("s", "a", "t", &["consent_given"], Transport::Http { url: url.into() })
                .with_access(municipal.clone())
        };
        assert!(Systems::new(vec![http("http://127.0.0.1:9000/in")]).is_ok());
        for bad in ["https://x/in", "http://user:pw@x/in", "not a url", "file:///tmp"] {
            assert!(Systems::new(vec![http(bad)]).is_err(), "{bad} must be refused");
        }
        let mut slow = http("http://x/in");
        slow.backoff_max = Duration::from_secs(30 * 86_400);
        assert!(Systems::new(vec![slow]).unwrap_err().contains("backoff"));
        let deaf = SystemConfig::new("s", "a", "t", &["consent_given"], Transport::None).with_access(municipal.clone());
        assert!(Systems::new(vec![deaf]).unwrap_err().contains("no transport"));
        let send_only = SystemConfig::new("s", "a", "t", &["consent_given"], Transport::Pull);
        assert!(Systems::new(vec![send_only]).unwrap_err().contains("send-only"));
        let jobcentre = SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() };
        let nosy =
            SystemConfig::new("s", "a", "t", &["placement_started"], Transport::Pull).with_access(jobcentre.clone());
        assert!(Systems::new(vec![nosy]).unwrap_err().contains("cannot be sent \"placement_started\""));
        let consent_scope = SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "bl78".into() };
        let odd = SystemConfig::new("s", "a", "t", &[], Transport::None).with_access(consent_scope);
        assert!(Systems::new(vec![odd]).unwrap_err().contains("share:"));
        let pinned = |name: &str| {
            let mut s = SystemConfig::new(name, "a", "t", &[], Transport::None);
            s.certificates = vec!["ab".repeat(32)];
            s
        };
        assert!(Systems::new(vec![pinned("a"), pinned("b")]).unwrap_err().contains("pinned to another system"));
        let systems = Systems::new(vec![
            pinned("a"),
            SystemConfig::new("b", "a", "t", &[], Transport::None).with_client_id("b-client"),
        ])
        .expect("valid");
        assert_eq!(systems.by_certificate(&"AB".repeat(32)).map(|s| s.name.as_str()), Some("a"));
        assert_eq!(systems.by_client_id("b-client").map(|s| s.name.as_str()), Some("b"));
    }
}
