// Sends a contact's change to the CRM. The fake CRM of the browser test refuses until the
// test "fixes" it, so deliveries die first and are replayed from the dashboard.
export const config = {
  secrets: ["CRM_URL"],
  allowNet: ["127.0.0.1"],
  retry: { schedule: ["50ms"] },
};

export default async function (event, ctx) {
  console.log(`syncing contact ${event.data.email}`);
  const res = await fetch(`${ctx.secrets.CRM_URL}/contacts/${encodeURIComponent(event.data.email)}`, {
    method: "PUT",
    headers: { "content-type": "application/json", "idempotency-key": ctx.idempotencyKey },
    body: JSON.stringify(event.data),
  });
  if (!res.ok) throw new Error(`the CRM answered ${res.status}`);
}
