// Builds the global scope handlers see: web-standard APIs only, nothing of the host.
// Evaluated once when the startup snapshot is made.
import { core, primordials } from "ext:core/mod.js";
import { console } from "ext:eddy/10_console.js";
import { Headers } from "ext:eddy/20_headers.js";
import { Request } from "ext:eddy/22_request.js";
import { Response } from "ext:eddy/23_response.js";
import { fetch } from "ext:eddy/26_fetch.js";
import { inspectModule, invoke, NonRetryableError, RetryAfterError } from "ext:eddy/30_invoke.js";
import { crypto } from "ext:eddy/40_crypto.js";

const { ObjectDefineProperty, ObjectFreeze } = primordials;

const url = core.loadExtScript("ext:deno_web/00_url.js");
const domException = core.loadExtScript("ext:deno_web/01_dom_exception.js");
const event = core.loadExtScript("ext:deno_web/02_event.js");
const { structuredClone } = core.loadExtScript("ext:deno_web/02_structured_clone.js");
const timers = core.loadExtScript("ext:deno_web/02_timers.js");
const abort = core.loadExtScript("ext:deno_web/03_abort_signal.js");
const { atob, btoa } = core.loadExtScript("ext:deno_web/05_base64.js");
const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const encoding = core.loadExtScript("ext:deno_web/08_text_encoding.js");

// Like browsers: writable, configurable, not enumerable.
const globals = {
  AbortController: abort.AbortController,
  AbortSignal: abort.AbortSignal,
  atob,
  btoa,
  clearInterval: timers.clearInterval,
  clearTimeout: timers.clearTimeout,
  console,
  crypto,
  DOMException: domException.DOMException,
  Event: event.Event,
  EventTarget: event.EventTarget,
  fetch,
  Headers,
  NonRetryableError,
  // Defined by deno_core as enumerable; browsers have it non-enumerable like the rest.
  queueMicrotask: globalThis.queueMicrotask,
  ReadableStream: streams.ReadableStream,
  Request,
  Response,
  RetryAfterError,
  setInterval: timers.setInterval,
  setTimeout: timers.setTimeout,
  structuredClone,
  TextDecoder: encoding.TextDecoder,
  TextEncoder: encoding.TextEncoder,
  URL: url.URL,
  URLSearchParams: url.URLSearchParams,
};
for (const name in globals) {
  ObjectDefineProperty(globalThis, name, {
    __proto__: null,
    value: globals[name],
    writable: true,
    enumerable: false,
    configurable: true,
  });
}

// Called once per isolate before any handler code runs: removes every door to the host
// and hands the host its two entry points.
ObjectDefineProperty(globalThis, "__eddyBootstrap", {
  __proto__: null,
  configurable: true,
  value: () => {
    delete globalThis.Deno;
    delete globalThis.__bootstrap;
    delete globalThis.__eddyBootstrap;
    return ObjectFreeze([invoke, inspectModule]);
  },
});
