//! Portal links: a platform holding a publisher token asks for a one-time
//! URL that opens the dashboard signed in for one of its organizations, to
//! hand to that organization's admin or to show in a frame
//! (`http.frame_ancestors`). The link's token travels in the URL's
//! fragment, so it never reaches a server log or a link preview; the page
//! it opens trades it for a session once (see `dashboard::portal`).

use axum::extract::State;
use axum::http::HeaderMap;
use orghooks_core::clock::format_ms;
use orghooks_core::credentials;
use orghooks_store::{NewPortalLink, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode, ErrorEnvelope};
use super::extract::{JsonBody, Publisher, check_fields, parse_fields};
use super::views::{Envelope, ok};
use crate::state::AppState;

/// The shortest and longest life of a portal link, and the default.
const TTL_SECS: std::ops::RangeInclusive<u64> = 60..=86_400;
const DEFAULT_TTL_SECS: u64 = 3_600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    /// The organization whose dashboard the link opens.
    pub org_uuid: Uuid,
    /// Seconds the link may wait to be opened; the session it opens ends
    /// then too. 60 to 86,400; default 3,600.
    #[schema(minimum = 60, maximum = 86400)]
    pub ttl_secs: Option<u64>,
    /// A session that may look but not change anything; default false.
    pub read_only: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalLink {
    /// Opens the dashboard signed in for the organization; works once.
    pub url: String,
    /// ISO 8601 UTC: the link does not open after this, and its session
    /// ends then.
    pub expires_at: String,
    pub read_only: bool,
}

/// Create a one-time link that opens the dashboard for an organization.
#[utoipa::path(
    post, path = "/v1/portal/sessions", tag = "portal",
    request_body = PortalBody,
    responses(
        (status = 200, description = "A link that works once, until expires_at", body = Envelope<PortalLink>),
        (status = 400, description = "A field is invalid; the message names it", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such organization", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn create_session(
    State(state): State<AppState>,
    _publisher: Publisher,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<axum::Json<Envelope<PortalLink>>, ApiError> {
    check_fields(&body, "", &["org_uuid", "ttl_secs", "read_only"], &[])?;
    let input: PortalBody = parse_fields(body)?;
    let ttl = input.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !TTL_SECS.contains(&ttl) {
        return Err(ApiError::ocrolus(
            ErrorCode::InvalidField,
            format!(
                "ttl_secs: {ttl} is not a number of seconds from {} to {}",
                TTL_SECS.start(),
                TTL_SECS.end()
            ),
        ));
    }
    let read_only = input.read_only.unwrap_or(false);
    let link = credentials::new_portal_link();
    let now = state.now_ms();
    let expires_at = now + (ttl as i64) * 1000;
    state
        .store()
        .insert_portal_link(NewPortalLink {
            hash: credentials::hash(&link),
            org_uuid: input.org_uuid,
            read_only,
            created_at: now,
            expires_at,
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("Organization", input.org_uuid),
            other => other.into(),
        })?;
    tracing::info!(org_uuid = %input.org_uuid, read_only, ttl_secs = ttl, "portal link created");
    Ok(ok(PortalLink {
        url: format!("{}/dashboard/portal#{link}", base_url(&state, &headers)),
        expires_at: format_ms(expires_at),
        read_only,
    }))
}

/// Where browsers reach this service: `dashboard.public_url`, or else the
/// host the request came to (https when a proxy says so).
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = &state.config().dashboard.public_url;
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if crate::dashboard::over_tls(headers) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}
