//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body keyed with the
//! webhook secret. GitHub signs no timestamp, so there is no freshness check; redeliveries
//! are recognised by `X-GitHub-Delivery` instead.

use axum::http::HeaderMap;
use serde_json::Value;

use super::{Inbound, WebhookError, check_tags, decode_hex, header, parse_json, str_field};

const SIGNATURE: &str = "X-Hub-Signature-256";
const SHA1_SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-GitHub-Event";
const DELIVERY: &str = "X-GitHub-Delivery";

pub(super) fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<Inbound, WebhookError> {
    check_signature(secret, headers, body)?;
    // These headers are not signed, so they are read only once the body is known to be
    // GitHub's; an unreadable one is then the sender's mistake (400), not a forgery.
    let event = header(headers, EVENT)
        .ok()
        .flatten()
        .ok_or(WebhookError::NoEventType("header X-GitHub-Event is missing"))?;
    let delivery_id = header(headers, DELIVERY)
        .ok()
        .flatten()
        .ok_or(WebhookError::NoDeliveryId("header X-GitHub-Delivery is missing"))?;
    let data = parse_body(body)?;
    let kind = match str_field(&data, "action") {
        Some(action) => format!("github.{event}.{action}"),
        None => format!("github.{event}"),
    };
    Ok(Inbound::Event {
        delivery_id: delivery_id.to_owned(),
        kind,
        data,
    })
}

fn check_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    let Some(value) = header(headers, SIGNATURE)? else {
        // SHA-1 alone is refused by name so the fix (a newer GitHub, or a proxy that keeps
        // the header) is obvious, rather than reported as a plain missing signature.
        return Err(if headers.contains_key(SHA1_SIGNATURE) {
            WebhookError::Sha1Only
        } else {
            WebhookError::MissingSignature(SIGNATURE)
        });
    };
    let tag = value
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .ok_or(WebhookError::malformed(SIGNATURE, "expected sha256=<hex digits>"))?;
    check_tags(secret.as_bytes(), body, &[tag])
}

fn parse_body(body: &[u8]) -> Result<Value, WebhookError> {
    // A webhook whose content type is set to form-urlencoded posts `payload=<escaped JSON>`;
    // name the setting to change instead of reporting a bare JSON syntax error.
    if body.starts_with(b"payload=") {
        return Err(WebhookError::Unsupported(
            "GitHub sent a form-encoded body; set the webhook's content type to application/json".to_owned(),
        ));
    }
    parse_json(body)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{headers, hmac_hex};
    use super::super::{Kind, verify as verify_any};
    use super::*;

    // From GitHub's docs, "Validating webhook deliveries", section "Testing the webhook payload validation".
    const DOCS_SECRET: &str = "It's a Secret to Everybody";
    const DOCS_BODY: &[u8] = b"Hello, World!";
    const DOCS_SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn run(secret: &str, pairs: &[(&str, &str)], body: &[u8]) -> Result<Inbound, WebhookError> {
        verify_any(Kind::Github, secret, &headers(pairs), body, 0)
    }

    fn signed(body: &[u8], event: &str) -> Vec<(&'static str, String)> {
        vec![
            (SIGNATURE, format!("sha256={}", hmac_hex(DOCS_SECRET.as_bytes(), body))),
            (EVENT, event.to_owned()),
            (DELIVERY, "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned()),
        ]
    }

    fn run_signed(pairs: &[(&'static str, String)], body: &[u8]) -> Result<Inbound, WebhookError> {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        run(DOCS_SECRET, &pairs, body)
    }

    #[test]
    fn docs_vector_signature_is_accepted() {
        let map = headers(&[(SIGNATURE, DOCS_SIGNATURE)]);
        check_signature(DOCS_SECRET, &map, DOCS_BODY).unwrap();
        assert_eq!(
            format!("sha256={}", hmac_hex(DOCS_SECRET.as_bytes(), DOCS_BODY)),
            DOCS_SIGNATURE
        );
        // Past the signature, the docs' plain-text body is authentic but not JSON.
        let pairs = [(SIGNATURE, DOCS_SIGNATURE), (EVENT, "push"), (DELIVERY, "d1")];
        let err = run(DOCS_SECRET, &pairs, DOCS_BODY).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
        assert!(!err.is_auth_failure());
    }

    #[test]
    fn json_event_with_action_gets_a_three_part_type() {
        let body = br#"{"action":"opened","issue":{"number":1}}"#;
        let inbound = run_signed(&signed(body, "issues"), body).unwrap();
        assert_eq!(
            inbound,
            Inbound::Event {
                delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
                kind: "github.issues.opened".to_owned(),
                data: serde_json::json!({"action": "opened", "issue": {"number": 1}}),
            }
        );
    }

    #[test]
    fn json_event_without_string_action_uses_the_event_header_alone() {
        for (event, body) in [
            ("push", &br#"{"ref":"refs/heads/main"}"#[..]),
            ("ping", br#"{"zen":"x","action":7}"#),
        ] {
            match run_signed(&signed(body, event), body).unwrap() {
                Inbound::Event { kind, .. } => assert_eq!(kind, format!("github.{event}")),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_secret_and_tampered_body_are_refused() {
        let body = br#"{"action":"opened"}"#;
        let pairs = signed(body, "issues");
        let pairs_str: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let err = run("another secret", &pairs_str, body).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
        assert_eq!(err.to_string(), "the signature does not match the body");
        let err = run_signed(&pairs, br#"{"action":"openef"}"#).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
        assert!(err.is_auth_failure());
    }

    #[test]
    fn sha1_only_is_refused_distinctly() {
        let err = run(
            DOCS_SECRET,
            &[(SHA1_SIGNATURE, "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0")],
            b"{}",
        );
        let err = err.unwrap_err();
        assert_eq!(err.code(), "sha1_only");
        assert!(err.is_auth_failure());
        let err = run(DOCS_SECRET, &[(EVENT, "push"), (DELIVERY, "d")], b"{}").unwrap_err();
        assert_eq!(err.code(), "missing_signature");
        assert_eq!(err.to_string(), "header X-Hub-Signature-256 is missing");
    }

    #[test]
    fn garbage_signature_headers_are_refused_without_panicking() {
        let odd_length = &DOCS_SIGNATURE[..DOCS_SIGNATURE.len() - 1];
        for bad in [
            "sha256=abc",
            "sha256=zz",
            "sha256",
            "md5=00",
            "sha256=\u{e9}\u{e9}",
            odd_length,
        ] {
            let err = run(
                DOCS_SECRET,
                &[(SIGNATURE, bad), (EVENT, "push"), (DELIVERY, "d")],
                DOCS_BODY,
            );
            assert!(err.unwrap_err().is_auth_failure(), "{bad}");
        }
        let short = run(DOCS_SECRET, &[(SIGNATURE, "sha256=00")], DOCS_BODY).unwrap_err();
        assert_eq!(short.code(), "bad_signature");
        let blank = run(DOCS_SECRET, &[(SIGNATURE, "  ")], DOCS_BODY).unwrap_err();
        assert_eq!(blank.code(), "missing_signature");
    }

    #[test]
    fn unsigned_headers_are_required_after_the_signature() {
        let body = b"{}";
        let mut pairs = signed(body, "push");
        pairs.retain(|(n, _)| *n != EVENT);
        let err = run_signed(&pairs, body).unwrap_err();
        assert_eq!((err.code(), err.is_auth_failure()), ("no_event_type", false));
        // A forged request without the event header is still reported as a forgery.
        assert_eq!(run_signed(&pairs, b"{ }").unwrap_err().code(), "bad_signature");
        let mut pairs = signed(body, "push");
        pairs.retain(|(n, _)| *n != DELIVERY);
        assert_eq!(run_signed(&pairs, body).unwrap_err().code(), "no_delivery_id");
    }

    #[test]
    fn form_encoded_body_names_the_setting_to_change() {
        let body = b"payload=%7B%7D";
        let err = run_signed(&signed(body, "push"), body).unwrap_err();
        assert_eq!(err.code(), "unsupported_payload");
        assert!(err.to_string().contains("application/json"));
    }
}
