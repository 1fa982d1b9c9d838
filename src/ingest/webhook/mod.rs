//! Verification of inbound third-party webhooks: GitHub, Slack, Stripe and Standard Webhooks.
//! Pure: the caller hands over the headers, the raw body bytes and the clock.
//!
//! Each signature is checked over the exact bytes received and before the body is parsed,
//! so nothing a sender wrote is interpreted until it is known to be authentic.

mod github;
mod slack;
mod standard;
mod stripe;

use axum::http::HeaderMap;
use ring::hmac;
use serde_json::Value;

pub use crate::provider::Kind;

/// What a verified request is.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// An event to store: `delivery_id` is the provider's id for deduplicating redeliveries.
    Event {
        delivery_id: String,
        kind: String,
        data: serde_json::Value,
    },
    /// Slack's `url_verification` handshake: answer with this challenge, store nothing.
    Challenge(String),
}

/// How far a signed timestamp may be from now, either way, in seconds.
pub const TOLERANCE_SECS: u64 = 300;

/// Most signatures one header may carry. Each costs an HMAC over the whole body, so an
/// unbounded list would let one request buy unbounded CPU. Providers send one, or two
/// while a secret is being rotated.
const MAX_SIGNATURES: usize = 8;

/// Checks the signature over the raw `body` bytes, then reads the event.
/// `now_secs` is unix seconds (injected for tests).
pub fn verify(
    kind: Kind,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<Inbound, WebhookError> {
    // An empty HMAC key is valid to the algorithm, so anyone could sign with it.
    if secret.is_empty() {
        return Err(WebhookError::BadSecret("the configured secret is empty"));
    }
    match kind {
        Kind::Github => github::verify(secret, headers, body),
        Kind::Slack => slack::verify(secret, headers, body, now_secs),
        Kind::Stripe => stripe::verify(secret, headers, body, now_secs),
        Kind::Standard => standard::verify(secret, headers, body, now_secs),
    }
}

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("header {0} is missing")]
    MissingSignature(&'static str),
    #[error("header {header} holds no {scheme} signature")]
    NoSignatureScheme { header: &'static str, scheme: &'static str },
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("header {header} is malformed: {reason}")]
    MalformedHeader { header: &'static str, reason: &'static str },
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("only X-Hub-Signature (HMAC-SHA1) was sent; SHA-1 is refused and X-Hub-Signature-256 is required")]
    Sha1Only,
    #[error("the timestamp is {age} s old; at most {max} s is accepted", max = TOLERANCE_SECS)]
    StaleTimestamp { age: u64 },
    #[error("the timestamp is {ahead} s in the future; at most {max} s is accepted", max = TOLERANCE_SECS)]
    FutureTimestamp { ahead: u64 },
    #[error("{0}")]
    BadSecret(&'static str),
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the event type is unknown: {0}")]
    NoEventType(&'static str),
    #[error("the delivery id is unknown: {0}")]
    NoDeliveryId(&'static str),
    #[error("{0}")]
    InvalidPayload(&'static str),
    #[error("{0}")]
    Unsupported(String),
}

impl WebhookError {
    /// true when the request failed authentication (answered 401), false when it was
    /// authentic but unusable (answered 400).
    pub fn is_auth_failure(&self) -> bool {
        use WebhookError::*;
        match self {
            MissingSignature(_) | NoSignatureScheme { .. } | MissingHeader(_) | MalformedHeader { .. } => true,
            BadSignature | Sha1Only | StaleTimestamp { .. } | FutureTimestamp { .. } => true,
            // A bad secret is the server's own configuration, not the sender's fault.
            BadSecret(_) | InvalidJson(_) | NoEventType(_) | NoDeliveryId(_) => false,
            InvalidPayload(_) | Unsupported(_) => false,
        }
    }

    /// short machine code, e.g. "missing_signature", "bad_signature", "stale_timestamp",
    /// "sha1_only", "invalid_json", "no_event_type", "bad_secret"
    pub fn code(&self) -> &'static str {
        use WebhookError::*;
        match self {
            MissingSignature(_) | NoSignatureScheme { .. } => "missing_signature",
            MissingHeader(_) => "missing_header",
            MalformedHeader { .. } => "malformed_header",
            BadSignature => "bad_signature",
            Sha1Only => "sha1_only",
            StaleTimestamp { .. } => "stale_timestamp",
            FutureTimestamp { .. } => "future_timestamp",
            BadSecret(_) => "bad_secret",
            InvalidJson(_) => "invalid_json",
            NoEventType(_) => "no_event_type",
            NoDeliveryId(_) => "no_delivery_id",
            InvalidPayload(_) => "invalid_payload",
            Unsupported(_) => "unsupported_payload",
        }
    }

    pub(crate) fn malformed(header: &'static str, reason: &'static str) -> Self {
        WebhookError::MalformedHeader { header, reason }
    }
}

/// A header's value as trimmed text; `None` when absent or blank. A value that is not
/// visible ASCII is refused rather than decoded lossily: no provider sends one.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, WebhookError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| WebhookError::malformed(name, "it is not visible ASCII text"))?;
    let text = text.trim();
    Ok((!text.is_empty()).then_some(text))
}

/// Unix seconds written as plain digits. `str::parse` alone would also take a leading `+`.
pub(crate) fn parse_timestamp(raw: &str, header: &'static str) -> Result<u64, WebhookError> {
    let malformed = || WebhookError::malformed(header, "the timestamp is not a whole number of unix seconds");
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    raw.parse().map_err(|_| malformed())
}

/// Refuses a timestamp more than [`TOLERANCE_SECS`] from now either way: an old one is a
/// likely replay, and a far-future one would stay replayable long after it arrived.
pub(crate) fn check_fresh(timestamp: u64, now: u64) -> Result<(), WebhookError> {
    match now.checked_sub(timestamp) {
        Some(age) if age > TOLERANCE_SECS => Err(WebhookError::StaleTimestamp { age }),
        None if timestamp - now > TOLERANCE_SECS => Err(WebhookError::FutureTimestamp { ahead: timestamp - now }),
        _ => Ok(()),
    }
}

/// Hex digits (either case) to bytes; `None` for an odd length or a non-hex character.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |digit: u8| (digit as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// Decodes the signatures a header offers for the one scheme accepted. An undecodable
/// entry becomes an empty tag, which never matches, so a garbled entry cannot hide a good one.
pub(crate) fn decode_candidates<'a>(
    header: &'static str,
    scheme: &'static str,
    candidates: impl Iterator<Item = &'a str>,
    decode: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, WebhookError> {
    let tags: Vec<Vec<u8>> = candidates
        .take(MAX_SIGNATURES + 1)
        .map(|c| decode(c).unwrap_or_default())
        .collect();
    if tags.is_empty() {
        return Err(WebhookError::NoSignatureScheme { header, scheme });
    }
    if tags.len() > MAX_SIGNATURES {
        return Err(WebhookError::malformed(
            header,
            "it holds more signatures than any provider sends",
        ));
    }
    Ok(tags)
}

/// Succeeds when any of `tags` is HMAC-SHA256(key, message). ring compares in constant
/// time, and every candidate is tried (`|`, not `||`), so timing reveals no partial match.
pub(crate) fn check_tags(key: &[u8], message: &[u8], tags: &[Vec<u8>]) -> Result<(), WebhookError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let matched = tags
        .iter()
        .fold(false, |found, tag| hmac::verify(&key, message, tag).is_ok() | found);
    matched.then_some(()).ok_or(WebhookError::BadSignature)
}

pub(crate) fn parse_json(body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::InvalidJson(e.to_string()))
}

/// A non-empty string member of a JSON object.
pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str().filter(|s| !s.is_empty())
}

#[cfg(test)]
pub(crate) mod testing {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use ring::hmac;

    /// Headers from raw bytes, so tests can send values no well-behaved client would.
    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
        }
        map
    }

    pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::headers;
    use super::*;

    #[test]
    fn kind_names_match_serde() {
        for kind in [Kind::Github, Kind::Slack, Kind::Stripe, Kind::Standard] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
        }
        assert!(serde_json::from_str::<Kind>("\"GitHub\"").is_err());
    }

    #[test]
    fn empty_secret_is_a_configuration_error_for_every_kind() {
        for kind in [Kind::Github, Kind::Slack, Kind::Stripe, Kind::Standard] {
            let err = verify(kind, "", &HeaderMap::new(), b"{}", 0).unwrap_err();
            assert_eq!(err.code(), "bad_secret");
            assert!(!err.is_auth_failure());
        }
    }

    #[test]
    fn freshness_is_inclusive_at_the_tolerance_both_ways() {
        assert!(check_fresh(1000, 1300).is_ok() && check_fresh(1300, 1000).is_ok());
        let stale = check_fresh(1000, 1301).unwrap_err().to_string();
        assert_eq!(stale, "the timestamp is 301 s old; at most 300 s is accepted");
        let future = check_fresh(1301, 1000).unwrap_err().to_string();
        assert_eq!(
            future,
            "the timestamp is 301 s in the future; at most 300 s is accepted"
        );
        let (ahead, old) = (check_fresh(u64::MAX, 0), check_fresh(0, u64::MAX));
        assert!(matches!(ahead, Err(WebhookError::FutureTimestamp { ahead: u64::MAX })));
        assert!(matches!(old, Err(WebhookError::StaleTimestamp { age: u64::MAX })));
    }

    #[test]
    fn timestamps_must_be_plain_digits() {
        assert_eq!(parse_timestamp("1531420618", "t").unwrap(), 1531420618);
        assert_eq!(parse_timestamp("18446744073709551615", "t").unwrap(), u64::MAX);
        // Empty, signed, scientific, spaced, one past u64::MAX, and far past it.
        let bad = "|+5|-5|1e9|12 3|18446744073709551616|99999999999999999999999999";
        for raw in bad.split('|') {
            let err = parse_timestamp(raw, "t").unwrap_err();
            assert_eq!(err.code(), "malformed_header", "{raw}");
        }
    }

    #[test]
    fn hex_decoding_refuses_odd_lengths_and_non_hex() {
        assert_eq!(decode_hex("00ffA0").unwrap(), vec![0x00, 0xff, 0xa0]);
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
        for bad in ["abc", "zz", "0g", "+1", "\u{e9}"] {
            assert_eq!(decode_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_reads_trimmed_ascii_case_insensitively() {
        let map = headers(&[("x-a", "  value "), ("x-blank", "  "), ("x-bin", "caf\u{e9}")]);
        assert_eq!(header(&map, "X-A").unwrap(), Some("value"));
        assert_eq!(header(&map, "x-blank").unwrap(), None);
        assert_eq!(header(&map, "x-absent").unwrap(), None);
        assert_eq!(header(&map, "x-bin").unwrap_err().code(), "malformed_header");
    }

    #[test]
    fn up_to_eight_signatures_are_read_and_a_ninth_is_refused() {
        let read = |n: usize| decode_candidates("h", "v1", std::iter::repeat_n("0a", n), decode_hex);
        assert_eq!(read(MAX_SIGNATURES).unwrap(), vec![vec![0x0a]; MAX_SIGNATURES]);
        let err = read(MAX_SIGNATURES + 1).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
        assert_eq!(read(0).unwrap_err().code(), "missing_signature");
    }

    #[test]
    fn any_matching_tag_passes_even_when_several_match() {
        let (key, message) = (b"key".as_slice(), b"message".as_slice());
        let good = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
            .as_ref()
            .to_vec();
        let bad = vec![0; good.len()];
        for tags in [
            vec![good.clone()],
            vec![bad.clone(), good.clone()],
            vec![good.clone(), good.clone()],
        ] {
            assert!(check_tags(key, message, &tags).is_ok(), "{} tags", tags.len());
        }
        let err = check_tags(key, message, &[bad.clone(), bad]).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }
}
