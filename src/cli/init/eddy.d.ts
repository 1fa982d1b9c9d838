// The types of eddy's handler API, for editors; eddy itself does not check them. `eddy types`
// writes this file again (after an upgrade of eddy, say), and `eddy init` writes it with a new
// project. In a handler written in JavaScript, with `// @ts-check` or `checkJs` in jsconfig.json:
//
//   /** @type {eddy.Config} */
//   export const config = { allowNet: ["api.crm.example"] };
//
//   /** @param {eddy.Event<{ email: string }>} event @param {eddy.Context} ctx */
//   export default async function (event, ctx) { ... }

declare namespace eddy {
  /** An event, with the CloudEvents attribute names. */
  interface Event<Data = unknown> {
    id: string;
    /** Dot-separated, like `accounts.patch`. */
    type: string;
    source: string;
    /** RFC 3339. */
    time: string;
    subject?: string;
    data: Data;
  }

  /** `ctx.state`: durable key/value storage private to the handler, JSON values. */
  interface State {
    /** The value under `key`, or `undefined`. */
    get<T = unknown>(key: string): Promise<T | undefined>;
    /** Rejects with a `DOMException` named `QuotaExceededError` past the operator's quota. */
    set(key: string, value: unknown): Promise<void>;
    /** Whether the key existed. */
    delete(key: string): Promise<boolean>;
    /** Entries in key order; `limit` at most 1000 (default 100). */
    list<T = unknown>(options?: { prefix?: string; limit?: number }): Promise<Array<{ key: string; value: T }>>;
  }

  /** The second argument of a handler. */
  interface Context {
    /** The handler's id (its path under the handlers folder, without `.js`). */
    handler: string;
    deliveryId: string;
    /** 1 for the first attempt. */
    attempt: number;
    /** The same for every attempt of a delivery of one version of the event. */
    idempotencyKey: string;
    /** 1, then one more at each edit of the event's data. */
    eventVersion: number;
    /** Exactly the secrets `config.secrets` names. */
    secrets: Readonly<Record<string, string>>;
    state: State;
    /**
     * Runs `fn` once per delivery: its JSON result is recorded, and a retry or a replay returns
     * it without running `fn` again. Names are unique per delivery. The result comes back as
     * JSON carries it (a `Date` as a string, `undefined` as `null`).
     */
    step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  }

  /** A handler: `export default` one. Returning succeeds; throwing fails the attempt. */
  type Handler<Data = unknown> = (event: Event<Data>, ctx: Context) => void | Promise<void>;

  /** `export const config`. Unknown keys are load errors. */
  interface Config {
    /** Secrets exposed as `ctx.secrets`, each granted in eddy.toml's `[secrets] allow`. */
    secrets?: string[];
    /** Hosts `fetch` may reach: `api.example.com`, `*.example.com`, `host:port`. */
    allowNet?: string[];
    /** Wall clock per invocation (default 30 s). */
    timeoutMs?: number;
    /** CPU time per invocation (default 10 s). */
    cpuLimitMs?: number;
    /** Deliveries running at once (default `[delivery] handler_concurrency`). */
    concurrency?: number;
    /** Delays before the 2nd, 3rd, ... attempt, like `["5s", "1m"]`. */
    retry?: { schedule: string[] };
    /** Where each event's order key is: `subject`, `source`, `type` or `data.<path>`. */
    orderBy?: string;
    /** What a dead ordered delivery does to its key (default `"block"`). */
    onDead?: "block" | "continue";
  }

  /** `export const on`: the event type patterns the handler takes (`*` one segment, a final `**` more). */
  type On = string | string[];
}

/** Thrown by a handler: the event will never succeed, do not retry. */
declare class NonRetryableError extends Error {
  constructor(message?: string, options?: ErrorOptions);
}

/** Thrown by a handler: retry, but not before `delayMs` milliseconds. */
declare class RetryAfterError extends Error {
  constructor(message: string, delayMs: number, options?: ErrorOptions);
  readonly delayMs: number;
}
