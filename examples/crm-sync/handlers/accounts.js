// Keeps the CRM's contacts in step with the accounts of our own API. The eddy proxy in
// front of the API turns each successful write into an event: POST /accounts is
// `accounts.post`, PATCH /accounts/7 is `accounts.patch` with params { id: "7" }, and so on.
//
// Every change is an upsert of the whole contact by external id (the account id), so a
// retry or a replay converges on the same contact instead of making a second one. Changes
// can reach the CRM out of order (a 429 holds one back while a later one goes through), so
// the account's `version` decides which wins, and a deleted account stays deleted.
import { upsertContact } from "./_lib/crm.js";

export const on = "accounts.*";

export const config = {
  secrets: ["CRM_API_URL", "CRM_TOKEN"],
  // The fake CRM of the demo; add your CRM's host, e.g. "api.crm.example".
  allowNet: ["127.0.0.1"],
  // One change at a time, so the version check below never races with itself.
  concurrency: 1,
  // Short first delays keep the demo quick; a 429's Retry-After takes precedence.
  retry: { schedule: ["1s", "2s", "5s", "30s", "2m", "10m", "1h"] },
  timeoutMs: 15_000,
};

export default async function (event, ctx) {
  const change = event.type.slice("accounts.".length); // post, put, patch or delete
  const { params, response } = event.data;
  const id = String(params.id ?? response?.body?.id ?? "");
  if (!id) throw new NonRetryableError(`${event.type} ${event.data.path}: no account id in the path or the answer`);
  const key = `account:${id}`;
  const synced = (await ctx.state.get(key)) ?? {};
  if (synced.deleted) {
    console.log(`account ${id} was deleted; ${event.type} ignored`);
    return;
  }
  // The time of the change, not of the attempt: a retry must send the very same request.
  const fields = change === "delete" ? { status: "deleted", deleted_at: event.time } : contactFields(event, synced);
  if (!fields) return;
  const { contact, replayed } = await upsertContact(ctx.secrets, id, fields, ctx.idempotencyKey);
  await ctx.state.set(key, change === "delete" ? { deleted: true } : { version: fields.source_version });
  const how = replayed ? "answered from the CRM's idempotency store" : `attempt ${ctx.attempt}`;
  console.log(`account ${id} ${change} -> contact ${contact.id} revision ${contact.revision} (${how})`);
}

/** The contact as the account now is, or null when a newer version was already sent. */
function contactFields(event, synced) {
  const account = event.data.response?.body;
  if (!account || typeof account !== "object") {
    throw new NonRetryableError(`${event.type} ${event.data.path}: the answer was not recorded as JSON`);
  }
  if (account.version < synced.version) {
    console.log(`account ${account.id} version ${account.version} is older than ${synced.version}; skipped`);
    return null;
  }
  const { name, email, plan, version } = account;
  return { name, email, plan, status: "active", source_version: version };
}
