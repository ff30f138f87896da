//! Conversions between `bro.v1` messages and `bro-domain` types.
//!
//! Inbound conversions check every field and return all violations at once,
//! with field paths relative to the converted message (the caller prefixes
//! them, e.g. with `events[2]`). Outbound conversions cannot fail.

use bro_domain as d;
use bro_domain::{Violation, Violations};
use chrono::{Datelike, TimeZone};

use crate::v1 as pb;
use crate::v1::case_event::Kind;

mod sector;
pub use sector::{
    appointment_from_pb, appointment_to_pb, correspondence_from_pb, correspondence_to_pb, sector_plan_from_pb,
    sector_plan_to_pb, timestamp_in,
};

/// Collects violations while a message is converted.
#[derive(Default)]
struct Checker(Vec<Violation>);

impl Checker {
    /// Keeps the value, or records its violations (under `prefix`).
    fn take<T>(&mut self, prefix: &str, r: Result<T, Violations>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(v) => {
                self.0.extend(v.within(prefix).0);
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Violations> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ if self.0.is_empty() => Err(Violations::one("", "is invalid")),
            _ => Err(Violations(self.0)),
        }
    }
}

/// A date from the wire; `field` names it in errors.
pub fn date_from_pb(field: &str, date: Option<&pb::Date>) -> Result<d::Date, Violations> {
    let Some(date) = date else {
        return Err(Violations::one(field, "is required"));
    };
    let valid_year = (1900..=9999).contains(&date.year);
    u32::try_from(date.month)
        .ok()
        .zip(u32::try_from(date.day).ok())
        .filter(|_| valid_year)
        .and_then(|(m, day)| d::Date::from_ymd_opt(date.year, m, day))
        .ok_or_else(|| {
            Violations::one(
                field,
                format!(
                    "{:04}-{:02}-{:02} is not a date (year 1900–9999, a month 1–12 and a day that month has)",
                    date.year, date.month, date.day
                ),
            )
        })
}

/// A date for the wire.
pub fn date_to_pb(date: d::Date) -> pb::Date {
    pb::Date { year: date.year(), month: date.month() as i32, day: date.day() as i32 }
}

/// An optional date for the wire.
pub fn opt_date(date: Option<d::Date>) -> Option<pb::Date> {
    date.map(date_to_pb)
}

/// A timestamp for the wire.
pub fn timestamp_to_pb(t: d::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// A timestamp from the wire (stored data only; out-of-range becomes the epoch).
pub fn timestamp_from_pb(t: Option<&prost_types::Timestamp>) -> d::Timestamp {
    t.and_then(|t| chrono::Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).unwrap_or(0)).single())
        .unwrap_or_default()
}

/// The etag of a case at `version`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The version an etag stands for.
pub fn version_from_etag(field: &str, etag: &str) -> Result<u64, Violations> {
    etag.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Violations::one(field, format!("{:?} is not an etag this server issued", d::truncate(etag, 40))))
}

/// Converts an open proto enum, refusing 0 (unspecified) and unknown values.
fn required_enum<E, T>(field: &str, raw: i32, map: impl Fn(E) -> Option<T>) -> Result<T, Violations>
where
    E: TryFrom<i32>,
{
    let name = std::any::type_name::<E>().rsplit("::").next().unwrap_or("enum");
    match E::try_from(raw) {
        Ok(value) => map(value)
            .ok_or_else(|| Violations::one(field, format!("is required (bro.v1.{name} must not be unspecified)"))),
        Err(_) => Err(Violations::one(field, format!("{raw} is not a known bro.v1.{name} value"))),
    }
}

/// Converts an open proto enum whose 0 means "not stated".
fn optional_enum<E, T>(field: &str, raw: i32, map: impl Fn(E) -> Option<T>) -> Result<Option<T>, Violations>
where
    E: TryFrom<i32>,
{
    let name = std::any::type_name::<E>().rsplit("::").next().unwrap_or("enum");
    match E::try_from(raw) {
        Ok(value) => Ok(map(value)),
        Err(_) => Err(Violations::one(field, format!("{raw} is not a known bro.v1.{name} value"))),
    }
}

fn basis(field: &str, raw: i32) -> Result<d::PlacementBasis, Violations> {
    required_enum(field, raw, |b: pb::PlacementBasis| match b {
        pb::PlacementBasis::Unspecified => None,
        pb::PlacementBasis::Bl46 => Some(d::PlacementBasis::Bl46),
        pb::PlacementBasis::Bl47 => Some(d::PlacementBasis::Bl47),
        pb::PlacementBasis::Lbu14 => Some(d::PlacementBasis::Lbu14),
    })
}

fn basis_to_pb(b: d::PlacementBasis) -> pb::PlacementBasis {
    match b {
        d::PlacementBasis::Bl46 => pb::PlacementBasis::Bl46,
        d::PlacementBasis::Bl47 => pb::PlacementBasis::Bl47,
        d::PlacementBasis::Lbu14 => pb::PlacementBasis::Lbu14,
    }
}

fn reason(field: &str, raw: i32) -> Result<d::RecommendationReason, Violations> {
    use pb::RecommendationReason as R;
    required_enum(field, raw, |r: R| match r {
        R::Unspecified => None,
        R::Neglect => Some(d::RecommendationReason::Neglect),
        R::SeriousSocialConditions => Some(d::RecommendationReason::SeriousSocialConditions),
        R::ChildConditions => Some(d::RecommendationReason::ChildConditions),
        R::Other => Some(d::RecommendationReason::Other),
    })
}

fn reason_to_pb(r: d::RecommendationReason) -> pb::RecommendationReason {
    use pb::RecommendationReason as R;
    match r {
        d::RecommendationReason::Neglect => R::Neglect,
        d::RecommendationReason::SeriousSocialConditions => R::SeriousSocialConditions,
        d::RecommendationReason::ChildConditions => R::ChildConditions,
        d::RecommendationReason::Other => R::Other,
    }
}

fn site_kind(field: &str, raw: i32) -> Result<Option<d::PlacementSiteKind>, Violations> {
    use pb::PlacementSiteKind as S;
    optional_enum(field, raw, |s: S| match s {
        S::Unspecified => None,
        S::FosterFamily => Some(d::PlacementSiteKind::FosterFamily),
        S::NetworkFosterFamily => Some(d::PlacementSiteKind::NetworkFosterFamily),
        S::ResidentialInstitution => Some(d::PlacementSiteKind::ResidentialInstitution),
        S::Other => Some(d::PlacementSiteKind::Other),
    })
}

fn site_kind_to_pb(s: Option<d::PlacementSiteKind>) -> pb::PlacementSiteKind {
    use pb::PlacementSiteKind as S;
    match s {
        None => S::Unspecified,
        Some(d::PlacementSiteKind::FosterFamily) => S::FosterFamily,
        Some(d::PlacementSiteKind::NetworkFosterFamily) => S::NetworkFosterFamily,
        Some(d::PlacementSiteKind::ResidentialInstitution) => S::ResidentialInstitution,
        Some(d::PlacementSiteKind::Other) => S::Other,
    }
}

fn end_reason(field: &str, raw: i32) -> Result<d::PlacementEndReason, Violations> {
    required_enum(field, raw, |r: pb::PlacementEndReason| match r {
        pb::PlacementEndReason::Unspecified => None,
        pb::PlacementEndReason::Homecoming => Some(d::PlacementEndReason::Homecoming),
        pb::PlacementEndReason::Other => Some(d::PlacementEndReason::Other),
    })
}

fn end_reason_to_pb(r: Option<d::PlacementEndReason>) -> pb::PlacementEndReason {
    match r {
        None => pb::PlacementEndReason::Unspecified,
        Some(d::PlacementEndReason::Homecoming) => pb::PlacementEndReason::Homecoming,
        Some(d::PlacementEndReason::Other) => pb::PlacementEndReason::Other,
    }
}

fn sector(field: &str, raw: i32) -> Result<d::Sector, Violations> {
    sector_opt(field, raw)?.ok_or_else(|| Violations::one(field, "is required (bro.v1.Sector must not be unspecified)"))
}

fn sector_opt(field: &str, raw: i32) -> Result<Option<d::Sector>, Violations> {
    optional_enum(field, raw, |s: pb::Sector| match s {
        pb::Sector::Unspecified => None,
        pb::Sector::Jobcentre => Some(d::Sector::Jobcentre),
        pb::Sector::Psychiatry => Some(d::Sector::Psychiatry),
        pb::Sector::AddictionTreatment => Some(d::Sector::AddictionTreatment),
        pb::Sector::Health => Some(d::Sector::Health),
        pb::Sector::Other => Some(d::Sector::Other),
    })
}

/// The domain sector of a wire sector (none for unspecified).
pub fn sector_from_pb(s: pb::Sector) -> Option<d::Sector> {
    sector_opt("sector", s as i32).ok().flatten()
}

/// The wire form of a sector (unspecified for none).
pub fn sector_to_pb(s: Option<d::Sector>) -> pb::Sector {
    match s {
        None => pb::Sector::Unspecified,
        Some(d::Sector::Jobcentre) => pb::Sector::Jobcentre,
        Some(d::Sector::Psychiatry) => pb::Sector::Psychiatry,
        Some(d::Sector::AddictionTreatment) => pb::Sector::AddictionTreatment,
        Some(d::Sector::Health) => pb::Sector::Health,
        Some(d::Sector::Other) => pb::Sector::Other,
    }
}

fn support_person_kind(field: &str, raw: i32) -> Result<d::SupportPersonKind, Violations> {
    required_enum(field, raw, |k: pb::SupportPersonKind| match k {
        pb::SupportPersonKind::Unspecified => None,
        pb::SupportPersonKind::Professional => Some(d::SupportPersonKind::Professional),
        pb::SupportPersonKind::Network => Some(d::SupportPersonKind::Network),
    })
}

fn support_person_kind_to_pb(k: d::SupportPersonKind) -> pb::SupportPersonKind {
    match k {
        d::SupportPersonKind::Professional => pb::SupportPersonKind::Professional,
        d::SupportPersonKind::Network => pb::SupportPersonKind::Network,
    }
}

fn measure(field: &str, raw: i32) -> Result<d::SupportMeasure, Violations> {
    use pb::SupportMeasure as M;
    required_enum(field, raw, |m: M| match m {
        M::Unspecified => None,
        M::Bl3212 => Some(d::SupportMeasure::Bl32_1_2),
        M::Bl3213 => Some(d::SupportMeasure::Bl32_1_3),
        M::Bl3215 => Some(d::SupportMeasure::Bl32_1_5),
        M::Bl3218 => Some(d::SupportMeasure::Bl32_1_8),
        M::Bl35 => Some(d::SupportMeasure::Bl35),
        M::OtherLegislation => Some(d::SupportMeasure::OtherLegislation),
        M::Bl75 => Some(d::SupportMeasure::Bl75),
    })
}

/// A support measure for the wire.
pub fn measure_to_pb(m: d::SupportMeasure) -> pb::SupportMeasure {
    use pb::SupportMeasure as M;
    match m {
        d::SupportMeasure::Bl32_1_2 => M::Bl3212,
        d::SupportMeasure::Bl32_1_3 => M::Bl3213,
        d::SupportMeasure::Bl32_1_5 => M::Bl3215,
        d::SupportMeasure::Bl32_1_8 => M::Bl3218,
        d::SupportMeasure::Bl35 => M::Bl35,
        d::SupportMeasure::OtherLegislation => M::OtherLegislation,
        d::SupportMeasure::Bl75 => M::Bl75,
    }
}

fn outcome(field: &str, raw: i32) -> Result<d::DecisionOutcome, Violations> {
    required_enum(field, raw, |o: pb::DecisionOutcome| match o {
        pb::DecisionOutcome::Unspecified => None,
        pb::DecisionOutcome::Granted => Some(d::DecisionOutcome::Granted),
        pb::DecisionOutcome::Refused => Some(d::DecisionOutcome::Refused),
    })
}

fn outcome_to_pb(o: d::DecisionOutcome) -> pb::DecisionOutcome {
    match o {
        d::DecisionOutcome::Granted => pb::DecisionOutcome::Granted,
        d::DecisionOutcome::Refused => pb::DecisionOutcome::Refused,
    }
}

fn plan_kind(field: &str, raw: i32) -> Result<d::PlanKind, Violations> {
    required_enum(field, raw, |k: pb::PlanKind| match k {
        pb::PlanKind::Unspecified => None,
        pb::PlanKind::Bl77 => Some(d::PlanKind::Bl77),
        pb::PlanKind::Bl78 => Some(d::PlanKind::Bl78),
    })
}

fn plan_kind_to_pb(k: d::PlanKind) -> pb::PlanKind {
    match k {
        d::PlanKind::Bl77 => pb::PlanKind::Bl77,
        d::PlanKind::Bl78 => pb::PlanKind::Bl78,
    }
}

fn aim(field: &str, raw: i32) -> Result<Option<d::GoalAim>, Violations> {
    optional_enum(field, raw, |a: pb::GoalAim| match a {
        pb::GoalAim::Unspecified => None,
        pb::GoalAim::Homecoming => Some(d::GoalAim::Homecoming),
        pb::GoalAim::Contact => Some(d::GoalAim::Contact),
    })
}

fn aim_to_pb(a: Option<d::GoalAim>) -> pb::GoalAim {
    match a {
        None => pb::GoalAim::Unspecified,
        Some(d::GoalAim::Homecoming) => pb::GoalAim::Homecoming,
        Some(d::GoalAim::Contact) => pb::GoalAim::Contact,
    }
}

/// A person identifier from the wire; absent stays absent.
pub fn person_id_from_pb(field: &str, id: Option<&pb::PersonIdentifier>) -> Result<Option<d::PersonId>, Violations> {
    let Some(id) = id else { return Ok(None) };
    let kind = required_enum(&format!("{field}.kind"), id.kind, |k: pb::PersonIdentifierKind| match k {
        pb::PersonIdentifierKind::Unspecified => None,
        pb::PersonIdentifierKind::Cpr => Some(d::PersonIdKind::Cpr),
        pb::PersonIdentifierKind::ReplacementCpr => Some(d::PersonIdKind::ReplacementCpr),
    })?;
    d::PersonId::parse(&format!("{field}.value"), kind, &id.value).map(Some)
}

fn person_id_to_pb(id: &Option<d::PersonId>) -> Option<pb::PersonIdentifier> {
    id.as_ref().map(|id| pb::PersonIdentifier {
        kind: match id.kind() {
            d::PersonIdKind::Cpr => pb::PersonIdentifierKind::Cpr,
            d::PersonIdKind::ReplacementCpr => pb::PersonIdentifierKind::ReplacementCpr,
        }
        .into(),
        value: id.expose().to_owned(),
    })
}

fn organisation_from_pb(org: Option<&pb::Organisation>) -> d::Organisation {
    org.map(|o| d::Organisation {
        display_name: o.display_name.clone(),
        cvr: o.cvr.clone(),
        ean: o.ean.clone(),
        sor: o.sor.clone(),
    })
    .unwrap_or_default()
}

/// An organisation for the wire.
pub fn organisation_to_pb(o: &d::Organisation) -> pb::Organisation {
    pb::Organisation {
        display_name: o.display_name.clone(),
        cvr: o.cvr.clone(),
        ean: o.ean.clone(),
        sor: o.sor.clone(),
    }
}

fn contact_person_from_pb(field: &str, p: Option<&pb::ContactPerson>) -> Result<Option<d::ContactPerson>, Violations> {
    let Some(p) = p else { return Ok(None) };
    let mut c = Checker::default();
    for (name, value) in
        [("display_name", &p.display_name), ("role", &p.role), ("phone", &p.phone), ("email", &p.email)]
    {
        c.take(field, d::check_text(name, value));
    }
    c.finish(Some(Some(d::ContactPerson {
        display_name: p.display_name.clone(),
        role: p.role.clone(),
        phone: p.phone.clone(),
        email: p.email.clone(),
    })))
}

fn contact_person_to_pb(p: &Option<d::ContactPerson>) -> Option<pb::ContactPerson> {
    p.as_ref().map(|p| pb::ContactPerson {
        display_name: p.display_name.clone(),
        role: p.role.clone(),
        phone: p.phone.clone(),
        email: p.email.clone(),
    })
}

/// A party id from the wire.
pub fn party_id(field: &str, raw: &str) -> Result<d::PartyId, Violations> {
    d::PartyId::parse(field, raw)
}

/// The opening data of a case (CreateCase, or a `case_opened` event).
pub fn opening_from_pb(
    child: Option<&pb::Child>,
    custody_holders: &[pb::Party],
    placing_municipality: Option<&pb::Organisation>,
) -> Result<d::EventKind, Violations> {
    let mut c = Checker::default();
    let child = match child {
        None => {
            c.0.push(Violation::new("child", "is required"));
            None
        }
        Some(ch) => c
            .take("child", person_id_from_pb("identifier", ch.identifier.as_ref()))
            .map(|identifier| d::Child { identifier, journal_reference: ch.journal_reference.clone() }),
    };
    let mut parties = Vec::new();
    for (i, p) in custody_holders.iter().enumerate() {
        let at = format!("custody_holders[{i}]");
        let id = c.take(&at, party_id("party_id", &p.party_id));
        let identifier = c.take(&at, person_id_from_pb("identifier", p.identifier.as_ref()));
        if let (Some(party_id), Some(identifier)) = (id, identifier) {
            parties.push(d::Party { party_id, identifier, display_name: p.display_name.clone() });
        }
    }
    if placing_municipality.is_none() {
        c.0.push(Violation::new("placing_municipality", "is required"));
    }
    let municipality = organisation_from_pb(placing_municipality);
    let value = child.filter(|_| c.0.is_empty()).map(|child| d::EventKind::CaseOpened {
        child,
        custody_holders: parties,
        placing_municipality: municipality,
    });
    let value = c.finish(value)?;
    if let d::EventKind::CaseOpened { child, custody_holders, placing_municipality } = &value {
        d::check_opening(child, custody_holders, placing_municipality)?;
    }
    Ok(value)
}

/// A plan goal from the wire; paths are relative to the goal.
pub fn goal_from_pb(g: &pb::Goal) -> Result<d::Goal, Violations> {
    let mut c = Checker::default();
    let aim = c.take("", aim("aim", g.aim));
    let owner_sector = c.take("", sector_opt("owner_sector", g.owner_sector));
    if g.custody_holders.len() > 4 {
        c.0.push(Violation::new("custody_holders", "a goal concerns at most the case's 4 custody holders"));
    }
    let holders: Vec<d::PartyId> = g
        .custody_holders
        .iter()
        .enumerate()
        .filter_map(|(i, h)| c.take("", party_id(&format!("custody_holders[{i}]"), h)))
        .collect();
    c.finish(aim.zip(owner_sector).map(|(aim, owner_sector)| d::Goal {
        goal_id: g.goal_id.clone(),
        change_in_parents: g.change_in_parents.clone(),
        aim,
        sub_goals: g.sub_goals.clone(),
        owner_sector,
        owner: g.owner.clone(),
        custody_holders: holders,
    }))
}

/// A plan's goals from the wire, each checked (`goals[i].…`).
pub fn goals_from_pb(goals: &[pb::Goal]) -> Result<Vec<d::Goal>, Violations> {
    let mut c = Checker::default();
    if goals.len() > d::MAX_GOALS {
        c.0.push(Violation::new("goals", format!("has {} goals; at most {} are allowed", goals.len(), d::MAX_GOALS)));
    }
    let out: Vec<_> =
        goals.iter().enumerate().filter_map(|(i, g)| c.take(&format!("goals[{i}]"), goal_from_pb(g))).collect();
    let out = c.finish(Some(out))?;
    d::check_goals(&out)?;
    Ok(out)
}

/// A plan goal for the wire.
pub fn goal_to_pb(g: &d::Goal) -> pb::Goal {
    pb::Goal {
        goal_id: g.goal_id.clone(),
        change_in_parents: g.change_in_parents.clone(),
        aim: aim_to_pb(g.aim).into(),
        sub_goals: g.sub_goals.clone(),
        owner_sector: sector_to_pb(g.owner_sector).into(),
        owner: g.owner.clone(),
        custody_holders: g.custody_holders.iter().map(|h| h.as_str().to_owned()).collect(),
    }
}

/// A coordinator from the wire (`named_on` is output only); checked.
pub fn coordinator_from_pb(field: &str, c: Option<&pb::Coordinator>) -> Result<d::Coordinator, Violations> {
    let Some(c) = c else { return Err(Violations::one(field, "is required")) };
    let mut checker = Checker::default();
    let sector = checker.take(field, sector_opt("sector", c.sector));
    let person = checker.take(field, contact_person_from_pb("person", c.person.as_ref())).flatten();
    let coordinator = sector.map(|sector| d::Coordinator {
        person: person.unwrap_or_default(),
        organisation: organisation_from_pb(c.organisation.as_ref()),
        sector,
    });
    let coordinator = checker.finish(coordinator)?;
    d::check_coordinator(&coordinator).map_err(|v| v.within(field))?;
    Ok(coordinator)
}

/// A coordinator for the wire, named on `on`.
pub fn coordinator_to_pb(c: &d::Coordinator, on: Option<d::Date>) -> pb::Coordinator {
    pb::Coordinator {
        person: contact_person_to_pb(&Some(c.person.clone())),
        organisation: Some(organisation_to_pb(&c.organisation)),
        sector: sector_to_pb(c.sector).into(),
        named_on: opt_date(on),
    }
}

/// Converts a submitted event. `sequence`, `record_time` and `request_id`
/// are output only and ignored. Field paths are relative to the event.
pub fn event_from_pb(ev: &pb::CaseEvent) -> Result<d::Event, Violations> {
    let mut c = Checker::default();
    let occurred_on = c.take("", date_from_pb("occurred_on", ev.occurred_on.as_ref()));
    let source = ev.source.as_ref().filter(|s| !s.system.is_empty() || !s.message_id.is_empty());
    if let Some(s) = source {
        c.take("source", d::check_id("system", &s.system));
        c.take("source", d::check_text("message_id", &s.message_id));
    }
    let kind = match &ev.kind {
        None => {
            c.0.push(Violation::new("kind", "exactly one event kind must be set; none is"));
            None
        }
        Some(kind) => {
            let name = kind_name(kind);
            c.take(name, kind_from_pb(kind))
        }
    };
    let source = source.map(|s| d::EventSource { system: s.system.clone(), message_id: s.message_id.clone() });
    c.finish(occurred_on.zip(kind).map(|(occurred_on, kind)| d::Event { occurred_on, kind, source }))
}

/// The `oneof` field name of an event kind.
pub fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::CaseOpened(_) => "case_opened",
        Kind::PlacementRecommended(_) => "placement_recommended",
        Kind::PlacementStarted(_) => "placement_started",
        Kind::PlacementEnded(_) => "placement_ended",
        Kind::SupportPersonOffered(_) => "support_person_offered",
        Kind::SupportPersonAccepted(_) => "support_person_accepted",
        Kind::SupportPersonDeclined(_) => "support_person_declined",
        Kind::SupportPersonChosen(_) => "support_person_chosen",
        Kind::SupportPersonApproved(_) => "support_person_approved",
        Kind::SupportPersonRefused(_) => "support_person_refused",
        Kind::SupportDecided(_) => "support_decided",
        Kind::SupportStarted(_) => "support_started",
        Kind::ConsentGiven(_) => "consent_given",
        Kind::LegalBasisRecorded(_) => "legal_basis_recorded",
        Kind::LegalBasisEnded(_) => "legal_basis_ended",
        Kind::ConsentWithdrawn(_) => "consent_withdrawn",
        Kind::PlanPrepared(_) => "plan_prepared",
        Kind::PlanOmitted(_) => "plan_omitted",
        Kind::PlanCoordinatorNamed(_) => "plan_coordinator_named",
        Kind::PlanGoalsUpdated(_) => "plan_goals_updated",
        Kind::RevisionOffered(_) => "revision_offered",
        Kind::RevisionMade(_) => "revision_made",
        Kind::RevisionAssessed(_) => "revision_assessed",
        Kind::HomecomingPeriodStarted(_) => "homecoming_period_started",
        Kind::HomecomingPeriodEnded(_) => "homecoming_period_ended",
        Kind::HomecomingPeriodWaived(_) => "homecoming_period_waived",
        Kind::CustodyHolderMoved(_) => "custody_holder_moved",
        Kind::CaseHandoverSent(_) => "case_handover_sent",
        Kind::ContactSuspended(_) => "contact_suspended",
        Kind::ContactResumed(_) => "contact_resumed",
        Kind::SectorContactAdded(_) => "sector_contact_added",
        Kind::SectorContactEnded(_) => "sector_contact_ended",
        Kind::CorrespondenceRecorded(_) => "correspondence_recorded",
        Kind::SectorPlanRecorded(_) => "sector_plan_recorded",
        Kind::AppointmentScheduled(_) => "appointment_scheduled",
        Kind::AppointmentCancelled(_) => "appointment_cancelled",
    }
}

fn kind_from_pb(kind: &Kind) -> Result<d::EventKind, Violations> {
    use d::EventKind as E;
    let holder = |raw: &str| party_id("custody_holder", raw);
    Ok(match kind {
        Kind::CaseOpened(o) => opening_from_pb(o.child.as_ref(), &o.custody_holders, o.placing_municipality.as_ref())?,
        Kind::PlacementRecommended(r) => {
            let mut c = Checker::default();
            let b = c.take("", basis("basis", r.basis));
            let why = c.take("", reason("reason", r.reason));
            c.finish(b.zip(why).map(|(basis, reason)| E::PlacementRecommended {
                basis,
                siblings_under_18_in_household: r.siblings_under_18_in_household,
                reason,
            }))?
        }
        Kind::PlacementStarted(s) => {
            let mut c = Checker::default();
            let b = c.take("", basis("basis", s.basis));
            let site = c.take("", site_kind("site_kind", s.site_kind));
            c.finish(b.zip(site).map(|(basis, site_kind)| E::PlacementStarted { basis, site_kind }))?
        }
        Kind::PlacementEnded(e) => E::PlacementEnded { reason: end_reason("reason", e.reason)? },
        Kind::SupportPersonOffered(e) => E::SupportPersonOffered { custody_holder: holder(&e.custody_holder)? },
        Kind::SupportPersonAccepted(e) => E::SupportPersonAccepted { custody_holder: holder(&e.custody_holder)? },
        Kind::SupportPersonDeclined(e) => E::SupportPersonDeclined { custody_holder: holder(&e.custody_holder)? },
        Kind::SupportPersonChosen(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let k = c.take("", support_person_kind("kind", e.kind));
            let p = c.take("", contact_person_from_pb("person", e.person.as_ref()));
            c.finish(h.zip(k).zip(p).map(|((custody_holder, kind), person)| E::SupportPersonChosen {
                custody_holder,
                kind,
                person,
            }))?
        }
        Kind::SupportPersonApproved(e) => E::SupportPersonApproved { custody_holder: holder(&e.custody_holder)? },
        Kind::SupportPersonRefused(e) => {
            E::SupportPersonRefused { custody_holder: holder(&e.custody_holder)?, reason: e.reason.clone() }
        }
        Kind::SupportDecided(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let m = c.take("", measure("measure", e.measure));
            let o = c.take("", outcome("outcome", e.outcome));
            c.finish(h.zip(m).zip(o).map(|((custody_holder, measure), outcome)| E::SupportDecided {
                custody_holder,
                measure,
                outcome,
            }))?
        }
        Kind::SupportStarted(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let m = c.take("", measure("measure", e.measure));
            c.finish(h.zip(m).map(|(custody_holder, measure)| E::SupportStarted { custody_holder, measure }))?
        }
        Kind::ConsentGiven(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let s = c.take("", d::ConsentScope::parse("scope", &e.scope));
            c.finish(h.zip(s).map(|(custody_holder, scope)| E::ConsentGiven { custody_holder, scope }))?
        }
        Kind::ConsentWithdrawn(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let s = c.take("", d::ConsentScope::parse("scope", &e.scope));
            c.finish(h.zip(s).map(|(custody_holder, scope)| E::ConsentWithdrawn { custody_holder, scope }))?
        }
        Kind::LegalBasisRecorded(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let s = c.take("", d::ConsentScope::parse("scope", &e.scope));
            c.finish(h.zip(s).map(|(custody_holder, scope)| E::LegalBasisRecorded {
                custody_holder,
                scope,
                citation: e.citation.clone(),
            }))?
        }
        Kind::LegalBasisEnded(e) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&e.custody_holder));
            let s = c.take("", d::ConsentScope::parse("scope", &e.scope));
            c.finish(h.zip(s).map(|(custody_holder, scope)| E::LegalBasisEnded { custody_holder, scope }))?
        }
        Kind::PlanPrepared(p) => {
            let mut c = Checker::default();
            let k = c.take("", plan_kind("kind", p.kind));
            let covers: Vec<_> = p
                .covers
                .iter()
                .enumerate()
                .filter_map(|(i, h)| c.take("", party_id(&format!("covers[{i}]"), h)))
                .collect();
            let goals = c.take("", goals_from_pb(&p.goals));
            if !p.plan_id.is_empty() {
                c.take("", d::check_id("plan_id", &p.plan_id));
            }
            c.finish(k.zip(goals).map(|(kind, goals)| E::PlanPrepared {
                plan_id: p.plan_id.clone(),
                kind,
                covers,
                goals,
            }))?
        }
        Kind::PlanCoordinatorNamed(p) => {
            let mut c = Checker::default();
            c.take("", d::check_id("plan_id", &p.plan_id));
            let coordinator = c.take("", coordinator_from_pb("coordinator", p.coordinator.as_ref()));
            c.finish(
                coordinator.map(|coordinator| E::PlanCoordinatorNamed { plan_id: p.plan_id.clone(), coordinator }),
            )?
        }
        Kind::PlanGoalsUpdated(p) => {
            let mut c = Checker::default();
            c.take("", d::check_id("plan_id", &p.plan_id));
            let goals = c.take("", goals_from_pb(&p.goals));
            c.finish(goals.map(|goals| E::PlanGoalsUpdated { plan_id: p.plan_id.clone(), goals }))?
        }
        Kind::PlanOmitted(p) => E::PlanOmitted { reasons: p.reasons.clone() },
        Kind::RevisionOffered(_) => E::RevisionOffered,
        Kind::RevisionMade(_) => E::RevisionMade,
        Kind::RevisionAssessed(_) => E::RevisionAssessed,
        Kind::HomecomingPeriodStarted(_) => E::HomecomingPeriodStarted,
        Kind::HomecomingPeriodEnded(_) => E::HomecomingPeriodEnded,
        Kind::ContactSuspended(_) => E::ContactSuspended,
        Kind::ContactResumed(_) => E::ContactResumed,
        Kind::SectorContactAdded(s) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&s.custody_holder));
            let sec = c.take("", sector("sector", s.sector));
            let person = c.take("", contact_person_from_pb("contact_person", s.contact_person.as_ref()));
            if !s.contact_id.is_empty() {
                c.take("", d::check_id("contact_id", &s.contact_id));
            }
            c.finish(h.zip(sec).zip(person).map(|((custody_holder, sector), contact_person)| E::SectorContactAdded {
                contact_id: s.contact_id.clone(),
                custody_holder,
                sector,
                organisation: organisation_from_pb(s.organisation.as_ref()),
                contact_person,
                system_of_record: s.system_of_record.clone(),
            }))?
        }
        Kind::SectorContactEnded(s) => E::SectorContactEnded { contact_id: s.contact_id.clone() },
        Kind::CorrespondenceRecorded(e) => {
            let m = e.correspondence.as_ref().ok_or_else(|| Violations::one("correspondence", "is required"))?;
            E::CorrespondenceRecorded {
                correspondence: Box::new(correspondence_from_pb(m).map_err(|v| v.within("correspondence"))?),
            }
        }
        Kind::SectorPlanRecorded(e) => {
            let p = e.plan.as_ref().ok_or_else(|| Violations::one("plan", "is required"))?;
            E::SectorPlanRecorded { plan: Box::new(sector_plan_from_pb(p).map_err(|v| v.within("plan"))?) }
        }
        Kind::AppointmentScheduled(e) => {
            let a = e.appointment.as_ref().ok_or_else(|| Violations::one("appointment", "is required"))?;
            E::AppointmentScheduled {
                appointment: Box::new(appointment_from_pb(a).map_err(|v| v.within("appointment"))?),
            }
        }
        Kind::AppointmentCancelled(e) => {
            E::AppointmentCancelled { appointment_id: e.appointment_id.clone(), reason: e.reason.clone() }
        }
        Kind::HomecomingPeriodWaived(w) => E::HomecomingPeriodWaived { reasons: w.reasons.clone() },
        Kind::CustodyHolderMoved(m) => {
            let mut c = Checker::default();
            let h = c.take("", holder(&m.custody_holder));
            let to = c.take("", d::check_cvr("to_municipality", &m.to_municipality));
            c.finish(h.zip(to).map(|(custody_holder, ())| E::CustodyHolderMoved {
                custody_holder,
                to_municipality: m.to_municipality.clone(),
            }))?
        }
        Kind::CaseHandoverSent(h) => {
            d::check_cvr("to_municipality", &h.to_municipality)?;
            E::CaseHandoverSent { to_municipality: h.to_municipality.clone() }
        }
    })
}

fn kind_to_pb(kind: &d::EventKind) -> Kind {
    use d::EventKind as E;
    let h = |p: &d::PartyId| p.as_str().to_owned();
    match kind {
        E::CaseOpened { child, custody_holders, placing_municipality } => Kind::CaseOpened(pb::CaseOpened {
            child: Some(child_to_pb(child)),
            custody_holders: custody_holders.iter().map(party_to_pb).collect(),
            placing_municipality: Some(organisation_to_pb(placing_municipality)),
        }),
        E::PlacementRecommended { basis, siblings_under_18_in_household, reason } => {
            Kind::PlacementRecommended(pb::PlacementRecommended {
                basis: basis_to_pb(*basis).into(),
                siblings_under_18_in_household: *siblings_under_18_in_household,
                reason: reason_to_pb(*reason).into(),
            })
        }
        E::PlacementStarted { basis, site_kind } => Kind::PlacementStarted(pb::PlacementStarted {
            basis: basis_to_pb(*basis).into(),
            site_kind: site_kind_to_pb(*site_kind).into(),
        }),
        E::PlacementEnded { reason } => {
            Kind::PlacementEnded(pb::PlacementEnded { reason: end_reason_to_pb(Some(*reason)).into() })
        }
        E::SupportPersonOffered { custody_holder } => {
            Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: h(custody_holder) })
        }
        E::SupportPersonAccepted { custody_holder } => {
            Kind::SupportPersonAccepted(pb::SupportPersonAccepted { custody_holder: h(custody_holder) })
        }
        E::SupportPersonDeclined { custody_holder } => {
            Kind::SupportPersonDeclined(pb::SupportPersonDeclined { custody_holder: h(custody_holder) })
        }
        E::SupportPersonChosen { custody_holder, kind, person } => Kind::SupportPersonChosen(pb::SupportPersonChosen {
            custody_holder: h(custody_holder),
            kind: support_person_kind_to_pb(*kind).into(),
            person: contact_person_to_pb(person),
        }),
        E::SupportPersonApproved { custody_holder } => {
            Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: h(custody_holder) })
        }
        E::SupportPersonRefused { custody_holder, reason } => Kind::SupportPersonRefused(pb::SupportPersonRefused {
            custody_holder: h(custody_holder),
            reason: reason.clone(),
        }),
        E::SupportDecided { custody_holder, measure, outcome } => Kind::SupportDecided(pb::SupportDecided {
            custody_holder: h(custody_holder),
            measure: measure_to_pb(*measure).into(),
            outcome: outcome_to_pb(*outcome).into(),
        }),
        E::SupportStarted { custody_holder, measure } => Kind::SupportStarted(pb::SupportStarted {
            custody_holder: h(custody_holder),
            measure: measure_to_pb(*measure).into(),
        }),
        E::ConsentGiven { custody_holder, scope } => {
            Kind::ConsentGiven(pb::ConsentGiven { custody_holder: h(custody_holder), scope: scope.as_str().to_owned() })
        }
        E::ConsentWithdrawn { custody_holder, scope } => Kind::ConsentWithdrawn(pb::ConsentWithdrawn {
            custody_holder: h(custody_holder),
            scope: scope.as_str().to_owned(),
        }),
        E::LegalBasisRecorded { custody_holder, scope, citation } => Kind::LegalBasisRecorded(pb::LegalBasisRecorded {
            custody_holder: h(custody_holder),
            scope: scope.as_str().to_owned(),
            citation: citation.clone(),
        }),
        E::LegalBasisEnded { custody_holder, scope } => Kind::LegalBasisEnded(pb::LegalBasisEnded {
            custody_holder: h(custody_holder),
            scope: scope.as_str().to_owned(),
        }),
        E::PlanPrepared { plan_id, kind, covers, goals } => Kind::PlanPrepared(pb::PlanPrepared {
            plan_id: plan_id.clone(),
            kind: plan_kind_to_pb(*kind).into(),
            covers: covers.iter().map(h).collect(),
            goals: goals.iter().map(goal_to_pb).collect(),
        }),
        E::PlanCoordinatorNamed { plan_id, coordinator } => Kind::PlanCoordinatorNamed(pb::PlanCoordinatorNamed {
            plan_id: plan_id.clone(),
            coordinator: Some(coordinator_to_pb(coordinator, None)),
        }),
        E::PlanGoalsUpdated { plan_id, goals } => Kind::PlanGoalsUpdated(pb::PlanGoalsUpdated {
            plan_id: plan_id.clone(),
            goals: goals.iter().map(goal_to_pb).collect(),
        }),
        E::PlanOmitted { reasons } => Kind::PlanOmitted(pb::PlanOmitted { reasons: reasons.clone() }),
        E::RevisionOffered => Kind::RevisionOffered(pb::RevisionOffered {}),
        E::RevisionMade => Kind::RevisionMade(pb::RevisionMade {}),
        E::RevisionAssessed => Kind::RevisionAssessed(pb::RevisionAssessed {}),
        E::HomecomingPeriodStarted => Kind::HomecomingPeriodStarted(pb::HomecomingPeriodStarted {}),
        E::HomecomingPeriodEnded => Kind::HomecomingPeriodEnded(pb::HomecomingPeriodEnded {}),
        E::HomecomingPeriodWaived { reasons } => {
            Kind::HomecomingPeriodWaived(pb::HomecomingPeriodWaived { reasons: reasons.clone() })
        }
        E::CustodyHolderMoved { custody_holder, to_municipality } => Kind::CustodyHolderMoved(pb::CustodyHolderMoved {
            custody_holder: h(custody_holder),
            to_municipality: to_municipality.clone(),
        }),
        E::CaseHandoverSent { to_municipality } => {
            Kind::CaseHandoverSent(pb::CaseHandoverSent { to_municipality: to_municipality.clone() })
        }
        E::ContactSuspended => Kind::ContactSuspended(pb::ContactSuspended {}),
        E::ContactResumed => Kind::ContactResumed(pb::ContactResumed {}),
        E::SectorContactAdded {
            contact_id,
            custody_holder,
            sector,
            organisation,
            contact_person,
            system_of_record,
        } => Kind::SectorContactAdded(pb::SectorContactAdded {
            contact_id: contact_id.clone(),
            custody_holder: h(custody_holder),
            sector: sector_to_pb(Some(*sector)).into(),
            organisation: Some(organisation_to_pb(organisation)),
            contact_person: contact_person_to_pb(contact_person),
            system_of_record: system_of_record.clone(),
        }),
        E::SectorContactEnded { contact_id } => {
            Kind::SectorContactEnded(pb::SectorContactEnded { contact_id: contact_id.clone() })
        }
        E::CorrespondenceRecorded { correspondence } => Kind::CorrespondenceRecorded(pb::CorrespondenceRecorded {
            correspondence: Some(correspondence_to_pb(correspondence)),
        }),
        E::SectorPlanRecorded { plan } => {
            Kind::SectorPlanRecorded(pb::SectorPlanRecorded { plan: Some(sector_plan_to_pb(plan)) })
        }
        E::AppointmentScheduled { appointment } => {
            Kind::AppointmentScheduled(pb::AppointmentScheduled { appointment: Some(appointment_to_pb(appointment)) })
        }
        E::AppointmentCancelled { appointment_id, reason } => Kind::AppointmentCancelled(pb::AppointmentCancelled {
            appointment_id: appointment_id.clone(),
            reason: reason.clone(),
        }),
    }
}

/// A submitted event for the wire (no sequence yet).
pub fn event_to_pb(event: &d::Event) -> pb::CaseEvent {
    pb::CaseEvent {
        sequence: 0,
        occurred_on: Some(date_to_pb(event.occurred_on)),
        record_time: None,
        request_id: String::new(),
        source: event
            .source
            .as_ref()
            .map(|s| pb::EventSource { system: s.system.clone(), message_id: s.message_id.clone() }),
        kind: Some(kind_to_pb(&event.kind)),
    }
}

/// A recorded event for the wire.
pub fn recorded_event_to_pb(recorded: &d::RecordedEvent) -> pb::CaseEvent {
    pb::CaseEvent {
        sequence: recorded.sequence as i64,
        record_time: Some(timestamp_to_pb(recorded.record_time)),
        request_id: recorded.request_id.clone(),
        ..event_to_pb(&recorded.event)
    }
}

/// A stored event back into the domain. Stored events were valid when
/// written; a failure here means the stored data is damaged.
pub fn recorded_event_from_pb(ev: &pb::CaseEvent) -> Result<d::RecordedEvent, Violations> {
    let event = event_from_pb(ev)?;
    Ok(d::RecordedEvent {
        sequence: u64::try_from(ev.sequence).unwrap_or(0),
        record_time: timestamp_from_pb(ev.record_time.as_ref()),
        request_id: ev.request_id.clone(),
        event,
    })
}

fn child_to_pb(c: &d::Child) -> pb::Child {
    pb::Child { identifier: person_id_to_pb(&c.identifier), journal_reference: c.journal_reference.clone() }
}

/// A party for the wire.
pub fn party_to_pb(p: &d::Party) -> pb::Party {
    pb::Party {
        party_id: p.party_id.as_str().to_owned(),
        identifier: person_id_to_pb(&p.identifier),
        display_name: p.display_name.clone(),
    }
}

/// A sector contact for the wire.
pub fn sector_contact_to_pb(s: &d::SectorContact) -> pb::SectorContact {
    pb::SectorContact {
        contact_id: s.contact_id.clone(),
        custody_holder: s.custody_holder.as_str().to_owned(),
        sector: sector_to_pb(Some(s.sector)).into(),
        organisation: Some(organisation_to_pb(&s.organisation)),
        contact_person: contact_person_to_pb(&s.contact_person),
        system_of_record: s.system_of_record.clone(),
        start_date: Some(date_to_pb(s.start_date)),
        end_date: opt_date(s.end_date),
    }
}

/// A consent for the wire.
pub fn consent_to_pb(c: &d::Consent) -> pb::Consent {
    pb::Consent {
        custody_holder: c.custody_holder.as_str().to_owned(),
        scope: c.scope.as_str().to_owned(),
        given_on: Some(date_to_pb(c.given_on)),
        withdrawn_on: opt_date(c.withdrawn_on),
    }
}

/// A legal basis for the wire.
pub fn legal_basis_to_pb(b: &d::LegalBasis) -> pb::LegalBasis {
    pb::LegalBasis {
        custody_holder: b.custody_holder.as_str().to_owned(),
        scope: b.scope.as_str().to_owned(),
        citation: b.citation.clone(),
        recorded_on: Some(date_to_pb(b.recorded_on)),
        ended_on: opt_date(b.ended_on),
    }
}

/// A case for the wire.
pub fn case_to_pb(case: &d::Case) -> pb::Case {
    let h = |p: &d::PartyId| p.as_str().to_owned();
    pb::Case {
        name: case.id.resource_name(),
        etag: etag(case.version),
        version: case.version as i64,
        child: Some(child_to_pb(&case.child)),
        custody_holders: case.custody_holders.iter().map(party_to_pb).collect(),
        placing_municipality: Some(organisation_to_pb(&case.placing_municipality)),
        recommendations: case
            .recommendations
            .iter()
            .map(|r| pb::PlacementRecommendation {
                recommended_on: Some(date_to_pb(r.recommended_on)),
                basis: basis_to_pb(r.basis).into(),
                siblings_under_18_in_household: r.siblings_under_18_in_household,
                reason: reason_to_pb(r.reason).into(),
            })
            .collect(),
        placements: case
            .placements
            .iter()
            .map(|p| pb::Placement {
                basis: basis_to_pb(p.basis).into(),
                start_date: Some(date_to_pb(p.start_date)),
                end_date: opt_date(p.end_date),
                end_reason: end_reason_to_pb(p.end_reason).into(),
                site_kind: site_kind_to_pb(p.site_kind).into(),
            })
            .collect(),
        sector_contacts: case.sector_contacts.iter().map(sector_contact_to_pb).collect(),
        consents: case.consents.iter().map(consent_to_pb).collect(),
        legal_bases: case.legal_bases.iter().map(legal_basis_to_pb).collect(),
        support_persons: case.support_persons.iter().map(track_to_pb).collect(),
        support_decisions: case
            .support_decisions
            .iter()
            .map(|s| pb::SupportDecision {
                custody_holder: h(&s.custody_holder),
                measure: measure_to_pb(s.measure).into(),
                outcome: outcome_to_pb(s.outcome).into(),
                decided_on: Some(date_to_pb(s.decided_on)),
            })
            .collect(),
        support_starts: case
            .support_starts
            .iter()
            .map(|s| pb::SupportStart {
                custody_holder: h(&s.custody_holder),
                measure: measure_to_pb(s.measure).into(),
                started_on: Some(date_to_pb(s.started_on)),
            })
            .collect(),
        plans: case
            .plans
            .iter()
            .map(|p| pb::Plan {
                plan_id: p.plan_id.clone(),
                kind: plan_kind_to_pb(p.kind).into(),
                prepared_on: Some(date_to_pb(p.prepared_on)),
                covers: p.covers.iter().map(h).collect(),
                goals: p.goals.iter().map(goal_to_pb).collect(),
                coordinator: p.coordinator.as_ref().map(|(c, on)| coordinator_to_pb(c, Some(*on))),
            })
            .collect(),
        plan_omissions: case
            .plan_omissions
            .iter()
            .map(|o| pb::PlanOmission { omitted_on: Some(date_to_pb(o.omitted_on)), reasons: o.reasons.clone() })
            .collect(),
        revisions: case
            .revisions
            .iter()
            .map(|r| pb::Revision {
                kind: match r.kind {
                    d::RevisionKind::Offered => pb::RevisionKind::Offered,
                    d::RevisionKind::Made => pb::RevisionKind::Made,
                    d::RevisionKind::Assessed => pb::RevisionKind::Assessed,
                }
                .into(),
                on: Some(date_to_pb(r.on)),
            })
            .collect(),
        homecoming_periods: case
            .homecoming_periods
            .iter()
            .map(|p| pb::HomecomingPeriod {
                start_date: Some(date_to_pb(p.start_date)),
                end_date: opt_date(p.end_date),
            })
            .collect(),
        contact_suspensions: case
            .contact_suspensions
            .iter()
            .map(|p| pb::ContactSuspension {
                start_date: Some(date_to_pb(p.start_date)),
                resumed_on: opt_date(p.end_date),
            })
            .collect(),
        create_time: Some(timestamp_to_pb(case.create_time)),
        update_time: Some(timestamp_to_pb(case.update_time)),
        // Evaluated on read, for a day; never stored with the projection.
        obligations: Vec::new(),
        advisories: Vec::new(),
        ruleset: String::new(),
        evaluated_on: None,
        correspondence_count: i32::try_from(case.correspondence.len()).unwrap_or(i32::MAX),
        sector_plans: case.sector_plans.iter().map(sector_plan_to_pb).collect(),
        appointment_count: i32::try_from(case.appointments.len()).unwrap_or(i32::MAX),
        homecoming_waivers: case
            .homecoming_waivers
            .iter()
            .map(|w| pb::HomecomingWaiver { waived_on: Some(date_to_pb(w.waived_on)), reasons: w.reasons.clone() })
            .collect(),
        custody_holder_moves: case
            .moves
            .iter()
            .map(|m| pb::CustodyHolderMove {
                custody_holder: h(&m.custody_holder),
                to_municipality: m.to_municipality.clone(),
                moved_on: Some(date_to_pb(m.moved_on)),
            })
            .collect(),
        handovers: case
            .handovers
            .iter()
            .map(|t| pb::CaseHandover {
                to_municipality: t.to_municipality.clone(),
                sent_on: Some(date_to_pb(t.sent_on)),
            })
            .collect(),
    }
}

fn track_to_pb(t: &d::SupportPersonTrack) -> pb::SupportPersonTrack {
    let (chosen_kind, chosen_on, chosen_person) = match &t.chosen {
        Some((kind, on, person)) => {
            (support_person_kind_to_pb(*kind), Some(date_to_pb(*on)), contact_person_to_pb(person))
        }
        None => (pb::SupportPersonKind::Unspecified, None, None),
    };
    pb::SupportPersonTrack {
        custody_holder: t.custody_holder.as_str().to_owned(),
        offered_on: t.offered_on.iter().copied().map(date_to_pb).collect(),
        latest_answer: match t.latest_answer {
            None => pb::OfferAnswer::Unspecified,
            Some((d::OfferAnswer::Accepted, _)) => pb::OfferAnswer::Accepted,
            Some((d::OfferAnswer::Declined, _)) => pb::OfferAnswer::Declined,
        }
        .into(),
        answered_on: t.latest_answer.map(|(_, on)| date_to_pb(on)),
        chosen_kind: chosen_kind.into(),
        chosen_on,
        chosen_person,
        decision: match t.decision {
            None => pb::ApprovalDecision::Unspecified,
            Some((d::ApprovalDecision::Approved, _)) => pb::ApprovalDecision::Approved,
            Some((d::ApprovalDecision::Refused, _)) => pb::ApprovalDecision::Refused,
        }
        .into(),
        decided_on: t.decision.map(|(_, on)| date_to_pb(on)),
    }
}

#[cfg(test)]
mod tests;
