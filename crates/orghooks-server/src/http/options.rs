//! A webhook's own delivery settings (extension fields on add, update and
//! retrieve): custom headers, a retry schedule and a timeout, within the
//! operator's bounds (`[webhooks]` in the config). Header values are
//! sealed at rest like URL passwords, since they often hold API keys, and
//! shown as `****`; sending `****` back for a header keeps its value.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue};
use orghooks_core::sealing::SecretString;
use orghooks_store::DeliveryOptions;
use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Most custom headers on one webhook.
pub const MAX_HEADERS: usize = 10;
/// Longest custom header value.
pub const MAX_HEADER_VALUE: usize = 1024;
/// What a stored header value is shown as, and means "keep it" when sent.
pub const MASK: &str = "****";
/// Headers orghooks sets itself, and hop-by-hop ones: never custom.
const RESERVED: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "webhook-id",
    "webhook-request-id",
    "webhook-timestamp",
    "webhook-signature",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// `null` given for a field, told apart from the field left out.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn invalid(message: String) -> ApiError {
    ApiError::ocrolus(ErrorCode::InvalidField, message)
}

/// What an add or update asks of the options; `None`: unchanged.
#[derive(Debug, Default)]
pub struct OptionsChange<'a> {
    pub headers: Option<&'a BTreeMap<String, String>>,
    /// `Some(None)`: back to the node's schedule.
    pub retry_gaps_ms: Option<Option<&'a [u64]>>,
    /// `Some(None)`: back to the node's timeout.
    pub timeout_ms: Option<Option<u32>>,
}

/// The webhook's options after `change`, checked against the operator's
/// bounds. `basic_auth`: the URL carries a password, which orghooks sends
/// as `Authorization`, so a custom one would clash.
pub fn apply(
    state: &AppState,
    current: &DeliveryOptions,
    change: &OptionsChange<'_>,
    basic_auth: bool,
) -> Result<DeliveryOptions, ApiError> {
    let mut next = current.clone();
    if let Some(headers) = change.headers {
        let (names, sealed) = headers_of(state, current, headers, basic_auth)?;
        next.header_names = names;
        next.headers_sealed = sealed;
    } else if basic_auth
        && current
            .header_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("authorization"))
    {
        return Err(clash());
    }
    let bounds = &state.config().webhooks;
    if let Some(gaps) = change.retry_gaps_ms {
        if let Some(gaps) = gaps {
            if gaps.len() > bounds.max_retries as usize {
                return Err(invalid(format!(
                    "webhook.retry_gaps_ms: at most {} retries",
                    bounds.max_retries
                )));
            }
            if let Some(bad) = gaps
                .iter()
                .find(|g| !(bounds.min_retry_gap_ms..=bounds.max_retry_gap_ms).contains(g))
            {
                return Err(invalid(format!(
                    "webhook.retry_gaps_ms: {bad} is not from {} to {} ms",
                    bounds.min_retry_gap_ms, bounds.max_retry_gap_ms
                )));
            }
        }
        next.retry_gaps_ms = gaps.map(<[u64]>::to_vec);
    }
    if let Some(timeout) = change.timeout_ms {
        if let Some(t) = timeout
            && !(1000..=bounds.max_timeout_ms).contains(&u64::from(t))
        {
            return Err(invalid(format!(
                "webhook.timeout_ms: {t} is not from 1000 to {} ms",
                bounds.max_timeout_ms
            )));
        }
        next.timeout_ms = timeout;
    }
    Ok(next)
}

fn clash() -> ApiError {
    invalid(
        "webhook.headers.Authorization: the URL's user:password already sets Authorization; \
         remove one of them"
            .to_owned(),
    )
}

/// The header names in order, and the sealed `[[name, value], …]`.
fn headers_of(
    state: &AppState,
    current: &DeliveryOptions,
    headers: &BTreeMap<String, String>,
    basic_auth: bool,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    if headers.len() > MAX_HEADERS {
        return Err(invalid(format!(
            "webhook.headers: at most {MAX_HEADERS} headers"
        )));
    }
    // Opened only when a value asks to keep a stored one.
    let stored = if headers.values().any(|v| v == MASK) {
        stored_headers(state, current)?
    } else {
        Vec::new()
    };
    let mut pairs = Vec::with_capacity(headers.len());
    let mut seen = std::collections::HashSet::new();
    for (name, value) in headers {
        let field = format!("webhook.headers.{name}");
        let lower = name.to_ascii_lowercase();
        if !seen.insert(lower.clone()) {
            return Err(invalid(format!("{field}: given twice (names ignore case)")));
        }
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(invalid(format!("{field}: not a valid header name")));
        }
        if RESERVED.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "{field}: orghooks sets this header itself"
            )));
        }
        if lower == "authorization" && basic_auth {
            return Err(clash());
        }
        let value = if value == MASK {
            stored
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    invalid(format!(
                        "{field}: give its value ({MASK} keeps a value already stored)"
                    ))
                })?
        } else {
            value.clone()
        };
        if value.len() > MAX_HEADER_VALUE || HeaderValue::from_str(&value).is_err() {
            return Err(invalid(format!(
                "{field}: the value must be visible ASCII text of at most {MAX_HEADER_VALUE} characters"
            )));
        }
        pairs.push((name.clone(), value));
    }
    if pairs.is_empty() {
        return Ok((Vec::new(), None));
    }
    let json = serde_json::to_string(&pairs).expect("pairs of strings serialise");
    let sealed = state.keyring().seal(&SecretString::new(json));
    Ok((pairs.into_iter().map(|(n, _)| n).collect(), Some(sealed)))
}

/// The stored custom headers, opened.
pub fn stored_headers(
    state: &AppState,
    options: &DeliveryOptions,
) -> Result<Vec<(String, String)>, ApiError> {
    open_headers(state.keyring(), options).map_err(ApiError::internal)
}

/// Opens sealed custom headers (the API and the sender).
pub fn open_headers(
    keyring: &orghooks_core::sealing::Keyring,
    options: &DeliveryOptions,
) -> Result<Vec<(String, String)>, std::io::Error> {
    let Some(sealed) = &options.headers_sealed else {
        return Ok(Vec::new());
    };
    let json = keyring.open(sealed).map_err(std::io::Error::other)?;
    serde_json::from_str(json.expose()).map_err(std::io::Error::other)
}

/// The headers as responses show them: each value masked.
pub fn shown_headers(options: &DeliveryOptions) -> BTreeMap<String, String> {
    options
        .header_names
        .iter()
        .map(|n| (n.clone(), MASK.to_owned()))
        .collect()
}
