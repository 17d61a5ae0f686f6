//! Instant hand-off between nodes: a commit that makes deliveries due for
//! the workers (an `api` node's publishes, which no one leased) sends
//! `NOTIFY orghooks_due` in its transaction, and every node listens on a
//! connection of its own and wakes its claimer, so a worker need not wait
//! for `delivery.claim_interval_ms`. The interval stays as the fallback:
//! a lost notification (the listener reconnecting, a restart) only delays.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

/// The channel deliveries are announced on.
pub(super) const CHANNEL: &str = "orghooks_due";
/// Pause before the listener connects again after losing its connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// Ends the listener when the last copy of the store is dropped.
pub(super) struct Listening {
    stop: Arc<Notify>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// Starts listening; `due` is notified at each announcement, and after
/// each (re)connection in case one was missed meanwhile.
pub(super) fn start(config: tokio_postgres::Config, due: Arc<Notify>) -> Listening {
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = listen(config, due) => {}
            () = stopped.notified() => {}
        }
    });
    Listening { stop }
}

async fn listen(config: tokio_postgres::Config, due: Arc<Notify>) {
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                // The connection yields notifications while it is polled.
                let announcements = due.clone();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => announcements.notify_one(),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the delivery listener lost its connection");
                                return;
                            }
                            None => return,
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(error = %e, "cannot listen for due deliveries");
                } else {
                    due.notify_one();
                }
                let _ = driver.await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "the delivery listener cannot connect yet");
            }
        }
        tokio::time::sleep(RECONNECT).await;
    }
}
