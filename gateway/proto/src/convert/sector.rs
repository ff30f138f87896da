//! Conversions of the sector messages (`bro/v1/sector.proto`): correspondence,
//! sector plans and appointments.

use super::*;

/// A timestamp from a client: absent stays absent; out of range is refused.
pub fn timestamp_in(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<d::Timestamp>, Violations> {
    let Some(t) = t else { return Ok(None) };
    // 0001-01-01 to 9999-12-31, as google.protobuf.Timestamp defines.
    let in_range = (-62_135_596_800..=253_402_300_799).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos);
    in_range
        .then(|| chrono::Utc.timestamp_opt(t.seconds, t.nanos as u32).single())
        .flatten()
        .map(Some)
        .ok_or_else(|| Violations::one(field, "is not a valid timestamp (0001-01-01 to 9999-12-31, nanos 0–999999999)"))
}

fn opt_timestamp(t: Option<d::Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(timestamp_to_pb)
}

fn activity(field: &str, raw: i32) -> Result<d::CorrespondenceActivity, Violations> {
    use pb::CorrespondenceActivity as A;
    required_enum(field, raw, |a: A| match a {
        A::Unspecified => None,
        A::New => Some(d::CorrespondenceActivity::New),
        A::Reply => Some(d::CorrespondenceActivity::Reply),
        A::Forward => Some(d::CorrespondenceActivity::Forward),
    })
}

fn activity_to_pb(a: d::CorrespondenceActivity) -> pb::CorrespondenceActivity {
    match a {
        d::CorrespondenceActivity::New => pb::CorrespondenceActivity::New,
        d::CorrespondenceActivity::Reply => pb::CorrespondenceActivity::Reply,
        d::CorrespondenceActivity::Forward => pb::CorrespondenceActivity::Forward,
    }
}

fn priority(field: &str, raw: i32) -> Result<d::CorrespondencePriority, Violations> {
    use pb::CorrespondencePriority as P;
    optional_enum(field, raw, |p: P| match p {
        P::Unspecified | P::Routine => Some(d::CorrespondencePriority::Routine),
        P::High => Some(d::CorrespondencePriority::High),
    })
    .map(Option::unwrap_or_default)
}

fn priority_to_pb(p: d::CorrespondencePriority) -> pb::CorrespondencePriority {
    match p {
        d::CorrespondencePriority::Routine => pb::CorrespondencePriority::Routine,
        d::CorrespondencePriority::High => pb::CorrespondencePriority::High,
    }
}

fn entry_from_pb(e: &pb::CorrespondenceEntry) -> Result<d::CorrespondenceEntry, Violations> {
    let mut c = Checker::default();
    let write_time = c.take("", timestamp_in("write_time", e.write_time.as_ref()));
    let author = c.take("", contact_person_from_pb("author", e.author.as_ref()));
    let attachment = match &e.attachment {
        None => Some(None),
        Some(a) => c.take("", timestamp_in("attachment.create_time", a.create_time.as_ref())).map(|create_time| {
            Some(d::Attachment {
                title: a.title.clone(),
                content_type: a.content_type.clone(),
                data: a.data.clone(),
                url: a.url.clone(),
                create_time,
            })
        }),
    };
    c.finish(write_time.zip(author).zip(attachment).map(|((write_time, author), attachment)| d::CorrespondenceEntry {
        entry_id: e.entry_id.clone(),
        write_time,
        author,
        author_organisation: e.author_organisation.as_ref().map(|o| organisation_from_pb(Some(o))),
        text: e.text.clone(),
        attachment,
    }))
}

fn entry_to_pb(e: &d::CorrespondenceEntry) -> pb::CorrespondenceEntry {
    pb::CorrespondenceEntry {
        entry_id: e.entry_id.clone(),
        write_time: opt_timestamp(e.write_time),
        author: contact_person_to_pb(&e.author),
        author_organisation: e.author_organisation.as_ref().map(organisation_to_pb),
        text: e.text.clone(),
        attachment: e.attachment.as_ref().map(|a| pb::Attachment {
            title: a.title.clone(),
            content_type: a.content_type.clone(),
            data: a.data.clone(),
            url: a.url.clone(),
            create_time: opt_timestamp(a.create_time),
        }),
    }
}

/// A correspondence message from the wire.
pub fn correspondence_from_pb(m: &pb::Correspondence) -> Result<d::Correspondence, Violations> {
    let mut c = Checker::default();
    let act = c.take("", activity("activity", m.activity));
    let sec = c.take("", sector("sector", m.sector));
    let holder = c.take("", party_id("custody_holder", &m.custody_holder));
    let person = c.take("", person_id_from_pb("person", m.person.as_ref()));
    let prio = c.take("", priority("priority", m.priority));
    let send_time = c.take("", timestamp_in("send_time", m.send_time.as_ref()));
    let entries: Vec<_> =
        m.entries.iter().enumerate().filter_map(|(i, e)| c.take(&format!("entries[{i}]"), entry_from_pb(e))).collect();
    let all = act.zip(sec).zip(holder).zip(person).zip(prio).zip(send_time);
    c.finish(all.map(|(((((activity, sector), custody_holder), person), priority), send_time)| {
        d::Correspondence {
            message_id: m.message_id.clone(),
            thread_id: m.thread_id.clone(),
            in_reply_to: m.in_reply_to.clone(),
            activity,
            sector,
            sender: organisation_from_pb(m.sender.as_ref()),
            receiver: organisation_from_pb(m.receiver.as_ref()),
            custody_holder,
            person,
            episode_of_care: m
                .episode_of_care
                .as_ref()
                .map(|e| d::EpisodeOfCare { identifier: e.identifier.clone(), status: e.status.clone() }),
            priority,
            category: m.category.clone(),
            subject: m.subject.clone(),
            entries,
            send_time,
        }
    }))
}

/// A correspondence message for the wire.
pub fn correspondence_to_pb(m: &d::Correspondence) -> pb::Correspondence {
    pb::Correspondence {
        message_id: m.message_id.clone(),
        thread_id: m.thread_id.clone(),
        in_reply_to: m.in_reply_to.clone(),
        activity: activity_to_pb(m.activity).into(),
        sector: sector_to_pb(Some(m.sector)).into(),
        sender: Some(organisation_to_pb(&m.sender)),
        receiver: Some(organisation_to_pb(&m.receiver)),
        custody_holder: m.custody_holder.as_str().to_owned(),
        person: person_id_to_pb(&m.person),
        episode_of_care: m
            .episode_of_care
            .as_ref()
            .map(|e| pb::EpisodeOfCare { identifier: e.identifier.clone(), status: e.status.clone() }),
        priority: priority_to_pb(m.priority).into(),
        category: m.category.clone(),
        subject: m.subject.clone(),
        entries: m.entries.iter().map(entry_to_pb).collect(),
        send_time: opt_timestamp(m.send_time),
    }
}

fn optional_date(field: &str, date: Option<&pb::Date>) -> Result<Option<d::Date>, Violations> {
    date.map(|date| date_from_pb(field, Some(date))).transpose()
}

/// A sector plan from the wire.
pub fn sector_plan_from_pb(p: &pb::SectorPlan) -> Result<d::SectorPlan, Violations> {
    let mut c = Checker::default();
    let holder = c.take("", party_id("custody_holder", &p.custody_holder));
    let sec = c.take("", sector("sector", p.sector));
    let person = c.take("", contact_person_from_pb("contact_person", p.contact_person.as_ref()));
    let start = c.take("", optional_date("start_date", p.start_date.as_ref()));
    let end = c.take("", optional_date("end_date", p.end_date.as_ref()));
    let activities: Vec<_> = p
        .activities
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let at = format!("activities[{i}]");
            let start = c.take(&at, optional_date("start_date", a.start_date.as_ref()));
            let end = c.take(&at, optional_date("end_date", a.end_date.as_ref()));
            let minutes = c.take(
                &at,
                u32::try_from(a.minutes_per_week)
                    .map_err(|_| Violations::one("minutes_per_week", "must not be negative")),
            );
            start.zip(end).zip(minutes).map(|((start_date, end_date), minutes_per_week)| d::SectorActivity {
                activity_id: a.activity_id.clone(),
                title: a.title.clone(),
                kind: a.kind.clone(),
                start_date,
                end_date,
                minutes_per_week,
                goal_ids: a.goal_ids.clone(),
                tags: a.tags.clone(),
            })
        })
        .collect();
    let all = holder.zip(sec).zip(person).zip(start).zip(end);
    c.finish(all.map(|((((custody_holder, sector), contact_person), start_date), end_date)| {
        d::SectorPlan {
            plan_id: p.plan_id.clone(),
            custody_holder,
            sector,
            organisation: organisation_from_pb(p.organisation.as_ref()),
            contact_person,
            system_of_record: p.system_of_record.clone(),
            start_date,
            end_date,
            goals: p
                .goals
                .iter()
                .map(|g| d::SectorGoal { goal_id: g.goal_id.clone(), text: g.text.clone(), tags: g.tags.clone() })
                .collect(),
            activities,
        }
    }))
}

/// A sector plan for the wire.
pub fn sector_plan_to_pb(p: &d::SectorPlan) -> pb::SectorPlan {
    pb::SectorPlan {
        plan_id: p.plan_id.clone(),
        custody_holder: p.custody_holder.as_str().to_owned(),
        sector: sector_to_pb(Some(p.sector)).into(),
        organisation: Some(organisation_to_pb(&p.organisation)),
        contact_person: contact_person_to_pb(&p.contact_person),
        system_of_record: p.system_of_record.clone(),
        start_date: opt_date(p.start_date),
        end_date: opt_date(p.end_date),
        goals: p
            .goals
            .iter()
            .map(|g| pb::SectorGoal { goal_id: g.goal_id.clone(), text: g.text.clone(), tags: g.tags.clone() })
            .collect(),
        activities: p
            .activities
            .iter()
            .map(|a| pb::SectorActivity {
                activity_id: a.activity_id.clone(),
                title: a.title.clone(),
                kind: a.kind.clone(),
                start_date: opt_date(a.start_date),
                end_date: opt_date(a.end_date),
                minutes_per_week: i32::try_from(a.minutes_per_week).unwrap_or(i32::MAX),
                goal_ids: a.goal_ids.clone(),
                tags: a.tags.clone(),
            })
            .collect(),
    }
}

/// An appointment from the wire.
pub fn appointment_from_pb(a: &pb::Appointment) -> Result<d::Appointment, Violations> {
    let mut c = Checker::default();
    let holder = c.take("", party_id("custody_holder", &a.custody_holder));
    let sec = c.take("", sector("sector", a.sector));
    let person = c.take("", contact_person_from_pb("professional", a.professional.as_ref()));
    let start = c.take("", timestamp_in("start_time", a.start_time.as_ref())).and_then(|t| {
        if t.is_none() {
            c.0.push(Violation::new("start_time", "is required"));
        }
        t
    });
    let end = c.take("", timestamp_in("end_time", a.end_time.as_ref()));
    let all = holder.zip(sec).zip(person).zip(start).zip(end);
    c.finish(all.map(|((((custody_holder, sector), professional), start_time), end_time)| d::Appointment {
        appointment_id: a.appointment_id.clone(),
        custody_holder,
        sector,
        organisation: organisation_from_pb(a.organisation.as_ref()),
        professional,
        title: a.title.clone(),
        start_time,
        end_time,
        location: a.location.clone(),
        cancelled: a.cancelled,
        cancellation_reason: a.cancellation_reason.clone(),
    }))
}

/// An appointment for the wire.
pub fn appointment_to_pb(a: &d::Appointment) -> pb::Appointment {
    pb::Appointment {
        appointment_id: a.appointment_id.clone(),
        custody_holder: a.custody_holder.as_str().to_owned(),
        sector: sector_to_pb(Some(a.sector)).into(),
        organisation: Some(organisation_to_pb(&a.organisation)),
        professional: contact_person_to_pb(&a.professional),
        title: a.title.clone(),
        start_time: Some(timestamp_to_pb(a.start_time)),
        end_time: opt_timestamp(a.end_time),
        location: a.location.clone(),
        cancellation_reason: a.cancellation_reason.clone(),
        cancelled: a.cancelled,
    }
}
