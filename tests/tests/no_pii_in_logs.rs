//! The gateway's complete log output, at the most verbose level, holds no CPR
//! number and no name, whatever the requests and errors were.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_e2e::*;

/// Collects every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cpr_number_or_name_reaches_the_logs() -> anyhow::Result<()> {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,h2=debug,hyper=debug,tower=debug"))
        .json()
        .with_writer(move || sink.clone())
        .init();

    let gw = TestGateway::start().await?;
    let mut client = gw.client().await?;
    client.create_case(new_case("c1", "12345678")).await?;
    let chosen = event(
        "2026-01-18",
        Kind::SupportPersonChosen(pb::SupportPersonChosen {
            custody_holder: "parent-1".into(),
            kind: pb::SupportPersonKind::Network.into(),
            person: Some(pb::ContactPerson {
                display_name: "Karen Støttesen".into(),
                role: "støtteperson".into(),
                phone: "+45 00 00 00 00".into(),
                email: String::new(),
            }),
        }),
    );
    client.append_case_events(append("c1", "r1", vec![offered("2026-01-15", "parent-1"), chosen], "")).await?;
    client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await?;
    // Errors too: a malformed CPR number, and a CPR number in a refused request.
    let mut bad = new_case("c2", "12345678");
    bad.custody_holders[0].identifier = Some(pb::PersonIdentifier { kind: 1, value: "3113901239".into() });
    assert!(client.create_case(bad).await.is_err());
    let mut dup = new_case("c1", "12345678");
    dup.request_id = "dup".into();
    assert!(client.create_case(dup).await.is_err());
    assert!(client.append_case_events(append("c1", "r2", vec![offered("2026-01-15", "parent-9")], "")).await.is_err());
    gw.stop().await?;

    let logs = String::from_utf8(captured.0.lock().expect("log buffer").clone())?;
    assert!(logs.lines().count() > 10, "the test must capture real log output:\n{logs}");
    for secret in [CPR_1, CPR_2, "3113901239", "Anna Testesen", "Bo Testesen", "Testesen", "Karen", "Støttesen"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
    Ok(())
}
