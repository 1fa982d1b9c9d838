//! The GitHub side of a webhook: a sender that signs payloads as GitHub does.

use ring::hmac;
use serde_json::Value;

use super::local_client;

/// A fresh `X-GitHub-Delivery` value (GitHub uses a GUID).
pub fn github_delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// POSTs `payload` to `url` as GitHub delivers webhook `event`: the headers GitHub sends,
/// and both signatures (`X-Hub-Signature-256`, and the legacy SHA-1 one) over exactly the
/// bytes sent. Returns the status and the JSON answer (null when it is not JSON).
pub async fn send_github_webhook(
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    payload: &Value,
) -> anyhow::Result<(u16, Value)> {
    let body = serde_json::to_vec(payload)?;
    let sign = |algorithm| hex(hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), &body).as_ref());
    let response = local_client()
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/7e5b2f1")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "482615901")
        .header("x-github-hook-installation-target-type", "repository")
        .header("x-github-hook-installation-target-id", "700148813")
        .header(
            "x-hub-signature",
            format!("sha1={}", sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY)),
        )
        .header("x-hub-signature-256", format!("sha256={}", sign(hmac::HMAC_SHA256)))
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok((status, answer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
