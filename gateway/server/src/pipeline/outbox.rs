//! The outbox: for every write, what each configured system is sent — the
//! events it subscribes to (never its own back), cut by the sharing law, and
//! its view of every § 78 holistic plan whose view changed
//! ([`super::distribution`]) — stored in the same transaction as the events.
//! A delivery is stored canonical, naming people by party id; it becomes
//! what an adapter reads ([`super::subjects::encode`]) only when it leaves,
//! after [`still_sendable`] has judged it again by the case as it is then.

use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_domain::{Case, Date, PartyId, RecordedEvent, Timestamp};
use bro_rules::coordination::CoordinationPolicy;
use bro_rules::sharing::{self, Share};
use bro_store::{DeliveryPlanner, NewDelivery};
use prost::Message as _;

use super::distribution;
use crate::clock::danish_date;
use crate::systems::{SystemConfig, Systems};

/// The outbox planner of every write.
pub struct Outbox {
    systems: Arc<Systems>,
    coordination: Arc<CoordinationPolicy>,
}

impl Outbox {
    /// The planner for `systems`, checking plans by `coordination`.
    pub fn new(systems: Arc<Systems>, coordination: Arc<CoordinationPolicy>) -> Self {
        Outbox { systems, coordination }
    }

    /// The systems it plans for.
    pub fn systems(&self) -> &Systems {
        &self.systems
    }
}

impl DeliveryPlanner for Outbox {
    fn plan(
        &self,
        before: Option<&Case>,
        case: &Case,
        events: &[RecordedEvent],
        wire: &[pb::CaseEvent],
        now: Timestamp,
    ) -> Vec<NewDelivery> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Vec::new() };
        let delivery = |system: &SystemConfig, batch: pb::AdapterBatch| NewDelivery {
            delivery_id: bro_store::time_ordered_id(now),
            system: system.name.clone(),
            case_id: case.id.clone(),
            first_sequence: first.sequence,
            last_sequence: last.sequence,
            payload: batch.encode_to_vec(),
            create_time: now,
            replay_of: String::new(),
        };
        let mut out: Vec<NewDelivery> = self
            .systems
            .all()
            .iter()
            .filter_map(|system| Some(delivery(system, event_batch(system, case, events, wire, danish_date(now))?)))
            .collect();
        for (system, batch) in distribution::plan_views(&self.systems, &self.coordination, before, case, now) {
            out.push(delivery(system, batch));
        }
        out
    }
}

/// The canonical batch `system` is sent for `events` of `case` (`wire`:
/// the same events encoded): only the types it subscribes to, never events
/// that came from the system itself, and only what the sharing law lets it
/// receive, naming only the parents those events are about.
pub fn event_batch(
    system: &SystemConfig,
    case: &Case,
    events: &[RecordedEvent],
    wire: &[pb::CaseEvent],
    today: Date,
) -> Option<pb::AdapterBatch> {
    let share = system.recipient().share(case, today)?;
    let chosen: Vec<(&RecordedEvent, &pb::CaseEvent)> = events
        .iter()
        .zip(wire)
        .filter(|(e, _)| system.subscribe.iter().any(|s| s == e.event.kind.type_name()))
        .filter(|(e, _)| e.event.source.as_ref().is_none_or(|s| s.system != system.name))
        .filter(|(e, _)| share.may_receive(&e.event.kind))
        .collect();
    if chosen.is_empty() {
        return None;
    }
    let parties = share.parties(case, chosen.iter().map(|(e, _)| &e.event.kind));
    let mut events: Vec<pb::CaseEvent> = chosen.into_iter().map(|(_, w)| w.clone()).collect();
    if matches!(share, Share::Sector(_)) {
        letters_name_only_their_parent(&mut events);
    }
    Some(pb::AdapterBatch {
        case: case.id.resource_name(),
        parties: parties.into_iter().map(convert::party_to_pb).collect(),
        events,
        ..Default::default()
    })
}

/// For another sector: a letter names no person but the custody holder it
/// is about (the codec fills in that parent's identifier), whatever person
/// its source recorded.
fn letters_name_only_their_parent(events: &mut [pb::CaseEvent]) {
    for event in events {
        if let Some(Kind::CorrespondenceRecorded(c)) = event.kind.as_mut()
            && let Some(letter) = c.correspondence.as_mut()
        {
            letter.person = None;
        }
    }
}

/// A queued canonical batch cut down to what `system` may still be sent,
/// judged by `case` as it is now: a consent withdrawn since the batch was
/// planned stops its sector items, queued ones included. `Ok(None)`: nothing
/// may be sent any more; `Err`: the batch cannot be read.
pub fn still_sendable(
    system: &SystemConfig,
    case: &Case,
    batch: pb::AdapterBatch,
    today: Date,
) -> Result<Option<pb::AdapterBatch>, String> {
    let recipient = system.recipient();
    if let Some(plan) = &batch.holistic_plan {
        let parents: Vec<PartyId> = batch
            .parties
            .iter()
            .map(|p| PartyId::parse("party_id", &p.party_id))
            .collect::<Result<_, _>>()
            .map_err(|v| format!("the queued plan names a party wrongly: {v}"))?;
        let plan_id = plan.name.rsplit('/').next().unwrap_or_default();
        let sendable =
            sharing::plan_still_sendable(&recipient, case, plan_id, &parents, plan.distribution_ended, today);
        return Ok(sendable.then_some(batch));
    }
    let share = match recipient.share(case, today) {
        None => return Ok(None),
        Some(Share::Whole) => return Ok(Some(batch)),
        Some(share) => share,
    };
    let mut kept = Vec::with_capacity(batch.events.len());
    for event in batch.events {
        let kind = convert::event_from_pb(&event).map_err(|v| format!("a queued event cannot be read: {v}"))?.kind;
        if share.may_receive(&kind) {
            kept.push((kind, event));
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let parties = share.parties(case, kept.iter().map(|(kind, _)| kind));
    let mut events: Vec<pb::CaseEvent> = kept.into_iter().map(|(_, event)| event).collect();
    letters_name_only_their_parent(&mut events);
    Ok(Some(pb::AdapterBatch { parties: parties.into_iter().map(convert::party_to_pb).collect(), events, ..batch }))
}

#[cfg(test)]
mod tests {
    use bro_domain::{
        CaseId, Child, ConsentScope, Correspondence, CorrespondenceActivity, CorrespondenceEntry, Event, EventKind,
        Organisation, Party, PersonId, PersonIdKind, Sector,
    };

    use super::*;
    use crate::pipeline::subjects;
    use crate::systems::{SystemAccess, Transport};

    const PARENT: &str = "0101901234";
    const SOMEONE_ELSE: &str = "2207921238";

    fn cpr(value: &str) -> PersonId {
        PersonId::parse("p", PersonIdKind::Cpr, value).expect("cpr")
    }

    fn recorded(sequence: u64, kind: EventKind) -> RecordedEvent {
        RecordedEvent {
            sequence,
            record_time: Timestamp::default(),
            request_id: String::new(),
            event: Event { occurred_on: "2026-02-01".parse().expect("date"), kind, source: None },
        }
    }

    /// A case whose parent shares with psychiatry, and a psychiatry letter
    /// about that parent whose source recorded another person.
    fn case_and_letter() -> (Case, Vec<RecordedEvent>) {
        let parent = PartyId::parse("p", "parent-1").expect("id");
        let opened = EventKind::CaseOpened {
            child: Child { identifier: None, journal_reference: "j".into() },
            custody_holders: vec![Party {
                party_id: parent.clone(),
                identifier: Some(cpr(PARENT)),
                display_name: String::new(),
            }],
            placing_municipality: Organisation { cvr: "12345678".into(), ..Default::default() },
        };
        let consent = EventKind::ConsentGiven {
            custody_holder: parent.clone(),
            scope: ConsentScope::parse("s", "share:psychiatry").expect("scope"),
        };
        let letter = EventKind::CorrespondenceRecorded {
            correspondence: Box::new(Correspondence {
                message_id: "m-1".into(),
                thread_id: String::new(),
                in_reply_to: String::new(),
                activity: CorrespondenceActivity::New,
                sector: Sector::Psychiatry,
                sender: Organisation { display_name: "Psykiatrien".into(), ..Default::default() },
                receiver: Organisation { display_name: "Kommunen".into(), ..Default::default() },
                custody_holder: parent,
                person: Some(cpr(SOMEONE_ELSE)),
                episode_of_care: None,
                priority: Default::default(),
                category: String::new(),
                subject: "Brev".into(),
                entries: vec![CorrespondenceEntry { text: "Tekst".into(), ..Default::default() }],
                send_time: None,
            }),
        };
        let history = vec![recorded(1, opened), recorded(2, consent), recorded(3, letter)];
        let case = Case::replay(CaseId::parse("c", "c1").expect("id"), &history).expect("replays");
        (case, history[2..].to_vec())
    }

    fn person_sent(system: &SystemConfig) -> Option<String> {
        let (case, events) = case_and_letter();
        let later: Date = "2099-12-31".parse().expect("a date");
        let wire: Vec<pb::CaseEvent> = events.iter().map(convert::recorded_event_to_pb).collect();
        let queued = event_batch(system, &case, &events, &wire, later).expect("a batch");
        let sent = subjects::encode(still_sendable(system, &case, queued, later).expect("readable").expect("sendable"));
        match &sent.events[0].kind {
            Some(Kind::CorrespondenceRecorded(c)) => {
                c.correspondence.as_ref()?.person.as_ref().map(|p| p.value.clone())
            }
            _ => None,
        }
    }

    #[test]
    fn a_sector_is_sent_only_the_parents_own_identifier_on_a_letter() {
        let psychiatry = SystemConfig::new("psykiatri", "a", "t", &["correspondence_recorded"], Transport::Pull)
            .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
        assert_eq!(person_sent(&psychiatry).as_deref(), Some(PARENT));
        let journal = SystemConfig::new("journal", "a", "t", &["correspondence_recorded"], Transport::Pull)
            .with_access(SystemAccess::Municipal { cvr: "12345678".into() });
        assert_eq!(person_sent(&journal).as_deref(), Some(SOMEONE_ELSE), "the municipality's own system: as recorded");
    }
}
