//! Server streams as they run: a watch ends when its caller's token expires
//! (`UNAUTHENTICATED`), when the caller loses access to the case
//! (`PERMISSION_DENIED`: another sector's system whose consent was
//! withdrawn), and when it reaches its lifetime (`UNAVAILABLE`); a caller
//! holds a bounded number of streams; and what a watch sends is audited.

use std::sync::Arc;
use std::time::Duration;

use bro_api::v1 as pb;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_dev::DevClaims;
use bro_e2e::{TEST_CVR, TestGateway, append, event, letter_to_psychiatry, new_case, placement_started};
use bro_server::ServeOptions;
use bro_server::access::Purpose;
use bro_server::context::StreamLimits;
use bro_server::systems::{SystemAccess, SystemConfig, Systems, Transport};
use tokio_stream::StreamExt;
use tonic::Code;

type Watch = tonic::Streaming<pb::WatchCaseResponse>;

/// The next thing a watch yields: an event's sequence, or how it ended.
async fn next(watch: &mut Watch) -> Result<i64, tonic::Status> {
    match tokio::time::timeout(Duration::from_secs(20), watch.next()).await.expect("the watch answers in time") {
        Some(Ok(answer)) => Ok(answer.event.expect("an event").sequence),
        Some(Err(status)) => Err(status),
        None => Err(tonic::Status::ok("ended")),
    }
}

fn consent(holder: &str, scope: &str, given: bool) -> pb::CaseEvent {
    let kind = if given {
        pb::case_event::Kind::ConsentGiven(pb::ConsentGiven { custody_holder: holder.into(), scope: scope.into() })
    } else {
        pb::case_event::Kind::ConsentWithdrawn(pb::ConsentWithdrawn {
            custody_holder: holder.into(),
            scope: scope.into(),
        })
    };
    event("2026-02-01", kind)
}

#[tokio::test]
async fn a_sectors_watch_sees_its_share_and_ends_when_the_consent_is_withdrawn() {
    let psychiatry = SystemConfig::new("psykiatri", "medcom", "xdis91", &[], Transport::None)
        .with_access(SystemAccess::Sector { sector: pb::Sector::Psychiatry, scope: "share:psychiatry".into() });
    let options =
        ServeOptions { systems: Arc::new(Systems::new(vec![psychiatry]).expect("valid")), ..ServeOptions::default() };
    let gw = TestGateway::start_with(options).await.expect("gateway");
    let mut cases = gw.client().await.expect("client");
    cases.create_case(new_case("w1", TEST_CVR)).await.expect("created");
    let events = vec![
        consent("parent-1", "share:psychiatry", true),
        placement_started("2026-02-02"),
        letter_to_psychiatry("2026-02-03", "parent-1", 1),
    ];
    cases.append_case_events(append("w1", "w1-a", events, "")).await.expect("appended");
    let mut sector = CaseServiceClient::new(gw.system("psykiatri").await.expect("channel"));
    let request = pb::WatchCaseRequest { name: "cases/w1".into(), after_sequence: 0 };
    let mut watch = sector.watch_case(request).await.expect("the consented sector may watch").into_inner();
    // Its share only: the consent (event 2) and the letter (event 4), not the placement (event 3).
    assert_eq!(next(&mut watch).await.expect("the consent"), 2);
    assert_eq!(next(&mut watch).await.expect("the letter"), 4);
    // The parent withdraws the consent: the watch ends.
    let withdrawn = vec![consent("parent-1", "share:psychiatry", false)];
    cases.append_case_events(append("w1", "w1-b", withdrawn, "")).await.expect("withdrawn");
    let ended = next(&mut watch).await.expect_err("the watch ends");
    assert_eq!(ended.code(), Code::PermissionDenied, "{ended:?}");
    // What it sent was recorded before it left.
    let records = gw.audit_records().await;
    assert!(
        records
            .iter()
            .any(|r| r.actor == "psykiatri" && r.method.ends_with("/WatchCase") && r.detail == "sent 2 events, 2 to 4"),
        "{records:#?}"
    );
    gw.stop().await.expect("stops");
}

#[tokio::test]
async fn a_watch_ends_with_its_token_and_its_lifetime_and_a_caller_holds_few() {
    let dir = tempfile::tempdir().expect("dir");
    // Tokens end at their `exp`, without the usual leeway, so the test is short.
    let (mut security, _) = bro_e2e::test_security(dir.path()).expect("security");
    if let Some(jwt) = security.jwt.as_mut() {
        jwt.leeway = Duration::ZERO;
    }
    let options = ServeOptions {
        security: Some(security),
        streams: StreamLimits { per_caller: 2, max_lifetime: Duration::from_secs(5) },
        ..ServeOptions::default()
    };
    let gw = TestGateway::start_in(dir.path().to_path_buf(), options).await.expect("gateway");
    gw.client().await.expect("client").create_case(new_case("w2", TEST_CVR)).await.expect("created");
    let token = |secs: u64| {
        gw.idp.token(&DevClaims { valid_for: Duration::from_secs(secs), ..DevClaims::caseworker("cw-1", TEST_CVR) })
    };
    let watch = |token: String| {
        let gw = &gw;
        async move {
            let channel = gw.channel_with(Some(&token), Purpose::CaseHandling).await.expect("channel");
            let request = pb::WatchCaseRequest { name: "cases/w2".into(), after_sequence: 0 };
            CaseServiceClient::new(channel).watch_case(request).await.map(tonic::Response::into_inner)
        }
    };
    let mut short = watch(token(2)).await.expect("a first watch");
    let mut long = watch(token(3600)).await.expect("a second watch");
    assert_eq!(next(&mut short).await.expect("history"), 1);
    assert_eq!(next(&mut long).await.expect("history"), 1);
    let third = watch(token(3600)).await.expect_err("a third is one too many");
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    // The short token expires: its watch ends, and its place is free again.
    let expired = next(&mut short).await.expect_err("ends");
    assert_eq!(expired.code(), Code::Unauthenticated, "{expired:?}");
    let mut again = None;
    for _ in 0..50 {
        match watch(token(3600)).await {
            Ok(w) => {
                again = Some(w);
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the expired watch's place was freed");
    // The long one ends at its lifetime, asking the client to open it again.
    let aged = next(&mut long).await.expect_err("ends");
    assert_eq!(aged.code(), Code::Unavailable, "{aged:?}");
    assert!(aged.message().contains("maximum lifetime"), "{aged:?}");
    gw.stop().await.expect("stops");
}
