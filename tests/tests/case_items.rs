//! A case's letters and appointments as resources of their own, through a
//! running gateway: `GetCase` carries only their counts;
//! `ListCorrespondence` pages through the letters in the order recorded
//! (texts left out unless asked for) and `GetCorrespondence` returns one
//! whole; `ListAppointments` pages through the appointments by start time,
//! moved and cancelled ones as they now stand; every read is audited.

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_e2e::{TEST_CVR, TestGateway, append, letter_to_psychiatry, new_case, revision_offered};
use bro_server::access::client::AuthChannel;
use prost::Message as _;
use tonic::Code;

/// Every letter of a case, page by page, and the number of pages.
async fn all_letters(
    client: &mut CaseServiceClient<AuthChannel>,
    case: &str,
    page_size: i32,
    view: pb::CorrespondenceView,
) -> (Vec<pb::CaseCorrespondence>, usize) {
    let (mut letters, mut pages, mut page_token) = (Vec::new(), 0, String::new());
    loop {
        let request =
            pb::ListCorrespondenceRequest { parent: format!("cases/{case}"), page_size, page_token, view: view.into() };
        let page = client.list_correspondence(request).await.expect("list").into_inner();
        pages += 1;
        letters.extend(page.correspondence);
        if page.next_page_token.is_empty() {
            return (letters, pages);
        }
        page_token = page.next_page_token;
    }
}

fn text_of(letter: &pb::CaseCorrespondence) -> &str {
    letter.correspondence.as_ref().map_or("", |c| c.entries[0].text.as_str())
}

#[tokio::test]
async fn letters_are_their_own_resource_outside_the_case() {
    let gw = TestGateway::start().await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    client.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    // Seven letters among other events, the last one with an attachment.
    let mut history: Vec<pb::CaseEvent> = Vec::new();
    for n in 1..=7 {
        history.push(letter_to_psychiatry("2026-03-02", "parent-1", n));
        history.push(revision_offered("2026-03-02"));
    }
    if let Some(Kind::CorrespondenceRecorded(r)) = &mut history[12].kind
        && let Some(letter) = &mut r.correspondence
    {
        letter.entries.push(pb::CorrespondenceEntry {
            entry_id: "letter-7-2".into(),
            attachment: Some(pb::Attachment {
                title: "plan.pdf".into(),
                content_type: "application/pdf".into(),
                data: b"%PDF-1.7 synthetic".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let appended = client.append_case_events(append("c1", "h1", history, "")).await.expect("history").into_inner();
    // A letter recorded later but dated earlier still lists after the others.
    let backdated = letter_to_psychiatry("2026-01-10", "parent-2", 8);
    client.append_case_events(append("c1", "h2", vec![backdated], "")).await.expect("backdated letter");

    // The case holds the count, none of the letters' words.
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("get").into_inner();
    let case = case.case.expect("case");
    assert_eq!(case.correspondence_count, 8);
    let holds = |bytes: Vec<u8>, word: &str| bytes.windows(word.len()).any(|w| w == word.as_bytes());
    assert!(!holds(case.encode_to_vec(), "fælles møde"), "no letter text in GetCase");
    assert!(!holds(appended.case.expect("case").encode_to_vec(), "letter-"), "nor in the append's answer");

    // Pages of three, in the order recorded; the basic view leaves out texts and bytes.
    let (basic, pages) = all_letters(&mut client, "c1", 3, pb::CorrespondenceView::Unspecified).await;
    assert_eq!(pages, 3);
    let names: Vec<&str> = basic.iter().map(|l| l.name.as_str()).collect();
    let expected: Vec<String> = (1..=8).map(|n| format!("cases/c1/correspondence/letter-{n}")).collect();
    assert_eq!(names, expected);
    assert!(basic.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(basic[0].sequence, 2, "letter-1 is event 2");
    assert_eq!(basic[7].occurred_on, Some(bro_e2e::date("2026-01-10")));
    assert!(basic.iter().all(|l| text_of(l).is_empty()), "no texts in the basic view");
    let attachment = basic[6].correspondence.as_ref().and_then(|c| c.entries[1].attachment.as_ref()).expect("kept");
    assert_eq!((attachment.title.as_str(), attachment.data.len()), ("plan.pdf", 0));
    let (full, _) = all_letters(&mut client, "c1", 1000, pb::CorrespondenceView::Full).await;
    assert_eq!(full.len(), 8);
    assert!(full.iter().all(|l| text_of(l).contains("fælles møde")), "texts in the full view");

    // One letter, whole by default.
    let get = |name: &str, view: pb::CorrespondenceView| pb::GetCorrespondenceRequest {
        name: name.to_owned(),
        view: view.into(),
    };
    let one = client
        .get_correspondence(get("cases/c1/correspondence/letter-7", pb::CorrespondenceView::Unspecified))
        .await
        .expect("get letter")
        .into_inner()
        .correspondence
        .expect("letter");
    assert_eq!(one, full[6]);
    let data = one.correspondence.as_ref().and_then(|c| c.entries[1].attachment.as_ref()).map(|a| a.data.clone());
    assert_eq!(data.as_deref(), Some(&b"%PDF-1.7 synthetic"[..]));
    let basic_one = client
        .get_correspondence(get("cases/c1/correspondence/letter-7", pb::CorrespondenceView::Basic))
        .await
        .expect("basic letter")
        .into_inner();
    assert_eq!(basic_one.correspondence.as_ref(), Some(&basic[6]));

    // Clear errors naming the problem.
    let err = client
        .get_correspondence(get("cases/c1/correspondence/letter-9", pb::CorrespondenceView::Unspecified))
        .await
        .expect_err("no such letter");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("cases/c1/correspondence/letter-9"), "{}", err.message());
    let err = client
        .get_correspondence(get("cases/c1/letters/letter-1", pb::CorrespondenceView::Unspecified))
        .await
        .expect_err("malformed name");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cases/{case}/correspondence/{message_id}"), "{}", err.message());
    let err = client
        .get_correspondence(get("cases/none/correspondence/letter-1", pb::CorrespondenceView::Unspecified))
        .await
        .expect_err("no such case");
    assert_eq!(err.code(), Code::NotFound);
    let bad_view = pb::ListCorrespondenceRequest { parent: "cases/c1".into(), view: 7, ..Default::default() };
    let err = client.list_correspondence(bad_view).await.expect_err("unknown view");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("view"), "{}", err.message());
    let foreign_token = pb::ListCorrespondenceRequest {
        parent: "cases/c1".into(),
        page_token: bro_e2e::date("2026-01-01").year.to_string(),
        ..Default::default()
    };
    let err = client.list_correspondence(foreign_token).await.expect_err("not a page token");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Another municipality reads none of it.
    let mut elsewhere = CaseServiceClient::new(gw.caseworker("87654321").await.expect("channel"));
    let err = elsewhere
        .list_correspondence(pb::ListCorrespondenceRequest { parent: "cases/c1".into(), ..Default::default() })
        .await
        .expect_err("another municipality");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Every read left its record, naming the case.
    drop(client);
    let records = gw.audit_records().await;
    let reads = |method: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r.method == format!("/bro.v1.CaseService/{method}") && r.outcome == outcome)
            .filter(|r| r.case == "cases/c1" && r.data_kind == "correspondence")
            .count()
    };
    assert_eq!(reads("ListCorrespondence", "OK"), 3 + 1);
    assert_eq!(reads("GetCorrespondence", "OK"), 2);
    assert_eq!(reads("GetCorrespondence", "NOT_FOUND"), 1);
    assert_eq!(reads("ListCorrespondence", "PERMISSION_DENIED"), 1);
    gw.stop().await.expect("stops");
}

fn appointment(id: &str, sector: pb::Sector, hour: i64) -> pb::CaseEvent {
    let start = 1_772_445_600 + hour * 3600;
    bro_e2e::event(
        "2026-03-02",
        Kind::AppointmentScheduled(pb::AppointmentScheduled {
            appointment: Some(pb::Appointment {
                appointment_id: id.into(),
                custody_holder: "parent-1".into(),
                sector: sector.into(),
                organisation: Some(pb::Organisation { display_name: "Jobcenter Bro".into(), ..Default::default() }),
                title: format!("Samtale {id}"),
                start_time: Some(prost_types::Timestamp { seconds: start, nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: start + 3600, nanos: 0 }),
                ..Default::default()
            }),
        }),
    )
}

#[tokio::test]
async fn appointments_are_their_own_resource_by_start_time() {
    let gw = TestGateway::start().await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    client.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    // Five appointments, two at the same hour; then one moved and one cancelled.
    let events = vec![
        appointment("job/3", pb::Sector::Jobcentre, 30),
        appointment("psy-1", pb::Sector::Psychiatry, 10),
        appointment("job-2", pb::Sector::Jobcentre, 20),
        appointment("job-1", pb::Sector::Jobcentre, 20),
        appointment("psy-2", pb::Sector::Psychiatry, 40),
        appointment("psy-1", pb::Sector::Psychiatry, 50),
        bro_e2e::event(
            "2026-03-02",
            Kind::AppointmentCancelled(pb::AppointmentCancelled {
                appointment_id: "psy-2".into(),
                reason: "Aflyst af behandleren".into(),
            }),
        ),
    ];
    client.append_case_events(append("c1", "a1", events, "")).await.expect("appointments");
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("get").into_inner();
    assert_eq!(case.case.expect("case").appointment_count, 5);

    let (mut listed, mut pages, mut page_token) = (Vec::new(), 0, String::new());
    loop {
        let request = pb::ListAppointmentsRequest { parent: "cases/c1".into(), page_size: 2, page_token };
        let page = client.list_appointments(request).await.expect("list").into_inner();
        pages += 1;
        listed.extend(page.appointments);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let names: Vec<&str> = listed.iter().map(|a| a.name.as_str()).collect();
    let ids = ["job-1", "job-2", "job/3", "psy-2", "psy-1"];
    let expected: Vec<String> = ids.iter().map(|id| format!("cases/c1/appointments/{id}")).collect();
    assert_eq!(names, expected, "by start time, then id; the moved one at its new time");
    let cancelled = listed[3].appointment.as_ref().expect("appointment");
    assert!(cancelled.cancelled && cancelled.cancellation_reason == "Aflyst af behandleren");

    let one = client
        .get_appointment(pb::GetAppointmentRequest { name: "cases/c1/appointments/job/3".into() })
        .await
        .expect("get appointment")
        .into_inner();
    assert_eq!(one.appointment.as_ref(), Some(&listed[2]));
    let err = client
        .get_appointment(pb::GetAppointmentRequest { name: "cases/c1/appointments/job-9".into() })
        .await
        .expect_err("no such appointment");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("cases/c1/appointments/job-9"), "{}", err.message());
    let bad = pb::ListAppointmentsRequest { parent: "cases/c1".into(), page_token: "bm9wZQ".into(), page_size: 2 };
    assert_eq!(client.list_appointments(bad).await.expect_err("bad token").code(), Code::InvalidArgument);

    drop(client);
    let records = gw.audit_records().await;
    let listed = records
        .iter()
        .filter(|r| r.method == "/bro.v1.CaseService/ListAppointments" && r.outcome == "OK")
        .filter(|r| r.case == "cases/c1" && r.data_kind == "appointments")
        .count();
    assert_eq!(listed, 3, "each page read is audited");
    gw.stop().await.expect("stops");
}
