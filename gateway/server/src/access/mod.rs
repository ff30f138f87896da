//! Who may do what: authentication ([`jwt`], client certificates in
//! [`gate`]), the one authorisation policy ([`policy`]), per-client rate
//! limits ([`ratelimit`]), the audit trail of every call ([`audit`]), and how
//! a client presents its credentials ([`client`]). What another sector may
//! see of a case is the sharing law's (`bro_rules::sharing`), which the
//! policy's sector grants lead to.
//!
//! The [`gate::Gate`] layer authenticates every RPC except health and
//! reflection, requires a stated purpose, applies the per-client rate limit,
//! and writes one audit record per call after the service has answered;
//! services find the [`Caller`] in the request's extensions, ask
//! [`policy::authorize`], and note the case and people concerned.

pub mod audit;
pub mod client;
pub mod gate;
pub mod jwt;
pub mod policy;
pub mod ratelimit;

use std::sync::{Arc, Mutex};

use bro_store::Keyring;

/// The identity assurance level of a person's login (NSIS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Assurance {
    /// NSIS "lav".
    Low,
    /// NSIS "betydelig": the least for personal data.
    Substantial,
    /// NSIS "høj".
    High,
}

impl Assurance {
    /// Reads a level as the identity provider writes it (`Substantial`,
    /// `betydelig`, or the NSIS URI ending in either).
    pub fn parse(value: &str) -> Option<Assurance> {
        let last = value.rsplit(['/', ':', '#']).next().unwrap_or(value).to_ascii_lowercase();
        match last.as_str() {
            "low" | "lav" => Some(Assurance::Low),
            "substantial" | "betydelig" => Some(Assurance::Substantial),
            "high" | "høj" | "hoej" => Some(Assurance::High),
            _ => None,
        }
    }
}

/// A person's role, from the token's roles claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Handles the municipality's cases.
    Caseworker,
    /// Reads the audit log only: the records of the municipality its token names.
    Auditor,
    /// Manages adapters and deliveries; reads no case content.
    Administrator,
    /// National supervision: reads the whole audit log, every municipality's.
    Supervisor,
}

impl Role {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
            Role::Supervisor => "supervisor",
        }
    }

    /// Every role.
    pub const ALL: [Role; 4] = [Role::Caseworker, Role::Auditor, Role::Administrator, Role::Supervisor];
}

/// A person authenticated by a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// The identity provider's subject (a pseudonymous id, not a CPR number).
    pub subject: String,
    /// The employing municipality's CVR number, if the token carries one.
    pub municipality: Option<String>,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Assurance level of the login.
    pub assurance: Assurance,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A person.
    Person(Person),
    /// A configured system, by its name.
    System(String),
}

impl Principal {
    /// A stable key for rate limiting and logs (never personal data).
    pub fn key(&self) -> String {
        match self {
            Principal::Person(p) => format!("person:{}", p.subject),
            Principal::System(name) => format!("system:{name}"),
        }
    }
}

/// Why a call is made: required on every call (header `bro-purpose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Handling the case under barnets lov (sagsbehandling).
    CaseHandling,
    /// Coordinating the § 78 holistic plan across sectors.
    Coordination,
    /// Exchanging messages between systems (ingest, deliveries).
    Exchange,
    /// Supervision and audit (tilsyn).
    Supervision,
    /// Answering a citizen's request for insight (indsigt).
    CitizenRequest,
    /// Operating the gateway (deliveries, adapters).
    Operations,
}

impl Purpose {
    /// Every purpose with its header value.
    pub const ALL: [(Purpose, &'static str); 6] = [
        (Purpose::CaseHandling, "case-handling"),
        (Purpose::Coordination, "coordination"),
        (Purpose::Exchange, "exchange"),
        (Purpose::Supervision, "supervision"),
        (Purpose::CitizenRequest, "citizen-request"),
        (Purpose::Operations, "operations"),
    ];

    /// Reads the header value.
    pub fn parse(value: &str) -> Option<Purpose> {
        Self::ALL.iter().find(|(_, name)| *name == value).map(|(p, _)| *p)
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(p, _)| *p == self).map(|(_, name)| *name).unwrap_or("unknown")
    }
}

/// The metadata key carrying the purpose.
pub const PURPOSE_HEADER: &str = "bro-purpose";

/// What a service notes for the audit record of its call.
#[derive(Clone, Debug, Default)]
pub struct AuditDraft {
    /// `cases/{case}`, or `(several)`.
    pub case: String,
    /// Every case concerned, when there are several.
    pub cases: Vec<String>,
    /// Keyed hashes of the people concerned.
    pub person_keys: Vec<Vec<u8>>,
    /// Kind of data, when the service knows better than the method's default.
    pub data_kind: Option<&'static str>,
    /// Why a call was refused.
    pub detail: String,
}

/// The authenticated caller of one RPC, in the request's extensions.
#[derive(Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// Why.
    pub purpose: Purpose,
    keys: Arc<Keyring>,
    draft: Arc<Mutex<AuditDraft>>,
    /// When the credential presented stops being accepted (a token's
    /// expiry; none for a client certificate): a stream ends then.
    pub valid_until: Option<bro_domain::Timestamp>,
    /// The RPC's path and the kind of data it touches, for records made
    /// during the call.
    method: Arc<(String, &'static str)>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("principal", &self.principal).field("purpose", &self.purpose).finish()
    }
}

impl Caller {
    /// A caller whose audit notes go into `draft`.
    pub fn new(principal: Principal, purpose: Purpose, keys: Arc<Keyring>, draft: Arc<Mutex<AuditDraft>>) -> Self {
        Caller { principal, purpose, keys, draft, valid_until: None, method: Arc::new((String::new(), "unknown")) }
    }

    /// The same caller, whose credential is accepted until `until`.
    pub fn valid_until(mut self, until: Option<bro_domain::Timestamp>) -> Self {
        self.valid_until = until;
        self
    }

    /// The record of what a stream sent (`detail`: how much), with the case
    /// and people noted for the call.
    pub fn stream_record(&self, now: bro_domain::Timestamp, detail: String) -> bro_api::v1::AuditRecord {
        let mut record = self.write_record(now, "OK");
        record.detail = detail;
        record
    }

    /// The same caller, calling `method` (which touches `data_kind`).
    pub fn with_method(mut self, method: &str, data_kind: &'static str) -> Self {
        self.method = Arc::new((method.to_owned(), data_kind));
        self
    }

    /// The record of a write, made before it commits: who, why, which case
    /// and people (as noted so far); `outcome` is [`audit::STARTED`] or
    /// [`audit::COMMITTED`].
    pub fn write_record(&self, now: bro_domain::Timestamp, outcome: &'static str) -> bro_api::v1::AuditRecord {
        let draft = self.draft.lock().map(|d| d.clone()).unwrap_or_default();
        let draft = AuditDraft { detail: String::new(), ..draft };
        let (method, data_kind) = (self.method.0.as_str(), self.method.1);
        let purpose = self.purpose.as_str().to_owned();
        audit::call_record(now, method, Some(&self.principal), purpose, draft, data_kind, (outcome, String::new()))
    }

    /// The caller of a request (the gate put it there).
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Caller, crate::error::ApiError> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| crate::error::ApiError::Unauthenticated("no authenticated caller".into()))
    }

    /// Notes the case concerned and the people in it (custody holders and
    /// child), as keyed hashes.
    pub fn concerns_case(&self, case: &bro_domain::Case) {
        let people = case.custody_holders.iter().filter_map(|p| p.identifier.as_ref());
        self.concerns(case, people.chain(case.child.identifier.as_ref()));
    }

    /// Notes the case concerned and, of its people, only `holders` (a plan's
    /// parents): replaces what was noted of the people before.
    pub fn concerns_holders(&self, case: &bro_domain::Case, holders: &[bro_domain::PartyId]) {
        self.concerns(case, holders.iter().filter_map(|h| case.custody_holder(h)?.identifier.as_ref()));
    }

    fn concerns<'a>(&self, case: &bro_domain::Case, people: impl Iterator<Item = &'a bro_domain::PersonId>) {
        let mut keys: Vec<Vec<u8>> = people.map(|id| self.person_key(id)).collect();
        keys.sort();
        keys.dedup();
        if let Ok(mut draft) = self.draft.lock() {
            draft.case = case.id.resource_name();
            draft.person_keys = keys;
        }
    }

    /// Notes a case as served (its custody holders and child), adding to any
    /// noted before: a listing concerns every case on its page.
    pub fn concerns_projection(&self, case: &bro_api::v1::Case) {
        let ids = case
            .custody_holders
            .iter()
            .filter_map(|p| p.identifier.as_ref())
            .chain(case.child.as_ref().and_then(|c| c.identifier.as_ref()));
        let keys: Vec<Vec<u8>> = ids.filter_map(|id| self.identifier_key(id)).collect();
        self.concerns_also(&case.name, keys);
    }

    /// Adds a case and people to those noted: one case is named in `case`,
    /// several make it `(several)` and are listed in `cases`.
    fn concerns_also(&self, name: &str, keys: Vec<Vec<u8>>) {
        if let Ok(mut draft) = self.draft.lock() {
            if draft.case.is_empty() {
                draft.case = name.to_owned();
            } else if draft.case != name && !draft.cases.iter().any(|c| c == name) {
                if draft.cases.is_empty() {
                    let first = std::mem::replace(&mut draft.case, "(several)".into());
                    draft.cases.push(first);
                }
                draft.cases.push(name.to_owned());
            }
            for key in keys {
                if !draft.person_keys.contains(&key) {
                    draft.person_keys.push(key);
                }
            }
        }
    }

    /// The keyed hash of an identifier on the wire.
    pub fn identifier_key(&self, id: &bro_api::v1::PersonIdentifier) -> Option<Vec<u8>> {
        self.keys.identifier_key(id)
    }

    /// The CVR number of the municipality the caller acts for, if any.
    pub fn municipality(&self, systems: &crate::systems::Systems) -> Option<String> {
        match &self.principal {
            Principal::Person(p) => p.municipality.clone(),
            Principal::System(name) => match systems.get(name).map(|s| &s.access) {
                Some(crate::systems::SystemAccess::Municipal { cvr }) => Some(cvr.clone()),
                _ => None,
            },
        }
    }

    /// Notes the case concerned by name only (its people are not known).
    pub fn concerns_case_name(&self, name: &str) {
        if let Ok(mut draft) = self.draft.lock()
            && draft.case.is_empty()
        {
            draft.case = name.to_owned();
        }
    }

    /// Notes one person concerned.
    pub fn concerns_person(&self, id: &bro_domain::PersonId) {
        let key = self.person_key(id);
        if let Ok(mut draft) = self.draft.lock()
            && !draft.person_keys.contains(&key)
        {
            draft.person_keys.push(key);
        }
    }

    /// Notes one person concerned by keyed hash.
    pub fn concerns_key(&self, key: Vec<u8>) {
        if let Ok(mut draft) = self.draft.lock()
            && !draft.person_keys.contains(&key)
        {
            draft.person_keys.push(key);
        }
    }

    /// Notes the kind of data touched.
    pub fn touches(&self, data_kind: &'static str) {
        if let Ok(mut draft) = self.draft.lock() {
            draft.data_kind = Some(data_kind);
        }
    }

    /// Notes something the record of an allowed call must say (no personal
    /// data), e.g. the reason given for an override.
    pub fn note(&self, detail: &str) {
        self.refused(detail);
    }

    /// Notes why the call was refused (no personal data).
    pub fn refused(&self, detail: &str) {
        if let Ok(mut draft) = self.draft.lock() {
            draft.detail = detail.to_owned();
        }
    }

    /// The keyed hash of a person identifier.
    pub fn person_key(&self, id: &bro_domain::PersonId) -> Vec<u8> {
        self.keys.person_key(id.kind_name(), id.expose())
    }
}
