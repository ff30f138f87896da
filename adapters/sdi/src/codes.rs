//! The code lists of the profile: event types (`Haendelsestype`), roles,
//! legal bases and the other coded values, each a table read both ways, so
//! reading and writing cannot drift apart. Codes are Danish and ASCII (æ, ø,
//! å written ae, oe, aa as in OIO names); the roles end URNs.

use bro_adapter_sdk::proto;

/// A code table: the code in the XML and the value it stands for.
pub type Codes<T> = &'static [(&'static str, T)];

/// The value of `code` in `codes`.
pub fn lookup<T: Copy>(codes: Codes<T>, code: &str) -> Option<T> {
    codes.iter().find(|(c, _)| *c == code).map(|(_, v)| *v)
}

/// The code of `value` in `codes`.
pub fn code_of<T: Copy + PartialEq>(codes: Codes<T>, value: T) -> Option<&'static str> {
    codes.iter().find(|(_, v)| *v == value).map(|(c, _)| *c)
}

/// The codes of a table, for an error message: `a, b or c`.
pub fn known<T>(codes: Codes<T>) -> String {
    let names: Vec<&str> = codes.iter().map(|(c, _)| *c).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, init)) => format!("{} or {last}", init.join(", ")),
        None => String::new(),
    }
}

/// What a `Sagshaendelse` records: one canonical event kind each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `case_opened`.
    CaseOpened,
    /// `placement_recommended`.
    PlacementRecommended,
    /// `placement_started`.
    PlacementStarted,
    /// `placement_ended`.
    PlacementEnded,
    /// `support_person_offered`.
    SupportPersonOffered,
    /// `support_person_accepted`.
    SupportPersonAccepted,
    /// `support_person_declined`.
    SupportPersonDeclined,
    /// `support_person_chosen`.
    SupportPersonChosen,
    /// `support_person_approved`.
    SupportPersonApproved,
    /// `support_person_refused`.
    SupportPersonRefused,
    /// `support_decided`.
    SupportDecided,
    /// `support_started`.
    SupportStarted,
    /// `consent_given`.
    ConsentGiven,
    /// `consent_withdrawn`.
    ConsentWithdrawn,
    /// `plan_prepared`.
    PlanPrepared,
    /// `plan_omitted`.
    PlanOmitted,
    /// `revision_offered`.
    RevisionOffered,
    /// `revision_made`.
    RevisionMade,
    /// `revision_assessed`.
    RevisionAssessed,
    /// `homecoming_period_started`.
    HomecomingPeriodStarted,
    /// `homecoming_period_ended`.
    HomecomingPeriodEnded,
    /// `contact_suspended`.
    ContactSuspended,
    /// `contact_resumed`.
    ContactResumed,
}

/// `Haendelsestype`: the event types of a Sag change.
pub const TYPES: Codes<Type> = &[
    ("sag-oprettet", Type::CaseOpened),
    ("anbringelse-indstillet", Type::PlacementRecommended),
    ("anbringelse-startet", Type::PlacementStarted),
    ("anbringelse-ophoert", Type::PlacementEnded),
    ("stoetteperson-tilbudt", Type::SupportPersonOffered),
    ("stoetteperson-accepteret", Type::SupportPersonAccepted),
    ("stoetteperson-afslaaet", Type::SupportPersonDeclined),
    ("stoetteperson-valgt", Type::SupportPersonChosen),
    ("stoetteperson-godkendt", Type::SupportPersonApproved),
    ("stoetteperson-afvist", Type::SupportPersonRefused),
    ("stoette-afgjort", Type::SupportDecided),
    ("stoette-startet", Type::SupportStarted),
    ("samtykke-givet", Type::ConsentGiven),
    ("samtykke-tilbagekaldt", Type::ConsentWithdrawn),
    ("plan-udarbejdet", Type::PlanPrepared),
    ("plan-undladt", Type::PlanOmitted),
    ("revision-tilbudt", Type::RevisionOffered),
    ("revision-foretaget", Type::RevisionMade),
    ("revision-vurderet", Type::RevisionAssessed),
    ("hjemgivelsesperiode-startet", Type::HomecomingPeriodStarted),
    ("hjemgivelsesperiode-ophoert", Type::HomecomingPeriodEnded),
    ("samvaer-suspenderet", Type::ContactSuspended),
    ("samvaer-genoptaget", Type::ContactResumed),
];

/// The role of a `SagsPart`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The child the case concerns.
    Child,
    /// A custody holder who is the mother.
    Mother,
    /// A custody holder who is the father.
    Father,
    /// Any other custody holder (a co-mother, an adoptive parent).
    Parent,
}

/// `SagsPart/Rolle`.
pub const ROLES: Codes<Role> =
    &[("barn", Role::Child), ("mor", Role::Mother), ("far", Role::Father), ("foraelder", Role::Parent)];

/// `Hjemmel`: the legal basis of a placement.
pub const BASES: Codes<proto::PlacementBasis> = &[
    ("bl46", proto::PlacementBasis::Bl46),
    ("bl47", proto::PlacementBasis::Bl47),
    ("lbu14", proto::PlacementBasis::Lbu14),
];

/// `Indstillingsgrund`: why a placement is recommended.
pub const REASONS: Codes<proto::RecommendationReason> = &[
    ("omsorgssvigt", proto::RecommendationReason::Neglect),
    ("alvorlige-sociale-forhold", proto::RecommendationReason::SeriousSocialConditions),
    ("forhold-hos-barnet", proto::RecommendationReason::ChildConditions),
    ("andet", proto::RecommendationReason::Other),
];

/// `Anbringelsessted`: the kind of placement site.
pub const SITES: Codes<proto::PlacementSiteKind> = &[
    ("plejefamilie", proto::PlacementSiteKind::FosterFamily),
    ("netvaerksplejefamilie", proto::PlacementSiteKind::NetworkFosterFamily),
    ("doegninstitution", proto::PlacementSiteKind::ResidentialInstitution),
    ("andet", proto::PlacementSiteKind::Other),
];

/// `Ophoersgrund`: why a placement ended.
pub const END_REASONS: Codes<proto::PlacementEndReason> =
    &[("hjemgivelse", proto::PlacementEndReason::Homecoming), ("andet", proto::PlacementEndReason::Other)];

/// `Stoettepersontype`: who the chosen support person is.
pub const PERSON_KINDS: Codes<proto::SupportPersonKind> =
    &[("professionel", proto::SupportPersonKind::Professional), ("netvaerk", proto::SupportPersonKind::Network)];

/// `Foranstaltning` of a § 76 decision (`stoette-afgjort`).
pub const DECIDED_MEASURES: Codes<proto::SupportMeasure> = &[
    ("bl32-1-2", proto::SupportMeasure::Bl3212),
    ("bl32-1-3", proto::SupportMeasure::Bl3213),
    ("bl32-1-5", proto::SupportMeasure::Bl3215),
    ("bl32-1-8", proto::SupportMeasure::Bl3218),
    ("bl35", proto::SupportMeasure::Bl35),
    ("anden-lovgivning", proto::SupportMeasure::OtherLegislation),
];

/// `Foranstaltning` of a start of support (`stoette-startet`): the § 76
/// measures and the § 75 support person.
pub const STARTED_MEASURES: Codes<proto::SupportMeasure> = &[
    ("bl32-1-2", proto::SupportMeasure::Bl3212),
    ("bl32-1-3", proto::SupportMeasure::Bl3213),
    ("bl32-1-5", proto::SupportMeasure::Bl3215),
    ("bl32-1-8", proto::SupportMeasure::Bl3218),
    ("bl35", proto::SupportMeasure::Bl35),
    ("anden-lovgivning", proto::SupportMeasure::OtherLegislation),
    ("bl75", proto::SupportMeasure::Bl75),
];

/// `Afgoerelse`: the outcome of a § 76 decision.
pub const OUTCOMES: Codes<proto::DecisionOutcome> =
    &[("bevilget", proto::DecisionOutcome::Granted), ("afslaaet", proto::DecisionOutcome::Refused)];

/// `Plantype`: § 77 parent action plan or § 78 holistic plan.
pub const PLAN_KINDS: Codes<proto::PlanKind> = &[("bl77", proto::PlanKind::Bl77), ("bl78", proto::PlanKind::Bl78)];

/// `Sigte`: what a plan goal aims at.
pub const AIMS: Codes<proto::GoalAim> =
    &[("hjemgivelse", proto::GoalAim::Homecoming), ("samvaer", proto::GoalAim::Contact)];

/// `EjerSektor`: the sector that owns a plan goal.
pub const SECTORS: Codes<proto::Sector> = &[
    ("jobcenter", proto::Sector::Jobcentre),
    ("psykiatri", proto::Sector::Psychiatry),
    ("misbrugsbehandling", proto::Sector::AddictionTreatment),
    ("sundhed", proto::Sector::Health),
    ("anden", proto::Sector::Other),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn unique<T>(codes: Codes<T>) -> bool {
        codes.iter().enumerate().all(|(i, (c, _))| codes.iter().skip(i + 1).all(|(d, _)| c != d))
    }

    #[test]
    fn every_table_reads_both_ways() {
        assert!(unique(TYPES) && unique(ROLES) && unique(STARTED_MEASURES) && unique(SITES));
        for (code, t) in TYPES {
            assert_eq!(code_of(TYPES, *t), Some(*code));
            assert_eq!(lookup(TYPES, code), Some(*t));
        }
        assert_eq!(TYPES.len(), 23);
        assert_eq!(known(OUTCOMES), "bevilget or afslaaet");
        assert_eq!(known(BASES), "bl46, bl47 or lbu14");
    }
}
