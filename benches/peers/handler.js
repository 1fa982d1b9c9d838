// The peers benchmark workload, written once as an eddy handler and served unchanged by eddy,
// Deno and Node.js: post the event to a (fake) API, then count it in the handler's state.
export const config = { allowNet: ["127.0.0.1"] };

export default async function (event, ctx) {
  const res = await fetch(event.data.url, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": ctx.idempotencyKey },
    body: JSON.stringify({ event: event.id, order: event.data.order, items: event.data.items }),
  });
  if (!res.ok) throw new Error(`api answered ${res.status}`);
  await res.json();
  const seen = (await ctx.state.get("events")) ?? 0;
  await ctx.state.set("events", seen + 1);
}
