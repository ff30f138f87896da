//! The authorisation policy, in one place: which caller may call which RPC on
//! what. Services ask [`authorize`] with what the call concerns (a case, a
//! municipality, a system's own queue); the table-driven test below covers
//! every role and every RPC.
//!
//! - A caseworker, or a system of the municipality, sees and changes the
//!   cases its municipality places; never another municipality's.
//! - Another sector's system (jobcentre, psychiatry, …) reads a case only
//!   while a custody holder's consent in its scope (`share:jobcenter`, …)
//!   holds, and then only its own sector's items (`bro_rules::sharing`).
//! - An auditor reads the audit log only; an administrator manages deliveries
//!   and the inbox but reads no case content.
//! - Every system ingests, pulls and acknowledges only as itself.

use bro_domain::Case;
use bro_rules::sharing::{SectorScope, Share};

use super::{Principal, Purpose, Role};
use crate::error::ApiError;
use crate::systems::{SystemAccess, SystemConfig, Systems};

/// Every RPC that needs a caller (health and reflection do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Rpc {
    CreateCase,
    GetCase,
    ListCases,
    AppendCaseEvents,
    ListCaseEvents,
    WatchCase,
    ListCorrespondence,
    GetCorrespondence,
    ListAppointments,
    GetAppointment,
    ListDueObligations,
    Ingest,
    ListUnmatchedMessages,
    ResolveUnmatchedMessage,
    DiscardUnmatchedMessage,
    ListRejections,
    ListDeliveries,
    GetDelivery,
    RetryDelivery,
    ReplayDelivery,
    StreamDeliveries,
    AcknowledgeDelivery,
    GetAccessReport,
    ListAuditRecords,
    ProposeHolisticPlan,
    CreateHolisticPlan,
    GetHolisticPlan,
    ListHolisticPlans,
    UpdateHolisticPlan,
    RecordPlanAgreement,
    WithdrawPlanAgreement,
    ListPlanConflicts,
    ListHolisticPlanVersions,
    CreatePlanLink,
    RevokePlanLinks,
    ListAdapters,
    GetAdapter,
}

impl Rpc {
    /// Every RPC, with its service.
    pub const ALL: [(Rpc, &'static str); 37] = [
        (Rpc::CreateCase, "CaseService"),
        (Rpc::GetCase, "CaseService"),
        (Rpc::ListCases, "CaseService"),
        (Rpc::AppendCaseEvents, "CaseService"),
        (Rpc::ListCaseEvents, "CaseService"),
        (Rpc::WatchCase, "CaseService"),
        (Rpc::ListCorrespondence, "CaseService"),
        (Rpc::GetCorrespondence, "CaseService"),
        (Rpc::ListAppointments, "CaseService"),
        (Rpc::GetAppointment, "CaseService"),
        (Rpc::ListDueObligations, "ObligationService"),
        (Rpc::Ingest, "IngestService"),
        (Rpc::ListUnmatchedMessages, "IngestService"),
        (Rpc::ResolveUnmatchedMessage, "IngestService"),
        (Rpc::DiscardUnmatchedMessage, "IngestService"),
        (Rpc::ListRejections, "IngestService"),
        (Rpc::ListDeliveries, "DeliveryService"),
        (Rpc::GetDelivery, "DeliveryService"),
        (Rpc::RetryDelivery, "DeliveryService"),
        (Rpc::ReplayDelivery, "DeliveryService"),
        (Rpc::StreamDeliveries, "DeliveryService"),
        (Rpc::AcknowledgeDelivery, "DeliveryService"),
        (Rpc::GetAccessReport, "AuditService"),
        (Rpc::ListAuditRecords, "AuditService"),
        (Rpc::ProposeHolisticPlan, "PlanService"),
        (Rpc::CreateHolisticPlan, "PlanService"),
        (Rpc::GetHolisticPlan, "PlanService"),
        (Rpc::ListHolisticPlans, "PlanService"),
        (Rpc::UpdateHolisticPlan, "PlanService"),
        (Rpc::RecordPlanAgreement, "PlanService"),
        (Rpc::WithdrawPlanAgreement, "PlanService"),
        (Rpc::ListPlanConflicts, "PlanService"),
        (Rpc::ListHolisticPlanVersions, "PlanService"),
        (Rpc::CreatePlanLink, "PlanService"),
        (Rpc::RevokePlanLinks, "PlanService"),
        (Rpc::ListAdapters, "AdapterService"),
        (Rpc::GetAdapter, "AdapterService"),
    ];

    /// Whether the RPC is one of `PlanService`'s (each concerns one case).
    pub fn is_plan(self) -> bool {
        Self::ALL.iter().any(|(r, service)| *r == self && *service == "PlanService")
    }

    /// The gRPC path, `/bro.v1.CaseService/GetCase`.
    pub fn path(self) -> String {
        let service = Self::ALL.iter().find(|(r, _)| *r == self).map(|(_, s)| *s).unwrap_or("");
        format!("/bro.v1.{service}/{self:?}")
    }

    /// The RPC of a gRPC path.
    pub fn from_path(path: &str) -> Option<Rpc> {
        Self::ALL.iter().map(|(r, _)| *r).find(|r| r.path() == path)
    }

    /// The kind of data the RPC touches, for the audit log.
    pub fn data_kind(self) -> &'static str {
        use Rpc::*;
        match self {
            CreateCase | GetCase | ListCases | AppendCaseEvents | WatchCase => "case",
            ListCaseEvents => "case events",
            ListCorrespondence | GetCorrespondence => "correspondence",
            ListAppointments | GetAppointment => "appointments",
            ListDueObligations => "obligations",
            Ingest | ListUnmatchedMessages | ResolveUnmatchedMessage | DiscardUnmatchedMessage | ListRejections => {
                "sector messages"
            }
            ListDeliveries | GetDelivery | RetryDelivery | ReplayDelivery | StreamDeliveries | AcknowledgeDelivery => {
                "deliveries"
            }
            GetAccessReport | ListAuditRecords => "audit log",
            ProposeHolisticPlan
            | CreateHolisticPlan
            | GetHolisticPlan
            | ListHolisticPlans
            | UpdateHolisticPlan
            | RecordPlanAgreement
            | WithdrawPlanAgreement
            | ListPlanConflicts
            | ListHolisticPlanVersions => "holistic plan",
            CreatePlanLink | RevokePlanLinks => "holistic plan link",
            ListAdapters | GetAdapter => "adapters",
        }
    }

    /// `read` or `change`, for the citizen's access report.
    pub fn action(self) -> &'static str {
        use Rpc::*;
        match self {
            CreateCase
            | AppendCaseEvents
            | Ingest
            | ResolveUnmatchedMessage
            | DiscardUnmatchedMessage
            | RetryDelivery
            | ReplayDelivery
            | AcknowledgeDelivery
            | CreateHolisticPlan
            | UpdateHolisticPlan
            | RecordPlanAgreement
            | WithdrawPlanAgreement
            | CreatePlanLink
            | RevokePlanLinks => "change",
            _ => "read",
        }
    }
}

/// The purposes each RPC serves; a call stating another is refused.
pub fn purposes(rpc: Rpc) -> &'static [Purpose] {
    use Purpose::*;
    use Rpc::*;
    match rpc {
        CreateCase | GetCase | ListCases | AppendCaseEvents | ListCaseEvents | WatchCase | ListCorrespondence
        | GetCorrespondence | ListAppointments | GetAppointment | ListDueObligations => {
            &[CaseHandling, Coordination, Exchange]
        }
        Ingest | StreamDeliveries | AcknowledgeDelivery => &[Exchange],
        ListUnmatchedMessages | ResolveUnmatchedMessage | DiscardUnmatchedMessage | ListRejections => {
            &[CaseHandling, Operations]
        }
        ListDeliveries | GetDelivery | RetryDelivery | ReplayDelivery | ListAdapters | GetAdapter => &[Operations],
        GetAccessReport => &[CitizenRequest, Supervision],
        ListAuditRecords => &[Supervision],
        ProposeHolisticPlan | GetHolisticPlan | ListHolisticPlans | ListPlanConflicts | ListHolisticPlanVersions => {
            &[CaseHandling, Coordination, Exchange]
        }
        CreateHolisticPlan | UpdateHolisticPlan | RecordPlanAgreement | WithdrawPlanAgreement => {
            &[CaseHandling, Coordination]
        }
        CreatePlanLink | RevokePlanLinks => &[CaseHandling, Coordination, CitizenRequest],
    }
}

/// What a call concerns.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Nothing in particular (a listing of the caller's own scope).
    Nothing,
    /// One case.
    Case(&'a Case),
    /// A municipality's cases (creating, listing, the worklist).
    Municipality(&'a str),
    /// A system's own messages (ingest as it, pull its deliveries).
    System(&'a str),
}

/// What the caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Everything the RPC returns.
    Full,
    /// Only what the sharing law lets the sector see of the case: its own
    /// items of the custody holders whose consent (or recorded legal basis)
    /// in its scope holds.
    Sector(SectorScope),
}

/// Why not (safe to tell the caller: no personal data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        ApiError::PermissionDenied(d.0)
    }
}

/// One capacity a caller acts in.
#[derive(Clone, Copy, Debug)]
enum Actor<'a> {
    Caseworker(&'a str),
    Auditor(&'a str),
    Supervisor,
    Administrator,
    System(&'a SystemConfig),
}

fn actors<'a>(principal: &'a Principal, systems: &'a Systems) -> Result<Vec<Actor<'a>>, Denial> {
    match principal {
        Principal::System(name) => systems
            .get(name)
            .map(|s| vec![Actor::System(s)])
            .ok_or_else(|| Denial(format!("system {name:?} is not configured"))),
        Principal::Person(person) => {
            let mut out = Vec::new();
            for role in &person.roles {
                match role {
                    Role::Caseworker => {
                        if let Some(cvr) = &person.municipality {
                            out.push(Actor::Caseworker(cvr));
                        }
                    }
                    Role::Auditor => {
                        if let Some(cvr) = &person.municipality {
                            out.push(Actor::Auditor(cvr));
                        }
                    }
                    Role::Supervisor => out.push(Actor::Supervisor),
                    Role::Administrator => out.push(Actor::Administrator),
                }
            }
            if out.is_empty() {
                return Err(Denial(
                    "the token grants no role bro knows (caseworker or auditor with a municipality, administrator, supervisor)"
                        .into(),
                ));
            }
            Ok(out)
        }
    }
}

/// How much of the audit log a caller reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditScope {
    /// All of it (a supervisor).
    All,
    /// The records of one municipality (CVR): made by its people or
    /// systems, or about its cases.
    Municipality(String),
}

/// The part of the audit log `principal` may read, if any: a supervisor
/// all of it, an auditor its municipality's.
pub fn audit_scope(principal: &Principal, systems: &Systems) -> Option<AuditScope> {
    let actors = actors(principal, systems).ok()?;
    if actors.iter().any(|a| matches!(a, Actor::Supervisor)) {
        return Some(AuditScope::All);
    }
    actors.iter().find_map(|a| match a {
        Actor::Auditor(cvr) => Some(AuditScope::Municipality((*cvr).to_owned())),
        _ => None,
    })
}

/// Decides one call on `today` (consents and legal bases count from their
/// dates). A person with several roles gets the first that allows it.
pub fn authorize(
    principal: &Principal,
    systems: &Systems,
    rpc: Rpc,
    target: Target<'_>,
    today: bro_domain::Date,
) -> Result<Grant, Denial> {
    let mut first_denial = None;
    for actor in actors(principal, systems)? {
        match decide(actor, rpc, target, today) {
            Ok(grant) => return Ok(grant),
            Err(denial) => {
                first_denial.get_or_insert(denial);
            }
        }
    }
    Err(first_denial.unwrap_or_else(|| Denial("not allowed".into())))
}

fn own_municipality(cvr: &str, rpc: Rpc, target: Target<'_>, who: &str) -> Result<Grant, Denial> {
    let other = |what: &str| Denial(format!("{who} of municipality {cvr} may not {what} of another municipality"));
    match target {
        Target::Case(case) if case.placing_municipality.cvr == cvr => Ok(Grant::Full),
        Target::Case(_) => Err(other(&format!("call {rpc:?} on a case"))),
        Target::Municipality(m) if m == cvr => Ok(Grant::Full),
        Target::Municipality(_) => Err(other(&format!("call {rpc:?} for the cases"))),
        _ => Err(Denial(format!("{rpc:?} needs a case or a municipality"))),
    }
}

fn own_system(name: &str, rpc: Rpc, target: Target<'_>) -> Result<Grant, Denial> {
    match target {
        Target::System(s) if s == name => Ok(Grant::Full),
        _ => Err(Denial(format!("system {name:?} may call {rpc:?} only as itself"))),
    }
}

fn decide(actor: Actor<'_>, rpc: Rpc, target: Target<'_>, today: bro_domain::Date) -> Result<Grant, Denial> {
    use Rpc::*;
    let refuse = |who: &str| Err(Denial(format!("{who} may not call {rpc:?}")));
    match actor {
        Actor::Caseworker(cvr) => match rpc {
            CreateCase
            | GetCase
            | ListCases
            | AppendCaseEvents
            | ListCaseEvents
            | WatchCase
            | ListCorrespondence
            | GetCorrespondence
            | ListAppointments
            | GetAppointment
            | ListDueObligations
            | ResolveUnmatchedMessage => own_municipality(cvr, rpc, target, "a caseworker"),
            _ if rpc.is_plan() => own_municipality(cvr, rpc, target, "a caseworker"),
            ListUnmatchedMessages | DiscardUnmatchedMessage | ListRejections => Ok(Grant::Full),
            _ => refuse("a caseworker"),
        },
        // What of the log the auditor reads is `audit_scope`'s.
        Actor::Auditor(_) | Actor::Supervisor => match rpc {
            GetAccessReport | ListAuditRecords => Ok(Grant::Full),
            _ => refuse("an auditor (who reads the audit log only)"),
        },
        Actor::Administrator => match rpc {
            ListDeliveries
            | GetDelivery
            | RetryDelivery
            | ReplayDelivery
            | ListUnmatchedMessages
            | DiscardUnmatchedMessage
            | ListRejections
            | ListAdapters
            | GetAdapter => Ok(Grant::Full),
            _ => refuse("an administrator (who reads no case content)"),
        },
        Actor::System(system) => match rpc {
            Ingest | StreamDeliveries | AcknowledgeDelivery => own_system(&system.name, rpc, target),
            _ => match &system.access {
                SystemAccess::Municipal { cvr } => match rpc {
                    CreateCase | GetCase | ListCases | AppendCaseEvents | ListCaseEvents | WatchCase
                    | ListCorrespondence | GetCorrespondence | ListAppointments | GetAppointment
                    | ListDueObligations => own_municipality(cvr, rpc, target, "a system"),
                    _ if rpc.is_plan() => own_municipality(cvr, rpc, target, "a system"),
                    _ => refuse("a system"),
                },
                SystemAccess::Sector { scope, .. } => match (rpc, target) {
                    (
                        GetCase | ListCaseEvents | WatchCase | ListCorrespondence | GetCorrespondence
                        | ListAppointments | GetAppointment | GetHolisticPlan,
                        Target::Case(case),
                    ) => match system.recipient().share(case, today) {
                        None => Err(Denial(format!(
                            "system {:?} serves another municipality's cases, not this one's",
                            system.name
                        ))),
                        Some(Share::Sector(view)) if view.covers_anyone() => Ok(Grant::Sector(view)),
                        Some(_) => Err(Denial(format!(
                            "no custody holder's consent in scope {scope:?} holds for this case, and no legal basis is recorded"
                        ))),
                    },
                    _ => refuse("another sector's system"),
                },
                SystemAccess::Unbound => refuse("a system bound to no municipality and no sector"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use bro_api::v1 as pb;
    use bro_domain::{CaseId, ConsentScope, Date, PartyId, PersonId, PersonIdKind};

    use super::*;
    use crate::access::{Assurance, Person};
    use crate::systems::{SystemConfig, Transport};

    fn case(id: &str, cvr: &str, consents: &[&str]) -> Case {
        let on = Date::from_ymd_opt(2026, 1, 10).expect("date");
        let parent = PartyId::parse("p", "parent-1").expect("id");
        let mut case = Case::opened_for(CaseId::parse("c", id).expect("id"), std::slice::from_ref(&parent), cvr, on)
            .expect("opens");
        case.custody_holders[0].identifier = Some(PersonId::parse("p", PersonIdKind::Cpr, "0101901234").expect("cpr"));
        case.custody_holders[0].display_name = "Anna Testesen".into();
        for scope in consents {
            case.consents.push(bro_domain::Consent {
                custody_holder: parent.clone(),
                scope: ConsentScope::parse("s", scope).expect("scope"),
                given_on: on,
                withdrawn_on: None,
            });
        }
        case
    }

    fn person(roles: &[Role], cvr: Option<&str>) -> Principal {
        Principal::Person(Person {
            subject: "s".into(),
            municipality: cvr.map(str::to_owned),
            roles: roles.to_vec(),
            assurance: Assurance::Substantial,
        })
    }

    /// A day after every event of the test cases.
    fn later() -> bro_domain::Date {
        "2099-12-31".parse().expect("a date")
    }

    fn systems() -> Systems {
        let system = |name: &str, access: SystemAccess| {
            let mut s = SystemConfig::new(name, "a", "t", &[], Transport::None);
            s.access = access;
            s
        };
        Systems::new(vec![
            system("journal-a", SystemAccess::Municipal { cvr: "11111111".into() }),
            system(
                "jobcenter",
                SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() },
            ),
            system(
                "psykiatri",
                SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() },
            ),
            SystemConfig {
                serves: Some("22222222".into()),
                ..system(
                    "jobcenter-b",
                    SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() },
                )
            },
        ])
        .expect("valid systems")
    }

    /// Every caller × every RPC, against its natural targets: a case of
    /// municipality A (with consent to the jobcentre only), a case of B, the
    /// caller's own system queue and another's.
    #[test]
    fn policy_matrix() {
        let systems = systems();
        let case_a = case("case-a", "11111111", &["share:jobcenter"]);
        let case_b = case("case-b", "22222222", &["share:jobcenter", "share:psychiatry"]);
        let callers: Vec<(&str, Principal)> = vec![
            ("caseworker A", person(&[Role::Caseworker], Some("11111111"))),
            ("caseworker, no CVR", person(&[Role::Caseworker], None)),
            ("auditor", person(&[Role::Auditor], Some("11111111"))),
            ("auditor without municipality", person(&[Role::Auditor], None)),
            ("supervisor", person(&[Role::Supervisor], None)),
            ("administrator", person(&[Role::Administrator], Some("11111111"))),
            ("system journal-a", Principal::System("journal-a".into())),
            ("system jobcenter", Principal::System("jobcenter".into())),
            ("system psykiatri", Principal::System("psykiatri".into())),
            ("system jobcenter-b", Principal::System("jobcenter-b".into())),
            ("system unknown", Principal::System("nobody".into())),
        ];
        let mut table = String::new();
        for (rpc, _) in Rpc::ALL {
            writeln!(table, "{rpc:?}").expect("write");
            for (who, principal) in &callers {
                let targets: Vec<(&str, Target<'_>)> = match rpc {
                    Rpc::CreateCase | Rpc::ListCases | Rpc::ListDueObligations => {
                        vec![("A", Target::Municipality("11111111")), ("B", Target::Municipality("22222222"))]
                    }
                    // Every plan call concerns one case, too.
                    _ if rpc.is_plan()
                        || matches!(
                            rpc,
                            Rpc::GetCase
                                | Rpc::AppendCaseEvents
                                | Rpc::ListCaseEvents
                                | Rpc::WatchCase
                                | Rpc::ListCorrespondence
                                | Rpc::GetCorrespondence
                                | Rpc::ListAppointments
                                | Rpc::GetAppointment
                                | Rpc::ResolveUnmatchedMessage
                        ) =>
                    {
                        vec![("case A", Target::Case(&case_a)), ("case B", Target::Case(&case_b))]
                    }
                    Rpc::Ingest | Rpc::StreamDeliveries | Rpc::AcknowledgeDelivery => {
                        let own = match principal {
                            Principal::System(name) => name.as_str(),
                            Principal::Person(_) => "journal-a",
                        };
                        vec![("own", Target::System(own)), ("other", Target::System("psykiatri-x"))]
                    }
                    _ => vec![("-", Target::Nothing)],
                };
                let cells: Vec<String> = targets
                    .iter()
                    .map(|(name, target)| match authorize(principal, &systems, rpc, *target, later()) {
                        Ok(Grant::Full) => format!("{name}: allow"),
                        Ok(Grant::Sector(view)) => format!("{name}: sector view ({})", view.scope()),
                        Err(_) => format!("{name}: deny"),
                    })
                    .collect();
                writeln!(table, "  {who:<20} {}", cells.join(", ")).expect("write");
            }
        }
        expect_test::expect_file!["policy_matrix.txt"].assert_eq(&table);
    }

    #[test]
    fn denials_say_why_without_personal_data() {
        let systems = systems();
        let case_b = case("case-b", "22222222", &[]);
        let caseworker = person(&[Role::Caseworker], Some("11111111"));
        let denial = authorize(&caseworker, &systems, Rpc::GetCase, Target::Case(&case_b), later()).unwrap_err();
        assert_eq!(
            denial.0,
            "a caseworker of municipality 11111111 may not call GetCase on a case of another municipality"
        );
        let jobcenter = Principal::System("jobcenter".into());
        let denial = authorize(&jobcenter, &systems, Rpc::GetCase, Target::Case(&case_b), later()).unwrap_err();
        assert!(denial.0.contains("share:jobcenter"), "{denial}");
        assert!(!denial.0.contains("0101901234"));
    }

    #[test]
    fn every_rpc_of_the_api_is_in_the_policy() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(bro_api::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut paths: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| f.service.iter())
            .flat_map(|s| s.method.iter().map(move |m| format!("/bro.v1.{}/{}", s.name(), m.name())))
            .collect();
        paths.sort();
        let mut known: Vec<String> = Rpc::ALL.iter().map(|(r, _)| r.path()).collect();
        known.sort();
        assert_eq!(paths, known, "every RPC must be decided by the policy");
        for (rpc, _) in Rpc::ALL {
            assert_eq!(Rpc::from_path(&rpc.path()), Some(rpc));
        }
    }
}
