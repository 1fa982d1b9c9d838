//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of `v0:<timestamp>:<body>` keyed with
//! the app's signing secret; the timestamp comes from `X-Slack-Request-Timestamp`.
//! Only the Events API's JSON bodies are read.

use axum::http::HeaderMap;
use serde_json::Value;

use super::{
    Inbound, WebhookError, check_fresh, check_tags, decode_hex, header, parse_json, parse_timestamp, str_field,
};

const TIMESTAMP: &str = "X-Slack-Request-Timestamp";
const SIGNATURE: &str = "X-Slack-Signature";

pub(super) fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
    check_signature(secret, headers, body, now)?;
    read_body(body)
}

fn check_signature(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<(), WebhookError> {
    let signature = header(headers, SIGNATURE)?.ok_or(WebhookError::MissingSignature(SIGNATURE))?;
    let raw_timestamp = header(headers, TIMESTAMP)?.ok_or(WebhookError::MissingHeader(TIMESTAMP))?;
    let timestamp = parse_timestamp(raw_timestamp, TIMESTAMP)?;
    let tag = signature
        .strip_prefix("v0=")
        .and_then(decode_hex)
        .ok_or(WebhookError::malformed(SIGNATURE, "expected v0=<hex digits>"))?;
    // The timestamp text is signed exactly as sent, so it is used as-is, not re-rendered.
    let message = [b"v0:", raw_timestamp.as_bytes(), b":", body].concat();
    check_tags(secret.as_bytes(), &message, &[tag])?;
    // Freshness after authenticity: a stale verdict then always means a genuine old request.
    check_fresh(timestamp, now)
}

fn read_body(body: &[u8]) -> Result<Inbound, WebhookError> {
    // Slash commands and interactivity post form fields and expect a reply in the response,
    // which a stored event cannot give; they are refused by name rather than as bad JSON.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(WebhookError::Unsupported(
            "only Slack Events API JSON bodies are accepted; form-encoded requests (slash commands, \
             interactivity) are not supported"
                .to_owned(),
        ));
    }
    let payload = parse_json(body)?;
    match str_field(&payload, "type") {
        Some("url_verification") => match str_field(&payload, "challenge") {
            Some(challenge) => Ok(Inbound::Challenge(challenge.to_owned())),
            None => Err(WebhookError::InvalidPayload(
                "the Slack url_verification request has no string \"challenge\"",
            )),
        },
        Some("event_callback") => event(payload),
        Some(other) => Err(WebhookError::Unsupported(format!(
            "Slack payload type {other:?} is not supported; only event_callback and url_verification are"
        ))),
        None => Err(WebhookError::NoEventType("the Slack payload has no string \"type\"")),
    }
}

fn event(payload: Value) -> Result<Inbound, WebhookError> {
    let inner = payload.get("event").and_then(|event| str_field(event, "type"));
    let inner = inner.ok_or(WebhookError::NoEventType(
        "the Slack payload has no string \"event.type\"",
    ))?;
    let kind = format!("slack.{inner}");
    let delivery_id = str_field(&payload, "event_id")
        .ok_or(WebhookError::NoDeliveryId(
            "the Slack payload has no string \"event_id\"",
        ))?
        .to_owned();
    Ok(Inbound::Event {
        delivery_id,
        kind,
        data: payload,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{headers, hmac_hex};
    use super::super::{Kind, verify as verify_any};
    use super::*;

    // From Slack's "Verifying requests from Slack": its worked example of a slash command.
    const DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOCS_TIMESTAMP: u64 = 1531420618;
    const DOCS_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow\
        &channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner\
        &command=%2Fwebhook-collect&text=\
        &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN\
        &trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOCS_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    const NOW: u64 = 1_700_000_000;

    fn sign(timestamp: u64, body: &[u8]) -> String {
        let message = [format!("v0:{timestamp}:").as_bytes(), body].concat();
        format!("v0={}", hmac_hex(DOCS_SECRET.as_bytes(), &message))
    }

    fn run(timestamp: u64, signature: &str, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
        let pairs = [(TIMESTAMP, timestamp.to_string()), (SIGNATURE, signature.to_owned())];
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        verify_any(Kind::Slack, DOCS_SECRET, &headers(&pairs), body, now)
    }

    fn run_signed(body: &[u8]) -> Result<Inbound, WebhookError> {
        run(NOW, &sign(NOW, body), body, NOW)
    }

    #[test]
    fn docs_vector_signature_is_accepted_then_the_form_body_refused() {
        let timestamp = DOCS_TIMESTAMP.to_string();
        let map = headers(&[(TIMESTAMP, timestamp.as_str()), (SIGNATURE, DOCS_SIGNATURE)]);
        check_signature(DOCS_SECRET, &map, DOCS_BODY.as_bytes(), DOCS_TIMESTAMP).unwrap();
        assert_eq!(sign(DOCS_TIMESTAMP, DOCS_BODY.as_bytes()), DOCS_SIGNATURE);
        let err = run(DOCS_TIMESTAMP, DOCS_SIGNATURE, DOCS_BODY.as_bytes(), DOCS_TIMESTAMP).unwrap_err();
        assert_eq!((err.code(), err.is_auth_failure()), ("unsupported_payload", false));
        assert!(err.to_string().contains("only Slack Events API JSON"));
        // The signature still comes first: a forged form body is a forgery, not unsupported.
        let forged = run(DOCS_TIMESTAMP, DOCS_SIGNATURE, b"token=x", DOCS_TIMESTAMP).unwrap_err();
        assert_eq!(forged.code(), "bad_signature");
    }

    #[test]
    fn url_verification_yields_the_challenge() {
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRN","type":"url_verification"}"#;
        assert_eq!(
            run_signed(body).unwrap(),
            Inbound::Challenge("3eZbrw1aBm2rZgRN".to_owned())
        );
        let err = run_signed(br#"{"type":"url_verification"}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_payload");
    }

    #[test]
    fn event_callback_becomes_an_event_with_the_whole_payload() {
        let body = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"message","text":"hi"}}"#;
        assert_eq!(
            run_signed(body).unwrap(),
            Inbound::Event {
                delivery_id: "Ev08MFMKH6".to_owned(),
                kind: "slack.message".to_owned(),
                data: serde_json::from_slice(body).unwrap(),
            }
        );
    }

    #[test]
    fn unusable_authentic_payloads_are_400s() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"type":"app_rate_limited"}"#, "unsupported_payload"),
            (br#"{"event_id":"Ev1"}"#, "no_event_type"),
            (
                br#"{"type":"event_callback","event_id":"Ev1","event":{}}"#,
                "no_event_type",
            ),
            (
                br#"{"type":"event_callback","event":{"type":"message"}}"#,
                "no_delivery_id",
            ),
            (br#"{"type":"#, "invalid_json"),
            (b"", "unsupported_payload"),
        ];
        for (body, code) in cases {
            let err = run_signed(body).unwrap_err();
            assert_eq!(
                (err.code(), err.is_auth_failure()),
                (code, false),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn wrong_secret_and_tampered_body_are_refused() {
        let body = br#"{"type":"url_verification","challenge":"c"}"#;
        let other = format!(
            "v0={}",
            hmac_hex(b"another secret", &[b"v0:1700000000:", &body[..]].concat())
        );
        assert_eq!(run(NOW, &other, body, NOW).unwrap_err().code(), "bad_signature");
        let tampered = br#"{"type":"url_verification","challenge":"d"}"#;
        assert_eq!(
            run(NOW, &sign(NOW, body), tampered, NOW).unwrap_err().code(),
            "bad_signature"
        );
        // The timestamp is signed too: moving it breaks the signature.
        assert_eq!(
            run(NOW + 1, &sign(NOW, body), body, NOW).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn timestamps_beyond_tolerance_are_refused_both_ways() {
        let body = br#"{"type":"url_verification","challenge":"c"}"#;
        let at = |timestamp: u64, now: u64| run(timestamp, &sign(timestamp, body), body, now);
        assert!(at(NOW, NOW + 300).is_ok());
        assert!(at(NOW + 300, NOW).is_ok());
        let stale = at(NOW, NOW + 301).unwrap_err();
        assert_eq!(
            stale.to_string(),
            "the timestamp is 301 s old; at most 300 s is accepted"
        );
        let future = at(NOW + 301, NOW).unwrap_err();
        assert_eq!((future.code(), future.is_auth_failure()), ("future_timestamp", true));
    }

    #[test]
    fn missing_and_garbage_headers_are_refused_without_panicking() {
        let body = b"{}";
        let good_signature = sign(NOW, body);
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[(TIMESTAMP, "1700000000")], "missing_signature"),
            (&[(SIGNATURE, &good_signature)], "missing_header"),
            (&[(TIMESTAMP, "soon"), (SIGNATURE, &good_signature)], "malformed_header"),
            (
                &[(TIMESTAMP, "99999999999999999999999"), (SIGNATURE, &good_signature)],
                "malformed_header",
            ),
            (&[(TIMESTAMP, "1700000000"), (SIGNATURE, "v0=abc")], "malformed_header"),
            (&[(TIMESTAMP, "1700000000"), (SIGNATURE, "v1=00")], "malformed_header"),
            (
                &[(TIMESTAMP, "1700000000"), (SIGNATURE, "v0\u{e9}")],
                "malformed_header",
            ),
            (&[(TIMESTAMP, "1700000000"), (SIGNATURE, "v0=00")], "bad_signature"),
        ];
        for (pairs, code) in cases {
            let err = verify_any(Kind::Slack, DOCS_SECRET, &headers(pairs), body, NOW).unwrap_err();
            assert_eq!((err.code(), err.is_auth_failure()), (code, true), "{pairs:?}");
        }
    }
}
