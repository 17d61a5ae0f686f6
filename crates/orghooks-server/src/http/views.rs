//! The JSON shapes the API answers with: the success envelope and the
//! objects inside it. Field names and formats follow the Ocrolus API.

use orghooks_core::EventType;
use orghooks_core::sealing::SecretString;
use orghooks_core::webhook::WebhookUrl;
use orghooks_store::Webhook;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The SPEC §2 success envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The HTTP status, repeated.
    pub status: u16,
    /// "OK", or the operation's own message.
    pub message: String,
    pub response: T,
}

pub fn ok<T>(response: T) -> axum::Json<Envelope<T>> {
    with_message("OK", response)
}

pub fn with_message<T>(message: &str, response: T) -> axum::Json<Envelope<T>> {
    axum::Json(Envelope {
        status: 200,
        message: message.to_owned(),
        response,
    })
}

/// An empty `response: {}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// A webhook as Add and Retrieve show it.
/// Shows a stored URL with its password masked, whether or not one is set.
pub fn masked_url(w: &Webhook) -> String {
    let password = w
        .url_password_sealed
        .as_ref()
        .map(|_| SecretString::new("****"));
    WebhookUrl::from_stored(&w.url, password)
        .map(|u| u.masked())
        .unwrap_or_else(|| w.url.clone())
}

/// A webhook as List shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSummary {
    pub uuid: Uuid,
    pub description: Option<String>,
    pub is_active: bool,
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookSummary>,
}

/// An event type as a webhook's event list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeSummary {
    pub uuid: Uuid,
    pub name: String,
    pub description: String,
    /// `LOW`, `MODERATE` or `HIGH`.
    pub severity: String,
    /// `STATUS` or `ISSUE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub is_active: bool,
    pub reason: String,
}

impl From<&EventType> for EventTypeSummary {
    fn from(t: &EventType) -> Self {
        Self {
            uuid: t.uuid,
            name: t.name.clone(),
            description: t.description.clone(),
            severity: t.severity.clone(),
            kind: t.kind.clone(),
            is_active: t.is_active,
            reason: t.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub events: Vec<EventTypeSummary>,
}

/// A catalog entry with everything a receiver needs to integrate.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeDetail {
    #[serde(flatten)]
    pub summary: EventTypeSummary,
    pub beta: bool,
    /// One of orghooks' own failure notices: webhooks subscribe to it, the
    /// platform cannot publish it.
    pub operational: bool,
    /// Required payload fields; `a|b` means one of the two.
    pub required: Vec<String>,
    /// Field pairs kept equal for backward compatibility.
    pub twins: Vec<[String; 2]>,
    /// The JSON Schema published payloads are validated against.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// An example payload.
    #[schema(value_type = Object)]
    pub example: serde_json::Value,
}

impl From<&EventType> for EventTypeDetail {
    fn from(t: &EventType) -> Self {
        Self {
            summary: t.into(),
            beta: t.beta,
            operational: t.operational,
            required: t.required.clone(),
            twins: t.twins.clone(),
            schema: t.schema.clone(),
            example: t.example.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    pub events: Vec<EventTypeDetail>,
}

/// The answer to a secret rotation. Ocrolus documents two readings of it,
/// the message at the top and `response: {status, message}`; both hold.
/// A generated secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// Always "success".
    pub status: &'static str,
    pub message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

impl RotatedSecret {
    pub const MESSAGE: &'static str = "Webhook secret rotated successfully";

    pub fn new(generated: Option<String>) -> Self {
        Self {
            status: "success",
            message: Self::MESSAGE,
            secret_key: generated,
        }
    }
}
