//! Stripe: `Stripe-Signature: t=<secs>,v1=<hex>,...`, HMAC-SHA256 of `<t>.<body>` keyed with
//! the endpoint secret string exactly as shown (`whsec_...`, prefix included: Stripe does
//! not decode it). Several `v1` entries appear while a secret is being rolled.

use axum::http::HeaderMap;

use super::{
    Inbound, WebhookError, check_fresh, check_tags, decode_candidates, decode_hex, header, parse_json, parse_timestamp,
    str_field,
};

const SIGNATURE: &str = "Stripe-Signature";

pub(super) fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
    check_signature(secret, headers, body, now)?;
    let payload = parse_json(body)?;
    let kind =
        str_field(&payload, "type").ok_or(WebhookError::NoEventType("the Stripe payload has no string \"type\""))?;
    let kind = format!("stripe.{kind}");
    let delivery_id = str_field(&payload, "id")
        .ok_or(WebhookError::NoDeliveryId("the Stripe payload has no string \"id\""))?
        .to_owned();
    Ok(Inbound::Event {
        delivery_id,
        kind,
        data: payload,
    })
}

fn check_signature(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<(), WebhookError> {
    let value = header(headers, SIGNATURE)?.ok_or(WebhookError::MissingSignature(SIGNATURE))?;
    let (raw_timestamp, v1) = split_header(value)?;
    let timestamp = parse_timestamp(raw_timestamp, SIGNATURE)?;
    let tags = decode_candidates(SIGNATURE, "v1", v1.into_iter(), decode_hex)?;
    let message = [raw_timestamp.as_bytes(), b".", body].concat();
    check_tags(secret.as_bytes(), &message, &tags)?;
    check_fresh(timestamp, now)
}

/// The `t` value and the `v1` values, in any order. Items of other schemes (`v0`, a future
/// `v2`) and items without `=` are skipped, as Stripe's own libraries do.
fn split_header(value: &str) -> Result<(&str, Vec<&str>), WebhookError> {
    let malformed = |reason| WebhookError::malformed(SIGNATURE, reason);
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for (key, item) in value.split(',').filter_map(|item| item.split_once('=')) {
        match key.trim() {
            // Two timestamps would leave it ambiguous which one was signed.
            "t" if timestamp.is_some() => return Err(malformed("it holds more than one t= item")),
            "t" => timestamp = Some(item.trim()),
            "v1" => v1.push(item.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(malformed("it has no t=<unix seconds> item"))?;
    Ok((timestamp, v1))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{headers, hmac_hex};
    use super::super::{Kind, verify as verify_any};
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}"#;
    // HMAC-SHA256("whsec_test_secret", "1700000000." + BODY), computed separately with Python's hmac module.
    const BODY_V1: &str = "8fcb50c2d45bc391e3252f24411d84654bfdfc8e96eaf71d71534ee00b714f1e";

    fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
        hmac_hex(secret.as_bytes(), &[format!("{timestamp}.").as_bytes(), body].concat())
    }

    fn run(signature_header: &str, body: &[u8], now: u64) -> Result<Inbound, WebhookError> {
        verify_any(
            Kind::Stripe,
            SECRET,
            &headers(&[(SIGNATURE, signature_header)]),
            body,
            now,
        )
    }

    #[test]
    fn independently_computed_vector_is_accepted() {
        assert_eq!(sign(SECRET, NOW, BODY), BODY_V1);
        assert_eq!(
            run(&format!("t={NOW},v1={BODY_V1}"), BODY, NOW).unwrap(),
            Inbound::Event {
                delivery_id: "evt_1NG8Du2eZvKYlo2CUI79vXWy".to_owned(),
                kind: "stripe.invoice.paid".to_owned(),
                data: serde_json::from_slice(BODY).unwrap(),
            }
        );
    }

    #[test]
    fn any_v1_may_match_in_any_order_among_other_schemes() {
        let wrong = sign("whsec_old_secret", NOW, BODY);
        let header = format!("v0=deadbeef, v1={wrong},junk,v1=zz, v1={BODY_V1} ,t={NOW},v9=1");
        assert!(run(&header, BODY, NOW).is_ok());
        assert_eq!(
            run(&format!("t={NOW},v1={wrong},v1={wrong}"), BODY, NOW)
                .unwrap_err()
                .code(),
            "bad_signature"
        );
    }

    #[test]
    fn wrong_secret_and_tampered_body_are_refused() {
        let other = sign("whsec_other", NOW, BODY);
        assert_eq!(
            run(&format!("t={NOW},v1={other}"), BODY, NOW).unwrap_err().code(),
            "bad_signature"
        );
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        let err = run(&format!("t={NOW},v1={BODY_V1}"), &tampered, NOW).unwrap_err();
        assert_eq!((err.code(), err.is_auth_failure()), ("bad_signature", true));
        // The timestamp is part of what is signed.
        let moved = NOW + 1;
        assert_eq!(
            run(&format!("t={moved},v1={BODY_V1}"), BODY, moved).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn timestamps_beyond_tolerance_are_refused_both_ways() {
        let signed_at = |t: u64| format!("t={t},v1={}", sign(SECRET, t, BODY));
        assert!(run(&signed_at(NOW - 300), BODY, NOW).is_ok());
        assert_eq!(
            run(&signed_at(NOW - 301), BODY, NOW).unwrap_err().code(),
            "stale_timestamp"
        );
        assert_eq!(
            run(&signed_at(NOW + 301), BODY, NOW).unwrap_err().code(),
            "future_timestamp"
        );
    }

    #[test]
    fn missing_and_garbage_headers_are_refused_without_panicking() {
        let err = verify_any(Kind::Stripe, SECRET, &headers(&[]), BODY, NOW).unwrap_err();
        assert_eq!(err.to_string(), "header Stripe-Signature is missing");
        let no_v1 = run(&format!("t={NOW},v0={BODY_V1}"), BODY, NOW).unwrap_err();
        assert_eq!(no_v1.to_string(), "header Stripe-Signature holds no v1 signature");
        assert_eq!(no_v1.code(), "missing_signature");
        let many = format!("t={NOW}{}", ",v1=00".repeat(9));
        let odd = &BODY_V1[1..];
        let cases = [
            format!("v1={BODY_V1}"),
            format!("t={NOW},t={NOW},v1={BODY_V1}"),
            format!("t=-{NOW},v1={BODY_V1}"),
            format!("t=99999999999999999999999,v1={BODY_V1}"),
            "t".to_owned(),
            ",,,==,".to_owned(),
            format!("t={NOW},v1=\u{e9}{BODY_V1}"),
            many,
        ];
        for header in &cases {
            let err = run(header, BODY, NOW).unwrap_err();
            assert_eq!(
                (err.code(), err.is_auth_failure()),
                ("malformed_header", true),
                "{header}"
            );
        }
        assert_eq!(
            run(&format!("t={NOW},v1={odd}"), BODY, NOW).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn authentic_payloads_without_type_or_id_are_400s() {
        for (body, code) in [
            (&br#"{"id":"evt_1"}"#[..], "no_event_type"),
            (br#"{"type":"a.b"}"#, "no_delivery_id"),
        ] {
            let err = run(&format!("t={NOW},v1={}", sign(SECRET, NOW, body)), body, NOW).unwrap_err();
            assert_eq!((err.code(), err.is_auth_failure()), (code, false));
        }
        let err = run(&format!("t={NOW},v1={}", sign(SECRET, NOW, b"nope")), b"nope", NOW).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
    }
}
