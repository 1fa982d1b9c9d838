// Runs one invocation: builds `event` and `ctx`, calls the handler, and turns whatever
// happens into a plain outcome object, so the host never has to interpret JS exceptions.
import { core, primordials } from "ext:core/mod.js";
import { invocationVar } from "ext:eddy/10_console.js";

const {
  Error,
  JSONParse,
  JSONStringify,
  NumberIsFinite,
  ObjectFreeze,
  ObjectPrototypeIsPrototypeOf,
  PromisePrototypeThen,
  String,
  TypeError,
} = primordials;
const {
  op_eddy_state_delete,
  op_eddy_state_get,
  op_eddy_state_list,
  op_eddy_state_set,
} = core.ops;

/** Thrown by a handler to say: this event will never succeed, do not retry. */
class NonRetryableError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

/** Thrown by a handler to say: retry, but not before `delayMs` milliseconds. */
class RetryAfterError extends Error {
  constructor(message, delayMs, options) {
    super(message, options);
    if (typeof delayMs !== "number" || !NumberIsFinite(delayMs) || delayMs < 0) {
      throw new TypeError("RetryAfterError: delayMs must be a finite number >= 0");
    }
    this.name = "RetryAfterError";
    this.delayMs = delayMs;
  }
}

function checkKey(key) {
  if (typeof key !== "string") {
    throw new TypeError("ctx.state: key must be a string");
  }
  return key;
}

// Promise-returning, so a future remote store keeps the same API. The invocation id lets
// the host know which invocation wrote (and must be flushed before it reports).
function makeState(invocation) {
  return ObjectFreeze({
    async get(key) {
      const raw = op_eddy_state_get(checkKey(key));
      return raw === null ? undefined : JSONParse(raw);
    },
    async set(key, value) {
      const json = JSONStringify(value);
      if (json === undefined) {
        throw new TypeError("ctx.state.set: value must be JSON-serialisable");
      }
      op_eddy_state_set(invocation, checkKey(key), json);
    },
    async delete(key) {
      return op_eddy_state_delete(invocation, checkKey(key));
    },
    async list(options = {}) {
      const prefix = options?.prefix ?? "";
      const limit = options?.limit ?? 100;
      if (typeof prefix !== "string") throw new TypeError("ctx.state.list: prefix must be a string");
      if (typeof limit !== "number" || !(limit >= 1)) {
        throw new TypeError("ctx.state.list: limit must be a number >= 1");
      }
      return JSONParse(op_eddy_state_list(prefix, limit > 1000 ? 1000 : limit));
    },
  });
}

function describeError(error) {
  try {
    if (error !== null && typeof error === "object") {
      let kind = "error";
      let retryAfterMs = null;
      if (ObjectPrototypeIsPrototypeOf(NonRetryableError.prototype, error)) {
        kind = "non_retryable";
      } else if (ObjectPrototypeIsPrototypeOf(RetryAfterError.prototype, error)) {
        kind = "retry_after";
        retryAfterMs = error.delayMs;
      }
      return {
        kind,
        retryAfterMs,
        name: String(error.name ?? "Error"),
        message: String(error.message ?? ""),
        stack: error.stack === undefined ? null : String(error.stack),
      };
    }
    return { kind: "error", retryAfterMs: null, name: "Error", message: String(error), stack: null };
  } catch (e) {
    return { kind: "error", retryAfterMs: null, name: "Error", message: "thrown value could not be described", stack: null };
  }
}

/**
 * Called by the host for each invocation. `info` carries the invocation id and the
 * `ctx` fields; returns a promise of `{ ok: true }` or `{ ok: false, error }`.
 */
function invoke(handler, eventJson, info) {
  const previous = invocationVar.enter(info.invocation);
  try {
    const event = JSONParse(eventJson);
    const ctx = ObjectFreeze({
      handler: info.handler,
      deliveryId: info.deliveryId,
      attempt: info.attempt,
      idempotencyKey: info.idempotencyKey,
      secrets: ObjectFreeze(info.secrets),
      state: makeState(info.invocation),
    });
    const run = async () => await handler(event, ctx);
    return PromisePrototypeThen(
      run(),
      () => ({ ok: true }),
      (error) => ({ ok: false, error: describeError(error) }),
    );
  } finally {
    core.setAsyncContext(previous);
  }
}

/** Checks the module's exports once at load; returns [config as JSON, default export]. */
function inspectModule(namespace) {
  if (typeof namespace.default !== "function") {
    throw new TypeError("a handler must `export default` a function (event, ctx)");
  }
  const config = namespace.config ?? {};
  if (config === null || typeof config !== "object") {
    throw new TypeError("`export const config` must be an object");
  }
  return [JSONStringify(config), namespace.default];
}

export { inspectModule, invoke, NonRetryableError, RetryAfterError };
