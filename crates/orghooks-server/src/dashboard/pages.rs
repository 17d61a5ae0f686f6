//! The dashboard's page frame and the pages every part shares: sign-in,
//! not found, refused, failure. maud escapes every value it renders.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Session;

/// A whole page: the frame, the signed-in bar (with sign-out) and `body`.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · orghooks" }
                link rel="stylesheet" href="/dashboard/assets/app.css";
                script src="/dashboard/assets/app.js" defer {}
            }
            body {
                header.bar {
                    a.brand href="/dashboard/webhooks" { "orghooks" }
                    @if let Some(s) = session {
                        nav aria-label="Account" {
                            span.who { (s.who) }
                            form method="post" action="/dashboard/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The sign-in form, with an error and the client id typed so far.
pub fn login(error: Option<&str>, client_id: &str) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            p { "Use the client credentials of one of your organization's API accounts. \
                 Accounts with the manager role can change webhooks; members can look." }
            @if let Some(error) = error {
                p.error role="alert" id="login-error" { (error) }
            }
            form.card method="post" action="/dashboard/login" {
                label for="client_id" { "Client ID" }
                input id="client_id" name="client_id" type="text" autocomplete="username"
                    required value=(client_id);
                label for="client_secret" { "Client secret" }
                input id="client_secret" name="client_secret" type="password"
                    autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A portal link's landing page: its script posts the link's token (the
/// URL's fragment) back once; `error` when that was refused.
pub fn portal(error: Option<&str>) -> Markup {
    page(
        "Opening",
        None,
        html! {
            h1 { "Opening your webhooks" }
            @if let Some(error) = error {
                p.error role="alert" id="portal-error" { (error) }
            } @else {
                p id="portal-wait" { "One moment… (this page needs JavaScript)" }
                form id="portal-open" method="post" action="/dashboard/portal" {
                    input type="hidden" name="link" value="";
                }
            }
        },
    )
}

/// 404: the object does not exist in the caller's organization (another
/// organization's objects look exactly the same).
pub fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            None,
            html! {
                h1 { "Not found" }
                p role="alert" { (what) }
                p { a href="/dashboard/webhooks" { "Back to your webhooks" } }
            },
        ),
    )
        .into_response()
}

/// 403: a change that was not allowed; nothing was changed.
pub fn refused(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            None,
            html! {
                h1 { "Refused" }
                p.error role="alert" { (why) }
                p { a href="/dashboard/webhooks" { "Back to your webhooks" } }
            },
        ),
    )
        .into_response()
}

/// A request the server would not take (too large, too slow…).
pub fn problem(status: StatusCode, why: &str) -> Response {
    (
        status,
        page(
            "Not accepted",
            None,
            html! {
                h1 { "Not accepted" }
                p.error role="alert" { (why) }
            },
        ),
    )
        .into_response()
}

/// The service could not answer (the store is unavailable, …).
pub fn failure(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Unavailable",
            None,
            html! {
                h1 { "Please try again" }
                p.error role="alert" { (why) }
            },
        ),
    )
        .into_response()
}
