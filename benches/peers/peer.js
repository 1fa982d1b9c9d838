// What the Deno and Node.js servers share: eddy's `POST /events` contract, minus durability and
// retries. The body is parsed and validated, each event gets eddy's defaults, the handler runs
// on it before the answer, and the answer is eddy's `202 {"ids": [...]}`.
import handler from "./handler.js";

const SOURCE = "eddy/peers";
const HANDLER = "bench.call";

/** `ctx.state` as eddy offers it (async get/set/delete/list, JSON values), kept in a Map. */
class MemoryState {
  #values = new Map();

  async get(key) {
    const text = this.#values.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  async set(key, value) {
    this.#values.set(key, JSON.stringify(value));
  }

  async delete(key) {
    return this.#values.delete(key);
  }

  async list({ prefix = "", limit = 1000 } = {}) {
    const keys = [...this.#values.keys()].filter((k) => k.startsWith(prefix)).sort();
    return keys.slice(0, Math.min(limit, 1000)).map((key) => ({ key, value: JSON.parse(this.#values.get(key)) }));
  }
}

const state = new MemoryState();

function toEvent(input) {
  if (typeof input !== "object" || input === null || typeof input.type !== "string" || input.type === "") {
    return null;
  }
  return {
    id: input.id ?? crypto.randomUUID(),
    type: input.type,
    source: input.source ?? SOURCE,
    time: input.time ?? new Date().toISOString(),
    ...(input.subject === undefined ? {} : { subject: input.subject }),
    data: input.data ?? null,
  };
}

function answer(status, value) {
  return { status, body: JSON.stringify(value) };
}

async function run(event) {
  const deliveryId = crypto.randomUUID();
  const ctx = {
    handler: HANDLER,
    deliveryId,
    attempt: 1,
    secrets: {},
    state,
    idempotencyKey: `${event.id}:${HANDLER}`,
  };
  await handler(event, ctx);
}

/** Handles one `POST /events` body; resolves to `{ status, body }`. */
export async function accept(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return answer(400, { error: "malformed_json", detail: String(e.message) });
  }
  const events = (Array.isArray(parsed) ? parsed : [parsed]).map(toEvent);
  if (events.some((e) => e === null)) {
    return answer(422, { error: "invalid_event", detail: "every event needs a type" });
  }
  try {
    for (const event of events) await run(event);
  } catch (e) {
    return answer(500, { error: "handler_failed", detail: String(e?.message ?? e) });
  }
  return answer(202, { ids: events.map((e) => e.id) });
}
