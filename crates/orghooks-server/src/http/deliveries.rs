//! The delivery log (SPEC §2 extensions): a webhook's deliveries with
//! filters and cursor pagination, one delivery with every attempt, and
//! resending: redeliver one delivery, recover a window of failed ones.
//! Everything is scoped to the caller's org through the webhook.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use orghooks_core::clock::format_ms;
use orghooks_store::{
    DeliveryDetail, DeliveryFilter, DeliveryStatus, DeliverySummary, Redelivery, StoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, ErrorEnvelope};
use super::extract::{JsonBody, Manager, check_fields, parse_fields};
use super::views::{Envelope, ok};
use crate::state::AppState;

/// Most deliveries on one page, and the default.
const MAX_LIMIT: u32 = 100;
const DEFAULT_LIMIT: u32 = 50;
/// The widest recovery window (SPEC §2).
const MAX_RECOVER_MS: i64 = 14 * 24 * 3600 * 1000;

/// The `{webhook_uuid}/delivery/{delivery_uuid}` path segments.
pub struct DeliveryPath {
    pub webhook: Uuid,
    pub delivery: Uuid,
}

impl<S: Send + Sync> FromRequestParts<S> for DeliveryPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((webhook, delivery)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPathUuid, format!("path: {e}")))?;
        let parse = |name: &str, raw: &str| {
            Uuid::parse_str(raw).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidPathUuid,
                    format!("{name}: {raw:?} is not a valid uuid"),
                )
            })
        };
        Ok(Self {
            webhook: parse("webhook_uuid", &webhook)?,
            delivery: parse("delivery_uuid", &delivery)?,
        })
    }
}

/// A delivery's state (SPEC §5).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: `DeliveryStatus` parses it
#[schema(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Pending,
    Delivering,
    Succeeded,
    Failed,
    Held,
    Cancelled,
}

/// Filters of the delivery log; every value is checked.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    #[param(value_type = Option<DeliveryStatusName>, inline)]
    pub status: Option<String>,
    /// An event type of the catalog.
    pub event_name: Option<String>,
    pub book_uuid: Option<Uuid>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Sent as `webhook-id`.
    pub uuid: Uuid,
    pub event_uuid: Uuid,
    pub event_name: String,
    pub book_uuid: Option<String>,
    pub status: String,
    pub is_test: bool,
    /// Attempts made (a redelivery starts a fresh count).
    pub attempts: u32,
    pub created_on: String,
    pub last_modified_date: String,
    /// When a pending delivery is due.
    pub next_attempt_at: Option<String>,
}

impl From<&DeliverySummary> for DeliveryView {
    fn from(d: &DeliverySummary) -> Self {
        Self {
            uuid: d.uuid,
            event_uuid: d.event_uuid,
            event_name: d.event_name.clone(),
            book_uuid: d.book_uuid.clone(),
            status: d.status.as_str().to_owned(),
            is_test: d.is_test,
            attempts: d.attempts,
            created_on: format_ms(d.created_at),
            last_modified_date: format_ms(d.updated_at),
            next_attempt_at: (d.status == DeliveryStatus::Pending)
                .then(|| format_ms(d.next_attempt_at)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// Sent as `Webhook-Request-Id`.
    pub uuid: Uuid,
    pub started_on: String,
    pub duration_ms: i64,
    /// As sent, with Basic auth masked; null for successful attempts
    /// (headers are kept for failed ones only).
    #[schema(value_type = Option<Object>)]
    pub request_headers: Value,
    pub response_status: Option<u16>,
    /// Null for successful attempts, like `request_headers`.
    #[schema(value_type = Option<Object>)]
    pub response_headers: Value,
    /// For non-2xx answers, up to 16 KiB.
    pub response_body: Option<String>,
    /// Why no answer came: "timed out after 5 s", "connection refused"…
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailView {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The body every attempt sent.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub attempt_log: Vec<AttemptView>,
}

fn json_or_null(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

impl From<&DeliveryDetail> for DeliveryDetailView {
    fn from(d: &DeliveryDetail) -> Self {
        Self {
            delivery: (&d.summary).into(),
            payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
            attempt_log: d
                .attempts
                .iter()
                .map(|a| AttemptView {
                    uuid: a.uuid,
                    started_on: format_ms(a.started_at),
                    duration_ms: a.duration_ms,
                    request_headers: json_or_null(&a.request_headers),
                    response_status: a.response_status,
                    response_headers: json_or_null(&a.response_headers),
                    response_body: a.response_body.clone(),
                    error: a.error.clone(),
                })
                .collect(),
        }
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::ocrolus(ErrorCode::InvalidField, message)
}

fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| invalid(format!("{name}: {text:?} is not an RFC 3339 timestamp")))
}

pub(crate) fn parse_filter(
    state: &AppState,
    raw: HashMap<String, String>,
) -> Result<DeliveryFilter, ApiError> {
    const KNOWN: &[&str] = &[
        "status",
        "event_name",
        "book_uuid",
        "since",
        "until",
        "limit",
        "cursor",
    ];
    if let Some(unknown) = raw.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::new(
            ErrorCode::UnknownField,
            format!("{unknown}: unknown query parameter"),
        ));
    }
    let status = raw
        .get("status")
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                invalid(format!(
                    "status: {s:?} is not one of pending, delivering, succeeded, failed, held, cancelled"
                ))
            })
        })
        .transpose()?;
    if let Some(name) = raw.get("event_name")
        && state.catalog().get(name).is_none()
    {
        return Err(invalid(format!("event_name: no event type named {name}")));
    }
    let book_uuid = raw
        .get("book_uuid")
        .map(|b| {
            Uuid::parse_str(b)
                .map(|u| u.to_string())
                .map_err(|_| invalid(format!("book_uuid: {b:?} is not a valid uuid")))
        })
        .transpose()?;
    let since = raw
        .get("since")
        .map(|t| parse_time("since", t))
        .transpose()?;
    let until = raw
        .get("until")
        .map(|t| parse_time("until", t))
        .transpose()?;
    let limit = match raw.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "limit: {l:?} is not a number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    let before = raw
        .get("cursor")
        .map(|c| {
            CURSOR
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| invalid("cursor: not a cursor this API returned".to_owned()))
        })
        .transpose()?;
    Ok(DeliveryFilter {
        status,
        event_name: raw.get("event_name").cloned(),
        book_uuid,
        since,
        until,
        before,
        limit,
    })
}

/// Loads the caller's webhook, as the webhook routes do (404 otherwise).
async fn own_webhook(
    state: &AppState,
    org: Uuid,
    webhook: Uuid,
) -> Result<orghooks_store::Webhook, ApiError> {
    state
        .store()
        .get_webhook(org, webhook)
        .await
        .map_err(super::webhooks::or_webhook_not_found(webhook))
}

fn delivery_not_found(path: &DeliveryPath) -> ApiError {
    ApiError::not_found("Delivery", path.delivery)
}

/// A webhook's deliveries, newest first.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook/{webhook_uuid}/deliveries", tag = "deliveries",
    params(("webhook_uuid" = Uuid, Path), LogQuery),
    responses(
        (status = 200, body = Envelope<DeliveryPage>),
        (status = 400, description = "A filter value is invalid; the message names it", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Manager(caller): Manager,
    super::extract::WebhookId(webhook): super::extract::WebhookId,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Envelope<DeliveryPage>>, ApiError> {
    let Query(raw) = query.map_err(|e| invalid(format!("query: {e}")))?;
    let filter = parse_filter(&state, raw)?;
    own_webhook(&state, caller.org_uuid, webhook).await?;
    let (rows, next_cursor) = page(&state, webhook, filter).await?;
    Ok(ok(DeliveryPage {
        deliveries: rows.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// One page of a webhook's deliveries, and the cursor of the next page
/// when there is one (the API and the dashboard).
pub(crate) async fn page(
    state: &AppState,
    webhook: Uuid,
    mut filter: DeliveryFilter,
) -> Result<(Vec<DeliverySummary>, Option<String>), ApiError> {
    let limit = filter.limit;
    filter.limit += 1;
    let mut rows = state.store().list_deliveries(webhook, filter).await?;
    let next_cursor = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        CURSOR.encode(rows.last().expect("a full page").id.to_string())
    });
    Ok((rows, next_cursor))
}

/// One delivery with every attempt.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook/{webhook_uuid}/delivery/{delivery_uuid}", tag = "deliveries",
    params(("webhook_uuid" = Uuid, Path), ("delivery_uuid" = Uuid, Path)),
    responses(
        (status = 200, body = Envelope<DeliveryDetailView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    Manager(caller): Manager,
    path: DeliveryPath,
) -> Result<axum::Json<Envelope<DeliveryDetailView>>, ApiError> {
    own_webhook(&state, caller.org_uuid, path.webhook).await?;
    let detail = state
        .store()
        .get_delivery(path.webhook, path.delivery)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => delivery_not_found(&path),
            other => other.into(),
        })?;
    Ok(ok(DeliveryDetailView::from(&detail)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    pub uuid: Uuid,
    /// `delivering` when sent again now; the current status when it was
    /// already waiting to be sent.
    pub status: String,
}

/// Send a delivery again now (same `webhook-id`, signed anew).
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/{webhook_uuid}/delivery/{delivery_uuid}/redeliver", tag = "deliveries",
    params(("webhook_uuid" = Uuid, Path), ("delivery_uuid" = Uuid, Path)),
    responses(
        (status = 200, body = Envelope<Redelivered>),
        (status = 400, description = "The webhook is not active", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Manager(caller): Manager,
    path: DeliveryPath,
) -> Result<axum::Json<Envelope<Redelivered>>, ApiError> {
    let status = resend(&state, caller.org_uuid, path.webhook, path.delivery).await?;
    Ok(ok(Redelivered {
        uuid: path.delivery,
        status,
    }))
}

/// Sends one delivery of the organization's webhook again (the API and the
/// dashboard); answers the delivery's status now.
pub(crate) async fn resend(
    state: &AppState,
    org: Uuid,
    webhook_uuid: Uuid,
    delivery: Uuid,
) -> Result<String, ApiError> {
    let path = DeliveryPath {
        webhook: webhook_uuid,
        delivery,
    };
    let webhook = own_webhook(state, org, path.webhook).await?;
    if !webhook.is_active {
        return Err(ApiError::new(
            ErrorCode::WebhookInactive,
            format!("webhook_uuid: webhook {} is not active", path.webhook),
        ));
    }
    let not_found = |e| match e {
        StoreError::NotFound => delivery_not_found(&path),
        other => other.into(),
    };
    let redelivery = state
        .outbox()
        .redeliver(path.webhook, path.delivery)
        .await
        .map_err(not_found)?;
    let status = match redelivery {
        Some(Redelivery::Leased(_)) => {
            tracing::info!(webhook_uuid = %path.webhook, delivery_uuid = %path.delivery, "redelivery requested");
            DeliveryStatus::Delivering.as_str().to_owned()
        }
        Some(Redelivery::AfterCurrent) => {
            tracing::info!(webhook_uuid = %path.webhook, delivery_uuid = %path.delivery, "redelivery requested after the attempt in flight");
            DeliveryStatus::Delivering.as_str().to_owned()
        }
        Some(Redelivery::Queued) => {
            tracing::info!(webhook_uuid = %path.webhook, delivery_uuid = %path.delivery, "redelivery queued");
            DeliveryStatus::Pending.as_str().to_owned()
        }
        None => {
            let detail = state
                .store()
                .get_delivery(path.webhook, path.delivery)
                .await
                .map_err(not_found)?;
            detail.summary.status.as_str().to_owned()
        }
    };
    Ok(status)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverBody {
    /// Deliveries created at or after (RFC 3339).
    #[schema(format = DateTime)]
    pub since: String,
    /// Created before (RFC 3339); default now. At most 14 days after `since`.
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// Failed deliveries queued again.
    pub recovered: u64,
}

/// Queue again every failed delivery of the webhook created in a window.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/{webhook_uuid}/recover", tag = "deliveries",
    params(("webhook_uuid" = Uuid, Path)),
    request_body = RecoverBody,
    responses(
        (status = 200, body = Envelope<Recovered>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn recover(
    State(state): State<AppState>,
    Manager(caller): Manager,
    super::extract::WebhookId(webhook): super::extract::WebhookId,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<Recovered>>, ApiError> {
    check_fields(&body, "", &["since", "until"], &[])?;
    let input: RecoverBody = parse_fields(body)?;
    let recovered = recover_window(
        &state,
        caller.org_uuid,
        webhook,
        &input.since,
        input.until.as_deref(),
    )
    .await?;
    Ok(ok(Recovered { recovered }))
}

/// Queues again the failed deliveries of the organization's webhook created
/// in `[since, until)` (RFC 3339; `until` defaults to now): the API and the
/// dashboard. Answers how many.
pub(crate) async fn recover_window(
    state: &AppState,
    org: Uuid,
    webhook: Uuid,
    since: &str,
    until: Option<&str>,
) -> Result<u64, ApiError> {
    let now = state.now_ms();
    let since = parse_time("since", since)?;
    let until = until
        .map(|u| parse_time("until", u))
        .transpose()?
        .unwrap_or(now);
    if until <= since || until - since > MAX_RECOVER_MS {
        return Err(ApiError::new(
            ErrorCode::RecoverWindow,
            "since: the window must end after it starts and span at most 14 days",
        ));
    }
    let w = own_webhook(state, org, webhook).await?;
    if !w.is_active {
        return Err(ApiError::new(
            ErrorCode::WebhookInactive,
            format!("webhook_uuid: webhook {webhook} is not active"),
        ));
    }
    let recovered = state.outbox().recover(webhook, since, until).await?;
    tracing::info!(webhook_uuid = %webhook, recovered, "failed deliveries recovered");
    Ok(recovered)
}
