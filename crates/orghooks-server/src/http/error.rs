//! Every error the API answers with, in one place: the stable error codes,
//! their HTTP statuses, and the SPEC §2 envelope they travel in.
//!
//! Codes are never reused or renumbered. Adding an [`ErrorCode`] variant
//! forces a choice of code and status in the matches below, and
//! `docs/error-codes.md` is checked against [`ErrorCode::ALL`] by a test.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orghooks_core::webhook::FieldError;
use orghooks_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A stable, documented error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Internal,
    Unavailable,
    StorageUnavailable,
    BodyTimeout,
    Unauthorized,
    TokenExpired,
    AccountDisabled,
    Forbidden,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidPathUuid,
    UnknownField,
    ReadOnlyField,
    InvalidField,
    MissingField,
    EmptyUpdate,
    LegacyInvalid,
    UrlScheme,
    UrlHost,
    UrlUserinfo,
    UrlTooLong,
    UrlBlockedAddress,
    UrlDuplicate,
    DescriptionTooShort,
    DescriptionTooLong,
    EventNamesEmpty,
    EventNamesDuplicate,
    EventNamesUnknown,
    EventNameInactive,
    WebhookLimit,
    MaxInFlight,
    AccountScope,
    SecretInvalid,
    SecretRequired,
    SchemeSecretMismatch,
    WrongTokenKind,
    UnknownAccount,
    EventConflict,
    PayloadInvalid,
    UnknownEventName,
    InactiveEventName,
    TwinsDiffer,
    BatchTooLarge,
    EventTypeUnknown,
    EventNotSubscribed,
    WebhookInactive,
    RecoverWindow,
    RateLimited,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::Internal,
        Self::Unavailable,
        Self::StorageUnavailable,
        Self::BodyTimeout,
        Self::Unauthorized,
        Self::TokenExpired,
        Self::AccountDisabled,
        Self::Forbidden,
        Self::NotFound,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::MalformedJson,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::InvalidPathUuid,
        Self::UnknownField,
        Self::ReadOnlyField,
        Self::InvalidField,
        Self::MissingField,
        Self::EmptyUpdate,
        Self::LegacyInvalid,
        Self::UrlScheme,
        Self::UrlHost,
        Self::UrlUserinfo,
        Self::UrlTooLong,
        Self::UrlBlockedAddress,
        Self::UrlDuplicate,
        Self::DescriptionTooShort,
        Self::DescriptionTooLong,
        Self::EventNamesEmpty,
        Self::EventNamesDuplicate,
        Self::EventNamesUnknown,
        Self::EventNameInactive,
        Self::WebhookLimit,
        Self::MaxInFlight,
        Self::AccountScope,
        Self::SecretInvalid,
        Self::SecretRequired,
        Self::SchemeSecretMismatch,
        Self::WrongTokenKind,
        Self::UnknownAccount,
        Self::EventConflict,
        Self::PayloadInvalid,
        Self::UnknownEventName,
        Self::InactiveEventName,
        Self::TwinsDiffer,
        Self::BatchTooLarge,
        Self::EventTypeUnknown,
        Self::EventNotSubscribed,
        Self::WebhookInactive,
        Self::RecoverWindow,
        Self::RateLimited,
    ];

    /// The number clients match on. Never change or reuse one.
    pub fn code(self) -> u32 {
        match self {
            Self::Internal => 1000,
            Self::Unavailable => 4001,
            Self::StorageUnavailable => 2300,
            Self::BodyTimeout => 4008,
            Self::Unauthorized => 1200,
            Self::TokenExpired => 4002,
            Self::AccountDisabled => 1307,
            Self::Forbidden => 1316,
            Self::NotFound => 4004,
            Self::RouteNotFound => 1101,
            Self::MethodNotAllowed => 4005,
            Self::MalformedJson => 1002,
            Self::UnsupportedMediaType => 4006,
            Self::PayloadTooLarge => 4007,
            Self::InvalidPathUuid => 4009,
            Self::UnknownField => 4010,
            Self::ReadOnlyField => 4011,
            Self::InvalidField => 1003,
            Self::EmptyUpdate => 4012,
            Self::MissingField => 1103,
            Self::LegacyInvalid => 1806,
            Self::UrlScheme => 2000,
            Self::UrlHost => 2001,
            Self::UrlUserinfo => 2002,
            Self::UrlTooLong => 2003,
            Self::UrlBlockedAddress => 2004,
            Self::UrlDuplicate => 2005,
            Self::DescriptionTooShort => 2010,
            Self::DescriptionTooLong => 2011,
            Self::EventNamesEmpty => 2020,
            Self::EventNamesDuplicate => 2021,
            Self::EventNamesUnknown => 2022,
            Self::EventNameInactive => 2023,
            Self::WebhookLimit => 2030,
            Self::MaxInFlight => 2040,
            Self::AccountScope => 2060,
            Self::SecretInvalid => 2050,
            Self::SecretRequired => 2051,
            Self::SchemeSecretMismatch => 2052,
            Self::WebhookInactive => 3012,
            Self::RecoverWindow => 3020,
            Self::RateLimited => 1005,
            Self::EventNotSubscribed => 3011,
            Self::EventTypeUnknown => 3010,
            Self::BatchTooLarge => 3006,
            Self::TwinsDiffer => 3005,
            Self::InactiveEventName => 3004,
            Self::UnknownEventName => 3003,
            Self::PayloadInvalid => 3002,
            Self::EventConflict => 3001,
            Self::UnknownAccount => 3000,
            Self::WrongTokenKind => 4003,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable | Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized | Self::TokenExpired | Self::AccountDisabled => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden | Self::WrongTokenKind => StatusCode::FORBIDDEN,
            Self::EventConflict => StatusCode::CONFLICT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MalformedJson
            | Self::InvalidPathUuid
            | Self::UnknownField
            | Self::ReadOnlyField
            | Self::InvalidField
            | Self::MissingField
            | Self::EmptyUpdate
            | Self::LegacyInvalid
            | Self::UrlScheme
            | Self::UrlHost
            | Self::UrlUserinfo
            | Self::UrlTooLong
            | Self::UrlBlockedAddress
            | Self::UrlDuplicate
            | Self::DescriptionTooShort
            | Self::DescriptionTooLong
            | Self::EventNamesEmpty
            | Self::EventNamesDuplicate
            | Self::EventNamesUnknown
            | Self::EventNameInactive
            | Self::WebhookLimit
            | Self::MaxInFlight
            | Self::AccountScope
            | Self::SecretInvalid
            | Self::SecretRequired
            | Self::UnknownAccount
            | Self::PayloadInvalid
            | Self::UnknownEventName
            | Self::InactiveEventName
            | Self::TwinsDiffer
            | Self::BatchTooLarge
            | Self::EventTypeUnknown
            | Self::EventNotSubscribed
            | Self::WebhookInactive
            | Self::RecoverWindow
            | Self::SchemeSecretMismatch => StatusCode::BAD_REQUEST,
        }
    }

    /// Ocrolus's wording, for the codes whose number comes from Ocrolus's
    /// published status-code list (or, for 1806, its account-level webhook
    /// spec; for 1000, its error envelope's default). Every other code is
    /// orghooks's own, in a range Ocrolus does not use (2000–2099,
    /// 3000–3099, 4000–4099).
    pub fn ocrolus_wording(self) -> Option<&'static str> {
        Some(match self {
            Self::Internal => "the default code of Ocrolus's error envelope",
            Self::MalformedJson => "Could not decode JSON string",
            Self::InvalidField => "Request validation failure; check parameter values and types.",
            Self::RateLimited => "Request verification rate limit exceeded",
            Self::RouteNotFound => "The requested endpoint does not exist",
            Self::MissingField => "Required parameter not found",
            Self::Unauthorized => "Authentication failed",
            Self::AccountDisabled => "Account is not active",
            Self::Forbidden => "Account does not have required manager permissions",
            Self::LegacyInvalid => "One of the input is invalid",
            Self::StorageUnavailable => "Database error",
            _ => return None,
        })
    }

    /// One line for the docs table.
    pub fn summary(self) -> &'static str {
        match self {
            Self::Internal => "unexpected server error (details are in the server log)",
            Self::Unavailable => {
                "the store is overloaded or shutting down; retry after Retry-After"
            }
            Self::StorageUnavailable => {
                "the store cannot write now (database unreachable, disk full); nothing was \
                 accepted; retry after Retry-After"
            }
            Self::BodyTimeout => "the body did not arrive within http.body_read_timeout_ms",
            Self::Unauthorized => "no Bearer token, or an unknown one",
            Self::TokenExpired => "the access token has expired: request a new one",
            Self::AccountDisabled => "the token's API account is disabled",
            Self::Forbidden => "the account's role may not do this (webhooks need `manager`)",
            Self::NotFound => {
                "no such object in your organization: \"Webhook with uuid <uuid> not found\" \
                 (Ocrolus's wording; Ocrolus documents no number for it)"
            }
            Self::RouteNotFound => "no such route",
            Self::MethodNotAllowed => "the route exists, not with this method",
            Self::MalformedJson => "the body is not valid JSON, or not a JSON object",
            Self::UnsupportedMediaType => "the body must be sent as application/json",
            Self::PayloadTooLarge => {
                "the body is larger than the route's limit (http.max_body_bytes, \
                 publish.max_batch_bytes)"
            }
            Self::InvalidPathUuid => "a uuid in the path is not a valid uuid",
            Self::UnknownField => "the body has a field this operation does not know",
            Self::ReadOnlyField => "the body sets a read-only field",
            Self::InvalidField => "a field has the wrong type or value",
            Self::MissingField => "a required field is missing",
            Self::LegacyInvalid => {
                "account-level API: webhook_endpoint or event is invalid (the message names it)"
            }
            Self::EmptyUpdate => "an update must change webhook or event_names",
            Self::UrlScheme => "url: invalid or missing URL scheme (http or https)",
            Self::UrlHost => "url: host invalid, top level domain required",
            Self::UrlUserinfo => "url: username and password must come together",
            Self::UrlTooLong => "url: longer than 2048 characters",
            Self::UrlBlockedAddress => {
                "url: a loopback, private, link-local… address that is not allow-listed"
            }
            Self::UrlDuplicate => "url: the organization already has a webhook with this URL",
            Self::DescriptionTooShort => "description: fewer than 3 characters",
            Self::DescriptionTooLong => "description: more than 255 characters",
            Self::EventNamesEmpty => "event_names: empty",
            Self::EventNamesDuplicate => "event_names: a name is listed twice",
            Self::EventNamesUnknown => "event_names: names not in the catalog",
            Self::EventNameInactive => "event_names: an inactive event type",
            Self::WebhookLimit => "the organization already has its maximum of webhooks",
            Self::MaxInFlight => "max_in_flight: outside 1..=256",
            Self::AccountScope => {
                "account_uuids: not uuids, too many, or not accounts of the caller's organization"
            }
            Self::SecretInvalid => "secret_key: does not fit the webhook's signature scheme",
            Self::SecretRequired => "secret_key: required for the ocrolus scheme",
            Self::SchemeSecretMismatch => {
                "signature_scheme: the webhook's current secret does not fit the new scheme"
            }
            Self::WebhookInactive => "webhook_uuid: the webhook is not active",
            Self::RecoverWindow => {
                "since/until: the recovery window must be ordered and at most 14 days"
            }
            Self::RateLimited => {
                "too many management calls from this API account; retry after Retry-After"
            }
            Self::EventNotSubscribed => {
                "event_uuid: the webhook does not subscribe to this event type"
            }
            Self::EventTypeUnknown => "event_uuid: no event type with this uuid",
            Self::BatchTooLarge => "events: more events than publish.max_batch_events",
            Self::TwinsDiffer => "payload: two backward-compatible twin fields differ",
            Self::InactiveEventName => "payload.event_name: the event type is not active",
            Self::UnknownEventName => "payload.event_name: no such event type",
            Self::PayloadInvalid => {
                "payload: fails the event type's JSON Schema (the field is named)"
            }
            Self::EventConflict => "event_uuid: already published with a different payload",
            Self::UnknownAccount => "account_uuid: no such API account",
            Self::WrongTokenKind => {
                "the token is of the other kind: account tokens manage, publisher tokens publish"
            }
        }
    }
}

/// `Retry-After` while the store is unavailable: long enough for a
/// PostgreSQL restart or failover, short enough not to stall publishers.
const STORAGE_RETRY_AFTER_SECS: u64 = 2;

/// An API error: a code, a message naming the field, and (for 5xx) the
/// cause, which is logged once and never sent.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// An error whose code Ocrolus documents: its wording, then what
    /// orghooks adds (the field, the reason).
    pub fn ocrolus(code: ErrorCode, detail: impl std::fmt::Display) -> Self {
        let wording = code
            .ocrolus_wording()
            .expect("a code Ocrolus documents")
            .trim_end_matches('.');
        Self::new(code, format!("{wording}: {detail}"))
    }

    /// An error whose code Ocrolus documents, in exactly its words.
    pub fn in_ocrolus_words(code: ErrorCode) -> Self {
        Self::new(
            code,
            code.ocrolus_wording().expect("a code Ocrolus documents"),
        )
    }

    /// Ocrolus's not-found message, for any kind of object (HTTP 404).
    pub fn not_found(kind: &str, uuid: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("{kind} with uuid {uuid} not found"),
        )
    }

    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            source: Some(Box::new(source)),
            retry_after: None,
        }
    }
}

/// The SPEC §2 error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The HTTP status, repeated.
    pub status: u16,
    /// The stable error code (see docs/error-codes.md).
    pub code: u32,
    /// What went wrong, naming the field.
    pub message: String,
    /// Always null on errors.
    #[schema(value_type = Option<Object>)]
    pub response: Option<()>,
    pub meta: ErrorMeta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorMeta {
    pub status: u16,
    pub msg: String,
    pub code: u32,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        // 503 is back-pressure, expected under load: the request metrics
        // count it; a log line per refusal would only add load.
        if self.code == ErrorCode::StorageUnavailable {
            // The operator must see this; the cause says what failed.
            match &self.source {
                Some(source) => {
                    tracing::warn!(code = self.code.code(), error = %ErrorChain(source.as_ref()), "storage unavailable")
                }
                None => tracing::warn!(code = self.code.code(), "storage unavailable"),
            }
        } else if status.is_server_error() && self.code != ErrorCode::Unavailable {
            match &self.source {
                Some(source) => {
                    tracing::error!(code = self.code.code(), error = %ErrorChain(source.as_ref()), "request failed")
                }
                None => {
                    tracing::warn!(code = self.code.code(), message = %self.message, "request failed")
                }
            }
        }
        let envelope = ErrorEnvelope {
            status: status.as_u16(),
            code: self.code.code(),
            message: self.message.clone(),
            response: None,
            meta: ErrorMeta {
                status: status.as_u16(),
                msg: self.message,
                code: self.code.code(),
            },
        };
        let mut response = (status, axum::Json(envelope)).into_response();
        response.extensions_mut().insert(Enveloped);
        let retry_after = match self.code {
            ErrorCode::Unavailable => Some(self.retry_after.unwrap_or(1)),
            ErrorCode::StorageUnavailable => {
                Some(self.retry_after.unwrap_or(STORAGE_RETRY_AFTER_SECS))
            }
            _ => self.retry_after,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// Marks a response that carries the error envelope, so that
/// `http.error_status = "ocrolus"` can answer it with HTTP 200.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enveloped;

/// Displays an error with its whole `source()` chain.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let code = match &e {
            FieldError::UrlScheme => ErrorCode::UrlScheme,
            FieldError::UrlHost => ErrorCode::UrlHost,
            FieldError::UrlUserinfo => ErrorCode::UrlUserinfo,
            FieldError::UrlTooLong => ErrorCode::UrlTooLong,
            FieldError::UrlBlockedAddress { .. } => ErrorCode::UrlBlockedAddress,
            FieldError::DescriptionTooShort => ErrorCode::DescriptionTooShort,
            FieldError::DescriptionTooLong => ErrorCode::DescriptionTooLong,
            FieldError::EventNamesEmpty => ErrorCode::EventNamesEmpty,
            FieldError::EventNamesDuplicate(_) => ErrorCode::EventNamesDuplicate,
            FieldError::EventNamesUnknown(_) => ErrorCode::EventNamesUnknown,
            FieldError::EventNameInactive(_) => ErrorCode::EventNameInactive,
            FieldError::MaxInFlight => ErrorCode::MaxInFlight,
            FieldError::OcrolusSecret | FieldError::StandardSecret => ErrorCode::SecretInvalid,
            FieldError::SecretRequired => ErrorCode::SecretRequired,
        };
        Self::new(code, e.to_string())
    }
}

impl From<orghooks_core::payload::PayloadError> for ApiError {
    fn from(e: orghooks_core::payload::PayloadError) -> Self {
        use orghooks_core::payload::PayloadError as P;
        let code = match &e {
            P::NotAnObject | P::MissingEventName | P::Invalid { .. } => ErrorCode::PayloadInvalid,
            P::UnknownEventName(_) => ErrorCode::UnknownEventName,
            P::InactiveEventName(_) => ErrorCode::InactiveEventName,
            P::TwinsDiffer { .. } => ErrorCode::TwinsDiffer,
        };
        Self::new(code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::new(ErrorCode::NotFound, "Object not found"),
            StoreError::Unavailable(_) => Self {
                code: ErrorCode::StorageUnavailable,
                message: "Database error: the database cannot write now (unreachable, restarting \
                          or out of space); nothing was accepted, retry after Retry-After"
                    .into(),
                source: Some(Box::new(e)),
                retry_after: None,
            },
            StoreError::Busy | StoreError::Closed => Self {
                code: ErrorCode::Unavailable,
                message: "the service is busy; retry shortly".into(),
                source: Some(Box::new(e)),
                retry_after: None,
            },
            other => Self::internal(other),
        }
    }
}

/// The markdown table of every code, as `docs/error-codes.md` holds it.
pub fn error_code_table() -> String {
    let mut out = String::from("| code | HTTP status | meaning | source |\n|---:|---:|---|---|\n");
    let mut codes = ErrorCode::ALL.to_vec();
    codes.sort_by_key(|c| c.code());
    for code in codes {
        let source = match code.ocrolus_wording() {
            Some(wording) if code == ErrorCode::Internal => format!("Ocrolus: {wording}"),
            Some(wording) => format!("Ocrolus: \"{wording}\""),
            None => "orghooks".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            code.code(),
            code.status().as_u16(),
            code.summary(),
            source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique() {
        let codes: HashSet<u32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }

    /// Ocrolus's published status codes (its status-code page, and 1806
    /// from its account-level webhook spec): an orghooks-only code must not
    /// take one of these numbers, and a code carrying Ocrolus's wording must.
    const OCROLUS_CODES: &[u32] = &[
        1002, 1003, 1005, 1100, 1101, 1103, 1104, 1109, 1200, 1204, 1306, 1307, 1308, 1313, 1316,
        1317, 1323, 1398, 1399, 1401, 1402, 1404, 1500, 1501, 1502, 1504, 1508, 1511, 1512, 1513,
        1601, 1609, 1702, 1806, 2100, 2101, 2102, 2103, 2104, 2105, 2106, 2107, 2108, 2109, 2110,
        2111, 2300, 2401, 2500, 5001, 5002, 6001, 7001, 7002, 7003, 7004, 8001, 8002, 9001, 9002,
        9003, 9006, 9101, 9102, 9103, 9104,
    ];

    #[test]
    fn own_codes_stay_out_of_ocrolus_numbers() {
        for &code in ErrorCode::ALL {
            let taken = OCROLUS_CODES.contains(&code.code());
            match code.ocrolus_wording() {
                Some(_) if code == ErrorCode::Internal => assert!(!taken),
                Some(_) => assert!(taken, "{code:?} claims Ocrolus's wording"),
                None => assert!(!taken, "{code:?} uses Ocrolus's number {}", code.code()),
            }
        }
    }

    #[test]
    fn docs_list_every_code() {
        let docs = include_str!("../../../../docs/error-codes.md");
        assert!(
            docs.contains(&error_code_table()),
            "docs/error-codes.md is out of date; paste in this table:\n{}",
            error_code_table()
        );
    }
}
