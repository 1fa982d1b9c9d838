//! Webhook signatures as a property: for any secret, body, clock and kind, a request signed
//! the provider's way passes the signature check, and the same request with one body byte
//! changed, checked with another secret, or with its signed timestamp moved, never does.
//!
//! Input: six parameter lines, then extra headers, an empty line and the body:
//! the kind (as in `webhook_headers`), the secret (when missing: "s"), the clock (unix seconds),
//! the signing time's offset from the clock in seconds (may be negative), the Standard
//! Webhooks message id, and a number choosing which body byte to change and how. The extra
//! headers come after the signed ones (the GitHub event and delivery headers, say).

use crate::{Input, number_or};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use eddy::ingest::webhook::{Kind, TOLERANCE_SECS, WebhookError, verify};
use http::{HeaderMap, HeaderName, HeaderValue};
use ring::hmac;

/// One request as the provider would sign it.
struct Signed {
    kind: Kind,
    /// The secret as configured in eddy.toml.
    configured: String,
    /// The HMAC key the provider signs with.
    key: Vec<u8>,
    id: String,
    timestamp: String,
    body: Vec<u8>,
}

impl Signed {
    /// The headers carrying this request's signature, with `extra` after them.
    fn headers(&self, extra: &Input) -> HeaderMap {
        let mac = |message: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.key), message);
        let hex = |message: &[u8]| {
            mac(message)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let (ts, body) = (self.timestamp.as_bytes(), self.body.as_slice());
        let pairs: Vec<(&str, String)> = match self.kind {
            Kind::Github => vec![("x-hub-signature-256", format!("sha256={}", hex(body)))],
            Kind::Slack => vec![
                ("x-slack-request-timestamp", self.timestamp.clone()),
                (
                    "x-slack-signature",
                    format!("v0={}", hex(&[b"v0:", ts, b":", body].concat())),
                ),
            ],
            Kind::Stripe => {
                let v1 = hex(&[ts, b".", body].concat());
                vec![("stripe-signature", format!("t={},v1={v1}", self.timestamp))]
            }
            Kind::Standard => {
                let tag = mac(&[self.id.as_bytes(), b".", ts, b".", body].concat());
                vec![
                    ("webhook-id", self.id.clone()),
                    ("webhook-timestamp", self.timestamp.clone()),
                    ("webhook-signature", format!("v1,{}", BASE64.encode(tag.as_ref()))),
                ]
            }
        };
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let value = HeaderValue::from_str(&value).expect("signature headers are visible ASCII");
            map.insert(HeaderName::from_static(name), value);
        }
        extra.append_headers(&mut map);
        map
    }

    fn verify(&self, headers: &HeaderMap, now: u64) -> Result<(), WebhookError> {
        verify(self.kind, &self.configured, headers, &self.body, now).map(drop)
    }
}

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let input = Input::parse(data, 6);
    let kind = crate::kind(input.params[0]);
    let secret = input.param_str(1).filter(|s| !s.is_empty()).unwrap_or("s");
    let now = number_or(input.params[2], 1_700_000_000);
    let offset: i64 = input.param_str(3).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let Some(signed_at) = now.checked_add_signed(offset) else {
        return;
    };
    // The id is signed as eddy reads it: trimmed visible ASCII (other values are refused).
    let id = input
        .param_str(4)
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b == b'\t' || (b' '..b'\x7f').contains(&b)))
        .unwrap_or("msg_1");
    let mut request = Signed {
        kind,
        configured: configured_secret(kind, secret.as_bytes()),
        key: secret.as_bytes().to_vec(),
        id: id.to_owned(),
        timestamp: signed_at.to_string(),
        body: input.body.to_vec(),
    };
    let headers = request.headers(&input);

    // 1. Genuine: past the signature. Whatever follows (freshness aside) is about the payload.
    let fresh = kind == Kind::Github || offset.unsigned_abs() <= TOLERANCE_SECS;
    match request.verify(&headers, now) {
        Ok(()) => assert!(fresh, "accepted a timestamp {offset} s from now"),
        Err(e) if fresh => assert!(!e.is_auth_failure(), "a genuine request was refused: {e}"),
        Err(e) => assert!(
            matches!(e.code(), "stale_timestamp" | "future_timestamp"),
            "a request signed {offset} s from now was refused as {e}"
        ),
    }

    // 2. One body byte changed, with the genuine headers.
    if !request.body.is_empty() {
        let choice = number_or(input.params[5], 0);
        let at = (choice >> 8) as usize % request.body.len();
        request.body[at] ^= (choice as u8).max(1);
        assert_bad_signature(request.verify(&headers, now), "a changed body");
        request.body[at] ^= (choice as u8).max(1);
    }

    // 3. Signed with another secret: one more byte changes the HMAC key whatever its length
    //    (a trailing zero byte would not: HMAC pads short keys with zeros).
    let genuine_key = std::mem::replace(&mut request.key, [secret.as_bytes(), b"x"].concat());
    let forged = request.headers(&input);
    request.key = genuine_key;
    assert_bad_signature(request.verify(&forged, now), "another secret");

    // 4. The signed timestamp moved, keeping the signature.
    if kind != Kind::Github {
        let moved_at = signed_at.wrapping_add(1).to_string();
        let mut moved = headers.clone();
        let (name, value) = match kind {
            Kind::Slack => ("x-slack-request-timestamp", moved_at.clone()),
            Kind::Standard => ("webhook-timestamp", moved_at.clone()),
            _ => {
                let signature = headers["stripe-signature"].to_str().expect("set above as ASCII");
                let v1 = signature.split_once(",v1=").expect("set above with v1").1;
                ("stripe-signature", format!("t={moved_at},v1={v1}"))
            }
        };
        moved.insert(name, HeaderValue::from_str(&value).expect("digits and hex"));
        assert_bad_signature(request.verify(&moved, now), "a moved timestamp");
    }
}

/// What eddy.toml holds for a provider signing with `key`: Standard Webhooks secrets are
/// base64 with a `whsec_` prefix; the others are used as the bytes of the text.
fn configured_secret(kind: Kind, key: &[u8]) -> String {
    match kind {
        Kind::Standard => format!("whsec_{}", BASE64.encode(key)),
        _ => String::from_utf8(key.to_vec()).expect("the secret came from a str"),
    }
}

fn assert_bad_signature(result: Result<(), WebhookError>, what: &str) {
    match result {
        Err(e) if e.code() == "bad_signature" => {}
        other => panic!("{what} was not refused as a bad signature: {other:?}"),
    }
}
