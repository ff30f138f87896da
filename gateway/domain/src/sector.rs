//! What other sectors exchange with the children's authority: correspondence,
//! sector plans and appointments, and the checks each must pass.

use std::fmt;

use crate::violation::Collector;
use crate::{
    ContactPerson, Date, Organisation, PartyId, PersonId, Sector, Timestamp, Violations, check_text, truncate,
};

/// Longest correspondence text entry, in bytes (a long letter, not a file).
pub const MAX_LETTER_LEN: usize = 64 * 1024;
/// Largest inline attachment, in bytes.
pub const MAX_ATTACHMENT_LEN: usize = 8 * 1024 * 1024;
/// Most entries (texts, attachments, goals, activities, tags) in one list.
pub const MAX_LIST_LEN: usize = 200;

/// Checks an id assigned by another system: 1–200 printable ASCII characters
/// without spaces (UUIDs, `urn:uuid:…`, letter numbers such as `BrevNr00129`).
pub fn check_external_id(field: &str, value: &str) -> Result<(), Violations> {
    if value.is_empty() {
        return Err(Violations::one(field, "is required"));
    }
    if value.len() > 200 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Violations::one(
            field,
            format!(
                "{:?} is not a valid external id: 1 to 200 printable ASCII characters, no spaces",
                truncate(value, 80)
            ),
        ));
    }
    Ok(())
}

/// New, reply or forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CorrespondenceActivity {
    /// Starts a conversation.
    New,
    /// Replies within one.
    Reply,
    /// Forwards to another receiver.
    Forward,
}

/// Urgency of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CorrespondencePriority {
    /// Routine.
    #[default]
    Routine,
    /// High priority.
    High,
}

/// An episode of care at a health organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeOfCare {
    /// Its identifier, if named.
    pub identifier: String,
    /// The patient's status in it, in the source's code.
    pub status: String,
}

/// A file attached to a message.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    /// Title.
    pub title: String,
    /// MIME type.
    pub content_type: String,
    /// Inline bytes.
    pub data: Vec<u8>,
    /// Or where to fetch it.
    pub url: String,
    /// When created.
    pub create_time: Option<Timestamp>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("content_type", &self.content_type)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// One text or attachment of a message, by one author.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorrespondenceEntry {
    /// Id at the source.
    pub entry_id: String,
    /// When written.
    pub write_time: Option<Timestamp>,
    /// Author; personal data.
    pub author: Option<ContactPerson>,
    /// The author's organisation.
    pub author_organisation: Option<Organisation>,
    /// Text with "\n" line breaks (health data: never logged).
    pub text: String,
    /// Attachment, for an attachment entry.
    pub attachment: Option<Attachment>,
}

impl fmt::Debug for CorrespondenceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrespondenceEntry")
            .field("entry_id", &self.entry_id)
            .field("text_bytes", &self.text.len())
            .field("attachment", &self.attachment)
            .finish_non_exhaustive()
    }
}

/// A message between the children's authority and another sector.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Correspondence {
    /// Id at the source; unique within the case.
    pub message_id: String,
    /// Conversation id.
    pub thread_id: String,
    /// The message replied to or forwarded.
    pub in_reply_to: String,
    /// New, reply or forward.
    pub activity: CorrespondenceActivity,
    /// The other sector.
    pub sector: Sector,
    /// Sender.
    pub sender: Organisation,
    /// Receiver.
    pub receiver: Organisation,
    /// The custody holder concerned.
    pub custody_holder: PartyId,
    /// The person as the message identifies them.
    pub person: Option<PersonId>,
    /// Episode of care.
    pub episode_of_care: Option<EpisodeOfCare>,
    /// Priority.
    pub priority: CorrespondencePriority,
    /// Category code.
    pub category: String,
    /// Subject line (health data).
    pub subject: String,
    /// Texts and attachments, oldest first.
    pub entries: Vec<CorrespondenceEntry>,
    /// When sent.
    pub send_time: Option<Timestamp>,
}

impl fmt::Debug for Correspondence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Correspondence")
            .field("message_id", &self.message_id)
            .field("thread_id", &self.thread_id)
            .field("activity", &self.activity)
            .field("sector", &self.sector)
            .field("custody_holder", &self.custody_holder)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// What a case keeps of a recorded letter: enough to tell letters apart,
/// decide who may read one and find it again. The letter itself (texts,
/// attachments) stays in the event that recorded it, so a case's state does
/// not grow with what its letters say.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorrespondenceRef {
    /// Id at the source; unique within the case.
    pub message_id: String,
    /// The event that recorded it.
    pub sequence: u64,
    /// The other sector.
    pub sector: Sector,
    /// The custody holder concerned.
    pub custody_holder: PartyId,
}

/// A goal in another sector's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectorGoal {
    /// Id within the plan.
    pub goal_id: String,
    /// What is to be reached.
    pub text: String,
    /// Tags for the coordination checks.
    pub tags: Vec<String>,
}

/// An activity in another sector's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectorActivity {
    /// Id within the plan.
    pub activity_id: String,
    /// What it is.
    pub title: String,
    /// The source's kind code.
    pub kind: String,
    /// First day.
    pub start_date: Option<Date>,
    /// Last day.
    pub end_date: Option<Date>,
    /// Weekly minutes (0: not stated).
    pub minutes_per_week: u32,
    /// Goals served.
    pub goal_ids: Vec<String>,
    /// Tags for the coordination checks.
    pub tags: Vec<String>,
}

/// Another sector's plan for a custody holder.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectorPlan {
    /// Id at the source; unique within the case.
    pub plan_id: String,
    /// For whom.
    pub custody_holder: PartyId,
    /// Sector.
    pub sector: Sector,
    /// Owning organisation.
    pub organisation: Organisation,
    /// Responsible person.
    pub contact_person: Option<ContactPerson>,
    /// System of record.
    pub system_of_record: String,
    /// First day.
    pub start_date: Option<Date>,
    /// Last day.
    pub end_date: Option<Date>,
    /// Goals.
    pub goals: Vec<SectorGoal>,
    /// Activities.
    pub activities: Vec<SectorActivity>,
}

/// A meeting with a professional.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Appointment {
    /// Id at the source; unique within the case.
    pub appointment_id: String,
    /// For whom.
    pub custody_holder: PartyId,
    /// Sector.
    pub sector: Sector,
    /// Organisation.
    pub organisation: Organisation,
    /// The professional met.
    pub professional: Option<ContactPerson>,
    /// What it is about.
    pub title: String,
    /// Start.
    pub start_time: Timestamp,
    /// End, if known.
    pub end_time: Option<Timestamp>,
    /// Where.
    pub location: String,
    /// Cancelled.
    pub cancelled: bool,
    /// Why cancelled.
    pub cancellation_reason: String,
}

fn list_len(c: &mut Collector, field: &str, len: usize) {
    if len > MAX_LIST_LEN {
        c.push(field, format!("has {len} entries; at most {MAX_LIST_LEN} are allowed"));
    }
}

fn text(c: &mut Collector, field: &str, value: &str) {
    if let Err(v) = check_text(field, value) {
        c.0.extend(v.0);
    }
}

fn external_id(c: &mut Collector, field: &str, value: &str, required: bool) {
    if (required || !value.is_empty())
        && let Err(v) = check_external_id(field, value)
    {
        c.0.extend(v.0);
    }
}

fn organisation(c: &mut Collector, field: &str, org: &Organisation) {
    if let Err(v) = crate::check_organisation(org, false) {
        c.0.extend(v.within(field).0);
    }
}

fn tags(c: &mut Collector, field: &str, tags: &[String]) {
    list_len(c, field, tags.len());
    for (i, tag) in tags.iter().enumerate() {
        if let Err(v) = crate::check_id(&format!("{field}[{i}]"), tag) {
            c.0.extend(v.0);
        }
    }
}

/// Field checks of a correspondence message that need no case state.
pub fn check_correspondence(m: &Correspondence) -> Result<(), Violations> {
    let mut c = Collector::default();
    external_id(&mut c, "message_id", &m.message_id, true);
    external_id(&mut c, "thread_id", &m.thread_id, false);
    external_id(&mut c, "in_reply_to", &m.in_reply_to, false);
    if m.activity != CorrespondenceActivity::New && m.in_reply_to.is_empty() && m.thread_id.is_empty() {
        c.push("in_reply_to", "a reply or forward must name its conversation (thread_id or in_reply_to)");
    }
    organisation(&mut c, "sender", &m.sender);
    organisation(&mut c, "receiver", &m.receiver);
    for (field, value) in [("category", &m.category), ("subject", &m.subject)] {
        text(&mut c, field, value);
    }
    if let Some(e) = &m.episode_of_care {
        text(&mut c, "episode_of_care.identifier", &e.identifier);
        text(&mut c, "episode_of_care.status", &e.status);
    }
    if m.entries.is_empty() {
        c.push("entries", "a message needs at least one text or attachment");
    }
    list_len(&mut c, "entries", m.entries.len());
    for (i, e) in m.entries.iter().enumerate() {
        let at = format!("entries[{i}]");
        external_id(&mut c, &format!("{at}.entry_id"), &e.entry_id, false);
        if e.text.len() > MAX_LETTER_LEN {
            c.push(
                format!("{at}.text"),
                format!("is {} bytes long; at most {MAX_LETTER_LEN} are allowed", e.text.len()),
            );
        }
        match &e.attachment {
            None if e.text.is_empty() => c.push(at.clone(), "an entry needs a text or an attachment"),
            None => {}
            Some(_) if !e.text.is_empty() => c.push(at.clone(), "an entry is a text or an attachment, not both"),
            Some(a) => {
                text(&mut c, &format!("{at}.attachment.title"), &a.title);
                if a.data.is_empty() && a.url.is_empty() {
                    c.push(format!("{at}.attachment"), "an attachment needs its data or a url");
                }
                if a.data.len() > MAX_ATTACHMENT_LEN {
                    c.push(
                        format!("{at}.attachment.data"),
                        format!("is {} bytes; at most {MAX_ATTACHMENT_LEN} are allowed", a.data.len()),
                    );
                }
            }
        }
        if let Some(org) = &e.author_organisation {
            organisation(&mut c, &format!("{at}.author_organisation"), org);
        }
    }
    c.finish()
}

/// Field checks of a sector plan that need no case state.
pub fn check_sector_plan(p: &SectorPlan) -> Result<(), Violations> {
    let mut c = Collector::default();
    external_id(&mut c, "plan_id", &p.plan_id, true);
    if !p.system_of_record.is_empty()
        && let Err(v) = crate::check_id("system_of_record", &p.system_of_record)
    {
        c.0.extend(v.0);
    }
    organisation(&mut c, "organisation", &p.organisation);
    if let (Some(s), Some(e)) = (p.start_date, p.end_date)
        && e < s
    {
        c.push("end_date", format!("{e} is before the start date {s}"));
    }
    list_len(&mut c, "goals", p.goals.len());
    for (i, g) in p.goals.iter().enumerate() {
        external_id(&mut c, &format!("goals[{i}].goal_id"), &g.goal_id, true);
        if p.goals[..i].iter().any(|h| h.goal_id == g.goal_id) {
            c.push(format!("goals[{i}].goal_id"), format!("{:?} is used twice", truncate(&g.goal_id, 80)));
        }
        text(&mut c, &format!("goals[{i}].text"), &g.text);
        tags(&mut c, &format!("goals[{i}].tags"), &g.tags);
    }
    list_len(&mut c, "activities", p.activities.len());
    for (i, a) in p.activities.iter().enumerate() {
        let at = format!("activities[{i}]");
        external_id(&mut c, &format!("{at}.activity_id"), &a.activity_id, true);
        if p.activities[..i].iter().any(|b| b.activity_id == a.activity_id) {
            c.push(format!("{at}.activity_id"), format!("{:?} is used twice", truncate(&a.activity_id, 80)));
        }
        text(&mut c, &format!("{at}.title"), &a.title);
        text(&mut c, &format!("{at}.kind"), &a.kind);
        if let (Some(s), Some(e)) = (a.start_date, a.end_date)
            && e < s
        {
            c.push(format!("{at}.end_date"), format!("{e} is before the start date {s}"));
        }
        if a.minutes_per_week > 7 * 24 * 60 {
            c.push(format!("{at}.minutes_per_week"), format!("{} is more than a week has", a.minutes_per_week));
        }
        for (j, g) in a.goal_ids.iter().enumerate() {
            if !p.goals.iter().any(|goal| &goal.goal_id == g) {
                c.push(format!("{at}.goal_ids[{j}]"), format!("the plan has no goal {:?}", truncate(g, 80)));
            }
        }
        tags(&mut c, &format!("{at}.tags"), &a.tags);
    }
    c.finish()
}

/// Field checks of an appointment that need no case state.
pub fn check_appointment(a: &Appointment) -> Result<(), Violations> {
    let mut c = Collector::default();
    external_id(&mut c, "appointment_id", &a.appointment_id, true);
    organisation(&mut c, "organisation", &a.organisation);
    text(&mut c, "title", &a.title);
    text(&mut c, "location", &a.location);
    if let Some(end) = a.end_time
        && end <= a.start_time
    {
        c.push("end_time", "must be after the start time");
    }
    if a.cancelled {
        c.push("cancelled", "schedule an appointment uncancelled; cancel it with appointment_cancelled");
    }
    c.finish()
}
