//! End-to-end: the CaseService through a real gateway on a loopback port,
//! with the generated tonic client.

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_e2e::*;
use futures::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

type R = anyhow::Result<()>;

/// The field paths of a status's BadRequest details.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

#[tokio::test]
async fn create_append_get_and_list() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    let created = client.create_case(new_case("c1", "12345678")).await?.into_inner().case.expect("case");
    assert_eq!(created.name, "cases/c1");
    assert_eq!(created.version, 1);
    assert_eq!(created.custody_holders.len(), 2);

    let events =
        vec![placement_started("2026-01-15"), offered("2026-01-15", "parent-1"), offered("2026-01-15", "parent-2")];
    let appended = client.append_case_events(append("c1", "r1", events, &created.etag)).await?.into_inner();
    assert_eq!(appended.events.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert!(appended.events.iter().all(|e| e.request_id == "r1" && e.record_time.is_some()));

    let got = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(got.version, 4);
    assert_eq!(got.placements.len(), 1);
    assert_eq!(got.placements[0].start_date, Some(date("2026-01-15")));
    assert_eq!(got.support_persons.len(), 2);
    assert_eq!(got.custody_holders[0].identifier.as_ref().map(|i| i.value.as_str()), Some(CPR_1));

    let mut other_municipality = pb::case_service_client::CaseServiceClient::new(gw.caseworker("87654321").await?);
    other_municipality.create_case(new_case("c2", "87654321")).await?;
    client.create_case(new_case("c3", "12345678")).await?;
    let page = client
        .list_cases(pb::ListCasesRequest {
            page_size: 1,
            filter: r#"placing_municipality = "12345678""#.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(page.cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["cases/c1"]);
    let page2 = client
        .list_cases(pb::ListCasesRequest {
            page_size: 1,
            filter: r#"placing_municipality = "12345678""#.into(),
            page_token: page.next_page_token.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(page2.cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["cases/c3"]);
    // A token used with another filter is refused.
    let err = client
        .list_cases(pb::ListCasesRequest { page_size: 1, filter: String::new(), page_token: page.next_page_token })
        .await
        .expect_err("token bound to its filter");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["page_token"]);
    // Without a filter, a caseworker lists their own municipality's cases; never another's.
    let all = client.list_cases(pb::ListCasesRequest::default()).await?.into_inner();
    assert_eq!(all.cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["cases/c1", "cases/c3"]);
    assert!(all.next_page_token.is_empty());
    let theirs = other_municipality.list_cases(pb::ListCasesRequest::default()).await?.into_inner();
    assert_eq!(theirs.cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["cases/c2"]);
    let err = client
        .list_cases(pb::ListCasesRequest {
            filter: r#"placing_municipality = "87654321""#.into(),
            ..Default::default()
        })
        .await
        .expect_err("another municipality's cases");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client.get_case(pb::GetCaseRequest { name: "cases/c2".into() }).await.expect_err("another's case");
    assert_eq!(err.code(), Code::PermissionDenied);
    gw.stop().await
}

#[tokio::test]
async fn history_is_listed_in_pages() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    let events: Vec<_> = (0..25).map(|_| revision_offered("2026-02-01")).collect();
    client.append_case_events(append("c1", "r1", events, "")).await?;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_case_events(pb::ListCaseEventsRequest { parent: "cases/c1".into(), page_size: 10, page_token: token })
            .await?
            .into_inner();
        seen.extend(page.events.iter().map(|e| e.sequence));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, (1..=26).collect::<Vec<_>>());
    let missing = client
        .list_case_events(pb::ListCaseEventsRequest { parent: "cases/nope".into(), ..Default::default() })
        .await
        .expect_err("no such case");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(reason(&missing), "CASE_NOT_FOUND");
    gw.stop().await
}

#[tokio::test]
async fn retries_are_idempotent_and_stale_etags_abort() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    let first = client.create_case(new_case("c1", "12345678")).await?.into_inner().case.expect("case");
    let again = client.create_case(new_case("c1", "12345678")).await?.into_inner().case.expect("case");
    assert_eq!(first, again, "a retried CreateCase returns the same case");

    let req = append("c1", "r1", vec![placement_started("2026-01-15")], &first.etag);
    let a = client.append_case_events(req.clone()).await?.into_inner();
    let b = client.append_case_events(req).await?.into_inner();
    assert_eq!(a.events, b.events, "a retried append returns the first result");
    assert_eq!(b.case.expect("case").version, 2, "and stores nothing more");

    let stale = client
        .append_case_events(append("c1", "r2", vec![revision_offered("2026-02-01")], &first.etag))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");

    let reused = client
        .append_case_events(append("c1", "r1", vec![revision_offered("2026-02-01")], ""))
        .await
        .expect_err("reused request id");
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");

    let mut dup = new_case("c1", "12345678");
    dup.request_id = "another".into();
    let exists = client.create_case(dup).await.expect_err("case exists");
    assert_eq!(exists.code(), Code::AlreadyExists);
    gw.stop().await
}

/// Sends one bad append and checks it is refused naming `field`, with nothing stored.
async fn refused(
    client: &mut pb::case_service_client::CaseServiceClient<bro_server::access::client::AuthChannel>,
    events: Vec<pb::CaseEvent>,
    field: &str,
    words: &str,
) -> R {
    let before =
        client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    let err = client
        .append_case_events(append(
            "c1",
            &format!("bad-{}", field.replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
            events,
            "",
        ))
        .await
        .expect_err(field);
    assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
    let fields = violated_fields(&err);
    assert!(fields.iter().any(|f| f == field), "expected a violation of {field}, got {fields:?}");
    assert!(err.message().contains(words), "{field}: message {:?} should contain {words:?}", err.message());
    let after = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(before, after, "{field}: nothing of the request is stored");
    Ok(())
}

#[tokio::test]
async fn invalid_events_are_refused_with_field_violations() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.append_case_events(append("c1", "start", vec![placement_started("2026-01-15")], "")).await?;

    let unknown_enum = event("2026-02-01", Kind::PlacementStarted(pb::PlacementStarted { basis: 99, site_kind: 0 }));
    refused(&mut client, vec![revision_offered("2026-02-01"), unknown_enum], "events[1].placement_started.basis", "99")
        .await?;
    let missing = event(
        "2026-02-01",
        Kind::SupportDecided(pb::SupportDecided { custody_holder: "parent-1".into(), measure: 0, outcome: 1 }),
    );
    refused(&mut client, vec![missing], "events[0].support_decided.measure", "required").await?;
    let no_kind = pb::CaseEvent { occurred_on: Some(date("2026-02-01")), ..Default::default() };
    refused(&mut client, vec![no_kind], "events[0].kind", "exactly one").await?;
    let no_date = pb::CaseEvent {
        occurred_on: Some(pb::Date { year: 2026, month: 2, day: 30 }),
        ..revision_offered("2026-02-01")
    };
    refused(&mut client, vec![no_date], "events[0].occurred_on", "not a date").await?;
    refused(
        &mut client,
        vec![offered("2026-02-01", "parent-3")],
        "events[0].support_person_offered.custody_holder",
        "parent-3",
    )
    .await?;
    let approved_unchosen = event(
        "2026-02-02",
        Kind::SupportPersonApproved(pb::SupportPersonApproved { custody_holder: "parent-1".into() }),
    );
    refused(
        &mut client,
        vec![offered("2026-02-01", "parent-1"), approved_unchosen],
        "events[1].support_person_approved.custody_holder",
        "support_person_chosen",
    )
    .await?;
    let bad_scope = event(
        "2026-02-01",
        Kind::ConsentGiven(pb::ConsentGiven { custody_holder: "parent-1".into(), scope: "everything".into() }),
    );
    refused(&mut client, vec![bad_scope], "events[0].consent_given.scope", "not a consent scope").await?;
    let opened_again = event("2026-02-01", Kind::CaseOpened(pb::CaseOpened::default()));
    refused(&mut client, vec![opened_again], "events[0].case_opened", "CreateCase").await?;
    gw.stop().await
}

#[tokio::test]
async fn a_placement_ended_before_it_started_is_refused() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.append_case_events(append("c1", "start", vec![placement_started("2026-01-15")], "")).await?;
    let ended = event(
        "2026-01-10",
        Kind::PlacementEnded(pb::PlacementEnded { reason: pb::PlacementEndReason::Homecoming.into() }),
    );
    let err = client.append_case_events(append("c1", "end", vec![ended], "")).await.expect_err("ends before it starts");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["events[0].placement_ended"]);
    assert!(err.message().contains("no placement is in progress on 2026-01-10"), "{}", err.message());
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(case.version, 2);
    assert_eq!(case.placements[0].end_date, None);
    gw.stop().await
}

#[tokio::test]
async fn bad_create_requests_name_their_fields() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    let mut req = new_case("c1", "1234");
    req.custody_holders[1].party_id = "parent-1".into();
    req.custody_holders[0].identifier = Some(pb::PersonIdentifier { kind: 1, value: "99999".into() });
    let err = client.create_case(req).await.expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violated_fields(&err);
    assert!(fields.contains(&"custody_holders[0].identifier.value".to_owned()), "{fields:?}");
    assert!(!err.message().contains("99999"), "a person identifier is never echoed: {}", err.message());
    let err = client.get_case(pb::GetCaseRequest { name: "projects/x".into() }).await.expect_err("not a case name");
    assert_eq!(violated_fields(&err), ["name"]);
    gw.stop().await
}

#[tokio::test]
async fn oversized_requests_are_refused_and_store_nothing() -> R {
    let gw = TestGateway::start_with(bro_server::ServeOptions { max_request_bytes: 64 * 1024, ..Default::default() })
        .await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    let huge = event("2026-02-01", Kind::PlanOmitted(pb::PlanOmitted { reasons: "x".repeat(100 * 1024) }));
    let err = client.append_case_events(append("c1", "huge", vec![huge], "")).await.expect_err("too big");
    assert!(matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted), "{err:?}");
    assert!(
        err.message().contains("message length too large") || err.message().contains("too large"),
        "{}",
        err.message()
    );
    let long_text = event("2026-02-01", Kind::PlanOmitted(pb::PlanOmitted { reasons: "x".repeat(5000) }));
    let err = client.append_case_events(append("c1", "long", vec![long_text], "")).await.expect_err("text too long");
    assert_eq!(violated_fields(&err), ["events[0].plan_omitted.reasons"]);
    let many: Vec<_> = (0..1001).map(|_| revision_offered("2026-02-01")).collect();
    let err = client.append_case_events(append("c1", "many", many, "")).await.expect_err("too many events");
    assert_eq!(violated_fields(&err), ["events"]);
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(case.version, 1, "nothing stored");
    gw.stop().await
}

#[tokio::test]
async fn watch_streams_history_then_new_events() -> R {
    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.create_case(new_case("c2", "12345678")).await?;
    client.append_case_events(append("c1", "r1", vec![placement_started("2026-01-15")], "")).await?;
    let mut stream =
        client.watch_case(pb::WatchCaseRequest { name: "cases/c1".into(), after_sequence: 1 }).await?.into_inner();
    let first = stream.next().await.expect("an event")?.event.expect("event");
    assert_eq!(first.sequence, 2, "history after the given sequence comes first");
    let mut writer = gw.client().await?;
    writer.append_case_events(append("c2", "other", vec![revision_offered("2026-02-01")], "")).await?;
    writer
        .append_case_events(append(
            "c1",
            "r2",
            vec![revision_offered("2026-02-01"), revision_offered("2026-02-02")],
            "",
        ))
        .await?;
    let next: Vec<i64> = vec![
        stream.next().await.expect("event")?.event.expect("event").sequence,
        stream.next().await.expect("event")?.event.expect("event").sequence,
    ];
    assert_eq!(next, vec![3, 4], "live events of this case only, in order");
    let missing = client.watch_case(pb::WatchCaseRequest { name: "cases/nope".into(), after_sequence: 0 }).await;
    assert_eq!(missing.expect_err("no such case").code(), Code::NotFound);
    // Shutdown ends the stream instead of hanging the server.
    gw.stop().await?;
    match stream.next().await {
        None => {}
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable),
        Some(Ok(e)) => panic!("no events after shutdown, got {e:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn health_and_reflection_are_served() -> R {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let gw = TestGateway::start().await?;
    let channel = gw.channel().await?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status =
        health.check(tonic_health::pb::HealthCheckRequest { service: "bro.v1.CaseService".into() }).await?.into_inner();
    assert_eq!(status.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await?.into_inner();
    let response = responses.next().await.expect("a response")?;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"bro.v1.CaseService".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
    gw.stop().await
}

#[tokio::test]
async fn data_survives_a_graceful_restart() -> R {
    let dir = tempfile::tempdir()?;
    let gw = TestGateway::start_in(dir.path().to_path_buf(), Default::default()).await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    client.append_case_events(append("c1", "r1", vec![placement_started("2026-01-15")], "")).await?;
    gw.stop().await?;
    let gw = TestGateway::start_in(dir.path().to_path_buf(), Default::default()).await?;
    let mut client = gw.client().await?;
    let case = client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?.into_inner().case.expect("case");
    assert_eq!(case.version, 2);
    let retry =
        client.append_case_events(append("c1", "r1", vec![placement_started("2026-01-15")], "")).await?.into_inner();
    assert_eq!(retry.case.expect("case").version, 2, "idempotency survives a restart");
    gw.stop().await
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_hold_up_a_stop() -> R {
    let options = bro_server::ServeOptions {
        shutdown_grace: std::time::Duration::from_secs(1),
        ..bro_server::ServeOptions::default()
    };
    let gw = TestGateway::start_with(options).await?;
    let mut client = gw.client().await?;
    let mut create = new_case("c1", "12345678");
    create.custody_holders = vec![parent("mother", "0101900000", "Mor Testesen")];
    client.create_case(create).await?;
    // A watcher that never reads: once HTTP/2's windows (megabytes) are full, the server cannot send it more.
    let stalled =
        client.watch_case(pb::WatchCaseRequest { name: "cases/c1".into(), after_sequence: 0 }).await?.into_inner();
    let mut writer = gw.client().await?;
    for n in 0..120 {
        let mut letter = letter_to_psychiatry("2026-03-02", "mother", n);
        if let Some(Kind::CorrespondenceRecorded(r)) = &mut letter.kind
            && let Some(c) = &mut r.correspondence
        {
            c.entries[0].text = format!("{n} {}", "Referat af møde. ".repeat(2000));
        }
        writer.append_case_events(append("c1", &format!("big-{n}"), vec![letter], "")).await?;
    }
    let started = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(10), gw.stop())
        .await
        .expect("the stop is bounded by the grace period, not by the stalled client")?;
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "the grace period was given");
    drop(stalled);
    Ok(())
}
