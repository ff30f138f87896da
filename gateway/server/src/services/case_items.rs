//! A case's letters and appointments as resources of their own,
//! `cases/{case}/correspondence/{id}` and `cases/{case}/appointments/{id}`
//! (`ListCorrespondence`, `GetCorrespondence`, `ListAppointments`,
//! `GetAppointment` of `bro.v1.CaseService`), so that the case's projection
//! does not grow with them. The case keeps a reference to each letter
//! ([`CorrespondenceRef`]); the letter itself is read from the event that
//! recorded it, so it is stored once. Appointments come from the case's
//! state, which the rules need them in.

use bro_api::convert;
use bro_api::v1 as pb;
use bro_domain::{Appointment, CaseId, CorrespondenceRef, Violations, truncate};

use super::cases::CaseApi;
use crate::access::Caller;
use crate::access::policy::{Grant, Rpc};
use crate::error::ApiError;
use crate::paging::{self, DEFAULT_PAGE_SIZE};

/// How much of a letter to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Without entries' texts and attachments' data.
    Basic,
    /// Everything.
    Full,
}

impl View {
    /// The request's view, or `default` when it names none.
    fn from_pb(raw: i32, default: View) -> Result<View, Violations> {
        match pb::CorrespondenceView::try_from(raw) {
            Ok(pb::CorrespondenceView::Unspecified) => Ok(default),
            Ok(pb::CorrespondenceView::Basic) => Ok(View::Basic),
            Ok(pb::CorrespondenceView::Full) => Ok(View::Full),
            Err(_) => Err(Violations::one("view", format!("{raw} is not a CorrespondenceView"))),
        }
    }
}

/// `cases/{case}/{collection}/{id}`: the case and the item's id (the rest
/// of the name, which may hold `/`).
fn parse_name<'a>(name: &'a str, collection: &str, id: &str) -> Result<(CaseId, &'a str), Violations> {
    let malformed = || {
        Violations::one(
            "name",
            format!("{:?} is not a name of the form cases/{{case}}/{collection}/{{{id}}}", truncate(name, 80)),
        )
    };
    if name.is_empty() {
        return Err(Violations::one("name", "is required"));
    }
    let rest = name.strip_prefix("cases/").ok_or_else(malformed)?;
    let (case, item) = rest.split_once(&format!("/{collection}/")).ok_or_else(malformed)?;
    if item.is_empty() {
        return Err(malformed());
    }
    Ok((CaseId::parse("name", case)?, item))
}

fn letter_name(case_id: &CaseId, message_id: &str) -> String {
    format!("{}/correspondence/{message_id}", case_id.resource_name())
}

fn appointment_name(case_id: &CaseId, appointment_id: &str) -> String {
    format!("{}/appointments/{appointment_id}", case_id.resource_name())
}

/// The order of the appointments' listing, and its page tokens: start
/// time, then id (ids are unique within a case).
fn appointment_key(a: &Appointment) -> (i64, u32, &str) {
    (a.start_time.timestamp(), a.start_time.timestamp_subsec_nanos(), a.appointment_id.as_str())
}

fn encode_appointment_key((seconds, nanos, id): (i64, u32, &str)) -> String {
    format!("{seconds}.{nanos:09}/{id}")
}

fn decode_appointment_key(key: &str) -> Option<(i64, u32, &str)> {
    let (time, id) = key.split_once('/')?;
    let (seconds, nanos) = time.split_once('.')?;
    Some((seconds.parse().ok()?, nanos.parse().ok()?, id))
}

/// Whether the caller's grant covers an appointment.
fn may_see_appointment(grant: &Grant, appointment: &Appointment) -> bool {
    match grant {
        Grant::Full => true,
        Grant::Sector(scope) => scope.may_see_appointment(appointment),
    }
}

/// Whether the caller's grant covers a letter.
fn may_read(grant: &Grant, letter: &CorrespondenceRef) -> bool {
    match grant {
        Grant::Full => true,
        Grant::Sector(scope) => scope.may_read(letter),
    }
}

/// Drops what the BASIC view leaves out: texts and attachments' bytes.
fn basic(mut letter: pb::Correspondence) -> pb::Correspondence {
    for entry in &mut letter.entries {
        entry.text.clear();
        if let Some(attachment) = &mut entry.attachment {
            attachment.data.clear();
        }
    }
    letter
}

impl CaseApi {
    /// Reads a letter from the event that recorded it.
    async fn letter(
        &self,
        case_id: &CaseId,
        letter: &CorrespondenceRef,
        view: View,
    ) -> Result<pb::CaseCorrespondence, ApiError> {
        let events = self.ctx.ledger.events(case_id, letter.sequence.saturating_sub(1), 1).await?;
        let recorded = events.into_iter().next().and_then(|event| match event.kind {
            Some(pb::case_event::Kind::CorrespondenceRecorded(r)) => {
                r.correspondence.map(|c| (event.sequence, event.occurred_on, event.record_time, c))
            }
            _ => None,
        });
        let Some((sequence, occurred_on, record_time, correspondence)) = recorded else {
            let why =
                format!("event {} of case {case_id} does not hold letter {:?}", letter.sequence, letter.message_id);
            return Err(bro_store::StoreError::Corrupt(why).into());
        };
        let correspondence = match view {
            View::Full => correspondence,
            View::Basic => basic(correspondence),
        };
        Ok(pb::CaseCorrespondence {
            name: letter_name(case_id, &letter.message_id),
            sequence,
            occurred_on,
            record_time,
            correspondence: Some(correspondence),
        })
    }

    pub(super) async fn list_correspondence(
        &self,
        caller: Caller,
        req: pb::ListCorrespondenceRequest,
    ) -> Result<pb::ListCorrespondenceResponse, ApiError> {
        let case_id = CaseId::from_resource_name("parent", &req.parent)?;
        let limit = paging::page_size(req.page_size, DEFAULT_PAGE_SIZE)?;
        let view = View::from_pb(req.view, View::Basic)?;
        let scope = format!("correspondence|{case_id}");
        let after = paging::decode_token(&req.page_token, &scope)?;
        let (case, grant) = self.ctx.authorize_case(&caller, Rpc::ListCorrespondence, &case_id).await?;
        // In the order recorded; a letter recorded later always comes after
        // the page token's, even one backdated to an earlier legal date.
        let mut letters: Vec<&CorrespondenceRef> =
            case.correspondence.iter().filter(|l| l.sequence > after && may_read(&grant, l)).collect();
        letters.sort_by_key(|l| l.sequence);
        let more = letters.len() > limit;
        letters.truncate(limit);
        let mut correspondence = Vec::with_capacity(letters.len());
        for letter in &letters {
            correspondence.push(self.letter(&case_id, letter, view).await?);
        }
        let next_page_token = match letters.last() {
            Some(last) if more => paging::encode_token(&scope, last.sequence),
            _ => String::new(),
        };
        Ok(pb::ListCorrespondenceResponse { correspondence, next_page_token })
    }

    pub(super) async fn get_correspondence(
        &self,
        caller: Caller,
        req: pb::GetCorrespondenceRequest,
    ) -> Result<pb::GetCorrespondenceResponse, ApiError> {
        let (case_id, message_id) = parse_name(&req.name, "correspondence", "message_id")?;
        let view = View::from_pb(req.view, View::Full)?;
        let (case, grant) = self.ctx.authorize_case(&caller, Rpc::GetCorrespondence, &case_id).await?;
        // A letter the caller may not read is as absent as one never recorded.
        let letter = case.correspondence.iter().find(|l| l.message_id == message_id && may_read(&grant, l));
        let Some(letter) = letter else {
            return Err(ApiError::NotFound {
                reason: "CORRESPONDENCE_NOT_FOUND",
                name: letter_name(&case_id, message_id),
            });
        };
        let correspondence = self.letter(&case_id, letter, view).await?;
        Ok(pb::GetCorrespondenceResponse { correspondence: Some(correspondence) })
    }
}

impl CaseApi {
    pub(super) async fn list_appointments(
        &self,
        caller: Caller,
        req: pb::ListAppointmentsRequest,
    ) -> Result<pb::ListAppointmentsResponse, ApiError> {
        let case_id = CaseId::from_resource_name("parent", &req.parent)?;
        let limit = paging::page_size(req.page_size, DEFAULT_PAGE_SIZE)?;
        let scope = format!("appointments|{case_id}");
        let token = paging::decode_key_token(&req.page_token, &scope)?;
        let after = match token.as_str() {
            "" => None,
            key => Some(decode_appointment_key(key).ok_or_else(|| {
                Violations::one("page_token", "is not a page token this server issued for this query")
            })?),
        };
        let (case, grant) = self.ctx.authorize_case(&caller, Rpc::ListAppointments, &case_id).await?;
        let mut shown: Vec<&Appointment> = case
            .appointments
            .iter()
            .filter(|a| may_see_appointment(&grant, a) && after.is_none_or(|k| appointment_key(a) > k))
            .collect();
        shown.sort_by(|a, b| appointment_key(a).cmp(&appointment_key(b)));
        let more = shown.len() > limit;
        shown.truncate(limit);
        let next_page_token = match shown.last() {
            Some(last) if more => paging::encode_key_token(&scope, &encode_appointment_key(appointment_key(last))),
            _ => String::new(),
        };
        let appointments = shown
            .into_iter()
            .map(|a| pb::CaseAppointment {
                name: appointment_name(&case_id, &a.appointment_id),
                appointment: Some(convert::appointment_to_pb(a)),
            })
            .collect();
        Ok(pb::ListAppointmentsResponse { appointments, next_page_token })
    }

    pub(super) async fn get_appointment(
        &self,
        caller: Caller,
        req: pb::GetAppointmentRequest,
    ) -> Result<pb::GetAppointmentResponse, ApiError> {
        let (case_id, appointment_id) = parse_name(&req.name, "appointments", "appointment_id")?;
        let (case, grant) = self.ctx.authorize_case(&caller, Rpc::GetAppointment, &case_id).await?;
        // One the caller may not see is as absent as one never scheduled.
        let found =
            case.appointments.iter().find(|a| a.appointment_id == appointment_id && may_see_appointment(&grant, a));
        let Some(appointment) = found else {
            let name = appointment_name(&case_id, appointment_id);
            return Err(ApiError::NotFound { reason: "APPOINTMENT_NOT_FOUND", name });
        };
        let appointment = pb::CaseAppointment {
            name: appointment_name(&case_id, appointment_id),
            appointment: Some(convert::appointment_to_pb(appointment)),
        };
        Ok(pb::GetAppointmentResponse { appointment: Some(appointment) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_items_parse_with_slashes_in_the_id() {
        let (case, id) = parse_name("cases/c-1/correspondence/urn:uuid:1/2", "correspondence", "id").expect("parses");
        assert_eq!((case.as_str(), id), ("c-1", "urn:uuid:1/2"));
        assert_eq!(letter_name(&case, id), "cases/c-1/correspondence/urn:uuid:1/2");
        let (case, id) = parse_name("cases/c-1/appointments/job/7", "appointments", "id").expect("parses");
        assert_eq!(appointment_name(&case, id), "cases/c-1/appointments/job/7");
        for bad in ["", "cases/c-1", "cases/c-1/correspondence/", "letters/x", "cases/C!/correspondence/x"] {
            assert!(parse_name(bad, "correspondence", "id").is_err(), "{bad:?} is refused");
        }
        assert!(parse_name("cases/c-1/correspondence/x", "appointments", "id").is_err());
    }

    #[test]
    fn appointment_keys_round_trip_and_order_by_time_then_id() {
        let key = (1_772_445_600, 5, "job/1");
        assert_eq!(decode_appointment_key(&encode_appointment_key(key)), Some(key));
        assert_eq!(decode_appointment_key("-5.000000000/x"), Some((-5, 0, "x")));
        for bad in ["", "x", "1/x", "a.1/x", "1.b/x"] {
            assert_eq!(decode_appointment_key(bad), None, "{bad:?}");
        }
        assert!((1, 0, "b") < (1, 1, "a") && (1, 1, "a") < (1, 1, "b"));
    }

    #[test]
    fn the_basic_view_drops_texts_and_attachment_bytes_only() {
        let letter = pb::Correspondence {
            message_id: "m-1".into(),
            subject: "Møde".into(),
            entries: vec![pb::CorrespondenceEntry {
                entry_id: "e-1".into(),
                text: "Vi foreslår et møde.".into(),
                attachment: Some(pb::Attachment {
                    title: "plan.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: vec![1, 2, 3],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let shown = basic(letter);
        assert_eq!((shown.message_id.as_str(), shown.subject.as_str()), ("m-1", "Møde"));
        let entry = &shown.entries[0];
        assert_eq!((entry.entry_id.as_str(), entry.text.as_str()), ("e-1", ""));
        let attachment = entry.attachment.as_ref().expect("kept");
        assert_eq!((attachment.title.as_str(), attachment.data.len()), ("plan.pdf", 0));
    }
}
