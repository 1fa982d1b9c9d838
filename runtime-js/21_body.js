// Copyright the eddy authors. Apache-2.0 license.

// Bodies of Request and Response.
//
// Bodies are always fully buffered: request bodies come from strings and
// buffers, and the host returns whole response bodies (it enforces a size
// cap). A body is therefore kept as bytes, and a ReadableStream is made only
// if user code asks for `.body`.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials, and methods of deno_web classes
// are captured when this module is evaluated (before any user code runs).

import { core, primordials } from "ext:core/mod.js";

const {
  DataViewPrototypeGetBuffer,
  DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset,
  FunctionPrototypeCall,
  JSONParse,
  ObjectDefineProperties,
  ObjectPrototypeIsPrototypeOf,
  ObjectPrototypeToString,
  PromiseReject,
  PromiseResolve,
  Symbol,
  SymbolAsyncIterator,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet,
  Uint8Array,
} = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const { URLSearchParamsPrototype } = core.loadExtScript(
  "ext:deno_web/00_url.js",
);
// deno_web's streams are the largest script of all: kept out of the startup snapshot and
// loaded the first time a body is read as a stream (or `ReadableStream` is touched), so
// isolates that never use streams start faster. Until then no ReadableStream can exist.
let streams = null;
function loadStreams() {
  if (streams === null) streams = core.loadExtScript("ext:deno_web/06_streams.js");
  return streams;
}
const { TextDecoder } = core.loadExtScript("ext:deno_web/08_text_encoding.js");

// Captured now so later tampering with these prototypes cannot reach us.
const searchParamsToString = URLSearchParamsPrototype.toString;
const textDecoderDecode = TextDecoder.prototype.decode;
// A non-streaming UTF-8 decoder keeps no state between calls, so one is
// enough. Its default (ignoreBOM: false) drops a leading UTF-8 BOM and
// replaces invalid sequences, which is the spec's "UTF-8 decode".
const utf8Decoder = new TextDecoder();

// The body slot of both Request and Response, read here by the consumers
// (text() & co.).
const _body = Symbol("body");

// Copies through TypedArray#set: #slice would consult a user-replaceable
// Symbol.species.
function copyBytes(view) {
  const out = new Uint8Array(TypedArrayPrototypeGetByteLength(view));
  TypedArrayPrototypeSet(out, view);
  return out;
}

function utf8Decode(bytes) {
  return FunctionPrototypeCall(textDecoderDecode, utf8Decoder, bytes);
}

// ---------------------------------------------------------------------------
// Bodies

// A body is { bytes, stream, used }. `bytes` holds the content and is never
// handed to user code (clones share it); `stream` exists only once `.body`
// has been read. Once consumed, `used` is set and `bytes` dropped.
function newBody(bytes) {
  return { __proto__: null, bytes, stream: null, used: false };
}

function isBodyUsed(body) {
  if (body === null) return false;
  if (body.used) return true;
  return body.stream !== null && loadStreams().isReadableStreamDisturbed(body.stream);
}

// "unusable" in the spec: disturbed or locked.
function unusableReason(body) {
  if (body === null) return null;
  if (isBodyUsed(body)) return "body already used";
  if (body.stream !== null && loadStreams().isReadableStreamLocked(body.stream)) {
    return "body is locked by a stream reader";
  }
  return null;
}

function noop() {}
// A stream's cancel algorithm must return a promise.
function resolvedNoop() {
  return PromiseResolve(undefined);
}

function bodyStream(body) {
  if (body === null) return null;
  if (body.stream === null) {
    const chunk = body.used ? null : body.bytes;
    // A byte stream, like browsers give, so BYOB readers work too.
    body.stream = loadStreams().createReadableByteStream(
      (controller) => {
        if (chunk !== null && TypedArrayPrototypeGetByteLength(chunk) > 0) {
          // Enqueue transfers the buffer, so hand over a private copy.
          loadStreams().readableByteStreamControllerEnqueue(controller, copyBytes(chunk));
        }
        loadStreams().readableByteStreamControllerClose(controller);
      },
      noop,
      resolvedNoop,
    );
    if (body.used) {
      // Already consumed through text() & co.: present it as a read stream.
      loadStreams().acquireReadableStreamDefaultReader(body.stream);
      loadStreams().readableStreamDisturb(body.stream);
    }
  }
  return body.stream;
}

// Takes the content out of `body` for another Request (the spec's transfer
// of an input Request's body), leaving the source used and its stream, if
// any, locked and cancelled.
function takeBody(body) {
  const bytes = body.bytes;
  body.used = true;
  body.bytes = null;
  if (body.stream !== null) {
    loadStreams().acquireReadableStreamDefaultReader(body.stream);
    loadStreams().readableStreamCancel(body.stream, undefined);
  }
  return bytes;
}

// Resolves to the body's bytes; callers must not mutate or expose them.
// The checks and the marking as used happen synchronously, so a second
// consumer started in the same tick is refused.
async function consumeBody(self, proto, iface, method) {
  webidl.assertBranded(self, proto, iface);
  const body = self[_body];
  if (body === null) return new Uint8Array(0);
  const reason = unusableReason(body);
  if (reason !== null) {
    throw new TypeError(
      `Failed to execute '${method}' on '${iface}': ${reason}`,
    );
  }
  if (body.stream !== null) {
    // Read through the stream so it ends up disturbed, as the spec has it.
    const bytes = await loadStreams().readableStreamCollectIntoUint8Array(body.stream);
    body.used = true;
    body.bytes = null;
    return bytes;
  }
  const bytes = body.bytes;
  body.used = true;
  body.bytes = null;
  return bytes;
}

async function bodyArrayBuffer(self, proto, iface) {
  const bytes = await consumeBody(self, proto, iface, "arrayBuffer");
  return TypedArrayPrototypeGetBuffer(copyBytes(bytes));
}

async function bodyBytes(self, proto, iface) {
  return copyBytes(await consumeBody(self, proto, iface, "bytes"));
}

async function bodyText(self, proto, iface) {
  return utf8Decode(await consumeBody(self, proto, iface, "text"));
}

async function bodyJson(self, proto, iface) {
  return JSONParse(utf8Decode(await consumeBody(self, proto, iface, "json")));
}

function unsupportedBodyMethod(self, proto, iface, method) {
  try {
    webidl.assertBranded(self, proto, iface);
  } catch (err) {
    return PromiseReject(err);
  }
  return PromiseReject(
    new TypeError(
      `Failed to execute '${method}' on '${iface}': not supported in eddy; ` +
        "use text(), json(), arrayBuffer() or bytes()",
    ),
  );
}

function unsupportedBody(kind, prefix) {
  return new TypeError(
    `${prefix}: ${kind} bodies are not supported; use a string, ` +
      "ArrayBuffer, ArrayBufferView or URLSearchParams",
  );
}

// The spec's "extract a body" for the BodyInit types eddy supports. Returns
// { bytes, contentType } with bytes copied, so later changes to the caller's
// buffer do not show through.
function extractBody(value, prefix) {
  if (typeof value === "object" || typeof value === "function") {
    if (streams !== null && ObjectPrototypeIsPrototypeOf(streams.ReadableStreamPrototype, value)) {
      throw unsupportedBody("ReadableStream", prefix);
    }
    if (core.isAnyArrayBuffer(value)) {
      return { bytes: copyBytes(new Uint8Array(value)), contentType: null };
    }
    if (core.isTypedArray(value)) {
      const view = new Uint8Array(
        TypedArrayPrototypeGetBuffer(value),
        TypedArrayPrototypeGetByteOffset(value),
        TypedArrayPrototypeGetByteLength(value),
      );
      return { bytes: copyBytes(view), contentType: null };
    }
    if (core.isDataView(value)) {
      const view = new Uint8Array(
        DataViewPrototypeGetBuffer(value),
        DataViewPrototypeGetByteOffset(value),
        DataViewPrototypeGetByteLength(value),
      );
      return { bytes: copyBytes(view), contentType: null };
    }
    if (ObjectPrototypeIsPrototypeOf(URLSearchParamsPrototype, value)) {
      return {
        bytes: core.encode(FunctionPrototypeCall(searchParamsToString, value)),
        contentType: "application/x-www-form-urlencoded;charset=UTF-8",
      };
    }
    // Blob, File and FormData are not installed in eddy; a look-alike would
    // otherwise be sent as the text "[object Blob]".
    const tag = ObjectPrototypeToString(value);
    if (tag === "[object Blob]" || tag === "[object File]") {
      throw unsupportedBody("Blob", prefix);
    }
    if (tag === "[object FormData]") throw unsupportedBody("FormData", prefix);
    if (value[SymbolAsyncIterator] !== undefined) {
      throw unsupportedBody("Async iterable", prefix);
    }
  }
  // Everything else is a USVString, as in browsers.
  const text = webidl.converters.USVString(value, prefix, "body");
  return { bytes: core.encode(text), contentType: "text/plain;charset=UTF-8" };
}

/**
 * Defines the Body mixin (`body`, `bodyUsed`, `arrayBuffer()`, `bytes()`, `text()`,
 * `json()`, and the unsupported `blob()`/`formData()`) on `prototype`, shared by Request
 * and Response as in the Fetch standard.
 */
function mixinBody(prototype, iface) {
  const method = (value) => ({ __proto__: null, value, writable: true, enumerable: false, configurable: true });
  ObjectDefineProperties(prototype, {
    body: {
      __proto__: null,
      get() {
        webidl.assertBranded(this, prototype, iface);
        return bodyStream(this[_body]);
      },
      enumerable: true,
      configurable: true,
    },
    bodyUsed: {
      __proto__: null,
      get() {
        webidl.assertBranded(this, prototype, iface);
        return isBodyUsed(this[_body]);
      },
      enumerable: true,
      configurable: true,
    },
    arrayBuffer: method(function arrayBuffer() {
      return bodyArrayBuffer(this, prototype, iface);
    }),
    bytes: method(function bytes() {
      return bodyBytes(this, prototype, iface);
    }),
    text: method(function text() {
      return bodyText(this, prototype, iface);
    }),
    json: method(function json() {
      return bodyJson(this, prototype, iface);
    }),
    blob: method(function blob() {
      return unsupportedBodyMethod(this, prototype, iface, "blob");
    }),
    formData: method(function formData() {
      return unsupportedBodyMethod(this, prototype, iface, "formData");
    }),
  });
}

export {
  loadStreams,
  mixinBody,
  _body,
  bodyArrayBuffer,
  bodyBytes,
  bodyJson,
  bodyStream,
  bodyText,
  copyBytes,
  extractBody,
  isBodyUsed,
  newBody,
  takeBody,
  unsupportedBodyMethod,
  unusableReason,
};
