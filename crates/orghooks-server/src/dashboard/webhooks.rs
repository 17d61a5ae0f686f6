//! The webhooks pages: the organization's webhooks, one webhook, and the
//! add form. Adding goes through `http::webhooks::add`, the API's own
//! function, and a refusal is shown next to the field it names.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use orghooks_core::clock::format_ms;
use orghooks_store::{DeliveryStatus, StoreError, Webhook};
use uuid::Uuid;

use super::pages::{self, page};
use super::{FormFields, Session, redirect, refusal};
use crate::delivery::CircuitView;
use crate::http::error::ApiError;
use crate::http::views::masked_url;
use crate::http::webhooks::{
    AddWebhookBody, UpdateWebhookBody, WebhookChange, WebhookInput, add, delete, rotate, update,
};
use crate::state::AppState;

/// The organization's webhooks, with how many more it may have.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let webhooks = match state.store().list_webhooks(session.org_uuid).await {
        Ok(w) => w,
        Err(e) => return pages::failure(&e.to_string()),
    };
    let mut health = Vec::with_capacity(webhooks.len());
    for w in &webhooks {
        match Health::of(&state, w).await {
            Ok(h) => health.push(h),
            Err(e) => return pages::failure(&e.to_string()),
        }
    }
    let limit = state.config().webhooks.limit();
    let max = limit.max_per_org;
    let counted = webhooks
        .iter()
        .filter(|w| limit.counts(w.owner_account))
        .count();
    page(
        "Webhooks",
        Some(&session),
        html! {
            div.heading {
                h1 { "Webhooks" }
                p.limit id="limit" { (counted) " of " (max) " webhooks" }
                @if session.can_change() && (counted as u32) < max {
                    a.button href="/dashboard/webhooks/new" { "Add webhook" }
                }
            }
            @if webhooks.is_empty() {
                p.empty { "No webhooks yet." }
            }
            ul.webhooks {
                @for (w, h) in webhooks.iter().zip(&health) {
                    li.card data-webhook=(w.uuid) { (summary(w)) (h.render()) }
                }
            }
        },
    )
    .into_response()
}

fn summary(w: &Webhook) -> Markup {
    html! {
        @if let Some(reason) = &w.disabled_reason {
            p.banner role="alert" {
                "Turned off"
                @if let Some(at) = w.disabled_at { " at " (format_ms(at)) }
                ": " (reason)
            }
        }
        h2 {
            a.url href={ "/dashboard/webhooks/" (w.uuid) } { (masked_url(w)) }
        }
        p {
            @if w.is_active { span.badge.on { "Active" } } @else { span.badge.off { "Inactive" } }
            @if w.owner_account.is_some() { " " span.badge { "Account-level" } }
        }
        @if let Some(d) = &w.description { p.description { (d) } }
        p.events { "Events: " (w.event_names.join(", ")) }
    }
}

/// Slices of the health chart, and their length.
const SLICES: i64 = 24;
const SLICE_MS: i64 = 3_600_000;

/// A webhook's last 24 hours: its deliveries per hour by outcome, and its
/// circuit as this node knows it.
struct Health {
    /// Per hour, oldest first: (succeeded, failed, other).
    hours: Vec<(u32, u32, u32)>,
    circuit: CircuitView,
}

impl Health {
    async fn of(state: &AppState, w: &Webhook) -> Result<Self, StoreError> {
        let now = state.now_ms();
        // Whole hours, so that a bar does not shift while one looks.
        let since = (now / SLICE_MS - (SLICES - 1)) * SLICE_MS;
        let mut hours = vec![(0, 0, 0); SLICES as usize];
        for c in state
            .store()
            .delivery_counts(w.uuid, since, SLICE_MS)
            .await?
        {
            let Some(hour) = usize::try_from(c.slice).ok().and_then(|i| hours.get_mut(i)) else {
                continue;
            };
            match c.status {
                DeliveryStatus::Succeeded => hour.0 += c.count,
                DeliveryStatus::Failed => hour.1 += c.count,
                _ => hour.2 += c.count,
            }
        }
        Ok(Self {
            hours,
            circuit: state.outbox().circuit(w.uuid),
        })
    }

    fn render(&self) -> Markup {
        let (ok, failed, other) = self
            .hours
            .iter()
            .fold((0, 0, 0), |t, h| (t.0 + h.0, t.1 + h.1, t.2 + h.2));
        let total = ok + failed + other;
        let rate = (ok + failed > 0).then(|| f64::from(ok) * 100.0 / f64::from(ok + failed));
        let deliveries = if total == 1 { "delivery" } else { "deliveries" };
        let summary = match rate {
            Some(r) => format!("{total} {deliveries} in 24 h, {r:.1} % of finished ones succeeded"),
            None if total > 0 => format!("{total} {deliveries} in 24 h, none finished yet"),
            None => "No deliveries in 24 h".to_owned(),
        };
        let max = self
            .hours
            .iter()
            .map(|h| h.0 + h.1 + h.2)
            .max()
            .unwrap_or(0)
            .max(1);
        // Bars 4 wide and 1 apart in a 120 × 24 box; each stacked from the
        // bottom: succeeded, failed, the rest.
        let height = |n: u32| f64::from(n) * 24.0 / f64::from(max);
        html! {
            div.health {
                svg.chart viewBox="0 0 120 24" width="120" height="24" role="img"
                    aria-label={ "Deliveries per hour over the last 24 hours: " (summary) } {
                    @for (i, (s, f, o)) in self.hours.iter().enumerate() {
                        @let x = i * 5;
                        @let (hs, hf, ho) = (height(*s), height(*f), height(*o));
                        @if *s > 0 { rect.ok x=(x) y=(24.0 - hs) width="4" height=(hs) {} }
                        @if *f > 0 { rect.bad x=(x) y=(24.0 - hs - hf) width="4" height=(hf) {} }
                        @if *o > 0 { rect.wait x=(x) y=(24.0 - hs - hf - ho) width="4" height=(ho) {} }
                    }
                }
                span.rate data-health { (summary) }
            }
            p.circuit data-circuit {
                @match self.circuit {
                    CircuitView::Closed => "Circuit closed: deliveries flow",
                    CircuitView::Open(c) => {
                        "Circuit open since " (format_ms(c.opened_at)) " after " (c.failures)
                        " failed attempts in a row; deliveries wait, next try at " (format_ms(c.probe_at))
                    },
                    CircuitView::Unknown => "Circuit state: kept by the worker nodes",
                }
            }
        }
    }
}

/// Why a webhook page cannot be shown.
pub(super) enum Unavailable {
    /// Not in the caller's organization (or no such webhook at all).
    NotFound,
    Failed(String),
}

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => pages::not_found("No such webhook in your organization."),
            Self::Failed(why) => pages::failure(&why),
        }
    }
}

/// The webhook at `raw` in the session's organization.
pub(super) async fn webhook_of(
    state: &AppState,
    session: &Session,
    raw: &str,
) -> Result<Webhook, Unavailable> {
    let id = Uuid::parse_str(raw).map_err(|_| Unavailable::NotFound)?;
    match state.store().get_webhook(session.org_uuid, id).await {
        Ok(w) => Ok(w),
        Err(StoreError::NotFound) => Err(Unavailable::NotFound),
        Err(e) => Err(Unavailable::Failed(e.to_string())),
    }
}

/// A change to one of the session's webhooks (`{webhook_uuid}` in the
/// path): the form's CSRF token and the session's right to change are
/// checked and the webhook loaded; otherwise the page to answer is the
/// rejection.
pub struct Change {
    pub session: Session,
    pub webhook: Webhook,
    pub form: Vec<(String, String)>,
}

impl axum::extract::FromRequest<AppState> for Change {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let raw = Path::<std::collections::HashMap<String, String>>::from_request_parts(
            &mut parts, state,
        )
        .await
        .ok()
        .and_then(|Path(params)| params.get("webhook_uuid").cloned())
        .unwrap_or_default();
        let request = axum::extract::Request::from_parts(parts, body);
        let FormFields(form) = FormFields::from_request(request, state).await?;
        if let Some(refused) = refusal(&session, &form, true) {
            return Err(refused);
        }
        let webhook = webhook_of(state, &session, &raw)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            session,
            webhook,
            form,
        })
    }
}

pub(super) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// One webhook, or the not-found page (another organization's included).
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    match webhook_of(&state, &session, &raw).await {
        Ok(w) => detail_page(&state, &session, &w, None, None),
        Err(e) => e.into_response(),
    }
}

/// A webhook's page: its settings and, for managers, what may be done to
/// it. `secret` is a generated secret to show this once; `error` a refused
/// secret.
fn detail_page(
    state: &AppState,
    session: &Session,
    w: &Webhook,
    secret: Option<&str>,
    error: Option<&str>,
) -> Response {
    let default_cap = state.config().delivery.default_max_in_flight;
    let base = format!("/dashboard/webhooks/{}", w.uuid);
    page(
        "Webhook",
        Some(session),
        html! {
            p { a href="/dashboard/webhooks" { "← All webhooks" } }
            div.card { (summary(w)) }
            @if let Some(secret) = secret {
                div.card.notice role="status" {
                    p { strong { "Your new signing secret. Copy it now: it is never shown again." } }
                    p { code id="new-secret" { (secret) } }
                    button type="button" data-copy="#new-secret" { "Copy" }
                }
            }
            dl.details {
                dt { "Created" } dd { (format_ms(w.created_at)) }
                dt { "Last modified" } dd { (format_ms(w.updated_at)) }
                dt { "Signature scheme" } dd { (w.signature_scheme.as_str()) }
                dt { "Signing secret" } dd { @if w.secret_sealed.is_some() { "set (never shown again)" } @else { "none" } }
                dt { "Ordering" } dd { (w.ordering.as_str()) }
                dt { "Max in flight" } dd { (w.max_in_flight.unwrap_or(default_cap)) }
                dt { "Custom headers" } dd id="headers-shown" {
                    @if w.options.header_names.is_empty() { "none" }
                    @else { (w.options.header_names.iter().map(|n| format!("{n}: ****")).collect::<Vec<_>>().join(", ")) }
                }
                dt { "Retry gaps" } dd id="retry-shown" {
                    @match &w.options.retry_gaps_ms {
                        Some(g) => { (g.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")) " ms" },
                        None => "the service's schedule",
                    }
                }
                dt { "Timeout" } dd {
                    @match w.options.timeout_ms {
                        Some(t) => { (t) " ms" },
                        None => { (state.config().delivery.timeout_ms) " ms (the service's)" },
                    }
                }
                dt { "Accounts" } dd {
                    @if w.account_uuids.is_empty() { "every account of the organization" }
                    @else { (w.account_uuids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")) }
                }
            }
            p.actions {
                a.button href={ (base) "/deliveries" } id="deliveries-link" { "Deliveries" }
                @if session.can_change() {
                    a.button href={ (base) "/test" } id="test-link" { "Send a test" }
                }
            }
            @if session.can_change() {
                div.actions {
                    a.button href={ (base) "/edit" } { "Edit" }
                    form method="post" action={ (base) "/active" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="active" value=(!w.is_active);
                        button type="submit" id="toggle" {
                            @if w.is_active { "Deactivate" } @else { "Activate" }
                        }
                    }
                    a.button.danger href={ (base) "/delete" } { "Delete…" }
                }
                form.card method="post" action={ (base) "/secret" } {
                    h2 { "Signing secret" }
                    label for="secret_scheme" { "Signature scheme" }
                    select id="secret_scheme" name="signature_scheme" {
                        option value="ocrolus" selected[w.signature_scheme.as_str() == "ocrolus"] { "Ocrolus (16 to 128 characters)" }
                        option value="standard-webhooks" selected[w.signature_scheme.as_str() == "standard-webhooks"] { "Standard Webhooks (whsec_…, or leave empty to generate one)" }
                    }
                    label for="secret_key" { "New secret" }
                    input id="secret_key" name="secret_key" type="password" autocomplete="off"
                        maxlength="128" aria-describedby="secret_key-error";
                    @if let Some(error) = error {
                        p.error role="alert" id="secret_key-error" { (error) }
                    }
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Set secret" }
                }
            }
        },
    )
    .into_response()
}

pub async fn edit_page(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    if !session.can_change() {
        return pages::refused("Your account has the member role: it may look, not change.");
    }
    match webhook_of(&state, &session, &raw).await {
        Ok(w) => form_page(&state, &session, &WebhookForm::of(&w), None, Some(&w)).await,
        Err(e) => e.into_response(),
    }
}

pub async fn save(
    State(state): State<AppState>,
    Change {
        session,
        webhook: current,
        form: pairs,
    }: Change,
) -> Response {
    let form = WebhookForm::read(&pairs);
    let result = match form.update(&current) {
        Ok(body) => update(&state, session.org_uuid, current.uuid, body)
            .await
            .map_err(|e| (field_of(&e), e.message)),
        Err((field, message)) => Err((Some(field), message)),
    };
    match result {
        Ok(w) => redirect(&format!("/dashboard/webhooks/{}", w.uuid)),
        Err(error) => {
            let mut response =
                form_page(&state, &session, &form, Some(error), Some(&current)).await;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// Activates or deactivates (form field `active`).
pub async fn set_active(
    State(state): State<AppState>,
    Change {
        session,
        webhook: current,
        form: pairs,
    }: Change,
) -> Response {
    let change = UpdateWebhookBody {
        webhook: Some(WebhookChange {
            is_active: Some(field(&pairs, "active") == "true"),
            ..WebhookChange::default()
        }),
        event_names: None,
    };
    match update(&state, session.org_uuid, current.uuid, change).await {
        Ok(w) => redirect(&format!("/dashboard/webhooks/{}", w.uuid)),
        Err(e) => pages::failure(&e.message),
    }
}

/// Asks before deleting.
pub async fn delete_page(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    if !session.can_change() {
        return pages::refused("Your account has the member role: it may look, not change.");
    }
    let w = match webhook_of(&state, &session, &raw).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    page(
        "Delete webhook",
        Some(&session),
        html! {
            h1 { "Delete this webhook?" }
            p.url { (masked_url(&w)) }
            p { "Its waiting deliveries are cancelled. This cannot be undone." }
            form method="post" action={ "/dashboard/webhooks/" (w.uuid) "/delete" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger type="submit" id="confirm-delete" { "Delete webhook" }
                " "
                a href={ "/dashboard/webhooks/" (w.uuid) } { "Keep it" }
            }
        },
    )
    .into_response()
}

pub async fn remove(State(state): State<AppState>, Change { webhook: w, .. }: Change) -> Response {
    match delete(&state, w.org_uuid, w.uuid).await {
        Ok(()) => redirect("/dashboard/webhooks"),
        Err(e) => pages::failure(&e.message),
    }
}

/// Sets or rotates the signing secret; a generated one is shown this once.
pub async fn set_secret(
    State(state): State<AppState>,
    Change {
        session,
        webhook: w,
        form: pairs,
    }: Change,
) -> Response {
    let mut request = serde_json::Map::new();
    let key = field(&pairs, "secret_key");
    if !key.is_empty() {
        request.insert("secret_key".into(), key.into());
    }
    let scheme = field(&pairs, "signature_scheme");
    if !scheme.is_empty() && scheme != w.signature_scheme.as_str() {
        request.insert("signature_scheme".into(), scheme.into());
    }
    match rotate(&state, w.clone(), request).await {
        Ok(answer) => {
            let generated = answer.0.response.secret_key.clone();
            match webhook_of(&state, &session, &w.uuid.to_string()).await {
                Ok(now) => detail_page(&state, &session, &now, generated.as_deref(), None),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => {
            let mut response = detail_page(&state, &session, &w, None, Some(&e.message));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// What the add and edit forms hold, to show them again with their errors.
#[derive(Default)]
struct WebhookForm {
    url: String,
    description: String,
    events: Vec<String>,
    signature_scheme: String,
    ordering: String,
    max_in_flight: String,
    accounts: Vec<String>,
    active: bool,
    /// `Name: value` lines (stored values shown as `****`).
    headers: String,
    /// Comma-separated milliseconds; empty: the service's schedule.
    retry_gaps_ms: String,
    timeout_ms: String,
}

impl WebhookForm {
    fn read(pairs: &[(String, String)]) -> Self {
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let all = |name: &str| {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        Self {
            url: one("url"),
            description: one("description"),
            events: all("event_names"),
            signature_scheme: one("signature_scheme"),
            ordering: one("ordering"),
            max_in_flight: one("max_in_flight"),
            accounts: all("account_uuids"),
            active: one("is_active") == "on",
            headers: one("headers"),
            retry_gaps_ms: one("retry_gaps_ms"),
            timeout_ms: one("timeout_ms"),
        }
    }

    /// The edit form of `w`, as it is now (its URL's password masked).
    fn of(w: &Webhook) -> Self {
        Self {
            url: masked_url(w),
            description: w.description.clone().unwrap_or_default(),
            events: w.event_names.clone(),
            signature_scheme: w.signature_scheme.as_str().to_owned(),
            ordering: w.ordering.as_str().to_owned(),
            max_in_flight: w.max_in_flight.map(|n| n.to_string()).unwrap_or_default(),
            accounts: w.account_uuids.iter().map(Uuid::to_string).collect(),
            active: w.is_active,
            headers: w
                .options
                .header_names
                .iter()
                .map(|n| format!("{n}: {}", crate::http::options::MASK))
                .collect::<Vec<_>>()
                .join("\n"),
            retry_gaps_ms: w
                .options
                .retry_gaps_ms
                .as_ref()
                .map(|g| g.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            timeout_ms: w
                .options
                .timeout_ms
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }

    /// The API's update of `current`: only what the form changed of the URL
    /// (its masked form means "keep it") and of the signature scheme.
    fn update(&self, current: &Webhook) -> Result<UpdateWebhookBody, (&'static str, String)> {
        let add = self.body()?;
        let w = add.webhook;
        Ok(UpdateWebhookBody {
            webhook: Some(WebhookChange {
                url: Some(w.url).filter(|u| *u != masked_url(current)),
                description: w.description,
                is_active: w.is_active,
                signature_scheme: w
                    .signature_scheme
                    .filter(|s| *s != current.signature_scheme),
                ordering: w.ordering,
                max_in_flight: w.max_in_flight,
                account_uuids: w.account_uuids.filter(|_| current.owner_account.is_none()),
                headers: w.headers,
                retry_gaps_ms: w.retry_gaps_ms,
                timeout_ms: w.timeout_ms,
            }),
            event_names: Some(add.event_names),
        })
    }

    /// The API's body; a value the form cannot turn into one is named.
    fn body(&self) -> Result<AddWebhookBody, (&'static str, String)> {
        let max_in_flight = match self.max_in_flight.trim() {
            "" => None,
            n => Some(n.parse::<u32>().map_err(|_| {
                (
                    "max_in_flight",
                    "max_in_flight: a whole number from 1 to 256".to_owned(),
                )
            })?),
        };
        Ok(AddWebhookBody {
            webhook: WebhookInput {
                url: self.url.trim().to_owned(),
                description: Some(self.description.trim().to_owned()).filter(|d| !d.is_empty()),
                is_active: Some(self.active),
                signature_scheme: Some(choice("signature_scheme", &self.signature_scheme)?),
                ordering: Some(choice("ordering", &self.ordering)?),
                max_in_flight,
                account_uuids: Some(self.accounts.clone()),
                headers: Some(self.header_map()?),
                retry_gaps_ms: Some(self.gaps()?),
                timeout_ms: Some(match self.timeout_ms.trim() {
                    "" => None,
                    t => Some(t.parse::<u32>().map_err(|_| {
                        (
                            "timeout_ms",
                            "timeout_ms: a whole number of milliseconds".to_owned(),
                        )
                    })?),
                }),
            },
            event_names: self.events.clone(),
        })
    }

    /// The headers box: one `Name: value` per line.
    fn header_map(&self) -> Result<BTreeMap<String, String>, (&'static str, String)> {
        self.headers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                line.split_once(':')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| {
                        (
                            "headers",
                            format!("headers: {line:?} is not a Name: value line"),
                        )
                    })
            })
            .collect()
    }

    /// The retry gaps box: comma-separated milliseconds; empty: `None`.
    fn gaps(&self) -> Result<Option<Vec<u64>>, (&'static str, String)> {
        if self.retry_gaps_ms.trim().is_empty() {
            return Ok(None);
        }
        self.retry_gaps_ms
            .split(',')
            .map(|g| {
                g.trim().parse::<u64>().map_err(|_| {
                    (
                        "retry_gaps_ms",
                        format!(
                            "retry_gaps_ms: {:?} is not a number of milliseconds",
                            g.trim()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A select's value as the API's enum (they share their serde names).
fn choice<T: serde::de::DeserializeOwned>(
    field: &'static str,
    value: &str,
) -> Result<T, (&'static str, String)> {
    serde_json::from_value(serde_json::Value::from(value)).map_err(|_| {
        (
            field,
            format!("{field}: {value:?} is not one of the choices"),
        )
    })
}

/// The form field an API refusal is about, by its code (see
/// docs/error-codes.md); `None`: the form as a whole.
fn field_of(e: &ApiError) -> Option<&'static str> {
    for field in ["headers", "retry_gaps_ms", "timeout_ms"] {
        if e.message.contains(&format!("webhook.{field}")) {
            return Some(field);
        }
    }
    match e.code.code() {
        2000..=2005 => Some("url"),
        2010 | 2011 => Some("description"),
        2020..=2023 => Some("event_names"),
        2040 => Some("max_in_flight"),
        2060 => Some("account_uuids"),
        _ => None,
    }
}

pub async fn new_page(State(state): State<AppState>, session: Session) -> Response {
    if !session.can_change() {
        return pages::refused("Your account has the member role: it may look, not add webhooks.");
    }
    let form = WebhookForm {
        active: true,
        signature_scheme: "ocrolus".into(),
        ordering: "none".into(),
        ..WebhookForm::default()
    };
    form_page(&state, &session, &form, None, None).await
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    FormFields(pairs): FormFields,
) -> Response {
    if let Some(refused) = refusal(&session, &pairs, true) {
        return refused;
    }
    let form = WebhookForm::read(&pairs);
    let result = match form.body() {
        Ok(body) => add(&state, session.org_uuid, body)
            .await
            .map_err(|e| (field_of(&e), e.message)),
        Err((field, message)) => Err((Some(field), message)),
    };
    match result {
        Ok(webhook) => redirect(&format!("/dashboard/webhooks/{}", webhook.uuid)),
        Err(error) => {
            let mut response = form_page(&state, &session, &form, Some(error), None).await;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// The add form (`editing` `None`) or the edit form of a webhook, filled
/// with `form`, and the error next to its field.
async fn form_page(
    state: &AppState,
    session: &Session,
    form: &WebhookForm,
    error: Option<(Option<&'static str>, String)>,
    editing: Option<&Webhook>,
) -> Response {
    let (title, action, back) = match editing {
        None => (
            "Add webhook".to_owned(),
            "/dashboard/webhooks/new".to_owned(),
            "/dashboard/webhooks".to_owned(),
        ),
        Some(w) => (
            "Edit webhook".to_owned(),
            format!("/dashboard/webhooks/{}/edit", w.uuid),
            format!("/dashboard/webhooks/{}", w.uuid),
        ),
    };
    let accounts = match state.store().list_accounts(Some(session.org_uuid)).await {
        Ok(a) => a,
        Err(e) => return pages::failure(&e.to_string()),
    };
    let mut families: BTreeMap<&str, Vec<&orghooks_core::catalog::EventType>> = BTreeMap::new();
    for t in state.catalog().iter().filter(|t| t.is_active) {
        let family = t.name.split('.').next().unwrap_or(&t.name);
        families.entry(family).or_default().push(t);
    }
    let error_for = |field: &str| -> Option<String> {
        match &error {
            Some((Some(f), message)) if *f == field => Some(message.clone()),
            _ => None,
        }
    };
    let field_error = |field: &str| {
        html! {
            @if let Some(message) = error_for(field) {
                p.error role="alert" id={ (field) "-error" } { (message) }
            }
        }
    };
    page(
        &title,
        Some(session),
        html! {
            p { a href=(back) { "← Back" } }
            h1 { (title) }
            @if let Some((None, message)) = &error {
                p.error role="alert" id="form-error" { (message) }
            }
            form.card.wide method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="url" { "URL" }
                input id="url" name="url" type="url" required maxlength="2048"
                    value=(form.url) aria-describedby="url-error";
                (field_error("url"))
                label for="description" { "Description (optional, 3 to 255 characters)" }
                input id="description" name="description" type="text" maxlength="255"
                    value=(form.description) aria-describedby="description-error";
                (field_error("description"))
                fieldset aria-describedby="event_names-error" {
                    legend { "Events" }
                    (field_error("event_names"))
                    @for (family, types) in &families {
                        fieldset.family {
                            legend { (family) }
                            @for t in types {
                                div.choice {
                                    input type="checkbox" name="event_names" value=(t.name)
                                        id={ "event-" (t.name) }
                                        checked[form.events.contains(&t.name)];
                                    label for={ "event-" (t.name) } {
                                        code { (t.name) } " "
                                        span.badge { (t.severity) }
                                        @if t.beta { " " span.badge { "beta" } }
                                        span.hint { (t.description) }
                                    }
                                }
                            }
                        }
                    }
                }
                label for="signature_scheme" { "Signature scheme" }
                select id="signature_scheme" name="signature_scheme" {
                    option value="ocrolus" selected[form.signature_scheme == "ocrolus"] { "Ocrolus (HMAC-SHA256, hex)" }
                    option value="standard-webhooks" selected[form.signature_scheme == "standard-webhooks"] { "Standard Webhooks" }
                }
                label for="ordering" { "Ordering" }
                select id="ordering" name="ordering" {
                    option value="none" selected[form.ordering == "none"] { "None (fastest)" }
                    option value="per_book" selected[form.ordering == "per_book"] { "Per book (one at a time, in order)" }
                }
                label for="max_in_flight" { "Max in flight (optional, 1 to 256)" }
                input id="max_in_flight" name="max_in_flight" type="number" min="1" max="256"
                    value=(form.max_in_flight) aria-describedby="max_in_flight-error";
                (field_error("max_in_flight"))
                label for="headers" { "Custom headers (optional, up to 10, one " code { "Name: value" } " per line; " code { "****" } " keeps a stored value)" }
                textarea id="headers" name="headers" rows="3" aria-describedby="headers-error" { (form.headers) }
                (field_error("headers"))
                label for="retry_gaps_ms" { "Retry gaps in ms (optional, comma-separated; empty: the service's schedule)" }
                input id="retry_gaps_ms" name="retry_gaps_ms" type="text" inputmode="numeric"
                    value=(form.retry_gaps_ms) aria-describedby="retry_gaps_ms-error";
                (field_error("retry_gaps_ms"))
                label for="timeout_ms" { "Timeout in ms (optional; empty: the service's)" }
                input id="timeout_ms" name="timeout_ms" type="number" min="1000"
                    value=(form.timeout_ms) aria-describedby="timeout_ms-error";
                (field_error("timeout_ms"))
                fieldset aria-describedby="account_uuids-error" {
                    legend { "Accounts (none checked: every account of the organization)" }
                    (field_error("account_uuids"))
                    @for a in &accounts {
                        div.choice {
                            input type="checkbox" name="account_uuids" value=(a.uuid)
                                id={ "account-" (a.uuid) }
                                checked[form.accounts.contains(&a.uuid.to_string())];
                            label for={ "account-" (a.uuid) } { (a.name) " " code { (a.client_id) } }
                        }
                    }
                }
                div.choice {
                    input id="is_active" name="is_active" type="checkbox" checked[form.active];
                    label for="is_active" { "Active" }
                }
                button type="submit" { @if editing.is_some() { "Save changes" } @else { "Add webhook" } }
            }
        },
    )
    .into_response()
}
