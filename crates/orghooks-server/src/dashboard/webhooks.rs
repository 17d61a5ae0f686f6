//! The webhooks pages: the organization's webhooks, one webhook, and the
//! add form. Adding goes through `http::webhooks::add`, the API's own
//! function, and a refusal is shown next to the field it names.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use orghooks_core::clock::format_ms;
use orghooks_store::{StoreError, Webhook};
use uuid::Uuid;

use super::pages::{self, page};
use super::{Session, redirect, refusal};
use crate::http::error::ApiError;
use crate::http::views::masked_url;
use crate::http::webhooks::{AddWebhookBody, WebhookInput, add};
use crate::state::AppState;

/// The organization's webhooks, with how many more it may have.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let webhooks = match state.store().list_webhooks(session.account.org_uuid).await {
        Ok(w) => w,
        Err(e) => return pages::failure(&e.to_string()),
    };
    let max = state.config().webhooks.max_per_org;
    let org_level = webhooks
        .iter()
        .filter(|w| w.owner_account.is_none())
        .count();
    page(
        "Webhooks",
        Some(&session),
        html! {
            div.heading {
                h1 { "Webhooks" }
                p.limit id="limit" { (org_level) " of " (max) " webhooks" }
                @if session.can_change() && (org_level as u32) < max {
                    a.button href="/dashboard/webhooks/new" { "Add webhook" }
                }
            }
            @if webhooks.is_empty() {
                p.empty { "No webhooks yet." }
            }
            ul.webhooks {
                @for w in &webhooks {
                    li.card data-webhook=(w.uuid) { (summary(w)) }
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

/// One webhook, or the not-found page (another organization's included).
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&raw) else {
        return pages::not_found("No such webhook in your organization.");
    };
    let w = match state
        .store()
        .get_webhook(session.account.org_uuid, id)
        .await
    {
        Ok(w) => w,
        Err(StoreError::NotFound) => {
            return pages::not_found("No such webhook in your organization.");
        }
        Err(e) => return pages::failure(&e.to_string()),
    };
    let default_cap = state.config().delivery.default_max_in_flight;
    page(
        "Webhook",
        Some(&session),
        html! {
            p { a href="/dashboard/webhooks" { "← All webhooks" } }
            div.card { (summary(&w)) }
            dl.details {
                dt { "Created" } dd { (format_ms(w.created_at)) }
                dt { "Last modified" } dd { (format_ms(w.updated_at)) }
                dt { "Signature scheme" } dd { (w.signature_scheme.as_str()) }
                dt { "Signing secret" } dd { @if w.secret_sealed.is_some() { "set (never shown again)" } @else { "none" } }
                dt { "Ordering" } dd { (w.ordering.as_str()) }
                dt { "Max in flight" } dd { (w.max_in_flight.unwrap_or(default_cap)) }
                dt { "Accounts" } dd {
                    @if w.account_uuids.is_empty() { "every account of the organization" }
                    @else { (w.account_uuids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")) }
                }
            }
        },
    )
    .into_response()
}

/// What the add form holds, to show it again with its errors.
#[derive(Default)]
struct AddForm {
    url: String,
    description: String,
    events: Vec<String>,
    signature_scheme: String,
    ordering: String,
    max_in_flight: String,
    accounts: Vec<String>,
    active: bool,
}

impl AddForm {
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
        }
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
            },
            event_names: self.events.clone(),
        })
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
    let form = AddForm {
        active: true,
        signature_scheme: "ocrolus".into(),
        ordering: "none".into(),
        ..AddForm::default()
    };
    add_page(&state, &session, &form, None).await
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    body: axum::body::Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if let Some(refused) = refusal(&session, &pairs, true) {
        return refused;
    }
    let form = AddForm::read(&pairs);
    let result = match form.body() {
        Ok(body) => add(&state, &session.account, body)
            .await
            .map_err(|e| (field_of(&e), e.message)),
        Err((field, message)) => Err((Some(field), message)),
    };
    match result {
        Ok(webhook) => redirect(&format!("/dashboard/webhooks/{}", webhook.uuid)),
        Err(error) => {
            let mut response = add_page(&state, &session, &form, Some(error)).await;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// The add form, filled with `form`, and the error next to its field.
async fn add_page(
    state: &AppState,
    session: &Session,
    form: &AddForm,
    error: Option<(Option<&'static str>, String)>,
) -> Response {
    let accounts = match state
        .store()
        .list_accounts(Some(session.account.org_uuid))
        .await
    {
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
        "Add webhook",
        Some(session),
        html! {
            p { a href="/dashboard/webhooks" { "← All webhooks" } }
            h1 { "Add webhook" }
            @if let Some((None, message)) = &error {
                p.error role="alert" id="form-error" { (message) }
            }
            form.card.wide method="post" action="/dashboard/webhooks/new" {
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
                button type="submit" { "Add webhook" }
            }
        },
    )
    .into_response()
}
