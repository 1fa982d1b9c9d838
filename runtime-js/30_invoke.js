// Runs invocations: builds `event` and `ctx`, calls the handler, and reports how it ended
// through op_eddy_invocation_done, so the host never has to interpret JS exceptions.
import { core, primordials } from "ext:core/mod.js";
import { beginInvocation, endInvocation } from "ext:eddy/28_timers.js";

const {
  DateNow,
  Error,
  JSONParse,
  JSONStringify,
  NumberIsFinite,
  ObjectFreeze,
  ObjectKeys,
  ObjectPrototypeIsPrototypeOf,
  PromisePrototypeThen,
  SafeSet,
  SetPrototypeAdd,
  SetPrototypeHas,
  String,
  TypeError,
} = primordials;
const {
  op_eddy_invocation_done,
  op_eddy_state_delete,
  op_eddy_state_get,
  op_eddy_state_list,
  op_eddy_state_set,
  op_eddy_step_check,
  op_eddy_step_failed,
  op_eddy_step_recall,
  op_eddy_step_ran,
} = core.ops;
const { DOMException } = core.loadExtScript("ext:deno_web/01_dom_exception.js");

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

const _invocation = Symbol("invocation");

/**
 * `ctx.state`. Promise-returning, so a future remote store keeps the same API. The
 * invocation id tells the host which invocation wrote, and so must wait for a flush.
 */
class HandlerState {
  constructor(invocation) {
    this[_invocation] = invocation;
    ObjectFreeze(this);
  }
  async get(key) {
    const raw = await op_eddy_state_get(checkKey(key));
    return raw === null ? undefined : JSONParse(raw);
  }
  async set(key, value) {
    const json = JSONStringify(value);
    if (json === undefined) {
      throw new TypeError("ctx.state.set: value must be JSON-serialisable");
    }
    // A refusal by the operator's quota comes back as its message: it names the limit,
    // the usage and the ceiling, and nothing was written.
    const refused = await op_eddy_state_set(this[_invocation], checkKey(key), json);
    if (refused !== "") throw new DOMException(refused, "QuotaExceededError");
  }
  async delete(key) {
    return await op_eddy_state_delete(this[_invocation], checkKey(key));
  }
  async list(options = {}) {
    const prefix = options?.prefix ?? "";
    const limit = options?.limit ?? 100;
    if (typeof prefix !== "string") throw new TypeError("ctx.state.list: prefix must be a string");
    if (typeof limit !== "number" || !(limit >= 1)) {
      throw new TypeError("ctx.state.list: limit must be a number >= 1");
    }
    return JSONParse(await op_eddy_state_list(prefix, limit > 1000 ? 1000 : limit));
  }
}
ObjectFreeze(HandlerState.prototype);

/**
 * `ctx.step(name, fn)` of invocation `id`: returns the result an earlier attempt of the
 * delivery recorded under `name`, or runs `fn` and records its result. Either way the result
 * comes back as JSON carries it, so a handler sees the same value whether the step ran or was
 * recalled.
 */
function stepper(id) {
  // Made at the first step: most invocations take none, and they are the hot path.
  let used = null;
  return async function step(name, fn) {
    if (typeof name !== "string") throw new TypeError("ctx.step: the name must be a string");
    const shown = JSONStringify(name);
    if (typeof fn !== "function") {
      throw new TypeError(`ctx.step(${shown}): the second argument must be a function`);
    }
    op_eddy_step_check(name);
    used ??= new SafeSet();
    if (SetPrototypeHas(used, name)) {
      throw new TypeError(`ctx.step(${shown}): this name was used already in this delivery; step names are unique`);
    }
    SetPrototypeAdd(used, name);
    const recalled = op_eddy_step_recall(id, name);
    if (recalled !== null) return JSONParse(recalled);
    const started = DateNow();
    let value;
    try {
      value = await fn();
    } catch (error) {
      op_eddy_step_failed(id, name, describeOne(error).message, DateNow() - started);
      throw error;
    }
    const json = value === undefined ? "null" : JSONStringify(value);
    if (json === undefined) {
      throw new TypeError(`ctx.step(${shown}): its result must be JSON-serialisable`);
    }
    return JSONParse(op_eddy_step_ran(id, name, json, DateNow() - started));
  };
}

// How much of a thrown value is described. The host bounds every string and count again
// (after redacting secrets); these only keep the description from walking a huge object.
const MAX_CAUSES = 9;
const MAX_PROPERTIES = 17;
const DESCRIBED = { __proto__: null, name: true, message: true, stack: true, cause: true, delayMs: true };

/** A string for any value: JSON when it has one, else String(); never throws. */
function text(value) {
  try {
    if (typeof value === "string") return value;
    const json = JSONStringify(value);
    return json === undefined ? String(value) : json;
  } catch {
    try {
      return String(value);
    } catch {
      return "value could not be described";
    }
  }
}

/** `{ name, message, stack }` of one thrown value or cause. */
function describeOne(value) {
  if (value === null || typeof value !== "object") {
    return { name: "Error", message: text(value), stack: null };
  }
  let name = "Error";
  let message = "";
  let stack = null;
  try {
    name = String(value.name ?? "Error");
  } catch { /* a throwing getter leaves the default */ }
  try {
    message = String(value.message ?? "");
  } catch { /* as above */ }
  try {
    stack = value.stack === undefined ? null : String(value.stack);
  } catch { /* as above */ }
  return { name, message, stack };
}

/** The `cause` chain below `error`, outermost first. */
function describeCauses(error) {
  const causes = [];
  let current = error;
  while (causes.length < MAX_CAUSES) {
    let next;
    try {
      if (current === null || typeof current !== "object" || !("cause" in current)) break;
      next = current.cause;
    } catch {
      break;
    }
    causes.push(describeOne(next));
    current = next;
  }
  return causes;
}

/** Own enumerable properties besides the standard ones (`code`, `status`, ...), as text. */
function describeProperties(error) {
  const properties = {};
  try {
    const keys = ObjectKeys(error);
    let kept = 0;
    for (let i = 0; i < keys.length && kept < MAX_PROPERTIES; i++) {
      const key = keys[i];
      if (DESCRIBED[key]) continue;
      properties[key] = text(error[key]);
      kept++;
    }
  } catch { /* what was read so far is kept */ }
  return properties;
}

/** The `code` the fetch op gives a refusal by the network policy. */
const NETWORK_POLICY = "ERR_NETWORK_POLICY";

/**
 * Whether `error`, or an error in its `cause` chain, is a refusal by the network policy: it
 * would be refused the same way on every retry.
 */
function isPolicyRefusal(error) {
  let current = error;
  for (let depth = 0; depth <= MAX_CAUSES; depth++) {
    try {
      if (current === null || typeof current !== "object") return false;
      if (current.code === NETWORK_POLICY) return true;
      current = current.cause;
    } catch {
      return false;
    }
  }
  return false;
}

function describeError(error) {
  try {
    const { name, message, stack } = describeOne(error);
    let kind = "error";
    let retryAfterMs = null;
    if (ObjectPrototypeIsPrototypeOf(NonRetryableError.prototype, error) || isPolicyRefusal(error)) {
      kind = "non_retryable";
    } else if (ObjectPrototypeIsPrototypeOf(RetryAfterError.prototype, error)) {
      kind = "retry_after";
      retryAfterMs = error.delayMs;
    }
    const isObject = error !== null && typeof error === "object";
    return {
      kind,
      retryAfterMs,
      name,
      message,
      stack,
      causes: describeCauses(error),
      properties: isObject ? describeProperties(error) : {},
    };
  } catch {
    return { kind: "error", retryAfterMs: null, name: "Error", message: "thrown value could not be described", stack: null };
  }
}

// Set once per isolate by `configure`, after the handler's config passed validation.
let handlerFn = null;
let handlerName = "";
let secrets = ObjectFreeze({});

/** Checks the module's exports once at load; returns `{ config, on }` as JSON. */
function inspectModule(namespace) {
  if (typeof namespace.default !== "function") {
    throw new TypeError("a handler must `export default` a function (event, ctx)");
  }
  const config = namespace.config ?? {};
  if (config === null || typeof config !== "object") {
    throw new TypeError("`export const config` must be an object");
  }
  handlerFn = namespace.default;
  return JSONStringify({ config, on: namespace.on ?? null }, keepNonFinite);
}

// JSON has no Infinity or NaN (JSONStringify writes null, which would read as "not set"):
// they go as strings so that the host refuses them by name.
function keepNonFinite(_key, value) {
  return typeof value === "number" && !NumberIsFinite(value) ? String(value) : value;
}

/** Hands the handler its name and granted secrets. */
function configure(name, grantedSecrets) {
  handlerName = name;
  secrets = ObjectFreeze(grantedSecrets);
}

// An invocation's timers end with it, before anything else can run (the host ends its
// fetches when it collects the report).
function succeeded(id) {
  endInvocation(id);
  op_eddy_invocation_done(id, "");
}

function failed(id, error) {
  endInvocation(id);
  let json;
  try {
    json = JSONStringify(describeError(error));
  } catch {
    // Too large to become one string: the handler still failed.
    json = JSONStringify({ kind: "error", retryAfterMs: null, name: "Error", message: "thrown value could not be described", stack: null });
  }
  op_eddy_invocation_done(id, json);
}

async function run(event, ctx) {
  await handlerFn(event, ctx);
}

/**
 * Starts invocation `id`; it ends by calling op_eddy_invocation_done with "" for success
 * or the JSON description of the failure.
 */
function invoke(id, eventJson, deliveryId, attempt, idempotencyKey, eventVersion) {
  const previous = core.getAsyncContext();
  beginInvocation(id);
  core.setAsyncContext(id);
  try {
    const event = JSONParse(eventJson);
    const ctx = ObjectFreeze({
      handler: handlerName,
      deliveryId,
      attempt,
      idempotencyKey,
      eventVersion,
      secrets,
      state: new HandlerState(id),
      step: stepper(id),
    });
    PromisePrototypeThen(run(event, ctx), () => succeeded(id), (error) => failed(id, error));
  } finally {
    core.setAsyncContext(previous);
  }
}

export { configure, inspectModule, invoke, NonRetryableError, RetryAfterError };
