//! Failure notices (the catalog's operational types): when the engine
//! disables a webhook, opens or closes its circuit, or a delivery exhausts
//! its schedule, the org's other webhooks that subscribe to that type get
//! a notice through the normal delivery path (durable, signed, retried), and
//! the operator's URL (`notices.operator_url`) gets it too, best effort.
//! Each is counted (`orghooks_notices_total`) and logged once.
//!
//! Notices never beget notices: a notice's own delivery that exhausts its
//! schedule raises nothing, and the webhook a notice is about does not
//! receive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Uri;
use orghooks_core::notices::Notice;
use orghooks_core::sealing::SecretString;
use orghooks_core::webhook::SignatureScheme;
use orghooks_store::{DeliveryJob, NewEvent};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Shared;
use super::targets::Target;
use crate::config::NoticesConfig;
use crate::metrics::NoticeLabels;

/// Tries of a notice to the operator's URL, and the pause before each retry.
const OPERATOR_TRIES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// What the notices of one node share.
pub struct Notices {
    operator: Option<Arc<Target>>,
    exhausted_interval_ms: i64,
    /// Per webhook: when its last `delivery.exhausted` went, and how many
    /// were held back since.
    exhausted: Mutex<HashMap<Uuid, (i64, u64)>>,
}

impl Notices {
    pub fn new(config: &NoticesConfig) -> Self {
        let operator = config
            .operator_url
            .parse::<Uri>()
            .ok()
            .filter(|_| !config.operator_url.is_empty())
            .map(|uri| {
                Arc::new(Target {
                    uuid: Uuid::nil(),
                    org_uuid: Uuid::nil(),
                    shown_url: config.operator_url.clone(),
                    uri,
                    basic_auth: None,
                    scheme: SignatureScheme::Ocrolus,
                    secrets: Some(&config.operator_secret)
                        .filter(|s| !s.is_empty())
                        .map(|s| SecretString::new(s.clone()))
                        .into_iter()
                        .collect(),
                    is_active: true,
                    max_in_flight: None,
                    headers: Vec::new(),
                    retry_gaps: None,
                    timeout: None,
                })
            });
        Self {
            operator,
            exhausted_interval_ms: config.exhausted_interval_secs as i64 * 1000,
            exhausted: Mutex::new(HashMap::new()),
        }
    }

    /// For a `delivery.exhausted` of `webhook` now: `None` to hold it back
    /// (one went within the interval), else how many were held back since.
    pub fn exhausted_due(&self, webhook: Uuid, now: i64) -> Option<u64> {
        let mut last = self.exhausted.lock().expect("notices lock");
        if last.len() > 100_000 {
            last.retain(|_, (at, _)| now - *at < self.exhausted_interval_ms);
        }
        match last.get_mut(&webhook) {
            Some((at, held)) if now - *at < self.exhausted_interval_ms => {
                *held += 1;
                None
            }
            _ => {
                let held = last.insert(webhook, (now, 0)).map_or(0, |(_, h)| h);
                Some(held)
            }
        }
    }
}

impl Shared {
    /// Raises `notice` about `webhook`, which happened `at`: logged and
    /// counted here, then sent in the background.
    pub(crate) fn notify(self: &Arc<Self>, webhook: Uuid, notice: Notice, at: i64) {
        let name = notice.event_name();
        tracing::warn!(webhook_uuid = %webhook, notice = name, details = ?notice, "failure notice");
        self.metrics
            .notices
            .get_or_create(&NoticeLabels { event_name: name })
            .inc();
        let shared = self.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.send_notice(webhook, notice, at).await {
                tracing::error!(webhook_uuid = %webhook, notice = name, error = %e, "cannot send a failure notice");
            }
        });
    }

    async fn send_notice(&self, webhook: Uuid, notice: Notice, at: i64) -> anyhow::Result<()> {
        let Some(target) = self.targets.get(webhook).await? else {
            return Ok(()); // deleted meanwhile: no one to tell about it
        };
        let now = self.clock.now_ms();
        let payload = notice.payload(webhook, &target.shown_url, at).to_string();
        let name = notice.event_name();
        let event = NewEvent {
            uuid: Uuid::now_v7(),
            account_uuid: Uuid::nil(),
            event_name: name.to_owned(),
            book_uuid: None,
            occurred_at: at,
            payload_hash: Sha256::digest(payload.as_bytes()).to_vec(),
            payload: payload.as_str().into(),
        };
        let listeners: Vec<Uuid> = self
            .store
            .list_webhooks(target.org_uuid)
            .await?
            .into_iter()
            .filter(|w| w.uuid != webhook && w.is_active && w.event_names.iter().any(|n| n == name))
            .map(|w| w.uuid)
            .collect();
        if !listeners.is_empty() {
            let made = self
                .store
                .append_notice(listeners, event.clone(), now)
                .await?;
            self.metrics.deliveries_created.inc_by(u64::from(made));
            self.wake_claimer();
        }
        if let Some(operator) = &self.notices.operator {
            self.tell_operator(operator, &event).await;
        }
        Ok(())
    }

    /// Best effort: a few tries, then a logged error.
    async fn tell_operator(&self, operator: &Target, event: &NewEvent) {
        let job = DeliveryJob {
            id: 0,
            uuid: event.uuid,
            webhook_uuid: Uuid::nil(),
            max_in_flight: None,
            event_uuid: event.uuid,
            payload: event.payload.clone(),
            attempts: 0,
            is_test: false,
            ordered: false,
        };
        let mut last = String::new();
        for pause in OPERATOR_TRIES {
            tokio::time::sleep(pause).await;
            let attempt = self.sender.send(operator, &job, self.clock.now_ms()).await;
            match attempt.status() {
                Some(200..=299) => return,
                Some(status) => last = format!("HTTP {status}"),
                None => last = attempt.error().map(ToString::to_string).unwrap_or_default(),
            }
        }
        tracing::error!(url = %operator.shown_url, notice = %event.event_name, error = %last,
            "the operator's URL did not take a failure notice");
    }
}
