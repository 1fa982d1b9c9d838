// Builds the global scope handlers see: web-standard APIs only, nothing of the host.
// Evaluated once when the startup snapshot is made.
import { core, primordials } from "ext:core/mod.js";
import { console } from "ext:eddy/10_console.js";
import { Headers } from "ext:eddy/20_headers.js";
import { loadStreams } from "ext:eddy/21_body.js";
import { Request } from "ext:eddy/22_request.js";
import { Response } from "ext:eddy/23_response.js";
import { fetch } from "ext:eddy/26_fetch.js";
import { clearInterval, clearTimeout, endInvocation, setInterval, setTimeout } from "ext:eddy/28_timers.js";
import { configure, inspectModule, invoke, NonRetryableError, RetryAfterError } from "ext:eddy/30_invoke.js";
import { crypto, CryptoKey, SubtleCrypto } from "ext:eddy/40_crypto.js";

const {
  ArrayBuffer: IntrinsicArrayBuffer,
  ArrayBufferPrototype,
  ObjectDefineProperty,
  ObjectFreeze,
  ObjectGetOwnPropertyDescriptor,
  RangeError,
  ReflectConstruct,
  SymbolSpecies,
  TypeError,
} = primordials;

const url = core.loadExtScript("ext:deno_web/00_url.js");
const domException = core.loadExtScript("ext:deno_web/01_dom_exception.js");
const event = core.loadExtScript("ext:deno_web/02_event.js");
const { structuredClone } = core.loadExtScript("ext:deno_web/02_structured_clone.js");
const abort = core.loadExtScript("ext:deno_web/03_abort_signal.js");
const { atob, btoa } = core.loadExtScript("ext:deno_web/05_base64.js");
const encoding = core.loadExtScript("ext:deno_web/08_text_encoding.js");

// Like browsers: writable, configurable, not enumerable.
function defineData(name, value) {
  ObjectDefineProperty(globalThis, name, {
    __proto__: null,
    value,
    writable: true,
    enumerable: false,
    configurable: true,
  });
}

const globals = {
  AbortController: abort.AbortController,
  AbortSignal: abort.AbortSignal,
  atob,
  btoa,
  clearInterval,
  clearTimeout,
  console,
  crypto,
  CryptoKey,
  DOMException: domException.DOMException,
  Event: event.Event,
  EventTarget: event.EventTarget,
  fetch,
  Headers,
  NonRetryableError,
  // Defined by deno_core as enumerable; browsers have it non-enumerable like the rest.
  queueMicrotask: globalThis.queueMicrotask,
  Request,
  Response,
  RetryAfterError,
  setInterval,
  setTimeout,
  structuredClone,
  SubtleCrypto,
  TextDecoder: encoding.TextDecoder,
  TextEncoder: encoding.TextEncoder,
  URL: url.URL,
  URLSearchParams: url.URLSearchParams,
};
for (const name in globals) {
  defineData(name, globals[name]);
}

// Streams load on first use (see 21_body.js); until then the global is an accessor that
// loads them and then turns itself into a plain data property.
ObjectDefineProperty(globalThis, "ReadableStream", {
  __proto__: null,
  enumerable: false,
  configurable: true,
  get() {
    const value = loadStreams().ReadableStream;
    defineData("ReadableStream", value);
    return value;
  },
  set(value) {
    defineData("ReadableStream", value);
  },
});

// ArrayBuffer memory is counted by the isolate's allocator ([runtime] buffer_limit_mb).
// Resizable and growable buffers and WebAssembly memories are not made by that allocator
// (V8 reserves their pages itself), so handlers cannot create them: ArrayBuffer refuses
// `maxByteLength`, and SharedArrayBuffer and WebAssembly are not there.
function ArrayBuffer(length, options = undefined) {
  if (new.target === undefined) {
    throw new TypeError("Constructor ArrayBuffer requires 'new'");
  }
  if (options !== null && typeof options === "object" && options.maxByteLength !== undefined) {
    throw new RangeError("resizable ArrayBuffers are not available to eddy handlers");
  }
  return ReflectConstruct(IntrinsicArrayBuffer, [length], new.target);
}

function limitBuffers() {
  ObjectDefineProperty(ArrayBuffer, "prototype", {
    __proto__: null,
    value: ArrayBufferPrototype,
    writable: false,
    enumerable: false,
    configurable: false,
  });
  ObjectDefineProperty(ArrayBuffer, "isView", {
    __proto__: null,
    ...ObjectGetOwnPropertyDescriptor(IntrinsicArrayBuffer, "isView"),
  });
  ObjectDefineProperty(ArrayBuffer, SymbolSpecies, {
    __proto__: null,
    ...ObjectGetOwnPropertyDescriptor(IntrinsicArrayBuffer, SymbolSpecies),
  });
  // Buffers lead back to their constructor through the prototype: to this one.
  ObjectDefineProperty(ArrayBufferPrototype, "constructor", {
    __proto__: null,
    value: ArrayBuffer,
    writable: true,
    enumerable: false,
    configurable: true,
  });
  defineData("ArrayBuffer", ArrayBuffer);
  delete globalThis.SharedArrayBuffer;
  delete globalThis.WebAssembly;
}

// Called once per isolate before any handler code runs: removes every door to the host
// and hands the host its entry points.
ObjectDefineProperty(globalThis, "__eddyBootstrap", {
  __proto__: null,
  configurable: true,
  value: () => {
    delete globalThis.Deno;
    delete globalThis.__bootstrap;
    delete globalThis.__eddyBootstrap;
    limitBuffers();
    return ObjectFreeze([invoke, inspectModule, configure, endInvocation]);
  },
});
