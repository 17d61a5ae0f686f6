//! Property tests of the pure domain: no input makes it panic, and the
//! SPEC's invariants hold for every input proptest can think of (payload
//! completion, URL normalisation, the address policy, both signatures).
//! Every run uses the same seed, so a failure reproduces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use orghooks_core::Catalog;
use orghooks_core::payload::completed_text;
use orghooks_core::sealing::SecretString;
use orghooks_core::signing;
use orghooks_core::url_policy::AddressPolicy;
use orghooks_core::webhook::WebhookUrl;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| Catalog::embedded().unwrap())
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("1e03d9cd-7d84-4672-bc3d-c19cd19c500b".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A payload near a real one: a catalog example with fields dropped,
/// replaced or added at random.
fn payload() -> impl Strategy<Value = Value> {
    let types: Vec<Value> = catalog().iter().map(|t| t.example.clone()).collect();
    (
        prop::sample::select(types),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        prop::collection::vec(("[a-z_]{1,12}", json()), 0..4),
    )
        .prop_map(|(example, drop, extra)| {
            let mut fields: Map<String, Value> = example.as_object().unwrap().clone();
            for index in drop {
                if fields.len() > 1 {
                    let i = index.index(fields.len());
                    let key = fields.keys().nth(i).unwrap().clone();
                    if key != "event_name" {
                        fields.shift_remove(&key);
                    }
                }
            }
            for (key, value) in extra {
                if key != "event_name" {
                    fields.insert(key, value);
                }
            }
            Value::Object(fields)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261129),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_value_as_a_payload_is_judged_without_panicking(value in json()) {
        let _ = catalog().validate_and_complete(value);
    }

    #[test]
    fn completion_keeps_what_was_published_fills_twins_and_is_idempotent(published in payload()) {
        let Ok((completed, event_type)) = catalog().validate_and_complete(published.clone()) else {
            return Ok(());
        };
        let before = published.as_object().unwrap();
        let after = completed.as_object().unwrap();
        for (key, value) in before {
            prop_assert_eq!(after.get(key), Some(value), "{} kept as published", key);
        }
        for [a, b] in &event_type.twins {
            prop_assert_eq!(after.get(a), after.get(b), "twins {} and {} are equal", a, b);
        }
        for field in ["severity", "notification_type", "notification_reason"] {
            prop_assert!(after.contains_key(field), "{} is filled", field);
        }
        let (again, _) = catalog().validate_and_complete(completed.clone()).unwrap();
        prop_assert_eq!(&again, &completed, "completion is idempotent");

        // As the API gets it: text, parsed once; receivers get that text.
        let text = serde_json::to_string_pretty(&published).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let len = parsed.as_object().unwrap().len();
        let (completed, _) = catalog().validate_and_complete(parsed).unwrap();
        let delivered = completed_text(&text, &completed, len);
        let reparsed: Value = serde_json::from_str(&delivered).unwrap();
        prop_assert_eq!(reparsed, completed, "the delivered text is the completed payload");
        let kept = text.trim_end().strip_suffix('}').unwrap().trim_end();
        prop_assert!(delivered.starts_with(kept), "the published text is kept");
    }

    #[test]
    fn any_string_as_a_url_is_judged_without_panicking(input in ".{0,80}") {
        let _ = WebhookUrl::parse(&input, &AddressPolicy::default());
    }

    #[test]
    fn a_normalised_url_normalises_to_itself(
        input in "(HTTP|https|http)://([a-z0-9-]{1,8}\\.){1,3}[a-z]{2,6}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,12}){0,3}(\\?[a-z0-9=&%]{0,12})?(#[a-z]{0,5})?"
    ) {
        let policy = AddressPolicy::default();
        if let Ok(url) = WebhookUrl::parse(&input, &policy) {
            let again = WebhookUrl::parse(url.without_password(), &policy).unwrap();
            prop_assert_eq!(again.without_password(), url.without_password());
        }
    }

    #[test]
    fn every_blocked_ipv4_address_is_refused_in_every_form(
        (net, host) in prop::sample::select(vec![
            (Ipv4Addr::new(0, 0, 0, 0), 8u8),
            (Ipv4Addr::new(10, 0, 0, 0), 8),
            (Ipv4Addr::new(100, 64, 0, 0), 10),
            (Ipv4Addr::new(127, 0, 0, 0), 8),
            (Ipv4Addr::new(169, 254, 0, 0), 16),
            (Ipv4Addr::new(172, 16, 0, 0), 12),
            (Ipv4Addr::new(192, 168, 0, 0), 16),
            (Ipv4Addr::new(224, 0, 0, 0), 4),
            (Ipv4Addr::new(240, 0, 0, 0), 4),
        ]).prop_flat_map(|n| (Just(n), any::<u32>()))
    ) {
        let (base, prefix) = net;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let v4 = Ipv4Addr::from((u32::from(base) & mask) | (host & !mask));
        let [a, b, c, d] = v4.octets();
        let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        let forms = [
            IpAddr::V4(v4),
            IpAddr::V6(v4.to_ipv6_mapped()),
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo)),
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo)),
            IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo)),
            IpAddr::V6(Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, hi, lo)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, !hi, !lo)),
        ];
        let policy = AddressPolicy::default();
        for ip in forms {
            prop_assert!(policy.check(ip).is_err(), "{} ({}) was allowed", ip, v4);
        }
    }

    #[test]
    fn any_address_is_judged_without_panicking(bits in any::<u128>(), v4 in any::<u32>()) {
        let policy = AddressPolicy::default();
        let _ = policy.check(IpAddr::V6(Ipv6Addr::from(bits)));
        let _ = policy.check(IpAddr::V4(Ipv4Addr::from(v4)));
    }

    #[test]
    fn ocrolus_signatures_are_hmac_of_timestamp_request_id_and_body(
        secret in ".{1,64}", timestamp in any::<i64>(), request_id in "[ -~]{0,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        use hmac::{Hmac, Mac};
        let got = signing::ocrolus(&SecretString::new(secret.clone()), timestamp, &request_id, &body);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{request_id}.").as_bytes());
        mac.update(&body);
        prop_assert_eq!(got, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn standard_signatures_verify_with_the_official_library(
        key in prop::collection::vec(any::<u8>(), 24..64), id in "msg_[a-zA-Z0-9]{1,20}",
        body in ".{0,200}",
    ) {
        // Bodies are JSON, so UTF-8 (the official verifier wants text).
        let body = body.into_bytes();
        use base64::Engine;
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let signature = signing::standard(&[&SecretString::new(secret.clone())], &id, now, &body);
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
        prop_assert!(verifier.verify(&body, &headers).is_ok());
    }
}
