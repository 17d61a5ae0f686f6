//! A webhook's deliveries: the log with its filters and pages, one
//! delivery with every attempt (the request sent and the answer), sending
//! one again, recovering a window of failed ones, and the test page. Each
//! goes through the API's own function (`http::deliveries`,
//! `http::webhooks::send_test`), so the rules are the API's.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use orghooks_core::clock::format_ms;
use orghooks_store::{AttemptRecord, DeliveryStatus, DeliverySummary, StoreError, Webhook};
use uuid::Uuid;

use super::pages::{self, page};
use super::webhooks::{Change, Unavailable, field, webhook_of};
use super::{Session, redirect};
use crate::http::account_level::first_attempt;
use crate::http::deliveries::{page as delivery_page, parse_filter, recover_window, resend};
use crate::http::views::masked_url;
use crate::http::webhooks::send_test;
use crate::state::AppState;

/// Deliveries on one page of the log.
const PAGE: u32 = 25;
/// The filters the log's form sends, as the API names them.
const FILTERS: [&str; 6] = [
    "status",
    "event_name",
    "book_uuid",
    "since",
    "until",
    "cursor",
];

/// A `datetime-local` value (`2026-11-30T10:15`, read as UTC) or RFC 3339,
/// as RFC 3339; anything else unchanged, for the API to name.
fn as_rfc3339(value: &str) -> String {
    let v = value.trim();
    match v.len() {
        16 if v.as_bytes()[10] == b'T' => format!("{v}:00Z"),
        19 if v.as_bytes()[10] == b'T' => format!("{v}Z"),
        _ => v.to_owned(),
    }
}

/// The log, filtered by the query (`?status=failed&event_name=…`).
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match webhook_of(&state, &session, &raw).await {
        Ok(w) => log_page(&state, &session, &w, &query, None).await,
        Err(e) => e.into_response(),
    }
}

/// What a recovery did, or why it was refused.
enum Notice {
    Done(String),
    Refused(String),
}

async fn log_page(
    state: &AppState,
    session: &Session,
    w: &Webhook,
    query: &HashMap<String, String>,
    notice: Option<Notice>,
) -> Response {
    let filters: HashMap<String, String> = FILTERS
        .iter()
        .filter_map(|name| {
            let value = query.get(*name)?.trim();
            let value = match *name {
                "since" | "until" => as_rfc3339(value),
                _ => value.to_owned(),
            };
            (!value.is_empty()).then(|| ((*name).to_owned(), value))
        })
        .collect();
    let shown = |name: &str| query.get(name).map_or("", |v| v.trim());
    let result = match parse_filter(state, filters.clone()) {
        Ok(mut filter) => {
            filter.limit = PAGE;
            delivery_page(state, w.uuid, filter).await
        }
        Err(e) => Err(e),
    };
    let (rows, next, filter_error) = match result {
        Ok((rows, next)) => (rows, next, None),
        Err(e) if e.code.status().is_client_error() => (Vec::new(), None, Some(e.message)),
        Err(e) => return pages::failure(&e.message),
    };
    let next_link = next.map(|cursor| {
        let mut q: Vec<(String, String)> = FILTERS[..5]
            .iter()
            .filter(|n| !shown(n).is_empty())
            .map(|n| ((*n).to_owned(), shown(n).to_owned()))
            .collect();
        q.push(("cursor".into(), cursor));
        format!(
            "?{}",
            serde_urlencoded::to_string(q).expect("strings encode")
        )
    });
    let base = format!("/dashboard/webhooks/{}", w.uuid);
    let statuses = [
        "pending",
        "delivering",
        "succeeded",
        "failed",
        "held",
        "cancelled",
    ];
    let mut names: Vec<&str> = state.catalog().iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    page(
        "Deliveries",
        Some(session),
        html! {
            p { a href=(base) { "← " (masked_url(w)) } }
            h1 { "Deliveries" }
            @match &notice {
                Some(Notice::Done(text)) => p.card.notice role="status" id="notice" { (text) },
                Some(Notice::Refused(text)) => p.error role="alert" id="notice" { (text) },
                None => {}
            }
            form.filters method="get" action={ (base) "/deliveries" } aria-label="Filter deliveries" {
                div {
                    label for="f-status" { "Status" }
                    select id="f-status" name="status" {
                        option value="" { "any" }
                        @for s in statuses {
                            option value=(s) selected[shown("status") == s] { (s) }
                        }
                    }
                }
                div {
                    label for="f-event" { "Event" }
                    select id="f-event" name="event_name" {
                        option value="" { "any" }
                        @for n in &names {
                            option value=(n) selected[shown("event_name") == *n] { (n) }
                        }
                    }
                }
                div {
                    label for="f-book" { "Book uuid" }
                    input id="f-book" name="book_uuid" type="text" value=(shown("book_uuid"));
                }
                div {
                    label for="f-since" { "From (UTC)" }
                    input id="f-since" name="since" type="datetime-local" value=(shown("since"));
                }
                div {
                    label for="f-until" { "Before (UTC)" }
                    input id="f-until" name="until" type="datetime-local" value=(shown("until"));
                }
                div { button type="submit" { "Filter" } }
            }
            @if let Some(message) = &filter_error {
                p.error role="alert" id="filter-error" { (message) }
            }
            @if rows.is_empty() && filter_error.is_none() {
                p.empty id="no-deliveries" { "No deliveries match." }
            }
            @if !rows.is_empty() {
                div.scroll {
                    table.log id="deliveries" {
                        thead { tr {
                            th scope="col" { "Created (UTC)" }
                            th scope="col" { "Event" }
                            th scope="col" { "Book" }
                            th scope="col" { "Status" }
                            th scope="col" { "Attempts" }
                        } }
                        tbody {
                            @for d in &rows { (row(&base, d)) }
                        }
                    }
                }
            }
            @if let Some(link) = next_link {
                p { a href=(link) id="older" { "Older deliveries →" } }
            }
            @if session.can_change() {
                form.card method="post" action={ (base) "/recover" } {
                    h2 { "Recover failed deliveries" }
                    p.hint { "Queues again, with a fresh retry budget, every delivery that failed \
                              among those created in the window (at most 14 days)." }
                    label for="r-since" { "From (UTC)" }
                    input id="r-since" name="since" type="datetime-local" required;
                    label for="r-until" { "Before (UTC, empty: now)" }
                    input id="r-until" name="until" type="datetime-local";
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" id="recover" { "Recover" }
                }
            }
        },
    )
    .into_response()
}

fn status_badge(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Succeeded => "badge on",
        DeliveryStatus::Failed | DeliveryStatus::Cancelled => "badge off",
        _ => "badge",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn row(base: &str, d: &DeliverySummary) -> Markup {
    html! {
        tr data-delivery=(d.uuid) {
            td { a href={ (base) "/deliveries/" (d.uuid) } { (format_ms(d.created_at)) } }
            td { code { (d.event_name) } @if d.is_test { " " span.badge { "test" } } }
            td.book { (d.book_uuid.as_deref().unwrap_or("—")) }
            td { (status_badge(d.status)) }
            td { (d.attempts) }
        }
    }
}

/// One delivery of the webhook, or the not-found page.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path((raw, delivery)): Path<(String, String)>,
) -> Response {
    let w = match webhook_of(&state, &session, &raw).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    detail_page(&state, &session, &w, &delivery, None).await
}

async fn detail_page(
    state: &AppState,
    session: &Session,
    w: &Webhook,
    raw_delivery: &str,
    error: Option<&str>,
) -> Response {
    let not_found = || pages::not_found("No such delivery of this webhook.");
    let Ok(id) = Uuid::parse_str(raw_delivery) else {
        return not_found();
    };
    let d = match state.store().get_delivery(w.uuid, id).await {
        Ok(d) => d,
        Err(StoreError::NotFound) => return not_found(),
        Err(e) => return pages::failure(&e.to_string()),
    };
    let base = format!("/dashboard/webhooks/{}", w.uuid);
    let s = &d.summary;
    page(
        "Delivery",
        Some(session),
        html! {
            p { a href={ (base) "/deliveries" } { "← Deliveries" } }
            h1 { "Delivery " code { (s.uuid) } }
            @if let Some(error) = error {
                p.error role="alert" id="redeliver-error" { (error) }
            }
            dl.details {
                dt { "Event" } dd { code { (s.event_name) } @if s.is_test { " " span.badge { "test" } } }
                dt { "Event uuid" } dd { (s.event_uuid) }
                dt { "Book" } dd { (s.book_uuid.as_deref().unwrap_or("—")) }
                dt { "Status" } dd id="status" { (status_badge(s.status)) }
                dt { "Attempts" } dd { (s.attempts) }
                dt { "Created" } dd { (format_ms(s.created_at)) }
                @if s.status == DeliveryStatus::Pending {
                    dt { "Next attempt" } dd { (format_ms(s.next_attempt_at)) }
                }
            }
            @if session.can_change() && w.is_active {
                form method="post" action={ (base) "/deliveries/" (s.uuid) "/redeliver" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" id="redeliver" { "Send again" }
                }
            }
            h2 { "Request body" }
            pre.body id="request-body" { (pretty(&d.payload)) }
            h2 { "Attempts" }
            @if d.attempts.is_empty() {
                p id="no-attempts" { "No attempt yet." }
            }
            @for (n, a) in d.attempts.iter().enumerate() {
                (attempt(n + 1, a))
            }
        },
    )
    .into_response()
}

/// JSON pretty-printed, or the text as it is.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

fn headers(json: &Option<String>) -> Markup {
    let pairs: Vec<(String, String)> = json
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default();
    html! {
        @if pairs.is_empty() {
            p.hint { "Not kept (only for failed attempts and tests)." }
        } @else {
            dl.headers {
                @for (k, v) in &pairs { dt { (k) } dd { (v) } }
            }
        }
    }
}

fn attempt(n: usize, a: &AttemptRecord) -> Markup {
    html! {
        section.card.attempt id={ "attempt-" (n) } {
            h3 {
                "Attempt " (n) " · " (format_ms(a.started_at)) " · " (a.duration_ms) " ms · "
                @match a.response_status {
                    Some(code) => span.status { "HTTP " (code) },
                    None => span.status { "no answer" },
                }
            }
            @if let Some(error) = &a.error {
                p.error { (error) }
            }
            h4 { "Request headers" }
            (headers(&a.request_headers))
            h4 { "Response headers" }
            (headers(&a.response_headers))
            h4 { "Response body" }
            @match &a.response_body {
                Some(body) => pre.body.response { (pretty(body)) },
                None => p.hint { "Not kept (only for failed attempts and tests)." },
            }
        }
    }
}

/// Sends one delivery again.
pub async fn redeliver(
    State(state): State<AppState>,
    Path((_, delivery)): Path<(String, String)>,
    Change {
        session,
        webhook: w,
        ..
    }: Change,
) -> Response {
    let Ok(id) = Uuid::parse_str(&delivery) else {
        return pages::not_found("No such delivery of this webhook.");
    };
    match resend(&state, session.org_uuid, w.uuid, id).await {
        Ok(_) => redirect(&format!("/dashboard/webhooks/{}/deliveries/{id}", w.uuid)),
        Err(e) if e.code.status() == StatusCode::NOT_FOUND => {
            pages::not_found("No such delivery of this webhook.")
        }
        Err(e) if e.code.status().is_client_error() => {
            let mut response = detail_page(&state, &session, &w, &delivery, Some(&e.message)).await;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
        Err(e) => pages::failure(&e.message),
    }
}

/// Queues again the failed deliveries of a window.
pub async fn recover(
    State(state): State<AppState>,
    Change {
        session,
        webhook: w,
        form: pairs,
    }: Change,
) -> Response {
    let since = as_rfc3339(field(&pairs, "since"));
    let until = Some(as_rfc3339(field(&pairs, "until"))).filter(|u| !u.is_empty());
    let notice =
        match recover_window(&state, session.org_uuid, w.uuid, &since, until.as_deref()).await {
            Ok(n) => Notice::Done(format!("{n} failed deliveries queued again.")),
            Err(e) if e.code.status().is_client_error() => Notice::Refused(e.message),
            Err(e) => return pages::failure(&e.message),
        };
    let refused = matches!(notice, Notice::Refused(_));
    let mut response = log_page(&state, &session, &w, &HashMap::new(), Some(notice)).await;
    if refused {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// Picks one of the webhook's event types to send its example.
pub async fn test_page(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Response {
    if !session.can_change() {
        return pages::refused("A read-only session may look, not send tests.");
    }
    match webhook_of(&state, &session, &raw).await {
        Ok(w) => test_form(&session, &w, None),
        Err(e) => e.into_response(),
    }
}

fn test_form(session: &Session, w: &Webhook, error: Option<&str>) -> Response {
    let base = format!("/dashboard/webhooks/{}", w.uuid);
    page(
        "Send a test",
        Some(session),
        html! {
            p { a href=(base) { "← " (masked_url(w)) } }
            h1 { "Send a test" }
            p { "Sends the event type's example payload, signed like any delivery, and shows the \
                 request and your receiver's answer." }
            @if let Some(error) = error {
                p.error role="alert" id="test-error" { (error) }
            }
            form.card method="post" action={ (base) "/test" } {
                label for="event_name" { "Event type" }
                select id="event_name" name="event_name" {
                    @for name in &w.event_names { option value=(name) { (name) } }
                }
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" id="send-test" { "Send test" }
            }
        },
    )
    .into_response()
}

/// Sends the test, waits for its first attempt (at most as long as one
/// may take), and shows the delivery with the request and the answer.
pub async fn send(
    State(state): State<AppState>,
    Change {
        session,
        webhook: w,
        form: pairs,
    }: Change,
) -> Response {
    let refuse = |message: &str| {
        let mut response = test_form(&session, &w, Some(message));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
    };
    let name = field(&pairs, "event_name");
    let Some(event_type) = state.catalog().get(name) else {
        return refuse(&format!("event_name: no event type named {name:?}"));
    };
    let account = session.account_uuid.unwrap_or(Uuid::nil());
    let delivery = match send_test(&state, &w, event_type, account).await {
        Ok(uuid) => uuid,
        Err(e) if e.code.status().is_client_error() => return refuse(&e.message),
        Err(e) => return pages::failure(&e.message),
    };
    if let Err(e) = first_attempt(&state, w.uuid, delivery).await {
        return Unavailable::Failed(e.message).into_response();
    }
    redirect(&format!(
        "/dashboard/webhooks/{}/deliveries/{delivery}",
        w.uuid
    ))
}
