//! People on the adapter boundary, in one codec. Inside the gateway a batch
//! names custody holders by their party ids in the case. What crosses into
//! an adapter names them `subjects/N` instead — an index into the batch's
//! `subjects`, the people's identifiers — because a sector's system knows a
//! person by CPR number, not by bro's ids. [`encode`] rewrites a canonical
//! batch that way once, just before the adapter translates it; [`resolve`]
//! turns an adapter's `subjects/N` back into the parties a message was
//! matched to, on ingest.

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_domain::{PartyId, Violations};

/// The prefix of a reference to one of a batch's subjects.
const SUBJECT: &str = "subjects/";

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
        Kind::CustodyHolderMoved(e) => &mut e.custody_holder,
        Kind::CorrespondenceRecorded(e) => &mut e.correspondence.as_mut()?.custody_holder,
        Kind::SectorPlanRecorded(e) => &mut e.plan.as_mut()?.custody_holder,
        Kind::AppointmentScheduled(e) => &mut e.appointment.as_mut()?.custody_holder,
        _ => return None,
    })
}

/// Whether an event is an item of a sector's own record, whose person an
/// adapter writes out (a letter, a plan, an appointment).
fn is_sector_item(kind: &Kind) -> bool {
    matches!(kind, Kind::CorrespondenceRecorded(_) | Kind::SectorPlanRecorded(_) | Kind::AppointmentScheduled(_))
}

/// Every custody-holder reference in a holistic plan view.
fn for_each_holder(plan: &mut pb::HolisticPlan, mut f: impl FnMut(&mut String)) {
    plan.covers.iter_mut().for_each(&mut f);
    for g in &mut plan.goals {
        g.custody_holders.iter_mut().for_each(&mut f);
    }
    plan.sector_plans.iter_mut().for_each(|p| f(&mut p.custody_holder));
    plan.authority_measures.iter_mut().for_each(|m| f(&mut m.custody_holder));
    plan.sector_contacts.iter_mut().for_each(|c| f(&mut c.custody_holder));
    plan.appointments.iter_mut().for_each(|a| f(&mut a.custody_holder));
    plan.busy_periods.iter_mut().for_each(|b| f(&mut b.custody_holder));
    plan.agreements.iter_mut().for_each(|a| f(&mut a.custody_holder));
    plan.conflicts.iter_mut().filter(|c| !c.custody_holder.is_empty()).for_each(|c| f(&mut c.custody_holder));
}

/// A canonical batch as an adapter receives it: `subjects` are the person
/// identifiers of its parties; each sector item names its custody holder
/// as `subjects/N` (and a letter carries its person's identifier), and so
/// does every reference in a plan view.
pub fn encode(mut batch: pb::AdapterBatch) -> pb::AdapterBatch {
    let subjects: Vec<pb::PersonIdentifier> = batch.parties.iter().filter_map(|p| p.identifier.clone()).collect();
    let parties = &batch.parties;
    let identifier = |party: &str| parties.iter().find(|p| p.party_id == party)?.identifier.as_ref();
    let subject_of = |party: &str| subjects.iter().position(|s| Some(s) == identifier(party));
    for event in &mut batch.events {
        let Some(kind) = event.kind.as_mut() else { continue };
        if let Kind::CorrespondenceRecorded(c) = kind
            && let Some(letter) = c.correspondence.as_mut()
            && letter.person.is_none()
        {
            letter.person = identifier(&letter.custody_holder).cloned();
        }
        if is_sector_item(kind)
            && let Some(holder) = custody_holder_mut(kind)
            && let Some(i) = subject_of(holder)
        {
            *holder = format!("{SUBJECT}{i}");
        }
    }
    if let Some(plan) = batch.holistic_plan.as_mut() {
        for_each_holder(plan, |holder| {
            if let Some(i) = subject_of(holder) {
                *holder = format!("{SUBJECT}{i}");
            }
        });
    }
    batch.subjects = subjects;
    batch
}

/// A batch queued by an earlier bro, which wrote `subjects/N` into the
/// outbox, back in canonical form (the inverse of [`encode`]); a canonical
/// batch (no `subjects`) is returned as it is.
pub fn canonical(mut batch: pb::AdapterBatch) -> pb::AdapterBatch {
    if batch.subjects.is_empty() {
        return batch;
    }
    let (subjects, parties) = (std::mem::take(&mut batch.subjects), &batch.parties);
    let party_of = |reference: &str| -> Option<String> {
        let identifier = subjects.get(reference.strip_prefix(SUBJECT)?.parse::<usize>().ok()?)?;
        parties.iter().find(|p| p.identifier.as_ref() == Some(identifier)).map(|p| p.party_id.clone())
    };
    let restore = |holder: &mut String| {
        if let Some(party) = party_of(holder) {
            *holder = party;
        }
    };
    for kind in batch.events.iter_mut().filter_map(|e| e.kind.as_mut()) {
        if is_sector_item(kind)
            && let Some(holder) = custody_holder_mut(kind)
        {
            restore(holder);
        }
    }
    if let Some(plan) = batch.holistic_plan.as_mut() {
        for_each_holder(plan, restore);
    }
    batch
}

/// `event` of an adapter's batch with every `subjects/N` it holds — its
/// custody holder, the parents a plan covers — resolved to `parties[N]`, the
/// party the message's subject N was matched to. Field paths are relative
/// to the event.
pub fn resolve(event: &mut pb::CaseEvent, parties: &[Option<PartyId>]) -> Result<(), Violations> {
    let party = |reference: &str| -> Option<Option<String>> {
        let n = reference.strip_prefix(SUBJECT)?;
        Some(n.parse::<usize>().ok().and_then(|n| parties.get(n).cloned().flatten()).map(|p| p.as_str().to_owned()))
    };
    let Some(kind) = event.kind.as_mut() else { return Ok(()) };
    if let Some(holder) = custody_holder_mut(kind) {
        match party(holder) {
            Some(Some(resolved)) => *holder = resolved,
            Some(None) => {
                return Err(Violations::one("", format!("{holder} is not a custody holder of the matched case")));
            }
            None => {}
        }
    }
    if let Kind::PlanPrepared(plan) = kind {
        for cover in &mut plan.covers {
            match party(cover) {
                Some(Some(resolved)) => *cover = resolved,
                Some(None) => {
                    let why = format!("{cover} is not a custody holder of the case");
                    return Err(Violations::one("plan_prepared.covers", why));
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(id: &str, cpr: &str) -> pb::Party {
        pb::Party {
            party_id: id.into(),
            identifier: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: cpr.into() }),
            display_name: String::new(),
        }
    }

    fn appointment(holder: &str) -> pb::CaseEvent {
        let appointment = pb::Appointment { custody_holder: holder.into(), ..Default::default() };
        pb::CaseEvent {
            kind: Some(Kind::AppointmentScheduled(pb::AppointmentScheduled { appointment: Some(appointment) })),
            ..Default::default()
        }
    }

    fn consent(holder: &str) -> pb::CaseEvent {
        let consent = pb::ConsentGiven { custody_holder: holder.into(), scope: "share:jobcenter".into() };
        pb::CaseEvent { kind: Some(Kind::ConsentGiven(consent)), ..Default::default() }
    }

    fn holder(event: &pb::CaseEvent) -> String {
        let mut kind = event.kind.clone().expect("kind");
        custody_holder_mut(&mut kind).expect("a holder").clone()
    }

    #[test]
    fn sector_items_cross_as_subjects_and_come_back() {
        let canonical_batch = pb::AdapterBatch {
            case: "cases/c1".into(),
            parties: vec![parent("parent-1", "0101901234"), parent("parent-2", "2207921238")],
            events: vec![appointment("parent-2"), consent("parent-1")],
            ..Default::default()
        };
        let encoded = encode(canonical_batch.clone());
        assert_eq!(encoded.subjects.len(), 2);
        assert_eq!(holder(&encoded.events[0]), "subjects/1", "an appointment names its subject");
        assert_eq!(holder(&encoded.events[1]), "parent-1", "only sector items are rewritten");
        assert_eq!(canonical(encoded), canonical_batch, "an earlier bro's payload reads back as canonical");
    }

    #[test]
    fn a_plan_view_names_every_parent_as_a_subject() {
        let plan = pb::HolisticPlan {
            covers: vec!["parent-2".into()],
            busy_periods: vec![pb::BusyPeriod { custody_holder: "parent-2".into(), ..Default::default() }],
            ..Default::default()
        };
        let batch = pb::AdapterBatch {
            parties: vec![parent("parent-2", "2207921238")],
            holistic_plan: Some(plan),
            ..Default::default()
        };
        let encoded = encode(batch);
        let plan = encoded.holistic_plan.expect("plan");
        assert_eq!(plan.covers, ["subjects/0"]);
        assert_eq!(plan.busy_periods[0].custody_holder, "subjects/0");
    }

    #[test]
    fn an_adapters_subjects_resolve_to_the_matched_parties() {
        let parties = vec![None, PartyId::parse("p", "parent-2").ok()];
        let mut event = appointment("subjects/1");
        resolve(&mut event, &parties).expect("resolves");
        assert_eq!(holder(&event), "parent-2");
        let mut unmatched = appointment("subjects/0");
        let err = resolve(&mut unmatched, &parties).expect_err("subject 0 matched nobody");
        let err = err.within("events[3]");
        assert_eq!(err.to_string(), "events[3]: subjects/0 is not a custody holder of the matched case");
        let mut named = consent("parent-1");
        resolve(&mut named, &parties).expect("a party id stays");
        assert_eq!(holder(&named), "parent-1");
    }
}
