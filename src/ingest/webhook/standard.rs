//! Standard Webhooks (standardwebhooks.com, also what Svix sends): `webhook-signature` holds
//! space-separated `v1,<base64>` entries, each an HMAC-SHA256 of `<id>.<timestamp>.<body>`
//! keyed with the base64-decoded secret (after its optional `whsec_` prefix).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{
    Inbound, WebhookError, check_fresh, check_tags, decode_candidates, header, parse_json, parse_timestamp, str_field,
};

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";

pub(super) fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
    // The secret first: a bad one is a configuration problem whatever the request holds.
    let key = decode_secret(secret)?;
    let id = header(headers, ID)?.ok_or(WebhookError::MissingHeader(ID))?;
    check_signature(&key, id, headers, body, now)?;
    let payload = parse_json(body)?;
    let kind = str_field(&payload, "type")
        .ok_or(WebhookError::NoEventType("the payload has no string \"type\""))?
        .to_owned();
    Ok(Inbound::Event {
        delivery_id: id.to_owned(),
        kind,
        data: payload,
    })
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(WebhookError::BadSecret(
            "the configured secret is not valid base64 (after removing any whsec_ prefix)",
        )),
    }
}

fn check_signature(key: &[u8], id: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<(), WebhookError> {
    let signatures = header(headers, SIGNATURE)?.ok_or(WebhookError::MissingSignature(SIGNATURE))?;
    let raw_timestamp = header(headers, TIMESTAMP)?.ok_or(WebhookError::MissingHeader(TIMESTAMP))?;
    let timestamp = parse_timestamp(raw_timestamp, TIMESTAMP)?;
    // Other versions are skipped: `v1a` is an asymmetric (ed25519) signature this HMAC check cannot use.
    let v1 = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, signature)| signature);
    let tags = decode_candidates(SIGNATURE, "v1", v1, |s| STANDARD.decode(s).ok())?;
    let message = [id.as_bytes(), b".", raw_timestamp.as_bytes(), b".", body].concat();
    check_tags(key, &message, &tags)?;
    check_fresh(timestamp, now)
}

#[cfg(test)]
mod tests {
    use super::super::testing::headers;
    use super::super::{Kind, verify as verify_any};
    use super::*;
    use ring::hmac;

    // From the Standard Webhooks reference libraries' "sign function works" test
    // (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: u64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const NOW: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;

    fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &decode_secret(secret).unwrap());
        let tag = hmac::sign(&key, &[format!("{id}.{timestamp}.").as_bytes(), body].concat());
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    fn run(id: &str, timestamp: &str, signature: &str, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
        let map = headers(&[(ID, id), (TIMESTAMP, timestamp), (SIGNATURE, signature)]);
        verify_any(Kind::Standard, SPEC_SECRET, &map, body, now)
    }

    fn run_signed_at(timestamp: u64, now: u64) -> Result<Inbound, WebhookError> {
        let signature = sign(SPEC_SECRET, "msg_1", timestamp, BODY);
        run("msg_1", &timestamp.to_string(), &signature, BODY, now)
    }

    #[test]
    fn spec_vector_signature_is_accepted_with_or_without_prefix() {
        assert_eq!(sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
        let map = headers(&[(TIMESTAMP, "1614265330"), (SIGNATURE, SPEC_SIGNATURE)]);
        for secret in [SPEC_SECRET, &SPEC_SECRET[SECRET_PREFIX.len()..]] {
            check_signature(
                &decode_secret(secret).unwrap(),
                SPEC_ID,
                &map,
                SPEC_BODY,
                SPEC_TIMESTAMP,
            )
            .unwrap();
        }
        // Authentic, but the vector's payload carries no "type" to route on.
        let err = run(SPEC_ID, "1614265330", SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP).unwrap_err();
        assert_eq!((err.code(), err.is_auth_failure()), ("no_event_type", false));
    }

    #[test]
    fn signed_event_is_read_with_its_id_and_type() {
        assert_eq!(
            run_signed_at(NOW, NOW).unwrap(),
            Inbound::Event {
                delivery_id: "msg_1".to_owned(),
                kind: "invoice.paid".to_owned(),
                data: serde_json::from_slice(BODY).unwrap(),
            }
        );
    }

    #[test]
    fn any_v1_entry_may_match_and_other_versions_are_skipped() {
        let good = sign(SPEC_SECRET, "msg_1", NOW, BODY);
        let good_b64 = &good[3..];
        let list = format!("v1,bm9wZQ== v1a,{good_b64} v2,{good_b64} v1,@@@ {good}");
        assert!(run("msg_1", "1700000000", &list, BODY, NOW).is_ok());
        let only_others = format!("v1a,{good_b64} v2,{good_b64}");
        let err = run("msg_1", "1700000000", &only_others, BODY, NOW).unwrap_err();
        assert_eq!(err.to_string(), "header webhook-signature holds no v1 signature");
    }

    #[test]
    fn wrong_secret_tampered_body_and_changed_id_are_refused() {
        let other = sign("whsec_c2Vjb25kIHNlY3JldA==", "msg_1", NOW, BODY);
        assert_eq!(
            run("msg_1", "1700000000", &other, BODY, NOW).unwrap_err().code(),
            "bad_signature"
        );
        let good = sign(SPEC_SECRET, "msg_1", NOW, BODY);
        let mut tampered = BODY.to_vec();
        tampered[3] = b'T';
        assert_eq!(
            run("msg_1", "1700000000", &good, &tampered, NOW).unwrap_err().code(),
            "bad_signature"
        );
        // The id is signed, so a replay under a fresh id (dodging deduplication) fails.
        assert_eq!(
            run("msg_2", "1700000000", &good, BODY, NOW).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn timestamps_beyond_tolerance_are_refused_both_ways() {
        assert!(run_signed_at(NOW + 300, NOW).is_ok());
        assert_eq!(run_signed_at(NOW - 301, NOW).unwrap_err().code(), "stale_timestamp");
        assert_eq!(run_signed_at(NOW + 301, NOW).unwrap_err().code(), "future_timestamp");
    }

    #[test]
    fn bad_secret_is_a_configuration_error() {
        for secret in ["whsec_not base64!", "whsec_", "whsec_abc"] {
            let err = verify_any(Kind::Standard, secret, &headers(&[]), BODY, NOW).unwrap_err();
            assert_eq!((err.code(), err.is_auth_failure()), ("bad_secret", false), "{secret}");
            assert!(err.to_string().contains("not valid base64"));
        }
    }

    #[test]
    fn missing_and_garbage_headers_are_refused_without_panicking() {
        let good = sign(SPEC_SECRET, "msg_1", NOW, BODY);
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[(TIMESTAMP, "1700000000"), (SIGNATURE, &good)], "missing_header"),
            (&[(ID, "msg_1"), (SIGNATURE, &good)], "missing_header"),
            (&[(ID, "msg_1"), (TIMESTAMP, "1700000000")], "missing_signature"),
            (
                &[(ID, "msg_1"), (TIMESTAMP, "1700000000"), (SIGNATURE, "v1")],
                "missing_signature",
            ),
            (
                &[(ID, "m\u{e9}"), (TIMESTAMP, "1700000000"), (SIGNATURE, &good)],
                "malformed_header",
            ),
            (
                &[(ID, "msg_1"), (TIMESTAMP, "1.7e9"), (SIGNATURE, &good)],
                "malformed_header",
            ),
            (
                &[(ID, "msg_1"), (TIMESTAMP, "1700000000"), (SIGNATURE, "v1,")],
                "bad_signature",
            ),
            (
                &[(ID, "msg_1"), (TIMESTAMP, "1700000000"), (SIGNATURE, "v1,@@@ v1,YQ")],
                "bad_signature",
            ),
        ];
        for (pairs, code) in cases {
            let err = verify_any(Kind::Standard, SPEC_SECRET, &headers(pairs), BODY, NOW).unwrap_err();
            assert_eq!((err.code(), err.is_auth_failure()), (code, true), "{pairs:?}");
        }
    }
}
