//! orghooks' own notices about an organization's webhooks (the catalog's
//! operational types): what each one says. The engine sends them to the
//! org's webhooks that subscribe to them and to the operator's URL.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::format_ms;

/// The event names of every notice (the catalog's operational types).
pub const NAMES: [&str; 4] = [
    "webhook.disabled",
    "webhook.circuit_opened",
    "webhook.circuit_closed",
    "delivery.exhausted",
];

/// Something that happened to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// orghooks turned it off.
    Disabled { reason: String },
    /// Its receiver failed `failures` times in a row.
    CircuitOpened { failures: u32, next_attempt_at: i64 },
    /// Its receiver answers again after failing since `opened_at`.
    CircuitClosed { opened_at: i64 },
    /// A delivery failed every attempt of its schedule.
    Exhausted {
        delivery_uuid: Uuid,
        event_uuid: Uuid,
        event_type: String,
        attempts: u32,
        last_error: String,
        /// Others of the same webhook since the previous such notice,
        /// which were not sent on their own.
        since_last_notice: u64,
    },
}

impl Notice {
    /// Its event type's name in the catalog.
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Disabled { .. } => NAMES[0],
            Self::CircuitOpened { .. } => NAMES[1],
            Self::CircuitClosed { .. } => NAMES[2],
            Self::Exhausted { .. } => NAMES[3],
        }
    }

    /// The payload receivers get, with the catalog's severity, type and
    /// reason for it.
    pub fn payload(&self, webhook_uuid: Uuid, webhook_url: &str, occurred_at: i64) -> Value {
        let (severity, kind, reason) = match self {
            Self::Disabled { .. } => ("HIGH", "ISSUE", "A webhook was disabled"),
            Self::CircuitOpened { .. } => ("MODERATE", "ISSUE", "A webhook's circuit opened"),
            Self::CircuitClosed { .. } => ("LOW", "STATUS", "A webhook's circuit closed"),
            Self::Exhausted { .. } => ("HIGH", "ISSUE", "A delivery exhausted its retries"),
        };
        let mut payload = json!({
            "event_name": self.event_name(),
            "severity": severity,
            "notification_type": kind,
            "notification_reason": reason,
            "webhook_uuid": webhook_uuid,
            "webhook_url": webhook_url,
            "occurred_at": format_ms(occurred_at),
        });
        let extra = match self {
            Self::Disabled { reason } => json!({ "reason": reason }),
            Self::CircuitOpened {
                failures,
                next_attempt_at,
            } => json!({
                "consecutive_failures": failures,
                "next_attempt_at": format_ms(*next_attempt_at),
            }),
            Self::CircuitClosed { opened_at } => json!({ "opened_at": format_ms(*opened_at) }),
            Self::Exhausted {
                delivery_uuid,
                event_uuid,
                event_type,
                attempts,
                last_error,
                since_last_notice,
            } => json!({
                "delivery_uuid": delivery_uuid,
                "event_uuid": event_uuid,
                "event_type": event_type,
                "attempts": attempts,
                "last_error": last_error,
                "exhausted_since_last_notice": since_last_notice,
            }),
        };
        if let (Some(all), Value::Object(more)) = (payload.as_object_mut(), extra) {
            all.extend(more);
        }
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    /// What the engine sends is what the catalog promises: each payload
    /// passes its type's schema unchanged by completion.
    #[test]
    fn every_notice_fits_its_catalog_type() {
        let catalog = Catalog::embedded().unwrap();
        let notices = [
            Notice::Disabled {
                reason: "the receiver answered 410 Gone".into(),
            },
            Notice::CircuitOpened {
                failures: 10,
                next_attempt_at: 1_000,
            },
            Notice::CircuitClosed { opened_at: 1_000 },
            Notice::Exhausted {
                delivery_uuid: Uuid::new_v4(),
                event_uuid: Uuid::new_v4(),
                event_type: "book.verified".into(),
                attempts: 9,
                last_error: "HTTP 503".into(),
                since_last_notice: 0,
            },
        ];
        let operational: Vec<&str> = catalog
            .iter()
            .filter(|t| t.operational)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(operational, NAMES, "the catalog's operational types");
        for notice in notices {
            let payload = notice.payload(Uuid::new_v4(), "https://r.example.com/", 2_000);
            let (completed, t) = catalog.validate_and_complete(payload.clone()).unwrap();
            assert!(t.operational, "{}", t.name);
            assert_eq!(completed, payload, "{}: nothing to complete", t.name);
            let example_keys: Vec<&String> = t.example.as_object().unwrap().keys().collect();
            let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
            let mut a = example_keys.clone();
            let mut b = keys.clone();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{}: the example shows every field", t.name);
        }
    }
}
