//! The change feed between replicas: one task per store, on its own
//! connection, `LISTEN`s on `bro_changes` (the schema's triggers notify it
//! at each commit) and tells this process what other replicas committed.
//! A notification is a wake-up, never the data: whoever is woken reads the
//! store. Notifications sent while the connection is down are lost, so the
//! feed says [`StoreChange::Resync`] when it (re)connects, every second
//! while it cannot, and every [`RESYNC_INTERVAL`] anyway — the polling
//! fallback that bounds how late a missed change is seen.

use std::time::Duration;

use bro_domain::CaseId;
use bro_store::StoreChange;
use futures::StreamExt as _;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

/// How often followers re-read what they watch even when no notification came.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How long the feed waits between attempts to reconnect.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Starts the feed's task; it runs until aborted (the store's `close`, or
/// its drop), with or without followers.
pub(crate) fn start(config: tokio_postgres::Config) -> (broadcast::Sender<StoreChange>, tokio::task::JoinHandle<()>) {
    let (sender, _) = broadcast::channel(4096);
    let task = tokio::spawn(run(config, sender.clone()));
    (sender, task)
}

async fn run(config: tokio_postgres::Config, sender: broadcast::Sender<StoreChange>) {
    loop {
        let e = listen(&config, &sender).await;
        tracing::warn!(error = %e, "the change feed lost its connection; polling until it is back");
        // No follower yet is fine: a follower reads the store when it starts.
        let _ = sender.send(StoreChange::Resync);
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Listens on one connection until it fails; why it did.
async fn listen(config: &tokio_postgres::Config, sender: &broadcast::Sender<StoreChange>) -> String {
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(connected) => connected,
        Err(e) => return e.to_string(),
    };
    let (notes, mut noted) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the client to work; it hands notifications on.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let note = match message {
                Ok(AsyncMessage::Notification(n)) => Ok(n.payload().to_owned()),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let failed = note.is_err();
            if notes.send(note).is_err() || failed {
                return;
            }
        }
    });
    let ended = match client.batch_execute("LISTEN bro_changes").await {
        Err(e) => e.to_string(),
        Ok(()) => loop {
            // Whatever was committed before LISTEN took effect may be unseen.
            let _ = sender.send(StoreChange::Resync);
            let deadline = tokio::time::sleep(RESYNC_INTERVAL);
            tokio::pin!(deadline);
            let failed = loop {
                tokio::select! {
                    () = &mut deadline => break None,
                    note = noted.recv() => match note {
                        Some(Ok(payload)) => { let _ = sender.send(parse(&payload)); }
                        Some(Err(e)) => break Some(e.to_string()),
                        None => break Some("the server closed the connection".to_owned()),
                    },
                }
            };
            if let Some(e) = failed {
                break e;
            }
        },
    };
    driver.abort();
    drop(client);
    ended
}

/// A notification's meaning: `case VERSION CASE_ID` or `deliveries`; anything else resyncs.
fn parse(payload: &str) -> StoreChange {
    let case = payload.strip_prefix("case ").and_then(|rest| {
        let (version, case_id) = rest.split_once(' ')?;
        Some(StoreChange::Case { version: version.parse().ok()?, case_id: CaseId::parse("case_id", case_id).ok()? })
    });
    match (case, payload) {
        (Some(change), _) => change,
        (None, "deliveries") => StoreChange::Deliveries,
        (None, _) => StoreChange::Resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_as_the_triggers_write_them() {
        let case = CaseId::parse("case_id", "c-1").expect("id");
        assert_eq!(parse("case 12 c-1"), StoreChange::Case { case_id: case, version: 12 });
        assert_eq!(parse("deliveries"), StoreChange::Deliveries);
        assert_eq!(parse("case x c-1"), StoreChange::Resync, "a damaged notification resyncs");
        assert_eq!(parse("something new"), StoreChange::Resync);
    }
}
