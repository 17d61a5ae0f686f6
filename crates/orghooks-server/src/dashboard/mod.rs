//! The org admin's dashboard at `/dashboard`: server-rendered HTML (maud)
//! with its one stylesheet embedded in the binary, so `orghooks serve`
//! serves it with no build step and nothing fetched at run time.
//!
//! Signing in with an API account's client credentials issues an ordinary
//! access token that lives `dashboard.session_ttl_secs`; the session cookie
//! holds it (`HttpOnly`, `SameSite=Strict`, path `/dashboard`). Every page
//! therefore authenticates exactly as the API does: an expired token or a
//! disabled account ends the session. Every change is a POST carrying a
//! CSRF token derived from the session's token, and needs the manager
//! role; members see everything read-only. Changes go through the same
//! functions as the API, so a rule cannot differ between the two.

mod pages;
mod webhooks;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orghooks_core::credentials;
use orghooks_store::{Account, Role};
use sha2::{Digest, Sha256};

use crate::state::AppState;

const COOKIE_NAME: &str = "orghooks_session";
const STYLESHEET: &str = include_str!("app.css");
const SCRIPT: &str = include_str!("app.js");

/// Every dashboard route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { redirect("/dashboard/webhooks") }),
        )
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/assets/app.css", get(stylesheet))
        .route("/dashboard/webhooks", get(webhooks::list))
        .route(
            "/dashboard/webhooks/new",
            get(webhooks::new_page).post(webhooks::create),
        )
        .route("/dashboard/webhooks/{webhook_uuid}", get(webhooks::show))
        .route(
            "/dashboard/webhooks/{webhook_uuid}/edit",
            get(webhooks::edit_page).post(webhooks::save),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/active",
            post(webhooks::set_active),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/delete",
            get(webhooks::delete_page).post(webhooks::remove),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/secret",
            post(webhooks::set_secret),
        )
        .route("/dashboard/assets/app.js", get(script))
        .fallback(|| async { pages::not_found("No such page.") })
        .layer(axum::middleware::map_response(security_headers))
}

/// Pages are private and never framed; scripts and styles come only from
/// the dashboard itself.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// A signed-in dashboard user.
pub struct Session {
    pub account: Account,
    token: String,
    /// Must come back with every change.
    pub csrf: String,
}

impl Session {
    pub fn can_change(&self) -> bool {
        self.account.role == Role::Manager
    }
}

/// The CSRF token of a session: a digest of its access token, so it needs
/// no storage and dies with the session.
fn csrf_of(token: &str) -> String {
    let digest = Sha256::digest(format!("orghooks-dashboard-csrf:{token}").as_bytes());
    hex::encode(&digest[..16])
}

fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// Without a live session every page sends the browser to sign in.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || redirect("/dashboard/login");
        let token = session_token(parts).ok_or_else(to_login)?;
        let grant = state
            .store()
            .token_grant(credentials::hash(&token))
            .await
            .map_err(|e| pages::failure(&e.to_string()))?
            .ok_or_else(to_login)?;
        if grant.expires_at <= state.now_ms() || grant.account.disabled_at.is_some() {
            return Err(to_login());
        }
        Ok(Self {
            account: grant.account,
            csrf: csrf_of(&token),
            token,
        })
    }
}

/// A submitted form's fields, in order, read like every other body:
/// within the route's size limit and `http.body_read_timeout_ms`.
pub struct FormFields(pub Vec<(String, String)>);

impl axum::extract::FromRequest<AppState> for FormFields {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bytes = crate::http::extract::body_bytes(req, state)
            .await
            .map_err(|e| pages::problem(e.code.status(), &e.message))?;
        Ok(Self(
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default(),
        ))
    }
}

/// The refusal of a form without the session's CSRF token, or (for a
/// change) from a member; `None`: go ahead.
fn refusal(session: &Session, form: &[(String, String)], change: bool) -> Option<Response> {
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if sent != Some(session.csrf.as_str()) {
        return Some(pages::refused(
            "This form did not come from this dashboard, or your session changed since it was \
             shown (CSRF check failed). Nothing was changed.",
        ));
    }
    if change && !session.can_change() {
        return Some(pages::refused(
            "Your account has the member role: it may look, not change. Nothing was changed.",
        ));
    }
    None
}

async fn login_page() -> Response {
    pages::login(None, "").into_response()
}

async fn login(State(state): State<AppState>, FormFields(form): FormFields) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (client_id, client_secret) = (field("client_id"), field("client_secret"));
    if client_id.is_empty() || client_secret.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            pages::login(
                Some("Enter both the client ID and the client secret."),
                &client_id,
            ),
        )
            .into_response();
    }
    let ttl = state.config().dashboard.session_ttl_secs;
    match crate::http::oauth::issue_for(&state, &client_id, &client_secret, ttl).await {
        Ok(Some(token)) => {
            let cookie = format!(
                "{COOKIE_NAME}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={ttl}",
                token.access_token
            );
            let mut response = redirect("/dashboard/webhooks");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            response
        }
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            pages::login(
                Some("Sign-in failed: unknown client ID, wrong secret, or a disabled account."),
                &client_id,
            ),
        )
            .into_response(),
        Err(e) => pages::failure(&e.message),
    }
}

/// Ends the session: its token is deleted, so a copy of the cookie is
/// worthless too.
async fn logout(
    State(state): State<AppState>,
    session: Session,
    FormFields(form): FormFields,
) -> Response {
    if let Some(refused) = refusal(&session, &form, false) {
        return refused;
    }
    if let Err(e) = state
        .store()
        .delete_token(credentials::hash(&session.token))
        .await
    {
        return pages::failure(&e.to_string());
    }
    let mut response = redirect("/dashboard/login");
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "orghooks_session=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}
