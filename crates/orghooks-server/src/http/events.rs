//! The platform's publish API (SPEC §3): `POST /v1/events` and
//! `POST /v1/events/batch`. An event is validated against its type's
//! schema, completed, and answered 202 only once it and its deliveries are
//! durably committed; its deliveries are then handed straight to the engine.

use axum::extract::State;
use axum::http::StatusCode;
use orghooks_store::{AppendError, Appended, NewEvent, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, ErrorEnvelope};
use super::extract::{Publisher, RawJsonBody, check_fields, parse_fields};
use super::views::{Envelope, ok};
use crate::state::AppState;

const EVENT_FIELDS: &[&str] = &["event_uuid", "account_uuid", "occurred_at", "payload"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Makes publishing idempotent (unique per org); generated when absent.
    pub event_uuid: Option<Uuid>,
    /// The API account the event happened in; it decides the organization.
    pub account_uuid: Uuid,
    /// RFC 3339; defaults to the time of acceptance.
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    /// The notification, flat, with `event_name` naming its type.
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Events to publish; each is judged on its own, as `POST /v1/events`
/// would judge it (`PublishBody`), and answered in `results`: an item that
/// is not a valid event is refused there, not the batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// At most `publish.max_batch_events` (1,000 by default) items.
    #[schema(value_type = Vec<Value>, max_items = 1000)]
    pub events: Vec<PublishBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub event_uuid: Uuid,
    /// Deliveries the event fanned out to.
    pub deliveries: u32,
}

/// One item's result in a batch: 202 with the event, or an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_uuid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    pub accepted: u32,
    pub rejected: u32,
    /// In the order of the request's events.
    pub results: Vec<BatchResult>,
}

/// Where an event's payload text is in the request body, read without
/// unescaping or converting anything.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The text of the payload of the event whose JSON text is `event`.
fn raw_payload(event: &str) -> Option<&str> {
    serde_json::from_str::<RawEvent>(event)
        .ok()?
        .payload
        .map(RawValue::get)
}

/// Validates and completes one event, ready to append. `raw_payload` is the
/// payload's text as sent: receivers get it unchanged, plus completion.
fn prepare(
    state: &AppState,
    object: Map<String, Value>,
    raw_payload: Option<&str>,
) -> Result<NewEvent, ApiError> {
    check_fields(&object, "", EVENT_FIELDS, &[])?;
    let body: PublishBody = parse_fields(object)?;
    let published_len = body.payload.as_object().map_or(0, Map::len);
    let occurred_at = match &body.occurred_at {
        None => state.now_ms(),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|_| {
                ApiError::ocrolus(
                    ErrorCode::InvalidField,
                    format!("occurred_at: {text:?} is not an RFC 3339 timestamp"),
                )
            })?,
    };
    let (payload, event_type) = state.catalog().validate_and_complete(body.payload)?;
    if event_type.operational {
        return Err(ApiError::new(
            ErrorCode::UnknownEventName,
            format!(
                "payload.event_name: {} is one of orghooks' own notices; only orghooks sends it",
                event_type.name
            ),
        ));
    }
    let text = match raw_payload {
        Some(raw) => orghooks_core::payload::completed_text(raw, &payload, published_len),
        None => serde_json::to_string(&payload).map_err(ApiError::internal)?,
    };
    let max = state.config().publish.max_payload_bytes;
    if text.len() > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("payload: larger than {max} bytes"),
        ));
    }
    Ok(NewEvent {
        uuid: body.event_uuid.unwrap_or_else(Uuid::now_v7),
        account_uuid: body.account_uuid,
        event_name: event_type.name.clone(),
        book_uuid: payload
            .get("book_uuid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        occurred_at,
        payload_hash: Sha256::digest(text.as_bytes()).to_vec(),
        payload: text.into(),
    })
}

fn append_error(e: AppendError, event: &NewEvent) -> ApiError {
    match e {
        AppendError::UnknownAccount => ApiError::new(
            ErrorCode::UnknownAccount,
            format!("account_uuid: no API account {}", event.account_uuid),
        ),
        AppendError::PayloadMismatch => ApiError::new(
            ErrorCode::EventConflict,
            format!(
                "event_uuid: {} was already published with a different payload",
                event.uuid
            ),
        ),
    }
}

fn busy(e: StoreError) -> ApiError {
    match e {
        StoreError::Busy => ApiError::new(
            ErrorCode::Unavailable,
            "the write queue is full; retry after the Retry-After delay",
        ),
        other => other.into(),
    }
}

/// Commits the events with their deliveries and starts them.
async fn append(
    state: &AppState,
    events: Vec<NewEvent>,
) -> Result<Vec<Result<Appended, AppendError>>, ApiError> {
    state.outbox().publish(events).await.map_err(busy)
}

/// Publish one event.
#[utoipa::path(
    post, path = "/v1/events", tag = "publish",
    request_body = PublishBody,
    responses(
        (status = 202, description = "Durably accepted; `deliveries` webhooks will receive it", body = Envelope<Published>),
        (status = 400, description = "Validation failed; the message names the field", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "The event_uuid was published with another payload", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 503, description = "Write queue full: retry after Retry-After", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn publish(
    State(state): State<AppState>,
    _publisher: Publisher,
    body: RawJsonBody,
) -> Result<(StatusCode, axum::Json<Envelope<Published>>), ApiError> {
    let raw = std::str::from_utf8(&body.raw).ok().and_then(raw_payload);
    let event = prepare(&state, body.object, raw)?;
    let template = event.clone();
    let result = append(&state, vec![event])
        .await?
        .pop()
        .expect("one result per event");
    let appended = result.map_err(|e| append_error(e, &template))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Envelope {
            status: 202,
            message: "Accepted".into(),
            response: Published {
                event_uuid: appended.event_uuid,
                deliveries: appended.delivery_count,
            },
        }),
    ))
}

/// Publish up to `publish.max_batch_events` events; each is judged on its own.
#[utoipa::path(
    post, path = "/v1/events/batch", tag = "publish",
    request_body = BatchBody,
    responses(
        (status = 200, description = "Each event's result, in order", body = Envelope<BatchResults>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn publish_batch(
    State(state): State<AppState>,
    _publisher: Publisher,
    RawJsonBody {
        object: mut body,
        raw,
    }: RawJsonBody,
) -> Result<axum::Json<Envelope<BatchResults>>, ApiError> {
    check_fields(&body, "", &["events"], &[])?;
    let raw_events: Vec<&RawValue> = std::str::from_utf8(&raw)
        .ok()
        .and_then(|text| serde_json::from_str::<RawBatch>(text).ok())
        .map(|batch| batch.events)
        .unwrap_or_default();
    let Some(Value::Array(items)) = body.remove("events") else {
        return Err(ApiError::ocrolus(
            ErrorCode::InvalidField,
            "events: is required and must be an array",
        ));
    };
    let max = state.config().publish.max_batch_events;
    if items.len() > max {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "events: at most {max} events per batch, got {}",
                items.len()
            ),
        ));
    }
    let prepared: Vec<Result<NewEvent, ApiError>> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(object) => {
                let raw = raw_events.get(i).and_then(|e| raw_payload(e.get()));
                prepare(&state, object, raw)
            }
            _ => Err(ApiError::ocrolus(
                ErrorCode::MalformedJson,
                format!("events[{i}]: must be a JSON object"),
            )),
        })
        .collect();
    let valid: Vec<NewEvent> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let mut appended = if valid.is_empty() {
        Vec::new()
    } else {
        append(&state, valid.clone()).await?
    }
    .into_iter()
    .zip(valid);
    let mut results = Vec::with_capacity(prepared.len());
    for item in prepared {
        let result = match item {
            Err(e) => Err(e),
            Ok(_) => {
                let (result, event) = appended.next().expect("one result per valid event");
                result.map_err(|e| append_error(e, &event))
            }
        };
        results.push(match result {
            Ok(a) => BatchResult {
                status: 202,
                event_uuid: Some(a.event_uuid),
                deliveries: Some(a.delivery_count),
                code: None,
                message: None,
            },
            Err(e) => BatchResult {
                status: e.code.status().as_u16(),
                event_uuid: None,
                deliveries: None,
                code: Some(e.code.code()),
                message: Some(e.message),
            },
        });
    }
    let accepted = results.iter().filter(|r| r.status == 202).count() as u32;
    Ok(ok(BatchResults {
        accepted,
        rejected: results.len() as u32 - accepted,
        results,
    }))
}
