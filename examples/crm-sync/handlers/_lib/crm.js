// A client for the CRM's contacts API: one idempotent upsert by external id, with every
// answer sorted into "done", "retry later", "retry now" or "never retry".

// Retry-After is either seconds or an HTTP date; without one, wait half a minute.
function retryAfterMs(response) {
  const value = response.headers.get("retry-after") ?? "";
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 30_000 : Math.max(0, at - Date.now());
}

/**
 * PUT /contacts/{externalId}: creates or updates the contact, so repeating it converges.
 * `idempotencyKey` lets the CRM recognise a repeat of the same request (a retry whose first
 * answer was lost) and answer it without applying it twice.
 */
export async function upsertContact(secrets, externalId, fields, idempotencyKey) {
  const base = secrets.CRM_API_URL.replace(/\/+$/, "");
  const response = await fetch(`${base}/contacts/${encodeURIComponent(externalId)}`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${secrets.CRM_TOKEN}`,
      "content-type": "application/json",
      "idempotency-key": idempotencyKey,
    },
    body: JSON.stringify(fields),
  });
  if (response.status === 429) {
    throw new RetryAfterError(`crm: rate limited on contact ${externalId}`, retryAfterMs(response));
  }
  if ([400, 401, 403, 404, 422].includes(response.status)) {
    // The token or the request itself is wrong: the same request will fail the same way.
    throw new NonRetryableError(`crm refused contact ${externalId}: ${response.status} ${await response.text()}`);
  }
  if (!response.ok) throw new Error(`crm answered ${response.status} for contact ${externalId}`);
  return { contact: await response.json(), replayed: response.headers.get("idempotent-replayed") === "true" };
}
