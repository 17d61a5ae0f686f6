//! Request extractors that answer in the SPEC envelope: JSON bodies (content
//! type, size, syntax, field rules), uuids in paths, and the caller's
//! identity from its Bearer token.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use orghooks_core::credentials;
use orghooks_store::{Account, PublisherToken, Role};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A JSON object body, checked for content type, size and syntax.
pub struct JsonBody(pub Map<String, Value>);

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The largest body the matched route reads, in bytes: a request extension
/// set per route in `http::router`, and the only body limit there is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// Reads the body within the route's size limit and `http.body_read_timeout_ms`.
/// A `Content-Length` over the limit is answered at once, without reading.
pub(crate) async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(state.max_body_bytes(), |l| l.0);
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body: larger than {limit} bytes"),
        )
    };
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = Duration::from_millis(state.config().http.body_read_timeout_ms);
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(req.into_body(), limit));
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(ApiError::new(
            ErrorCode::BodyTimeout,
            format!("body: not received within {} ms", timeout.as_millis()),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::ocrolus(
            ErrorCode::MalformedJson,
            format!("body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A JSON object body, with the bytes it was parsed from: for the publish
/// routes, which deliver the payload's text exactly as it was sent.
pub struct RawJsonBody {
    pub object: Map<String, Value>,
    pub raw: Bytes,
}

impl FromRequest<AppState> for RawJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Content-Type: expected application/json",
            ));
        }
        let raw = body_bytes(req, state).await?;
        json_object(&raw).map(|object| Self { object, raw })
    }
}

fn json_object(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::ocrolus(
            ErrorCode::MalformedJson,
            "body: must be a JSON object",
        )),
        Err(e) => Err(ApiError::ocrolus(
            ErrorCode::MalformedJson,
            format!("body: {e}"),
        )),
    }
}

/// The management routes (Ocrolus's) take a body that parses as JSON
/// whatever its `Content-Type`, as Ocrolus does; one that does not parse
/// and was not labelled JSON is 415, so a form post is told what to send.
impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let labelled = is_json(req.headers());
        let raw = body_bytes(req, state).await?;
        match json_object(&raw) {
            Ok(object) => Ok(Self(object)),
            Err(_) if !labelled => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Content-Type: expected application/json",
            )),
            Err(e) => Err(e),
        }
    }
}

/// Refuses keys outside `allowed`, naming them; keys in `read_only` get
/// their own code. `prefix` is the object's path (`""` for the top level).
pub fn check_fields(
    object: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
    read_only: &[&str],
) -> Result<(), ApiError> {
    for key in object.keys() {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if read_only.contains(&key.as_str()) {
            return Err(ApiError::new(
                ErrorCode::ReadOnlyField,
                format!("{name}: is read-only"),
            ));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::new(
                ErrorCode::UnknownField,
                format!("{name}: unknown field"),
            ));
        }
    }
    Ok(())
}

/// Deserialises a checked object into `T`, naming the field on failure.
pub fn parse_fields<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let field = rest.trim_end_matches('`');
                let name = if path == "." {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                ApiError::ocrolus(ErrorCode::MissingField, name)
            }
            None => ApiError::ocrolus(ErrorCode::InvalidField, format!("{path}: {inner}")),
        }
    })
}

/// The `{webhook_uuid}` path segment.
pub struct WebhookId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for WebhookId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPathUuid, format!("webhook_uuid: {e}")))?;
        Uuid::parse_str(&raw).map(WebhookId).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidPathUuid,
                format!("webhook_uuid: {raw:?} is not a valid uuid"),
            )
        })
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::ocrolus(ErrorCode::Unauthorized, message)
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauthorized("Authorization: a Bearer token is required"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Authorization: expected \"Bearer <access token>\""))
}

/// An authenticated API account, any role.
pub struct Caller(pub Account);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if token.starts_with(credentials::PUBLISHER_TOKEN_PREFIX)
            && state
                .store()
                .publisher_token(credentials::hash(token))
                .await?
                .is_some()
        {
            return Err(ApiError::new(
                ErrorCode::WrongTokenKind,
                "Authorization: a publisher token cannot use the management API; use an account's access token",
            ));
        }
        // Read fresh on every request: a disabled account or an expired
        // token is refused at once, whichever process changed it.
        let grant = state
            .store()
            .token_grant(credentials::hash(token))
            .await?
            .ok_or_else(|| unauthorized("Authorization: unknown access token"))?;
        if grant.expires_at <= state.now_ms() {
            return Err(ApiError::new(
                ErrorCode::TokenExpired,
                "Authorization: access token expired; request a new one",
            ));
        }
        if grant.account.disabled_at.is_some() {
            return Err(ApiError::in_ocrolus_words(ErrorCode::AccountDisabled));
        }
        if let Err(wait) = state.take_call(grant.account.uuid) {
            let mut error = ApiError::ocrolus(
                ErrorCode::RateLimited,
                format!("Authorization: too many calls from this API account; retry in {wait} s"),
            );
            error.retry_after = Some(wait);
            return Err(error);
        }
        Ok(Self(grant.account))
    }
}

/// A platform publisher, authenticated by a publisher token.
pub struct Publisher(pub PublisherToken);

impl FromRequestParts<AppState> for Publisher {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let hash = credentials::hash(token);
        match state.publisher_token(hash.clone()).await? {
            Some(t) if t.revoked_at.is_none() => Ok(Self(t)),
            Some(_) => Err(unauthorized(
                "Authorization: this publisher token was revoked",
            )),
            None if state.store().token_grant(hash).await?.is_some() => Err(ApiError::new(
                ErrorCode::WrongTokenKind,
                "Authorization: an account token cannot publish events; use a publisher token",
            )),
            None => Err(unauthorized("Authorization: unknown publisher token")),
        }
    }
}

/// An authenticated account with the `manager` role.
pub struct Manager(pub Account);

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(account) = Caller::from_request_parts(parts, state).await?;
        if account.role != Role::Manager {
            return Err(ApiError::in_ocrolus_words(ErrorCode::Forbidden));
        }
        Ok(Self(account))
    }
}
