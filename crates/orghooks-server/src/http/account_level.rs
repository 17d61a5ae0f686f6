//! Ocrolus's account-level webhook API, its older model that Ocrolus still
//! documents: one webhook per API account, hearing only that account's
//! events, managed with that account's token (manager role). Underneath it
//! is an ordinary webhook (its owner account set, scoped to that account),
//! delivered, signed, retried and logged like any other, and it does not
//! count toward the org's limit unless `webhooks.account_level_counts`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use orghooks_core::webhook::WebhookUrl;
use orghooks_store::{AttemptRecord, NewEvent, NewWebhook, StoreError, Webhook, WebhookPatch};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, ErrorEnvelope};
use super::extract::{JsonBody, Manager, body_bytes};
use super::views::{Envelope, RotatedSecret, masked_url, ok};
use super::webhooks::{check_resolution, or_webhook_not_found, rotate};
use crate::state::AppState;

/// Event names of Ocrolus's account-level API that the catalog knows by
/// another name.
const LEGACY_NAMES: &[(&str, &str)] = &[
    ("BOOK_VERIFIED", "book.verified"),
    ("DOC_VERIFIED", "document.verification_succeeded"),
    ("IMAGE_GROUP_VERIFIED", "image_group.verification_succeeded"),
    ("ANALYTICS_COMPLETED", "book.analytics_completed"),
];

/// What the test route sends, as Ocrolus documents it.
const TEST_PAYLOAD: &str = r#"{"status":"VERIFICATION_COMPLETE","uploaded_doc_pk":0,"book_pk":0}"#;
/// The event name test sends are logged under.
const TEST_EVENT_NAME: &str = "test_webhook_endpoint";

/// The account's webhook registration, as Ocrolus shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registration {
    /// The URL, any password shown as `****`; null when none is registered.
    pub webhook_endpoint: Option<String>,
    /// The catalog names of the subscribed events (legacy names such as
    /// `BOOK_VERIFIED` are stored under the catalog name they stand for).
    pub events: Vec<String>,
}

impl Registration {
    fn of(webhook: Option<&Webhook>) -> Self {
        Self {
            webhook_endpoint: webhook.map(masked_url),
            events: webhook.map(|w| w.event_names.clone()).unwrap_or_default(),
        }
    }
}

/// The form Ocrolus documents: `webhook_endpoint` and `event`, a list.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads the fields itself
pub struct RegistrationForm {
    #[schema(max_length = 2048)]
    webhook_endpoint: Option<String>,
    /// Event names (repeat the field, or separate names with commas); none
    /// removes the registration.
    event: Option<Vec<String>>,
}

/// The test's outcome, as Ocrolus shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestOutcome {
    /// The status the endpoint answered, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resp_code: Option<u16>,
    pub message: String,
    /// The test delivery, in the webhook's delivery log (extension).
    pub delivery_uuid: Uuid,
}

fn invalid(detail: impl std::fmt::Display) -> ApiError {
    ApiError::ocrolus(ErrorCode::LegacyInvalid, detail)
}

/// The fields of a registration, read from a multipart form, a URL-encoded
/// form or JSON, whichever the client sent.
async fn read_form(req: Request, state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = body_bytes(req, state).await?;
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if mime.eq_ignore_ascii_case("multipart/form-data") {
        // Read within the route's size and time limits first, then parsed.
        let again = Request::builder()
            .header(CONTENT_TYPE, &content_type)
            .body(Body::from(bytes))
            .map_err(ApiError::internal)?;
        let mut form = Multipart::from_request(again, &())
            .await
            .map_err(|e| invalid(format!("body: {}", e.body_text())))?;
        let mut fields = Vec::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| invalid(format!("body: {}", e.body_text())))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let text = field
                .text()
                .await
                .map_err(|e| invalid(format!("{name}: {}", e.body_text())))?;
            fields.push((name, text));
        }
        return Ok(fields);
    }
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| invalid(format!("body: not a URL-encoded form: {e}")));
    }
    let object = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Err(invalid(
                "body: send a multipart form, a URL-encoded form or a JSON object",
            ));
        }
    };
    let mut fields = Vec::new();
    for (name, value) in object {
        match value {
            Value::String(s) => fields.push((name, s)),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => fields.push((name.clone(), s)),
                        _ => return Err(invalid(format!("{name}: must hold strings"))),
                    }
                }
            }
            Value::Null => {}
            _ => return Err(invalid(format!("{name}: must be a string or a list"))),
        }
    }
    Ok(fields)
}

/// The registration a form asks for: its URL (if given) and its events as
/// catalog names, each once.
fn parse_registration(
    fields: Vec<(String, String)>,
    state: &AppState,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let mut endpoint = None;
    let mut events: Vec<String> = Vec::new();
    for (name, value) in fields {
        match name.as_str() {
            "webhook_endpoint" => endpoint = Some(value),
            "event" | "event[]" | "events" => {
                for raw in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let plain = raw.strip_suffix(" (BETA)").unwrap_or(raw);
                    let name = LEGACY_NAMES
                        .iter()
                        .find(|(legacy, _)| *legacy == plain)
                        .map_or(plain, |(_, catalog)| catalog);
                    match state.catalog().get(name) {
                        Some(t) if t.is_active => {}
                        Some(_) => return Err(invalid(format!("event: {raw} is not active"))),
                        None => return Err(invalid(format!("event: no event named {raw}"))),
                    }
                    if !events.iter().any(|e| e == name) {
                        events.push(name.to_owned());
                    }
                }
            }
            other => return Err(invalid(format!("{other}: unknown field"))),
        }
    }
    Ok((endpoint, events))
}

/// Register (or replace) the calling account's webhook; an empty event
/// list removes it.
#[utoipa::path(
    post, path = "/v1/account/settings/update/webhook_endpoint", tag = "webhooks",
    request_body(content = RegistrationForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = Envelope<Registration>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn configure(
    State(state): State<AppState>,
    Manager(caller): Manager,
    req: Request,
) -> Result<axum::Json<Envelope<Registration>>, ApiError> {
    let fields = read_form(req, &state).await?;
    let (endpoint, events) = parse_registration(fields, &state)?;
    let url = endpoint
        .map(|e| {
            WebhookUrl::parse(&e, state.policy()).map_err(|e| {
                invalid(format!(
                    "webhook_endpoint: {}",
                    field_detail(&e.to_string())
                ))
            })
        })
        .transpose()?;
    let current = state.store().account_webhook(caller.uuid).await?;
    if events.is_empty() {
        if let Some(w) = &current {
            state
                .outbox()
                .delete_webhook(w.org_uuid, w.uuid)
                .await
                .map_err(or_webhook_not_found(w.uuid))?;
            tracing::info!(webhook_uuid = %w.uuid, account_uuid = %caller.uuid, "account-level webhook removed");
        }
        return Ok(ok(Registration {
            webhook_endpoint: None,
            events,
        }));
    }
    let url = url.ok_or_else(|| invalid("webhook_endpoint: is required"))?;
    check_resolution(&state, &url)
        .await
        .map_err(|e| invalid(format!("webhook_endpoint: {}", field_detail(&e.message))))?;
    let sealed = url.password().map(|p| state.keyring().seal(p));
    let webhook = match current {
        Some(w) => {
            let patch = WebhookPatch {
                url: Some((url.without_password().to_owned(), sealed)),
                event_names: Some(events),
                is_active: Some(true),
                updated_at: state.now_ms(),
                ..WebhookPatch::default()
            };
            state
                .outbox()
                .change_webhook(w.org_uuid, w.uuid, patch)
                .await
                .map_err(or_webhook_not_found(w.uuid))?
        }
        None => {
            let new = NewWebhook {
                uuid: Uuid::new_v4(),
                org_uuid: caller.org_uuid,
                url: url.without_password().to_owned(),
                url_password_sealed: sealed,
                description: Some("account-level webhook".to_owned()),
                is_active: true,
                event_names: events,
                signature_scheme: Default::default(),
                ordering: Default::default(),
                max_in_flight: None,
                account_uuids: vec![caller.uuid],
                owner_account: Some(caller.uuid),
                options: orghooks_store::DeliveryOptions::default(),
                created_at: state.now_ms(),
            };
            let limit = state.config().webhooks.limit();
            state
                .store()
                .insert_webhook(new, limit)
                .await
                .map_err(|e| match e {
                    StoreError::LimitReached => ApiError::new(
                        ErrorCode::WebhookLimit,
                        format!(
                            "An organization can have at most {} webhooks",
                            limit.max_per_org
                        ),
                    ),
                    // Another request registered this account's webhook
                    // at the same moment: the client may send again.
                    StoreError::Conflict(_) => {
                        invalid("webhook_endpoint: registered by a concurrent request; send again")
                    }
                    other => other.into(),
                })?
        }
    };
    tracing::info!(webhook_uuid = %webhook.uuid, account_uuid = %caller.uuid, url = %url, "account-level webhook registered");
    Ok(ok(Registration::of(Some(&webhook))))
}

/// A URL rule's message without its `url: ` field name.
fn field_detail(message: &str) -> &str {
    message.strip_prefix("url: ").unwrap_or(message)
}

/// The calling account's webhook registration.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook_details", tag = "webhooks",
    responses(
        (status = 200, body = Envelope<Registration>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn details(
    State(state): State<AppState>,
    Manager(caller): Manager,
) -> Result<axum::Json<Envelope<Registration>>, ApiError> {
    let webhook = state.store().account_webhook(caller.uuid).await?;
    Ok(ok(Registration::of(webhook.as_ref())))
}

/// The account's webhook, or Ocrolus's 404.
async fn own_webhook(state: &AppState, account: Uuid) -> Result<Webhook, ApiError> {
    state
        .store()
        .account_webhook(account)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "Webhook not found"))
}

/// Send Ocrolus's test payload to the account's webhook and answer what
/// the endpoint said. The send goes through the normal delivery path (it
/// is signed, checked against the address policy, and logged).
#[utoipa::path(
    get, path = "/v1/account/settings/test_webhook_endpoint", tag = "webhooks",
    responses(
        (status = 200, description = "What the endpoint answered; a failure is told in `message`", body = Envelope<TestOutcome>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    Manager(caller): Manager,
) -> Result<axum::Json<Envelope<TestOutcome>>, ApiError> {
    let webhook = own_webhook(&state, caller.uuid).await?;
    if !webhook.is_active {
        return Err(ApiError::new(
            ErrorCode::WebhookInactive,
            format!(
                "webhook_endpoint: the webhook is not active ({})",
                webhook.disabled_reason.as_deref().unwrap_or("turned off")
            ),
        ));
    }
    let event = NewEvent {
        uuid: Uuid::new_v4(),
        account_uuid: caller.uuid,
        event_name: TEST_EVENT_NAME.to_owned(),
        book_uuid: None,
        occurred_at: state.now_ms(),
        payload_hash: Sha256::digest(TEST_PAYLOAD.as_bytes()).to_vec(),
        payload: TEST_PAYLOAD.into(),
    };
    let delivery = state
        .outbox()
        .send_test(webhook.uuid, event)
        .await
        .map_err(or_webhook_not_found(webhook.uuid))?;
    let url = masked_url(&webhook);
    let outcome = match first_attempt(&state, webhook.uuid, delivery).await? {
        Some(attempt) => match attempt.response_status {
            Some(status) if (200..300).contains(&status) => TestOutcome {
                resp_code: Some(status),
                message: "Success calling webhook endpoint".to_owned(),
                delivery_uuid: delivery,
            },
            Some(status) => TestOutcome {
                resp_code: Some(status),
                message: format!(
                    "Error: Failed to invoke webhook end point {status} for url: {url}"
                ),
                delivery_uuid: delivery,
            },
            None => TestOutcome {
                resp_code: None,
                message: format!(
                    "Error: Failed to invoke webhook end point for url: {url}: {}",
                    attempt.error.as_deref().unwrap_or("no answer")
                ),
                delivery_uuid: delivery,
            },
        },
        None => TestOutcome {
            resp_code: None,
            message: format!(
                "Error: no answer from the webhook end point yet for url: {url}; the test \
                 delivery {delivery} goes on in the delivery log"
            ),
            delivery_uuid: delivery,
        },
    };
    Ok(ok(outcome))
}

/// The test delivery's first attempt once it is written, waiting at most
/// as long as one attempt may take.
pub(crate) async fn first_attempt(
    state: &AppState,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<Option<AttemptRecord>, ApiError> {
    let d = &state.config().delivery;
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(d.timeout_ms + d.resolver_timeout_ms + 1_000);
    loop {
        let detail = state.store().get_delivery(webhook, delivery).await?;
        if let Some(first) = detail.attempts.into_iter().next() {
            return Ok(Some(first));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        // The attempt is written by the delivery engine; look again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Set the account's webhook signing secret.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/rotate-secret", tag = "webhooks",
    request_body = super::webhooks::RotateSecretBody,
    responses(
        (status = 200, description = "message: Webhook secret rotated successfully", body = Envelope<RotatedSecret>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Manager(caller): Manager,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<RotatedSecret>>, ApiError> {
    let webhook = own_webhook(&state, caller.uuid).await?;
    rotate(&state, webhook, body).await
}
