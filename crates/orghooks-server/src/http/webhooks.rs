//! The org admin's webhook operations (SPEC §2): add, list, retrieve,
//! update, delete, list a webhook's events, set its signing secret. All need
//! a manager token; another org's webhook is 404, as if it did not exist.

use axum::extract::State;
use orghooks_core::clock::format_ms;
use orghooks_core::sealing::SecretString;
use orghooks_core::webhook::{
    Ordering, SignatureScheme, WebhookUrl, parse_description, parse_event_names,
    parse_max_in_flight,
};
use std::collections::BTreeMap;

use orghooks_store::{DeliveryOptions, NewEvent, NewWebhook, StoreError, Webhook, WebhookPatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, ErrorEnvelope};
use super::extract::{JsonBody, Manager, WebhookId, check_fields, parse_fields};
use super::views::{
    Empty, Envelope, EventTypeList, EventTypeSummary, RotatedSecret, WebhookList, WebhookSummary,
    masked_url, ok, with_message,
};
use crate::delivery::resolver::Checked;
use crate::state::AppState;

/// Fields a caller may set on a webhook.
const WEBHOOK_FIELDS: &[&str] = &[
    "url",
    "description",
    "is_active",
    "signature_scheme",
    "ordering",
    "max_in_flight",
    "account_uuids",
    "headers",
    "retry_gaps_ms",
    "timeout_ms",
];
/// Fields a caller sees but may not set.
const READ_ONLY_FIELDS: &[&str] = &[
    "uuid",
    "created_on",
    "last_modified_date",
    "disabled_reason",
    "disabled_at",
];

// The request shapes below document what the handlers accept (they parse
// with `check_fields`/`parse_fields`): every bound the server checks is in
// the schema, and no other field is allowed.

/// How deliveries are signed (SPEC §4).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: `SignatureScheme` parses it
#[schema(rename_all = "kebab-case")]
pub enum SignatureSchemeName {
    Ocrolus,
    StandardWebhooks,
}

/// Per-book ordering (SPEC §5).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: `Ordering` parses it
#[schema(rename_all = "snake_case")]
pub enum OrderingName {
    None,
    PerBook,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWebhookBody {
    pub webhook: WebhookInput,
    /// Event type names to subscribe to: at least one, no duplicates.
    #[schema(min_items = 1)]
    pub event_names: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// http(s) URL with a host that has a top-level domain (or an IP
    /// literal); `user:password@` adds Basic auth to deliveries.
    #[schema(max_length = 2048)]
    pub url: String,
    /// 3 to 255 characters.
    #[schema(min_length = 3, max_length = 255)]
    pub description: Option<String>,
    /// Default true.
    pub is_active: Option<bool>,
    /// `ocrolus` (default) or `standard-webhooks`.
    #[schema(value_type = Option<SignatureSchemeName>)]
    pub signature_scheme: Option<SignatureScheme>,
    /// `none` (default) or `per_book`.
    #[schema(value_type = Option<OrderingName>)]
    pub ordering: Option<Ordering>,
    /// Concurrent requests to this webhook per node (default 16).
    #[schema(minimum = 1, maximum = 256)]
    pub max_in_flight: Option<u32>,
    /// Only events published for these accounts of the organization reach
    /// the webhook; absent or empty: every account (extension).
    #[schema(max_items = 1000, value_type = Option<Vec<Uuid>>)]
    pub account_uuids: Option<Vec<String>>,
    /// Headers sent with every delivery, up to 10, name → value; names
    /// orghooks sets itself are refused. Values are encrypted at rest and
    /// shown as `****`; sending `****` keeps a stored value (extension).
    pub headers: Option<BTreeMap<String, String>>,
    /// Gaps before attempts 2, 3, … in milliseconds, within the operator's
    /// bounds; absent or null: the node's schedule (extension).
    #[serde(default, deserialize_with = "super::options::nullable")]
    #[schema(value_type = Option<Vec<u64>>, nullable, max_items = 16)]
    pub retry_gaps_ms: Option<Option<Vec<u64>>>,
    /// How long one attempt may take, 1000 ms to the operator's bound;
    /// absent or null: the node's (extension).
    #[serde(default, deserialize_with = "super::options::nullable")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1000)]
    pub timeout_ms: Option<Option<u32>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookBody {
    pub webhook: Option<WebhookChange>,
    /// Replaces the subscriptions.
    #[schema(min_items = 1)]
    pub event_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_length = 3, max_length = 255)]
    pub description: Option<String>,
    pub is_active: Option<bool>,
    #[schema(value_type = Option<SignatureSchemeName>)]
    pub signature_scheme: Option<SignatureScheme>,
    #[schema(value_type = Option<OrderingName>)]
    pub ordering: Option<Ordering>,
    #[schema(minimum = 1, maximum = 256)]
    pub max_in_flight: Option<u32>,
    /// Replaces the account scope; empty: every account.
    #[schema(max_items = 1000, value_type = Option<Vec<Uuid>>)]
    pub account_uuids: Option<Vec<String>>,
    /// Replaces the custom headers (`{}`: none; up to 10); `****` keeps a
    /// stored value.
    pub headers: Option<BTreeMap<String, String>>,
    /// Replaces the retry schedule; null: back to the node's.
    #[serde(default, deserialize_with = "super::options::nullable")]
    #[schema(value_type = Option<Vec<u64>>, nullable, max_items = 16)]
    pub retry_gaps_ms: Option<Option<Vec<u64>>>,
    /// Replaces the timeout; null: back to the node's.
    #[serde(default, deserialize_with = "super::options::nullable")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1000)]
    pub timeout_ms: Option<Option<u32>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// `ocrolus`: 16 to 128 characters. `standard-webhooks`: `whsec_` and
    /// the base64 of 24 to 64 bytes; omit it to have one generated.
    #[schema(max_length = 128)]
    pub secret_key: Option<String>,
    /// Switches the signature scheme together with the secret (extension).
    #[schema(value_type = Option<SignatureSchemeName>)]
    pub signature_scheme: Option<SignatureScheme>,
}

/// Checks the body's field names: top-level keys, and those of `webhook`.
fn check_body(body: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    check_fields(body, "", &["webhook", "event_names"], &[])?;
    if let Some(serde_json::Value::Object(webhook)) = body.get("webhook") {
        check_fields(webhook, "webhook", WEBHOOK_FIELDS, READ_ONLY_FIELDS)?;
    }
    Ok(())
}

/// Refuses a host name that resolves, and only to blocked addresses (SPEC
/// §2). A name that does not resolve now is accepted: delivery checks again.
pub(super) async fn check_resolution(state: &AppState, url: &WebhookUrl) -> Result<(), ApiError> {
    let Some(host) = url.domain() else {
        return Ok(());
    };
    if let Ok(Checked::Blocked(ip, range)) = state.resolver().check(host).await {
        return Err(ApiError::new(
            ErrorCode::UrlBlockedAddress,
            format!(
                "url: host {host} resolves only to addresses that are not allowed ({ip} is {range})"
            ),
        ));
    }
    Ok(())
}

/// Maps the store's `NotFound` to this webhook's 404, other errors as usual.
pub(super) fn or_webhook_not_found(id: Uuid) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => webhook_not_found(id),
        other => other.into(),
    }
}

fn webhook_not_found(id: Uuid) -> ApiError {
    ApiError::not_found("Webhook", id)
}

fn store_error(e: StoreError, id: Uuid, url: Option<&WebhookUrl>, max: u32) -> ApiError {
    match (e, url) {
        (StoreError::Conflict(_), Some(url)) => ApiError::new(
            ErrorCode::UrlDuplicate,
            format!("Webhook with url {} already exists", url.masked()),
        ),
        (StoreError::LimitReached, _) => ApiError::new(
            ErrorCode::WebhookLimit,
            format!("An organization can have at most {max} webhooks"),
        ),
        (other, _) => or_webhook_not_found(id)(other),
    }
}

/// Add a webhook to the caller's organization.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook", tag = "webhooks",
    request_body = AddWebhookBody,
    responses(
        (status = 200, description = "The new webhook", body = Envelope<WebhookView>),
        (status = 400, description = "A validation rule failed; `code` says which", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn add_webhook(
    State(state): State<AppState>,
    Manager(caller): Manager,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<WebhookView>>, ApiError> {
    check_body(&body)?;
    let input: AddWebhookBody = parse_fields(body)?;
    let webhook = add(&state, caller.org_uuid, input).await?;
    Ok(ok(WebhookView::new(&webhook, &state.config().delivery)))
}

/// Adds a webhook to the organization `org` (the API and the dashboard).
pub(crate) async fn add(
    state: &AppState,
    org: Uuid,
    input: AddWebhookBody,
) -> Result<Webhook, ApiError> {
    let w = input.webhook;
    let url = WebhookUrl::parse(&w.url, state.policy())?;
    check_resolution(state, &url).await?;
    let description = w
        .description
        .as_deref()
        .map(parse_description)
        .transpose()?;
    let event_names = parse_event_names(&input.event_names, state.catalog())?;
    let max_in_flight = w.max_in_flight.map(parse_max_in_flight).transpose()?;
    let account_uuids = match &w.account_uuids {
        Some(list) => parse_accounts(state, org, list).await?,
        None => Vec::new(),
    };
    let options = super::options::apply(
        state,
        &DeliveryOptions::default(),
        &options_change(&w.headers, &w.retry_gaps_ms, w.timeout_ms),
        url.password().is_some(),
    )?;
    let max = state.config().webhooks.max_per_org;
    let new = NewWebhook {
        uuid: Uuid::new_v4(),
        org_uuid: org,
        url: url.without_password().to_owned(),
        url_password_sealed: url.password().map(|p| state.keyring().seal(p)),
        description,
        is_active: w.is_active.unwrap_or(true),
        event_names,
        signature_scheme: w.signature_scheme.unwrap_or_default(),
        ordering: w.ordering.unwrap_or_default(),
        max_in_flight,
        account_uuids,
        owner_account: None,
        options,
        created_at: state.now_ms(),
    };
    let id = new.uuid;
    let webhook = state
        .store()
        .insert_webhook(new, state.config().webhooks.limit())
        .await
        .map_err(|e| store_error(e, id, Some(&url), max))?;
    tracing::info!(webhook_uuid = %webhook.uuid, org_uuid = %org, url = %url, "webhook added");
    Ok(webhook)
}

/// Most accounts one webhook may be scoped to.
const MAX_SCOPED_ACCOUNTS: usize = 1000;

/// An account scope: uuids of accounts of the caller's organization, each
/// once. Another org's account is refused exactly as an unknown one.
async fn parse_accounts(
    state: &AppState,
    org: Uuid,
    list: &[String],
) -> Result<Vec<Uuid>, ApiError> {
    let scope = |message: String| ApiError::new(ErrorCode::AccountScope, message);
    if list.len() > MAX_SCOPED_ACCOUNTS {
        return Err(scope(format!(
            "webhook.account_uuids: at most {MAX_SCOPED_ACCOUNTS} accounts"
        )));
    }
    let mut accounts: Vec<Uuid> = Vec::with_capacity(list.len());
    for text in list {
        let uuid = Uuid::parse_str(text).map_err(|_| {
            scope(format!(
                "webhook.account_uuids: {text:?} is not a valid uuid"
            ))
        })?;
        if !accounts.contains(&uuid) {
            accounts.push(uuid);
        }
    }
    if accounts.is_empty() {
        return Ok(accounts);
    }
    let known: std::collections::HashSet<Uuid> = state
        .store()
        .list_accounts(Some(org))
        .await?
        .into_iter()
        .map(|a| a.uuid)
        .collect();
    if let Some(unknown) = accounts.iter().find(|a| !known.contains(a)) {
        return Err(scope(format!(
            "webhook.account_uuids: {unknown} is not an account of your organization"
        )));
    }
    Ok(accounts)
}

/// List the organization's webhooks.
#[utoipa::path(
    get, path = "/v1/account/settings/webhooks", tag = "webhooks",
    responses(
        (status = 200, body = Envelope<WebhookList>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Manager(caller): Manager,
) -> Result<axum::Json<Envelope<WebhookList>>, ApiError> {
    let webhooks = state.store().list_webhooks(caller.org_uuid).await?;
    let webhooks = webhooks
        .iter()
        .map(|w| WebhookSummary {
            uuid: w.uuid,
            description: w.description.clone(),
            is_active: w.is_active,
            url: masked_url(w),
        })
        .collect();
    Ok(ok(WebhookList { webhooks }))
}

async fn load(state: &AppState, org: Uuid, id: Uuid) -> Result<Webhook, ApiError> {
    state
        .store()
        .get_webhook(org, id)
        .await
        .map_err(or_webhook_not_found(id))
}

/// Retrieve one webhook.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook/{webhook_uuid}", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    responses(
        (status = 200, body = Envelope<WebhookView>),
        (status = 400, description = "Not a uuid", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
) -> Result<axum::Json<Envelope<WebhookView>>, ApiError> {
    let webhook = load(&state, caller.org_uuid, id).await?;
    Ok(ok(WebhookView::new(&webhook, &state.config().delivery)))
}

/// Update a webhook; `event_names` replaces the subscriptions.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/{webhook_uuid}/update", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    request_body = UpdateWebhookBody,
    responses(
        (status = 200, body = Envelope<Empty>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<Empty>>, ApiError> {
    check_body(&body)?;
    let input: UpdateWebhookBody = parse_fields(body)?;
    update(&state, caller.org_uuid, id, input).await?;
    Ok(ok(Empty {}))
}

/// The options part of an add or update body.
fn options_change<'a>(
    headers: &'a Option<BTreeMap<String, String>>,
    gaps: &'a Option<Option<Vec<u64>>>,
    timeout: Option<Option<u32>>,
) -> super::options::OptionsChange<'a> {
    super::options::OptionsChange {
        headers: headers.as_ref(),
        retry_gaps_ms: gaps.as_ref().map(|g| g.as_deref()),
        timeout_ms: timeout,
    }
}

/// Changes a webhook of the organization `org` (the API and the dashboard).
pub(crate) async fn update(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    input: UpdateWebhookBody,
) -> Result<Webhook, ApiError> {
    if input.webhook.is_none() && input.event_names.is_none() {
        return Err(ApiError::new(
            ErrorCode::EmptyUpdate,
            "body: give webhook, event_names, or both",
        ));
    }
    let current = load(state, org, id).await?;
    let change = input.webhook.unwrap_or_default();
    if current.owner_account.is_some() && change.account_uuids.is_some() {
        return Err(ApiError::new(
            ErrorCode::AccountScope,
            "webhook.account_uuids: an account-level webhook hears only the account that \
             registered it",
        ));
    }
    let url = change
        .url
        .as_deref()
        .map(|u| WebhookUrl::parse(u, state.policy()))
        .transpose()?;
    if let Some(url) = &url {
        check_resolution(state, url).await?;
    }
    let basic_auth = match &url {
        Some(u) => u.password().is_some(),
        None => current.url_password_sealed.is_some(),
    };
    let options = super::options::apply(
        state,
        &current.options,
        &options_change(&change.headers, &change.retry_gaps_ms, change.timeout_ms),
        basic_auth,
    )?;
    let patch = WebhookPatch {
        url: url.as_ref().map(|u| {
            (
                u.without_password().to_owned(),
                u.password().map(|p| state.keyring().seal(p)),
            )
        }),
        description: change
            .description
            .as_deref()
            .map(parse_description)
            .transpose()?,
        is_active: change.is_active,
        event_names: input
            .event_names
            .map(|n| parse_event_names(&n, state.catalog()))
            .transpose()?,
        signature_scheme: change.signature_scheme,
        ordering: change.ordering,
        max_in_flight: change.max_in_flight.map(parse_max_in_flight).transpose()?,
        account_uuids: match &change.account_uuids {
            Some(list) => Some(parse_accounts(state, org, list).await?),
            None => None,
        },
        options: (options != current.options).then_some(options),
        secret_sealed: None,
        keep_previous_secret_until: None,
        updated_at: state.now_ms(),
    };
    if let (Some(scheme), Some(sealed)) = (patch.signature_scheme, &current.secret_sealed) {
        let secret = state.keyring().open(sealed).map_err(ApiError::internal)?;
        if scheme.secret(Some(secret.expose())).is_err() {
            return Err(ApiError::new(
                ErrorCode::SchemeSecretMismatch,
                format!(
                    "webhook.signature_scheme: the webhook's secret does not fit the {} scheme; \
                     change both at once through rotate-secret with signature_scheme and secret_key",
                    scheme.as_str()
                ),
            ));
        }
    }
    let max = state.config().webhooks.max_per_org;
    let changed = state
        .outbox()
        .change_webhook(org, id, patch)
        .await
        .map_err(|e| store_error(e, id, url.as_ref(), max))?;
    tracing::info!(webhook_uuid = %id, org_uuid = %org, "webhook updated");
    Ok(changed)
}

/// Delete a webhook; its pending deliveries are cancelled.
#[utoipa::path(
    delete, path = "/v1/account/settings/webhook/{webhook_uuid}/delete", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    responses(
        (status = 200, body = Envelope<Empty>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
) -> Result<axum::Json<Envelope<Empty>>, ApiError> {
    delete(&state, caller.org_uuid, id).await?;
    Ok(ok(Empty {}))
}

/// Deletes a webhook of `org` (the API and the dashboard).
pub(crate) async fn delete(state: &AppState, org: Uuid, id: Uuid) -> Result<(), ApiError> {
    let cancelled = state
        .outbox()
        .delete_webhook(org, id)
        .await
        .map_err(or_webhook_not_found(id))?;
    tracing::info!(webhook_uuid = %id, org_uuid = %org, cancelled, "webhook deleted");
    Ok(())
}

/// List the event types a webhook subscribes to.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook/{webhook_uuid}/events", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    responses(
        (status = 200, body = Envelope<EventTypeList>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn webhook_events(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
) -> Result<axum::Json<Envelope<EventTypeList>>, ApiError> {
    let webhook = load(&state, caller.org_uuid, id).await?;
    let events = webhook
        .event_names
        .iter()
        .filter_map(|name| state.catalog().get(name))
        .map(EventTypeSummary::from)
        .collect();
    Ok(ok(EventTypeList { events }))
}

/// Set the webhook's signing secret. The secret is never shown again.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/{webhook_uuid}/rotate-secret", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    request_body = RotateSecretBody,
    responses(
        (status = 200, description = "message: Webhook secret rotated successfully; a generated secret_key is shown this once", body = Envelope<RotatedSecret>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<RotatedSecret>>, ApiError> {
    let webhook = load(&state, caller.org_uuid, id).await?;
    rotate(&state, webhook, body).await
}

/// Sets `webhook`'s secret from a rotate-secret body (both APIs).
pub(crate) async fn rotate(
    state: &AppState,
    webhook: Webhook,
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<axum::Json<Envelope<RotatedSecret>>, ApiError> {
    check_fields(&body, "", &["secret_key", "signature_scheme"], &[])?;
    let input: RotateSecretBody = parse_fields(body)?;
    let (id, org) = (webhook.uuid, webhook.org_uuid);
    let scheme = input.signature_scheme.unwrap_or(webhook.signature_scheme);
    let (secret, generated): (SecretString, bool) = scheme.secret(input.secret_key.as_deref())?;
    // Standard Webhooks receivers accept any of several signatures, so the
    // old key keeps signing beside the new one for the overlap.
    let overlap = (scheme == SignatureScheme::StandardWebhooks
        && webhook.signature_scheme == SignatureScheme::StandardWebhooks)
        .then(|| state.now_ms() + state.config().delivery.secret_overlap_secs as i64 * 1000);
    let patch = WebhookPatch {
        secret_sealed: Some(state.keyring().seal(&secret)),
        keep_previous_secret_until: overlap,
        signature_scheme: input.signature_scheme,
        updated_at: state.now_ms(),
        ..WebhookPatch::default()
    };
    state
        .outbox()
        .change_webhook(org, id, patch)
        .await
        .map_err(or_webhook_not_found(id))?;
    tracing::info!(webhook_uuid = %id, org_uuid = %org, "webhook secret rotated");
    let shown = generated.then(|| secret.expose().to_owned());
    Ok(with_message(
        RotatedSecret::MESSAGE,
        RotatedSecret::new(shown),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestWebhookBody {
    /// The uuid of an event type (not of an event): its example is sent.
    pub event_uuid: Uuid,
}

/// The queued test: the payload sent (as Ocrolus shows it) and the
/// delivery's uuid.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDelivery {
    /// The test delivery's uuid (sent as `webhook-id`).
    pub uuid: Uuid,
    /// The payload sent: the event type's example.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// Send an event type's example payload to the webhook as a test delivery.
#[utoipa::path(
    post, path = "/v1/account/settings/webhook/{webhook_uuid}/test", tag = "webhooks",
    params(("webhook_uuid" = Uuid, Path)),
    request_body = TestWebhookBody,
    responses(
        (status = 200, description = "The test delivery was queued", body = Envelope<TestDelivery>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    Manager(caller): Manager,
    WebhookId(id): WebhookId,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<TestDelivery>>, ApiError> {
    check_fields(&body, "", &["event_uuid"], &[])?;
    let input: TestWebhookBody = parse_fields(body)?;
    let webhook = load(&state, caller.org_uuid, id).await?;
    let event_type = state.catalog().by_uuid(input.event_uuid).ok_or_else(|| {
        ApiError::new(
            ErrorCode::EventTypeUnknown,
            format!("event_uuid: no event type {}", input.event_uuid),
        )
    })?;
    let uuid = send_test(&state, &webhook, event_type, caller.uuid).await?;
    let payload = event_type.example.as_object().cloned().unwrap_or_default();
    Ok(ok(TestDelivery { uuid, payload }))
}

/// Sends the example of `event_type` to `webhook` as a test delivery on
/// behalf of `account` (the API and the dashboard); answers its uuid.
pub(crate) async fn send_test(
    state: &AppState,
    webhook: &Webhook,
    event_type: &orghooks_core::catalog::EventType,
    account: Uuid,
) -> Result<Uuid, ApiError> {
    let id = webhook.uuid;
    if !event_type.is_active {
        return Err(ApiError::new(
            ErrorCode::EventNameInactive,
            format!("event_uuid: event type {} is not active", event_type.name),
        ));
    }
    if !webhook.is_active {
        return Err(ApiError::new(
            ErrorCode::WebhookInactive,
            format!("webhook_uuid: webhook {id} is not active"),
        ));
    }
    if !webhook.event_names.contains(&event_type.name) {
        return Err(ApiError::new(
            ErrorCode::EventNotSubscribed,
            format!(
                "event_uuid: webhook {id} does not subscribe to {}",
                event_type.name
            ),
        ));
    }
    let payload = serde_json::to_string(&event_type.example).map_err(ApiError::internal)?;
    let now = state.now_ms();
    let event = NewEvent {
        uuid: Uuid::new_v4(),
        account_uuid: account,
        event_name: event_type.name.clone(),
        book_uuid: event_type
            .example
            .get("book_uuid")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        occurred_at: now,
        payload_hash: Sha256::digest(payload.as_bytes()).to_vec(),
        payload: payload.into(),
    };
    let uuid = state
        .outbox()
        .send_test(id, event)
        .await
        .map_err(or_webhook_not_found(id))?;
    tracing::info!(webhook_uuid = %id, delivery_uuid = %uuid, event_name = %event_type.name, "test delivery queued");
    Ok(uuid)
}

/// A webhook as Add and Retrieve show it: what this file parses, it shows.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct WebhookView {
    pub uuid: Uuid,
    /// The URL, with any password shown as `****`.
    pub url: String,
    pub description: Option<String>,
    pub is_active: bool,
    /// ISO 8601 UTC, milliseconds.
    pub created_on: String,
    pub last_modified_date: String,
    /// `ocrolus` or `standard-webhooks`.
    pub signature_scheme: String,
    /// `none` or `per_book`.
    pub ordering: String,
    /// The webhook's own cap, or the node's `delivery.default_max_in_flight`
    /// when it did not set one.
    pub max_in_flight: u32,
    /// The accounts whose events it receives; empty: every account.
    pub account_uuids: Vec<Uuid>,
    /// Only on an account-level webhook (Ocrolus's older API): the account
    /// that registered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_account_uuid: Option<Uuid>,
    /// Custom headers sent with every delivery, each value shown as `****`
    /// (extension).
    pub headers: BTreeMap<String, String>,
    /// Gaps before attempts 2, 3, … in ms: the webhook's own, or the node's
    /// (extension).
    pub retry_gaps_ms: Vec<u64>,
    /// How long one attempt may take, in ms: the webhook's own, or the
    /// node's (extension).
    pub timeout_ms: u64,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
}

impl WebhookView {
    /// `node` says what applies where the webhook set nothing of its own.
    pub fn new(w: &Webhook, node: &crate::config::DeliveryConfig) -> Self {
        Self {
            uuid: w.uuid,
            url: masked_url(w),
            description: w.description.clone(),
            is_active: w.is_active,
            created_on: format_ms(w.created_at),
            last_modified_date: format_ms(w.updated_at),
            signature_scheme: w.signature_scheme.as_str().to_owned(),
            ordering: w.ordering.as_str().to_owned(),
            max_in_flight: w.max_in_flight.unwrap_or(node.default_max_in_flight),
            account_uuids: w.account_uuids.clone(),
            owner_account_uuid: w.owner_account,
            headers: super::options::shown_headers(&w.options),
            retry_gaps_ms: w
                .options
                .retry_gaps_ms
                .clone()
                .unwrap_or_else(|| node.retry_gaps_ms.clone()),
            timeout_ms: w.options.timeout_ms.map_or(node.timeout_ms, u64::from),
            disabled_reason: w.disabled_reason.clone(),
            disabled_at: w.disabled_at.map(format_ms),
        }
    }
}
