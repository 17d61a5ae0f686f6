//! The org admin's dashboard at `/dashboard`: server-rendered HTML (maud)
//! with its one stylesheet embedded in the binary, so `orghooks serve`
//! serves it with no build step and nothing fetched at run time.
//!
//! Signing in with an API account's client credentials issues an ordinary
//! access token that lives `dashboard.session_ttl_secs`; the session cookie
//! holds it (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS, path
//! `/dashboard`). Every page therefore authenticates exactly as the API
//! does: an expired token or a disabled account ends the session. Failed
//! sign-ins are rate limited per client id like the API's calls. A portal
//! link (`POST /v1/portal/sessions`) opens a session of its own for an
//! organization instead, once. Every change is a POST carrying a CSRF token
//! derived from the session's token, and needs the manager role (or a
//! portal session that is not read-only); others see everything read-only.
//! Changes go through the same functions as the API, so a rule cannot
//! differ between the two.

mod deliveries;
mod pages;
mod webhooks;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orghooks_core::credentials;
use orghooks_store::Role;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::state::AppState;

const COOKIE_NAME: &str = "orghooks_session";
const STYLESHEET: &str = include_str!("app.css");
const SCRIPT: &str = include_str!("app.js");

/// Every dashboard route.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { redirect("/dashboard/webhooks") }),
        )
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/portal", get(portal_page).post(open_portal))
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
        .route(
            "/dashboard/webhooks/{webhook_uuid}/test",
            get(deliveries::test_page).post(deliveries::send),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/deliveries",
            get(deliveries::list),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/deliveries/{delivery_uuid}",
            get(deliveries::show),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/deliveries/{delivery_uuid}/redeliver",
            post(deliveries::redeliver),
        )
        .route(
            "/dashboard/webhooks/{webhook_uuid}/recover",
            post(deliveries::recover),
        )
        .route("/dashboard/assets/app.js", get(script))
        .fallback(|| async { pages::not_found("No such page.") })
        .layer(axum::middleware::map_response(security_headers(state)))
}

/// Pages are private; scripts and styles come only from the dashboard
/// itself. No site may frame them unless `http.frame_ancestors` names it.
fn security_headers(
    state: &AppState,
) -> impl Fn(Response) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let ancestors = &state.config().http.frame_ancestors;
    let framing = if ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        ancestors.join(" ")
    };
    let policy = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors {framing}; base-uri 'none'"
    ))
    .expect("frame_ancestors are checked when the config is read");
    let deny_frames = ancestors.is_empty();
    move |mut response: Response| {
        let headers = response.headers_mut();
        headers.insert("content-security-policy", policy.clone());
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        if deny_frames {
            // For browsers older than frame-ancestors; it cannot name sites.
            headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        }
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        std::future::ready(response)
    }
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

/// A signed-in dashboard user: an API account, or a portal link's session.
pub struct Session {
    pub org_uuid: Uuid,
    /// The account's uuid; `None` for a portal session.
    pub account_uuid: Option<Uuid>,
    /// Who is signed in, for the page's bar.
    pub who: String,
    can_change: bool,
    token: String,
    /// Must come back with every change.
    pub csrf: String,
}

impl Session {
    pub fn can_change(&self) -> bool {
        self.can_change
    }

    fn is_portal(&self) -> bool {
        self.token.starts_with(credentials::PORTAL_SESSION_PREFIX)
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
        let failed = |e: orghooks_store::StoreError| pages::failure(&e.to_string());
        let now = state.now_ms();
        if token.starts_with(credentials::PORTAL_SESSION_PREFIX) {
            let portal = state
                .store()
                .portal_session(credentials::hash(&token))
                .await
                .map_err(failed)?
                .filter(|p| p.expires_at > now)
                .ok_or_else(to_login)?;
            return Ok(Self {
                org_uuid: portal.org_uuid,
                account_uuid: None,
                who: if portal.read_only {
                    "portal · read-only".to_owned()
                } else {
                    "portal".to_owned()
                },
                can_change: !portal.read_only,
                csrf: csrf_of(&token),
                token,
            });
        }
        let grant = state
            .store()
            .token_grant(credentials::hash(&token))
            .await
            .map_err(failed)?
            .ok_or_else(to_login)?;
        if grant.expires_at <= now || grant.account.disabled_at.is_some() {
            return Err(to_login());
        }
        let manager = grant.account.role == Role::Manager;
        Ok(Self {
            org_uuid: grant.account.org_uuid,
            account_uuid: Some(grant.account.uuid),
            who: format!(
                "{} · {}",
                grant.account.name,
                if manager {
                    "manager"
                } else {
                    "member (read-only)"
                }
            ),
            can_change: manager,
            csrf: csrf_of(&token),
            token,
        })
    }
}

/// Whether the browser reached us over TLS: orghooks serves plain HTTP, so
/// this is a TLS-terminating proxy's `X-Forwarded-Proto` or `Forwarded`.
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    let said = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                let v = v.to_ascii_lowercase();
                v.split(',').next().is_some_and(|first| {
                    first.trim() == "https" || first.split(';').any(|p| p.trim() == "proto=https")
                })
            })
    };
    said("x-forwarded-proto") || said("forwarded")
}

/// The session cookie: `Secure` over TLS; a portal session that may be
/// framed (`http.frame_ancestors`) over TLS is `SameSite=None` and
/// `Partitioned`, since a frame on another site is a cross-site context.
fn session_cookie(state: &AppState, headers: &HeaderMap, token: &str, max_age: u64) -> HeaderValue {
    let tls = over_tls(headers);
    let framed = tls
        && token.starts_with(credentials::PORTAL_SESSION_PREFIX)
        && !state.config().http.frame_ancestors.is_empty();
    let attributes = match (framed, tls) {
        (true, _) => "; SameSite=None; Secure; Partitioned",
        (false, true) => "; SameSite=Strict; Secure",
        (false, false) => "; SameSite=Strict",
    };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Path=/dashboard; HttpOnly; Max-Age={max_age}{attributes}"
    ))
    .expect("tokens are alphanumeric")
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

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormFields(form): FormFields,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (client_id, client_secret) = (field("client_id"), field("client_secret"));
    let again = |status: StatusCode, why: &str| {
        (status, pages::login(Some(why), &client_id)).into_response()
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter both the client ID and the client secret.",
        );
    }
    if let Err(wait) = state.sign_in_wait(&client_id) {
        let mut response = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins with this client ID; try again in {wait} s."),
        );
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(wait));
        return response;
    }
    let ttl = state.config().dashboard.session_ttl_secs;
    match crate::http::oauth::issue_for(&state, &client_id, &client_secret, ttl).await {
        Ok(Some(token)) => {
            let mut response = redirect("/dashboard/webhooks");
            response.headers_mut().insert(
                SET_COOKIE,
                session_cookie(&state, &headers, &token.access_token, ttl),
            );
            response
        }
        Ok(None) => {
            state.sign_in_failed(&client_id);
            again(
                StatusCode::UNAUTHORIZED,
                "Sign-in failed: unknown client ID, wrong secret, or a disabled account.",
            )
        }
        Err(e) => pages::failure(&e.message),
    }
}

/// A portal link's page. Its token is in the URL's fragment, which the
/// browser never sends; the script posts it back once, here, and the
/// answer is the session.
async fn portal_page() -> Response {
    pages::portal(None).into_response()
}

/// Trades a portal link for a session, once.
async fn open_portal(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormFields(form): FormFields,
) -> Response {
    let link = form
        .iter()
        .find(|(k, _)| k == "link")
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    let refused = || {
        (
            StatusCode::FORBIDDEN,
            pages::portal(Some(
                "This portal link was already used or has expired. Ask for a new one.",
            )),
        )
            .into_response()
    };
    if !link.starts_with(credentials::PORTAL_LINK_PREFIX) {
        return refused();
    }
    let session = credentials::new_portal_session();
    let now = state.now_ms();
    match state
        .store()
        .open_portal_link(credentials::hash(link), credentials::hash(&session), now)
        .await
    {
        Ok(Some(opened)) => {
            tracing::info!(org_uuid = %opened.org_uuid, read_only = opened.read_only, "portal link opened");
            let max_age = ((opened.expires_at - now) / 1000).max(1) as u64;
            let mut response = redirect("/dashboard/webhooks");
            response.headers_mut().insert(
                SET_COOKIE,
                session_cookie(&state, &headers, &session, max_age),
            );
            response
        }
        Ok(None) => refused(),
        Err(e) => pages::failure(&e.to_string()),
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
    let hash = credentials::hash(&session.token);
    let ended = if session.is_portal() {
        state.store().delete_portal_session(hash).await
    } else {
        state.store().delete_token(hash).await
    };
    if let Err(e) = ended {
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
