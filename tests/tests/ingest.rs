//! Ingest through a running gateway with the real `medcom` adapter: MedCom
//! messages matched to a case and appended once, unmatched messages queued
//! and resolved, refused messages stored as rejections with nothing applied.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::ingest_service_client::IngestServiceClient;
use bro_e2e::{TestGateway, adapter_registry, medcom_fixture as fixture, new_case};
use bro_server::ServeOptions;
use bro_server::access::{Purpose, Role};
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use tonic::Code;
use tonic_types::StatusExt;

fn options() -> ServeOptions {
    // The municipality's own psychiatry partner: its unmatched messages are the municipality's to work.
    let mut psychiatry = SystemConfig::new("psykiatri", "medcom", "fhir+xml", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    psychiatry.serves = Some("29189846".into());
    ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![psychiatry]).expect("valid systems")),
        ..ServeOptions::default()
    }
}

fn ingest(request_id: &str, content_type: &str, body: Vec<u8>) -> pb::IngestRequest {
    pb::IngestRequest {
        system: "psykiatri".into(),
        message: Some(pb::ExternalMessage {
            content_type: content_type.into(),
            body,
            metadata: [("sector".to_owned(), "psychiatry".to_owned())].into(),
        }),
        request_id: request_id.into(),
    }
}

fn correspondence(events: &[pb::CaseEvent]) -> Vec<&pb::Correspondence> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::CorrespondenceRecorded(c)) => c.correspondence.as_ref(),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn medcom_messages_are_matched_appended_once_queued_or_rejected() {
    let gw = TestGateway::start_with(options()).await.expect("gateway starts");
    let caseworker = gw.caseworker("29189846").await.expect("channel");
    let mut cases = pb::case_service_client::CaseServiceClient::new(caseworker.clone());
    // The caseworker works the queue of unmatched messages and rejections.
    let mut inbox = IngestServiceClient::new(caseworker);
    let mut create = new_case("ingest-1", "29189846");
    let mother = bro_e2e::medcom_mother();
    create.custody_holders = vec![mother];
    cases.create_case(create).await.expect("case created");
    // The mother consents to sharing with psychiatry: it is told where its letters go.
    let consent = bro_e2e::event(
        "2026-02-01",
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "mother".into(), scope: "share:psychiatry".into() }),
    );
    cases.append_case_events(bro_e2e::append("ingest-1", "consent-1", vec![consent], "")).await.expect("consent");
    let mut client = IngestServiceClient::new(gw.system("psykiatri").await.expect("channel"));

    // A CareCommunication about the mother: matched by her identifier.
    let body = fixture("cc-0d5b3c18-replacement-cpr.in.json");
    let first =
        client.ingest(ingest("in-1", "application/fhir+json", body.clone())).await.expect("ingest").into_inner();
    assert_eq!(first.outcome(), pb::IngestOutcome::Appended);
    assert_eq!(first.case, "cases/ingest-1");
    let letters = correspondence(&first.events);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].custody_holder, "mother", "subjects/0 resolved to the matched custody holder");
    assert_eq!(letters[0].sector(), pb::Sector::Psychiatry);
    let source = first.events[0].source.as_ref().expect("source");
    assert_eq!(source.system, "psykiatri");
    assert!(!source.message_id.is_empty());

    // The same request again, and the same message under another request id: stored once.
    let again = client.ingest(ingest("in-1", "application/fhir+json", body.clone())).await.expect("retry").into_inner();
    assert_eq!(again.outcome(), pb::IngestOutcome::Duplicate);
    assert_eq!(again.events, first.events);
    // The same request id for another message is a reuse, refused; nothing is stored.
    let other = fixture("cc-add5e7e2-new-message.in.json");
    let err = client.ingest(ingest("in-1", "application/fhir+json", other)).await.expect_err("reused id");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.get_error_details().error_info().expect("info").reason, "REQUEST_ID_REUSED");
    let xml = fixture("cc-0d5b3c18-replacement-cpr.in.xml");
    let resent = client.ingest(ingest("in-2", "application/fhir+xml", xml)).await.expect("resend").into_inner();
    assert_eq!(resent.outcome(), pb::IngestOutcome::Duplicate, "the XML form of the same message is the same message");
    let case = cases.get_case(pb::GetCaseRequest { name: "cases/ingest-1".into() }).await.expect("get");
    let case = case.into_inner().case.expect("case");
    assert_eq!(case.correspondence_count, 1, "one message, stored once");
    assert_eq!(case.version, 3);

    // An XDIS91 letter about a patient no case knows: queued, then resolved by a caseworker.
    let letter = client.ingest(ingest("in-3", "application/xml", fixture("DIS91_1.in.xml"))).await.expect("ingest");
    let letter = letter.into_inner();
    assert_eq!(letter.outcome(), pb::IngestOutcome::Accepted, "psychiatry is not told that nothing matched");
    assert!(letter.unmatched_message.is_empty() && letter.case.is_empty());
    let queued = inbox
        .list_unmatched_messages(pb::ListUnmatchedMessagesRequest {
            filter: "state = \"open\"".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(queued.unmatched_messages.len(), 1);
    let letter_name = queued.unmatched_messages[0].name.clone();
    assert_eq!(queued.unmatched_messages[0].event_types, ["correspondence_recorded"]);
    let resolved = inbox
        .resolve_unmatched_message(pb::ResolveUnmatchedMessageRequest {
            name: letter_name.clone(),
            case: "cases/ingest-1".into(),
            custody_holder: "mother".into(),
            // The letter names the father, whom the case does not hold: attached with a reason.
            override_reason: "the letter concerns the mother's treatment plan".into(),
        })
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(resolved.case.expect("case").correspondence_count, 2);
    let requeued = client.ingest(ingest("in-4", "application/xml", fixture("DIS91_1.in.xml"))).await.expect("resend");
    assert_eq!(
        requeued.into_inner().outcome(),
        pb::IngestOutcome::Duplicate,
        "the resolved letter is not queued again"
    );

    // A referral is not correspondence: refused by name, stored as a rejection, nothing appended.
    let err = client.ingest(ingest("in-5", "application/xml", fixture("REF01_1.in.xml"))).await.expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("XREF01"), "{}", err.message());
    let info = err.get_error_details().error_info().cloned().expect("error info");
    assert_eq!(info.reason, "MESSAGE_REJECTED");
    let rejections = inbox.list_rejections(pb::ListRejectionsRequest::default()).await.expect("list").into_inner();
    assert_eq!(rejections.rejections.len(), 1);
    assert_eq!(rejections.rejections[0].name, info.metadata["rejection"]);
    assert!(rejections.rejections[0].reason.contains("XREF01"));
    assert_eq!(rejections.rejections[0].request_id, "in-5", "the client's request id");
    let retry = client.ingest(ingest("in-5", "application/xml", fixture("REF01_1.in.xml"))).await.expect_err("same");
    assert_eq!(retry.get_error_details().error_info().expect("info").metadata["rejection"], info.metadata["rejection"]);
    let case = cases.get_case(pb::GetCaseRequest { name: "cases/ingest-1".into() }).await.expect("get");
    assert_eq!(case.into_inner().case.expect("case").version, 4, "only the resolved letter was added");

    // A message that concerns no case here is set aside; it stays listed, and cannot then be resolved.
    let stray = client
        .ingest(ingest("in-7", "application/fhir+json", fixture("cc-add5e7e2-new-message.in.json")))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(stray.outcome(), pb::IngestOutcome::Accepted);
    let open = inbox
        .list_unmatched_messages(pb::ListUnmatchedMessagesRequest {
            filter: "state = \"open\"".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let stray_name = open.unmatched_messages.last().expect("the stray message waits").name.clone();
    let discard = pb::DiscardUnmatchedMessageRequest { name: stray_name.clone() };
    let discarded = inbox.discard_unmatched_message(discard.clone()).await.expect("discard").into_inner();
    assert_eq!(discarded.unmatched_message.expect("message").state, "discarded");
    inbox.discard_unmatched_message(discard).await.expect("discarding twice is discarding once");
    let resolve = pb::ResolveUnmatchedMessageRequest {
        name: stray_name,
        case: "cases/ingest-1".into(),
        custody_holder: "mother".into(),
        override_reason: String::new(),
    };
    let err = inbox.resolve_unmatched_message(resolve).await.expect_err("discarded");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Empty bodies are bad requests, not rejections; no system sends as another.
    let mut bad = ingest("in-6", "application/xml", Vec::new());
    let err = client.ingest(bad.clone()).await.expect_err("empty body");
    assert_eq!(err.code(), Code::InvalidArgument);
    bad.system = "nope".into();
    bad.message.as_mut().expect("message").body = b"<x/>".to_vec();
    let err = client.ingest(bad).await.expect_err("another system");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("only as itself"), "{}", err.message());
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_hostile_adapter_stores_nothing_but_rejections() {
    let hostile = SystemConfig::new("hostile", "hostile", "", &[], Transport::None)
        .with_access(SystemAccess::Municipal { cvr: bro_e2e::TEST_CVR.into() });
    let options = ServeOptions {
        // A backstop far above what the fuel takes, however loaded the machine.
        adapters: Some(bro_e2e::adapter_registry_with(
            &["hostile"],
            bro_plugin_host::AdapterLimits { deadline: std::time::Duration::from_secs(30), ..Default::default() },
        )),
        systems: Arc::new(Systems::new(vec![hostile]).expect("valid systems")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let client = IngestServiceClient::new(gw.system("hostile").await.expect("channel"));
    let mut inbox =
        IngestServiceClient::new(gw.person(Role::Administrator, Purpose::Operations).await.expect("channel"));
    let sent = |behaviour: &str| {
        let request = pb::IngestRequest {
            system: "hostile".into(),
            message: Some(pb::ExternalMessage {
                content_type: behaviour.into(),
                body: b"x".to_vec(),
                ..Default::default()
            }),
            request_id: format!("h-{behaviour}"),
        };
        let mut client = client.clone();
        async move { client.ingest(request).await }
    };
    // A message that runs the adapter out of fuel is the message's fault, on
    // an idle machine as on a loaded one: a stored rejection naming the
    // limit, so the sender stops retrying. Likewise a crash on it (the
    // adapter still answers describe()), a panic, an oversized or empty answer.
    for behaviour in ["loop", "trap", "panic", "big-output", "log-flood"] {
        let err = sent(behaviour).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{behaviour}: {}", err.message());
        assert_eq!(err.get_error_details().error_info().expect("info").reason, "MESSAGE_REJECTED");
    }
    let rejections = inbox.list_rejections(pb::ListRejectionsRequest::default()).await.expect("list").into_inner();
    assert_eq!(rejections.rejections.len(), 5);
    assert!(
        rejections.rejections[0].reason.contains("fuel budget of 2_000_000_000 units"),
        "{:?}",
        rejections.rejections[0]
    );
    let unmatched = inbox.list_unmatched_messages(pb::ListUnmatchedMessagesRequest::default()).await.expect("list");
    assert!(unmatched.into_inner().unmatched_messages.is_empty());
    let mut cases = gw.client().await.expect("client");
    let listed = cases.list_cases(pb::ListCasesRequest::default()).await.expect("list").into_inner();
    assert!(listed.cases.is_empty(), "no case was touched");
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_system_learns_nothing_from_ingest_of_a_case_beyond_its_reach() {
    // Municipality 87654321's own journal; the case is 29189846's.
    let other = SystemConfig::new("journal-b", "medcom", "fhir+xml", &[], Transport::None)
        .with_access(SystemAccess::Municipal { cvr: "87654321".into() });
    let options = ServeOptions {
        adapters: Some(adapter_registry(&["medcom"])),
        systems: Arc::new(Systems::new(vec![other]).expect("valid systems")),
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await.expect("gateway starts");
    let mut cases = pb::case_service_client::CaseServiceClient::new(gw.caseworker("29189846").await.expect("channel"));
    let mut create = new_case("reach-1", "29189846");
    let mother = bro_e2e::medcom_mother();
    create.custody_holders = vec![mother];
    cases.create_case(create).await.expect("case created");
    let mut client = IngestServiceClient::new(gw.system("journal-b").await.expect("channel"));
    let request = |id: &str, content_type: &str, body: Vec<u8>| pb::IngestRequest {
        system: "journal-b".into(),
        ..ingest(id, content_type, body)
    };
    // A letter about the case's mother, and one about a person no case knows: the same answer.
    let hit = fixture("cc-0d5b3c18-replacement-cpr.in.json");
    let hit = client.ingest(request("b-1", "application/fhir+json", hit)).await.expect("ingest").into_inner();
    let miss = client.ingest(request("b-2", "application/xml", fixture("DIS91_1.in.xml"))).await.expect("ingest");
    let miss = miss.into_inner();
    for answer in [&hit, &miss] {
        assert_eq!(answer.outcome(), pb::IngestOutcome::Unmatched, "{answer:?}");
        assert!(answer.case.is_empty() && answer.events.is_empty(), "nothing of a case: {answer:?}");
        assert!(answer.unmatched_message.starts_with("unmatchedMessages/"), "{answer:?}");
    }
    let case = cases.get_case(pb::GetCaseRequest { name: "cases/reach-1".into() }).await.expect("get");
    assert_eq!(case.into_inner().case.expect("case").correspondence_count, 0, "nothing went into A's case");
    gw.stop().await.expect("stops");
}
