//! Webhook field rules (SPEC §2, §4, §5): the URL, description, event
//! subscriptions, extension fields and signing secrets. Each is parsed once
//! at the API edge into a type that is trusted after; each refusal is a
//! [`FieldError`] whose message names the field, worded as Ocrolus words it
//! where Ocrolus has a wording.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::catalog::Catalog;
use crate::sealing::SecretString;
use crate::url_policy::{AddressPolicy, BlockedRange};

/// Longest accepted webhook URL, in bytes: longer ones are almost always
/// mistakes, and receivers' proxies start refusing past a few kilobytes.
pub const MAX_URL_LEN: usize = 2048;
pub const DESCRIPTION_MIN: usize = 3;
pub const DESCRIPTION_MAX: usize = 255;
/// The widest `max_in_flight` a webhook may ask for on one node.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 256;

/// A refused webhook field. The variant decides the API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("url: invalid or missing URL scheme")]
    UrlScheme,
    #[error("url: URL host invalid, top level domain required")]
    UrlHost,
    #[error("You need to pass both username and password")]
    UrlUserinfo,
    #[error("url: must be at most {MAX_URL_LEN} characters")]
    UrlTooLong,
    #[error(
        "url: address {ip} is {range} and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs"
    )]
    UrlBlockedAddress { ip: IpAddr, range: BlockedRange },
    #[error("description: length of value must be at least {DESCRIPTION_MIN}")]
    DescriptionTooShort,
    #[error("description: length of value must be at most {DESCRIPTION_MAX}")]
    DescriptionTooLong,
    #[error("event_names: at least one event name is required")]
    EventNamesEmpty,
    #[error("event_names: {0} is listed more than once")]
    EventNamesDuplicate(String),
    #[error("Event(s) with name {0} doesnt exist")]
    EventNamesUnknown(String),
    #[error("event_names: event type {0} is not active")]
    EventNameInactive(String),
    #[error("max_in_flight: must be between 1 and {MAX_IN_FLIGHT_LIMIT}")]
    MaxInFlight,
    #[error("secret_key: must be between 16 and 128 characters for the ocrolus signature scheme")]
    OcrolusSecret,
    #[error(
        "secret_key: must be whsec_ followed by the base64 of 24 to 64 bytes for the standard-webhooks signature scheme"
    )]
    StandardSecret,
    #[error("secret_key: is required for the ocrolus signature scheme")]
    SecretRequired,
}

/// A webhook destination: an http(s) URL in WHATWG serialisation, with its
/// password (if any) held apart as a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// The URL without its password (the username stays).
    url: Url,
    password: Option<SecretString>,
}

impl WebhookUrl {
    /// Parses and normalises a URL the user gave, applying SPEC §2's rules
    /// and refusing IP literals the address policy blocks. Host names are
    /// not resolved here.
    pub fn parse(input: &str, policy: &AddressPolicy) -> Result<Self, FieldError> {
        if input.len() > MAX_URL_LEN {
            return Err(FieldError::UrlTooLong);
        }
        let mut url = Url::parse(input.trim()).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => FieldError::UrlScheme,
            _ => FieldError::UrlHost,
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FieldError::UrlScheme);
        }
        match url.host() {
            // `localhost` names loopback: allowed exactly when loopback is.
            Some(Host::Domain(domain))
                if domain
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case("localhost") =>
            {
                check_ip(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), policy)?;
            }
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.');
                let tld = domain.rsplit('.').next().unwrap_or("");
                let has_tld = domain.contains('.')
                    && !tld.is_empty()
                    && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !tld.chars().all(|c| c.is_ascii_digit());
                if !has_tld {
                    return Err(FieldError::UrlHost);
                }
            }
            Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
            Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
            None => return Err(FieldError::UrlHost),
        }
        let username = url.username().to_owned();
        // The URL keeps userinfo percent-encoded; the secret is the decoded text.
        let password = url.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        if username.is_empty() != password.is_none() {
            return Err(FieldError::UrlUserinfo);
        }
        let _ = url.set_password(None);
        url.set_fragment(None);
        Ok(Self {
            url,
            password: password.map(SecretString::new),
        })
    }

    /// Rebuilds a URL read back from the store (already validated).
    pub fn from_stored(url: &str, password: Option<SecretString>) -> Option<Self> {
        Some(Self {
            url: Url::parse(url).ok()?,
            password,
        })
    }

    /// The URL without its password: the form stored and compared for
    /// uniqueness.
    pub fn without_password(&self) -> &str {
        self.url.as_str()
    }

    /// The host name, when the host is a name rather than an IP literal.
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }

    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    /// The form shown to users and logs: `user:****@host` when there is a
    /// password.
    pub fn masked(&self) -> String {
        if self.password.is_none() {
            return self.url.to_string();
        }
        let mut shown = self.url.clone();
        let _ = shown.set_password(Some("****"));
        shown.to_string()
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.masked())
    }
}

fn check_ip(ip: IpAddr, policy: &AddressPolicy) -> Result<(), FieldError> {
    policy
        .check(ip)
        .map_err(|range| FieldError::UrlBlockedAddress { ip, range })
}

/// A checked description.
pub fn parse_description(input: &str) -> Result<String, FieldError> {
    let n = input.chars().count();
    if n < DESCRIPTION_MIN {
        Err(FieldError::DescriptionTooShort)
    } else if n > DESCRIPTION_MAX {
        Err(FieldError::DescriptionTooLong)
    } else {
        Ok(input.to_owned())
    }
}

/// Checks a subscription list: at least one name, no duplicates, every name
/// in the catalog and active. Unknown names are reported together.
pub fn parse_event_names(names: &[String], catalog: &Catalog) -> Result<Vec<String>, FieldError> {
    if names.is_empty() {
        return Err(FieldError::EventNamesEmpty);
    }
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(FieldError::EventNamesDuplicate(name.clone()));
        }
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| catalog.get(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(FieldError::EventNamesUnknown(unknown.join(", ")));
    }
    if let Some(inactive) = names
        .iter()
        .find(|n| !catalog.get(n).is_some_and(|t| t.is_active))
    {
        return Err(FieldError::EventNameInactive(inactive.clone()));
    }
    Ok(names.to_vec())
}

pub fn parse_max_in_flight(n: u32) -> Result<u32, FieldError> {
    if (1..=MAX_IN_FLIGHT_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(FieldError::MaxInFlight)
    }
}

/// How deliveries of a webhook are signed (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScheme {
    #[default]
    Ocrolus,
    StandardWebhooks,
}

impl SignatureScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ocrolus => "ocrolus",
            Self::StandardWebhooks => "standard-webhooks",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        match s {
            "standard-webhooks" => Self::StandardWebhooks,
            _ => Self::Ocrolus,
        }
    }

    /// Checks a secret the user set, or makes one where the scheme allows.
    /// Returns the secret and whether it was generated (and so must be shown
    /// once).
    pub fn secret(self, given: Option<&str>) -> Result<(SecretString, bool), FieldError> {
        match (self, given) {
            (Self::Ocrolus, None) => Err(FieldError::SecretRequired),
            (Self::Ocrolus, Some(s)) => {
                if (16..=128).contains(&s.chars().count()) {
                    Ok((SecretString::new(s), false))
                } else {
                    Err(FieldError::OcrolusSecret)
                }
            }
            (Self::StandardWebhooks, Some(s)) => {
                let key = s
                    .strip_prefix("whsec_")
                    .and_then(|b| B64.decode(b).ok())
                    .ok_or(FieldError::StandardSecret)?;
                if (24..=64).contains(&key.len()) {
                    Ok((SecretString::new(s), false))
                } else {
                    Err(FieldError::StandardSecret)
                }
            }
            (Self::StandardWebhooks, None) => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                Ok((
                    SecretString::new(format!("whsec_{}", B64.encode(key))),
                    true,
                ))
            }
        }
    }
}

/// Delivery ordering of a webhook (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    #[default]
    None,
    PerBook,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PerBook => "per_book",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        match s {
            "per_book" => Self::PerBook,
            _ => Self::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<WebhookUrl, FieldError> {
        WebhookUrl::parse(s, &AddressPolicy::default())
    }

    #[test]
    fn url_rules() {
        use FieldError::*;
        let cases: &[(&str, Result<&str, FieldError>)] = &[
            ("https://example.com/hook", Ok("https://example.com/hook")),
            (
                "HTTPS://Example.COM:443/a/../hook#frag",
                Ok("https://example.com/hook"),
            ),
            ("http://example.com", Ok("http://example.com/")),
            ("https://93.184.216.34/x", Ok("https://93.184.216.34/x")),
            ("example.com/hook", Err(UrlScheme)),
            ("ftp://example.com/", Err(UrlScheme)),
            ("", Err(UrlScheme)),
            ("https://example./hook", Err(UrlHost)),
            ("https://example.123/", Err(UrlHost)),
            ("https://user@example.com/", Err(UrlUserinfo)),
            ("https://:pw@example.com/", Err(UrlUserinfo)),
        ];
        for (input, want) in cases {
            let got = parse(input).map(|u| u.without_password().to_owned());
            assert_eq!(got, want.clone().map(str::to_owned), "{input}");
        }
        assert!(matches!(
            parse("http://127.0.0.1:8080/"),
            Err(UrlBlockedAddress { .. })
        ));
        assert!(
            matches!(
                parse("http://localhost:3000/"),
                Err(UrlBlockedAddress { .. })
            ),
            "localhost is loopback"
        );
        let loopback = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(WebhookUrl::parse("http://localhost:3000/hooks", &loopback).is_ok());
        assert!(matches!(
            parse("http://[::ffff:10.0.0.1]/"),
            Err(UrlBlockedAddress { .. })
        ));
        assert!(matches!(
            parse("http://169.254.169.254/"),
            Err(UrlBlockedAddress { .. })
        ));
        let allow = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/", &allow).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse(&long), Err(UrlTooLong));
    }

    #[test]
    fn passwords_are_held_apart_and_masked() {
        let u = parse("https://bob:s3cret@example.com/hook").unwrap();
        assert_eq!(u.without_password(), "https://bob@example.com/hook");
        assert_eq!(u.masked(), "https://bob:****@example.com/hook");
        assert_eq!(u.password().unwrap().expose(), "s3cret");
        let encoded = parse("https://bob:p%40ss@example.com/").unwrap();
        assert_eq!(encoded.password().unwrap().expose(), "p@ss");
        assert!(!format!("{u} {u:?}").contains("s3cret"));
    }

    #[test]
    fn descriptions_and_event_names() {
        assert_eq!(
            parse_description("ab"),
            Err(FieldError::DescriptionTooShort)
        );
        assert_eq!(parse_description("abc").unwrap(), "abc");
        assert_eq!(
            parse_description(&"é".repeat(255)).unwrap().chars().count(),
            255
        );
        assert_eq!(
            parse_description(&"a".repeat(256)),
            Err(FieldError::DescriptionTooLong)
        );
        let c = Catalog::embedded().unwrap();
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse_event_names(&[], &c), Err(FieldError::EventNamesEmpty));
        assert_eq!(
            parse_event_names(&names(&["book.verified", "x", "y"]), &c),
            Err(FieldError::EventNamesUnknown("x, y".into()))
        );
        assert_eq!(
            parse_event_names(&names(&["book.verified", "book.verified"]), &c),
            Err(FieldError::EventNamesDuplicate("book.verified".into()))
        );
        assert!(parse_event_names(&names(&["book.verified"]), &c).is_ok());
        assert_eq!(
            FieldError::EventNamesUnknown("x".into()).to_string(),
            "Event(s) with name x doesnt exist"
        );
    }

    #[test]
    fn secret_rules_per_scheme() {
        let o = SignatureScheme::Ocrolus;
        assert_eq!(o.secret(Some("short")), Err(FieldError::OcrolusSecret));
        assert!(o.secret(Some(&"a".repeat(16))).is_ok());
        assert!(o.secret(Some(&"a".repeat(129))).is_err());
        assert_eq!(o.secret(None), Err(FieldError::SecretRequired));
        let s = SignatureScheme::StandardWebhooks;
        let (generated, shown) = s.secret(None).unwrap();
        assert!(shown && generated.expose().starts_with("whsec_"));
        assert!(!s.secret(Some(generated.expose())).unwrap().1);
        assert_eq!(
            s.secret(Some("whsec_AAAA")),
            Err(FieldError::StandardSecret)
        );
        assert_eq!(
            s.secret(Some(&"a".repeat(20))),
            Err(FieldError::StandardSecret)
        );
    }
}
