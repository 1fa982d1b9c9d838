//! Webhook verification on arbitrary requests, for all four kinds: the parsing of
//! `X-Hub-Signature-256`, `X-Slack-Signature`, `Stripe-Signature`, `webhook-signature` and
//! their timestamp headers, then (when a seed carries a valid signature) the payload.
//!
//! Input: three parameter lines, then headers, an empty line and the body:
//! the kind (`github`, `slack`, `stripe`, `standard`; anything else picks one by its length),
//! the clock (unix seconds; default 1700000000) and the secret as in eddy.toml. The seeds
//! carry valid signatures, so mutations of them reach the payload too.
//! Beyond "no panic": a request without a signature header is never accepted, and an
//! accepted one names a delivery id and a type.

use crate::{Input, number_or};
use eddy::ingest::webhook::{Inbound, Kind, verify};

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let input = Input::parse(data, 3);
    let kind = crate::kind(input.params[0]);
    let now = number_or(input.params[1], 1_700_000_000);
    let Some(secret) = input.param_str(2) else {
        return;
    };
    let headers = input.headers();
    let inbound = match verify(kind, secret, &headers, input.body, now) {
        Ok(inbound) => inbound,
        Err(error) => {
            // Every refusal has a code and a message; formatting them must not panic either.
            assert!(!error.code().is_empty() && !error.to_string().is_empty());
            return;
        }
    };
    let signature_header = match kind {
        Kind::Github => "x-hub-signature-256",
        Kind::Slack => "x-slack-signature",
        Kind::Stripe => "stripe-signature",
        Kind::Standard => "webhook-signature",
    };
    assert!(
        headers.contains_key(signature_header),
        "accepted without {signature_header}"
    );
    match inbound {
        Inbound::Event {
            delivery_id,
            kind: event_type,
            ..
        } => {
            assert!(!delivery_id.is_empty() && !event_type.is_empty());
        }
        Inbound::Challenge(challenge) => {
            assert_eq!(kind, Kind::Slack, "only Slack sends a challenge");
            assert!(!challenge.is_empty());
        }
    }
}
