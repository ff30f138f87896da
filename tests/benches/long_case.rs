//! What an append costs as a case grows (issue 15, item 5): the latency of
//! a one-event append through gRPC to a case of 10 events and to a case of
//! 2,000 events of which 500 are letters with text, alternated in one run,
//! and their ratio (target ≤ 1.5).
//!
//! Run with `cargo bench -p bro-e2e --bench long_case` (add `-- --quick`
//! for fewer samples). See BENCHMARKS.md.

#![allow(clippy::print_stdout)] // A bench binary reports its results on stdout.

use std::time::{Duration, Instant};

use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_e2e::{TEST_CVR, TestGateway, append, letter_to_psychiatry, new_case, revision_offered};

const DAY: &str = "2026-02-01";

/// A letter of about 1,500 characters.
fn long_letter(n: usize) -> pb::CaseEvent {
    let mut event = letter_to_psychiatry(DAY, "parent-1", n);
    if let Some(Kind::CorrespondenceRecorded(recorded)) = &mut event.kind
        && let Some(letter) = &mut recorded.correspondence
    {
        letter.entries[0].text = "Vi foreslår et fælles møde om forældrenes plan. ".repeat(32);
    }
    event
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let samples = if quick { 60 } else { 300 };
    let gw = TestGateway::start().await.expect("gateway");
    let mut client = CaseServiceClient::new(gw.caseworker(TEST_CVR).await.expect("channel"));
    client.create_case(new_case("short", TEST_CVR)).await.expect("create");
    client.create_case(new_case("long", TEST_CVR)).await.expect("create");
    let filler: Vec<_> = (0..9).map(|_| revision_offered(DAY)).collect();
    client.append_case_events(append("short", "short-history", filler, "")).await.expect("history");
    // 1,999 events after case_opened: every fourth a letter.
    let history: Vec<pb::CaseEvent> =
        (0..1999).map(|i| if i % 4 == 0 { long_letter(i) } else { revision_offered(DAY) }).collect();
    for (n, chunk) in history.chunks(500).enumerate() {
        let request = append("long", &format!("long-history-{n}"), chunk.to_vec(), "");
        client.append_case_events(request).await.expect("history");
    }

    let (mut short, mut long) = (Vec::new(), Vec::new());
    for i in 0..samples + 20 {
        for (case, times) in [("short", &mut short), ("long", &mut long)] {
            let request = append(case, &format!("{case}-{i}"), vec![revision_offered(DAY)], "");
            let t = Instant::now();
            client.append_case_events(request).await.expect("append");
            if i >= 20 {
                times.push(t.elapsed());
            }
        }
    }
    drop(client);
    gw.stop().await.expect("stop");
    short.sort();
    long.sort();
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    println!("\nappend 1 event through gRPC, alternating between the two cases, {samples} samples each\n");
    println!("| Case | p50 ms | p99 ms |\n|---|---:|---:|");
    println!("| 10 events | {} | {} |", ms(percentile(&short, 50)), ms(percentile(&short, 99)));
    println!("| 2,000 events, 500 of them letters | {} | {} |", ms(percentile(&long, 50)), ms(percentile(&long, 99)));
    let ratio = percentile(&long, 50).as_secs_f64() / percentile(&short, 50).as_secs_f64();
    println!(
        "\n| Ratio | Value | Target |\n|---|---:|---:|\n| 2,000-event case / 10-event case (p50) | {ratio:.2} | ≤ 1.5 |"
    );
}
