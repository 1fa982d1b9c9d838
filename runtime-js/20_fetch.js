// Copyright the eddy authors. Apache-2.0 license.

// fetch, Headers, Request and Response for eddy handlers.
//
// Bodies are always fully buffered: request bodies come from strings and
// buffers, and the host returns whole response bodies (it enforces a size
// cap). A body is therefore kept as bytes, and a ReadableStream is made only
// if user code asks for `.body`.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials, and getters of deno_web classes
// are captured when this module is evaluated (before any user code runs).

import { core, primordials } from "ext:core/mod.js";
import { invocationVar } from "ext:eddy/10_console.js";

const {
  ArrayIsArray,
  ArrayPrototypePush,
  ArrayPrototypeSort,
  ArrayPrototypeSplice,
  DataViewPrototypeGetBuffer,
  DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset,
  FunctionPrototypeCall,
  JSONParse,
  JSONStringify,
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptor,
  ObjectPrototypeIsPrototypeOf,
  ObjectPrototypeToString,
  Promise,
  PromisePrototypeThen,
  PromiseReject,
  PromiseResolve,
  RangeError,
  SafeArrayIterator,
  StringPrototypeCharCodeAt,
  StringPrototypeIndexOf,
  StringPrototypeSlice,
  StringPrototypeToLowerCase,
  StringPrototypeToUpperCase,
  Symbol,
  SymbolAsyncIterator,
  SymbolFor,
  SymbolIterator,
  TypeError,
  TypeErrorPrototype,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet,
  Uint8Array,
} = primordials;

const { op_eddy_fetch_send, op_eddy_fetch_cancel_handle } = core.ops;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const { URL, URLPrototype, URLSearchParamsPrototype } = core.loadExtScript(
  "ext:deno_web/00_url.js",
);
const {
  AbortSignalPrototype,
  add: abortAdd,
  createDependentAbortSignal,
  newSignal,
  remove: abortRemove,
} = core.loadExtScript("ext:deno_web/03_abort_signal.js");
const {
  acquireReadableStreamDefaultReader,
  createReadableByteStream,
  isReadableStreamDisturbed,
  isReadableStreamLocked,
  readableByteStreamControllerClose,
  readableByteStreamControllerEnqueue,
  readableStreamCancel,
  readableStreamCollectIntoUint8Array,
  readableStreamDisturb,
  ReadableStreamPrototype,
} = core.loadExtScript("ext:deno_web/06_streams.js");
const { TextDecoder } = core.loadExtScript("ext:deno_web/08_text_encoding.js");
const { createFilteredInspectProxy } = core.loadExtScript(
  "ext:deno_web/01_console.js",
);

// Captured now so later tampering with these prototypes cannot reach us.
function getterOf(proto, name) {
  return ObjectGetOwnPropertyDescriptor(proto, name).get;
}
const urlHref = getterOf(URLPrototype, "href");
const urlUsername = getterOf(URLPrototype, "username");
const urlPassword = getterOf(URLPrototype, "password");
const signalAborted = getterOf(AbortSignalPrototype, "aborted");
const signalReason = getterOf(AbortSignalPrototype, "reason");
const searchParamsToString = URLSearchParamsPrototype.toString;
const textDecoderDecode = TextDecoder.prototype.decode;
// A non-streaming UTF-8 decoder keeps no state between calls, so one is
// enough. Its default (ignoreBOM: false) drops a leading UTF-8 BOM and
// replaces invalid sequences, which is the spec's "UTF-8 decode".
const utf8Decoder = new TextDecoder();

const inspectSymbol = SymbolFor("Deno.privateCustomInspect");
const brand = webidl.brand;

// ---------------------------------------------------------------------------
// Small helpers

function isBranded(value, proto) {
  return ObjectPrototypeIsPrototypeOf(proto, value) && value[brand] === brand;
}

// tchar from RFC 7230 section 3.2.6, as a lookup over ASCII.
const TOKEN_CHARS = new Uint8Array(128);
{
  const extra = "!#$%&'*+-.^_`|~";
  for (let i = 0; i < extra.length; i++) {
    TOKEN_CHARS[StringPrototypeCharCodeAt(extra, i)] = 1;
  }
  for (let c = 0x30; c <= 0x39; c++) TOKEN_CHARS[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) TOKEN_CHARS[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) TOKEN_CHARS[c] = 1;
}

// A loop instead of a RegExp: RegExp methods go through a user-replaceable
// `exec`.
function isToken(s) {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c >= 128 || TOKEN_CHARS[c] === 0) return false;
  }
  return true;
}

function isHttpWhitespace(c) {
  return c === 0x09 || c === 0x0a || c === 0x0d || c === 0x20;
}

function normalizeHeaderValue(value) {
  let start = 0;
  let end = value.length;
  while (
    start < end && isHttpWhitespace(StringPrototypeCharCodeAt(value, start))
  ) {
    start++;
  }
  while (
    end > start && isHttpWhitespace(StringPrototypeCharCodeAt(value, end - 1))
  ) {
    end--;
  }
  return start === 0 && end === value.length
    ? value
    : StringPrototypeSlice(value, start, end);
}

function isValidHeaderValue(value) {
  for (let i = 0; i < value.length; i++) {
    const c = StringPrototypeCharCodeAt(value, i);
    if (c === 0x00 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

// reason-phrase from RFC 7230: HTAB, SP, VCHAR, obs-text.
function isValidStatusText(text) {
  for (let i = 0; i < text.length; i++) {
    const c = StringPrototypeCharCodeAt(text, i);
    if (!(c === 0x09 || (c >= 0x20 && c !== 0x7f && c <= 0xff))) return false;
  }
  return true;
}

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

function stripFragment(url) {
  const hash = StringPrototypeIndexOf(url, "#");
  return hash === -1 ? url : StringPrototypeSlice(url, 0, hash);
}

// ---------------------------------------------------------------------------
// Headers

const _list = Symbol("header list");
const _guard = Symbol("header guard");
const _sorted = Symbol("sorted header cache");
const _iterable = Symbol("iterable headers");

// The header list keeps [name, value] pairs in insertion order with the
// caller's casing, as the spec's header list does; lookups compare
// lowercased names. Names are tokens (ASCII), so toLowerCase is a byte
// lowercase here.
function lowerName(name) {
  return StringPrototypeToLowerCase(name);
}

function invalidName(name) {
  return new TypeError(`Invalid header name: "${name}"`);
}

function checkMutable(headers) {
  if (headers[_guard] === "immutable") {
    throw new TypeError("Headers are immutable");
  }
}

function appendHeader(headers, name, value) {
  value = normalizeHeaderValue(value);
  if (!isToken(name)) throw invalidName(name);
  if (!isValidHeaderValue(value)) {
    throw new TypeError(`Invalid header value for "${name}"`);
  }
  checkMutable(headers);
  const list = headers[_list];
  const lower = lowerName(name);
  // Later entries reuse the casing of the first entry with the same name.
  for (let i = 0; i < list.length; i++) {
    if (lowerName(list[i][0]) === lower) {
      name = list[i][0];
      break;
    }
  }
  ArrayPrototypePush(list, [name, value]);
  headers[_sorted] = null;
}

function getHeader(list, lower) {
  let result = null;
  for (let i = 0; i < list.length; i++) {
    if (lowerName(list[i][0]) === lower) {
      result = result === null ? list[i][1] : result + ", " + list[i][1];
    }
  }
  return result;
}

function hasHeader(list, lower) {
  for (let i = 0; i < list.length; i++) {
    if (lowerName(list[i][0]) === lower) return true;
  }
  return false;
}

function copyHeaderList(list) {
  const out = [];
  for (let i = 0; i < list.length; i++) {
    ArrayPrototypePush(out, [list[i][0], list[i][1]]);
  }
  return out;
}

// HeadersInit is (sequence<sequence<ByteString>> or
// record<ByteString, ByteString>). The result is either an array of pairs or
// a record, both already converted to ByteStrings.
const convertHeaderSequence =
  webidl.converters["sequence<sequence<ByteString>>"];
const convertHeaderRecord = webidl.createRecordConverter(
  webidl.converters.ByteString,
  webidl.converters.ByteString,
);
function convertHeadersInit(value, prefix, context) {
  // Copying a Headers' own list is equivalent to iterating it, and safe from
  // a replaced Headers.prototype[Symbol.iterator].
  if (isBranded(value, HeadersPrototype)) return copyHeaderList(value[_list]);
  if (webidl.type(value) === "Object" && value[SymbolIterator] !== undefined) {
    return convertHeaderSequence(value, prefix, context);
  }
  return convertHeaderRecord(value, prefix, context);
}

function fillHeaders(headers, init) {
  if (ArrayIsArray(init)) {
    for (let i = 0; i < init.length; i++) {
      const pair = init[i];
      if (pair.length !== 2) {
        throw new TypeError(
          `Invalid header: expected a [name, value] pair, got ${pair.length} ` +
            "items",
        );
      }
      appendHeader(headers, pair[0], pair[1]);
    }
  } else {
    for (const key in init) {
      appendHeader(headers, key, init[key]);
    }
  }
}

// Headers owned by a Request or Response, made without running the
// constructor.
function newHeaders(list, guard) {
  const headers = webidl.createBranded(Headers);
  headers[_list] = list;
  headers[_guard] = guard;
  headers[_sorted] = null;
  return headers;
}

// The spec's "sort and combine": lowercase names in byte order, values of a
// repeated name joined with ", " except set-cookie, whose values stay apart.
function sortAndCombine(headers) {
  if (headers[_sorted] !== null) return headers[_sorted];
  const list = headers[_list];
  const lowered = [];
  for (let i = 0; i < list.length; i++) {
    ArrayPrototypePush(lowered, [lowerName(list[i][0]), list[i][1]]);
  }
  // Array#sort is stable, which keeps set-cookie values in insertion order.
  ArrayPrototypeSort(
    lowered,
    (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
  );
  const out = [];
  for (let i = 0; i < lowered.length; i++) {
    const name = lowered[i][0];
    const last = out.length > 0 ? out[out.length - 1] : null;
    if (last !== null && last[0] === name && name !== "set-cookie") {
      last[1] = last[1] + ", " + lowered[i][1];
    } else {
      ArrayPrototypePush(out, [name, lowered[i][1]]);
    }
  }
  headers[_sorted] = out;
  return out;
}

class Headers {
  [_list] = [];
  [_guard] = "none";
  [_sorted] = null;

  constructor(init = undefined) {
    const prefix = "Failed to construct 'Headers'";
    this[brand] = brand;
    if (init !== undefined) {
      fillHeaders(this, convertHeadersInit(init, prefix, "Argument 1"));
    }
  }

  append(name, value) {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const prefix = "Failed to execute 'append' on 'Headers'";
    webidl.requiredArguments(arguments.length, 2, prefix);
    name = webidl.converters.ByteString(name, prefix, "Argument 1");
    value = webidl.converters.ByteString(value, prefix, "Argument 2");
    appendHeader(this, name, value);
  }

  delete(name) {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const prefix = "Failed to execute 'delete' on 'Headers'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    name = webidl.converters.ByteString(name, prefix, "Argument 1");
    if (!isToken(name)) throw invalidName(name);
    checkMutable(this);
    const list = this[_list];
    const lower = lowerName(name);
    for (let i = list.length - 1; i >= 0; i--) {
      if (lowerName(list[i][0]) === lower) ArrayPrototypeSplice(list, i, 1);
    }
    this[_sorted] = null;
  }

  get(name) {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const prefix = "Failed to execute 'get' on 'Headers'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    name = webidl.converters.ByteString(name, prefix, "Argument 1");
    if (!isToken(name)) throw invalidName(name);
    return getHeader(this[_list], lowerName(name));
  }

  getSetCookie() {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const list = this[_list];
    const values = [];
    for (let i = 0; i < list.length; i++) {
      if (lowerName(list[i][0]) === "set-cookie") {
        ArrayPrototypePush(values, list[i][1]);
      }
    }
    return values;
  }

  has(name) {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const prefix = "Failed to execute 'has' on 'Headers'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    name = webidl.converters.ByteString(name, prefix, "Argument 1");
    if (!isToken(name)) throw invalidName(name);
    return hasHeader(this[_list], lowerName(name));
  }

  set(name, value) {
    webidl.assertBranded(this, HeadersPrototype, "Headers");
    const prefix = "Failed to execute 'set' on 'Headers'";
    webidl.requiredArguments(arguments.length, 2, prefix);
    name = webidl.converters.ByteString(name, prefix, "Argument 1");
    value = webidl.converters.ByteString(value, prefix, "Argument 2");
    value = normalizeHeaderValue(value);
    if (!isToken(name)) throw invalidName(name);
    if (!isValidHeaderValue(value)) {
      throw new TypeError(`Invalid header value for "${name}"`);
    }
    checkMutable(this);
    // Replace the first match in place (keeping its position and casing) and
    // drop the others.
    const list = this[_list];
    const lower = lowerName(name);
    let found = false;
    for (let i = 0; i < list.length; i++) {
      if (lowerName(list[i][0]) === lower) {
        if (!found) {
          list[i][1] = value;
          found = true;
        } else {
          ArrayPrototypeSplice(list, i, 1);
          i--;
        }
      }
    }
    if (!found) ArrayPrototypePush(list, [name, value]);
    this[_sorted] = null;
  }

  [inspectSymbol](inspect, inspectOptions) {
    const view = new HeadersInspectView();
    if (isBranded(this, HeadersPrototype)) {
      const pairs = sortAndCombine(this);
      for (let i = 0; i < pairs.length; i++) {
        const name = pairs[i][0];
        const prev = ObjectGetOwnPropertyDescriptor(view, name);
        // defineProperty: a header may be named "__proto__".
        ObjectDefineProperty(view, name, {
          __proto__: null,
          value: prev === undefined
            ? pairs[i][1]
            : prev.value + ", " + pairs[i][1],
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
    }
    return inspect(view, inspectOptions);
  }
}

// Only its class name matters: console output reads `Headers { ... }`.
const HeadersInspectView = class Headers {};

// The pair iterator (entries/keys/values/forEach/@@iterator) re-reads this on
// every step, so it must be cheap: the sorted view is cached until the next
// mutation.
ObjectDefineProperty(Headers.prototype, _iterable, {
  __proto__: null,
  get() {
    return sortAndCombine(this);
  },
});
webidl.mixinPairIterable("Headers", Headers, _iterable, 0, 1);
webidl.configureInterface(Headers);
const HeadersPrototype = Headers.prototype;

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
  return body.stream !== null && isReadableStreamDisturbed(body.stream);
}

// "unusable" in the spec: disturbed or locked.
function unusableReason(body) {
  if (body === null) return null;
  if (isBodyUsed(body)) return "body already used";
  if (body.stream !== null && isReadableStreamLocked(body.stream)) {
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
    body.stream = createReadableByteStream(
      (controller) => {
        if (chunk !== null && TypedArrayPrototypeGetByteLength(chunk) > 0) {
          // Enqueue transfers the buffer, so hand over a private copy.
          readableByteStreamControllerEnqueue(controller, copyBytes(chunk));
        }
        readableByteStreamControllerClose(controller);
      },
      noop,
      resolvedNoop,
    );
    if (body.used) {
      // Already consumed through text() & co.: present it as a read stream.
      acquireReadableStreamDefaultReader(body.stream);
      readableStreamDisturb(body.stream);
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
    acquireReadableStreamDefaultReader(body.stream);
    readableStreamCancel(body.stream, undefined);
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
    const bytes = await readableStreamCollectIntoUint8Array(body.stream);
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
    if (ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, value)) {
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

// ---------------------------------------------------------------------------
// Request

const _url = Symbol("url");
const _method = Symbol("method");
const _headers = Symbol("headers");
const _body = Symbol("body");
const _redirect = Symbol("redirect");
const _signal = Symbol("signal");

const convertRequestInit = webidl.createDictionaryConverter("RequestInit", [
  { key: "method", converter: webidl.converters.ByteString },
  { key: "headers", converter: convertHeadersInit },
  { key: "body", converter: webidl.converters.any },
  {
    key: "redirect",
    converter: webidl.createEnumConverter("RequestRedirect", [
      "follow",
      "error",
      "manual",
    ]),
  },
  {
    key: "signal",
    converter: webidl.createNullableConverter(webidl.converters.AbortSignal),
  },
]);

// Per the Fetch spec only these are upper-cased; others (e.g. "patch") are
// sent as written, as browsers and Deno do.
function normalizeMethod(method, prefix) {
  if (!isToken(method)) {
    throw new TypeError(`${prefix}: '${method}' is not a valid HTTP method`);
  }
  const upper = StringPrototypeToUpperCase(method);
  switch (upper) {
    case "DELETE":
    case "GET":
    case "HEAD":
    case "OPTIONS":
    case "POST":
    case "PUT":
      return upper;
    case "CONNECT":
    case "TRACE":
    case "TRACK":
      throw new TypeError(`${prefix}: method '${method}' is forbidden`);
  }
  return method;
}

// There is no base URL in a handler, so relative URLs are an error.
function parseAbsoluteUrl(input, prefix) {
  let url;
  try {
    url = new URL(input);
  } catch (err) {
    throw new TypeError(
      `${prefix}: invalid URL '${input}' (URLs must be absolute)`,
      { cause: err },
    );
  }
  return url;
}

function followSignal(parent, prefix) {
  if (parent === null) return newSignal();
  // SafeArrayIterator: the sequence conversion inside must not go through a
  // user-replaceable Array.prototype[Symbol.iterator].
  return createDependentAbortSignal(new SafeArrayIterator([parent]), prefix);
}

class Request {
  [_url];
  [_method];
  [_headers];
  [_body];
  [_redirect];
  [_signal];

  constructor(input, init = undefined) {
    const prefix = "Failed to construct 'Request'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    init = convertRequestInit(init, prefix, "Argument 2");

    let url;
    let method = "GET";
    let redirect = "follow";
    let parentSignal = null;
    let inputBody = null;
    let headerList = [];
    if (isBranded(input, RequestPrototype)) {
      url = input[_url];
      method = input[_method];
      redirect = input[_redirect];
      parentSignal = input[_signal];
      inputBody = input[_body];
      headerList = copyHeaderList(input[_headers][_list]);
    } else {
      const parsed = parseAbsoluteUrl(
        webidl.converters.USVString(input, prefix, "Argument 1"),
        prefix,
      );
      if (
        FunctionPrototypeCall(urlUsername, parsed) !== "" ||
        FunctionPrototypeCall(urlPassword, parsed) !== ""
      ) {
        throw new TypeError(
          `${prefix}: URL includes credentials; ` +
            "send them in an Authorization header instead",
        );
      }
      url = FunctionPrototypeCall(urlHref, parsed);
    }

    if (init.method !== undefined) {
      method = normalizeMethod(init.method, prefix);
    }
    if (init.redirect !== undefined) redirect = init.redirect;
    // An explicit `signal: null` drops the input Request's signal.
    if (init.signal !== undefined) parentSignal = init.signal;

    const headers = newHeaders([], "none");
    if (init.headers !== undefined) {
      fillHeaders(headers, init.headers);
    } else {
      headers[_list] = headerList;
    }

    const initBody = init.body === undefined ? null : init.body;
    if (
      (initBody !== null || inputBody !== null) &&
      (method === "GET" || method === "HEAD")
    ) {
      throw new TypeError(`${prefix}: a ${method} request cannot have a body`);
    }

    let body = null;
    if (initBody !== null) {
      const extracted = extractBody(initBody, prefix);
      body = newBody(extracted.bytes);
      if (
        extracted.contentType !== null &&
        !hasHeader(headers[_list], "content-type")
      ) {
        appendHeader(headers, "Content-Type", extracted.contentType);
      }
    } else if (inputBody !== null) {
      const reason = unusableReason(inputBody);
      if (reason !== null) {
        throw new TypeError(`${prefix}: input Request's ${reason}`);
      }
    }

    const signal = followSignal(parentSignal, prefix);

    // Nothing below can throw, so a failed construction never consumes the
    // input Request's body.
    if (initBody === null && inputBody !== null) {
      body = newBody(takeBody(inputBody));
    }

    this[brand] = brand;
    this[_url] = url;
    this[_method] = method;
    this[_headers] = headers;
    this[_body] = body;
    this[_redirect] = redirect;
    this[_signal] = signal;
  }

  get method() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_method];
  }

  get url() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_url];
  }

  get headers() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_headers];
  }

  get redirect() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_redirect];
  }

  get signal() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_signal];
  }

  get body() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return bodyStream(this[_body]);
  }

  get bodyUsed() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return isBodyUsed(this[_body]);
  }

  arrayBuffer() {
    return bodyArrayBuffer(this, RequestPrototype, "Request");
  }

  bytes() {
    return bodyBytes(this, RequestPrototype, "Request");
  }

  text() {
    return bodyText(this, RequestPrototype, "Request");
  }

  json() {
    return bodyJson(this, RequestPrototype, "Request");
  }

  blob() {
    return unsupportedBodyMethod(this, RequestPrototype, "Request", "blob");
  }

  formData() {
    return unsupportedBodyMethod(this, RequestPrototype, "Request", "formData");
  }

  clone() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    const prefix = "Failed to execute 'clone' on 'Request'";
    const reason = unusableReason(this[_body]);
    if (reason !== null) throw new TypeError(`${prefix}: ${reason}`);
    const clone = webidl.createBranded(Request);
    clone[_url] = this[_url];
    clone[_method] = this[_method];
    clone[_headers] = newHeaders(
      copyHeaderList(this[_headers][_list]),
      this[_headers][_guard],
    );
    clone[_body] = this[_body] === null ? null : newBody(this[_body].bytes);
    clone[_redirect] = this[_redirect];
    clone[_signal] = followSignal(this[_signal], prefix);
    return clone;
  }

  [inspectSymbol](inspect, inspectOptions) {
    return inspect(
      createFilteredInspectProxy({
        object: this,
        evaluate: isBranded(this, RequestPrototype),
        keys: [
          "bodyUsed",
          "headers",
          "method",
          "redirect",
          "url",
        ],
      }),
      inspectOptions,
    );
  }
}

webidl.configureInterface(Request);
const RequestPrototype = Request.prototype;

// ---------------------------------------------------------------------------
// Response

const _type = Symbol("type");
const _status = Symbol("status");
const _statusText = Symbol("status text");
const _redirected = Symbol("redirected");

const convertResponseInit = webidl.createDictionaryConverter("ResponseInit", [
  {
    key: "status",
    defaultValue: 200,
    converter: webidl.converters["unsigned short"],
  },
  {
    key: "statusText",
    defaultValue: "",
    converter: webidl.converters.ByteString,
  },
  { key: "headers", converter: convertHeadersInit },
]);

function isNullBodyStatus(status) {
  return status === 101 || status === 103 || status === 204 ||
    status === 205 || status === 304;
}

function isRedirectStatus(status) {
  return status === 301 || status === 302 || status === 303 ||
    status === 307 || status === 308;
}

// Fills every internal slot, for objects made both by the constructor and
// by webidl.createBranded (which skips it).
function setResponseState(
  response,
  type,
  status,
  statusText,
  url,
  redirected,
  headers,
  body,
) {
  response[brand] = brand;
  response[_type] = type;
  response[_status] = status;
  response[_statusText] = statusText;
  response[_url] = url;
  response[_redirected] = redirected;
  response[_headers] = headers;
  response[_body] = body;
}

// The spec's "initialize a response" for the constructor and Response.json.
function initializeResponse(response, init, extracted, prefix) {
  const status = init.status;
  if (status < 200 || status > 599) {
    throw new RangeError(
      `${prefix}: status ${status} is outside the range 200 to 599`,
    );
  }
  if (!isValidStatusText(init.statusText)) {
    throw new TypeError(`${prefix}: statusText is not a valid reason phrase`);
  }
  const headers = newHeaders([], "none");
  if (init.headers !== undefined) fillHeaders(headers, init.headers);
  let body = null;
  if (extracted !== null) {
    if (isNullBodyStatus(status)) {
      throw new TypeError(
        `${prefix}: a response with status ${status} cannot have a body`,
      );
    }
    body = newBody(extracted.bytes);
    if (
      extracted.contentType !== null &&
      !hasHeader(headers[_list], "content-type")
    ) {
      appendHeader(headers, "Content-Type", extracted.contentType);
    }
  }
  setResponseState(
    response,
    "default",
    status,
    init.statusText,
    "",
    false,
    headers,
    body,
  );
}

class Response {
  [_type];
  [_status];
  [_statusText];
  [_url];
  [_redirected];
  [_headers];
  [_body];

  constructor(body = null, init = undefined) {
    const prefix = "Failed to construct 'Response'";
    init = convertResponseInit(init, prefix, "Argument 2");
    const extracted = body === null || body === undefined
      ? null
      : extractBody(body, prefix);
    initializeResponse(this, init, extracted, prefix);
  }

  static error() {
    const response = webidl.createBranded(Response);
    setResponseState(
      response,
      "error",
      0,
      "",
      "",
      false,
      newHeaders([], "immutable"),
      null,
    );
    return response;
  }

  static redirect(url, status = 302) {
    const prefix = "Failed to execute 'redirect' on 'Response'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    url = webidl.converters.USVString(url, prefix, "Argument 1");
    status = webidl.converters["unsigned short"](status, prefix, "Argument 2");
    const parsed = parseAbsoluteUrl(url, prefix);
    if (!isRedirectStatus(status)) {
      throw new RangeError(`${prefix}: ${status} is not a redirect status`);
    }
    const response = webidl.createBranded(Response);
    setResponseState(
      response,
      "default",
      status,
      "",
      "",
      false,
      newHeaders(
        [["Location", FunctionPrototypeCall(urlHref, parsed)]],
        "immutable",
      ),
      null,
    );
    return response;
  }

  static json(data, init = undefined) {
    const prefix = "Failed to execute 'json' on 'Response'";
    webidl.requiredArguments(arguments.length, 1, prefix);
    init = convertResponseInit(init, prefix, "Argument 2");
    const text = JSONStringify(data);
    if (text === undefined) {
      throw new TypeError(`${prefix}: data is not JSON serializable`);
    }
    const response = webidl.createBranded(Response);
    initializeResponse(
      response,
      init,
      { bytes: core.encode(text), contentType: "application/json" },
      prefix,
    );
    return response;
  }

  get type() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_type];
  }

  get url() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_url];
  }

  get redirected() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_redirected];
  }

  get status() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_status];
  }

  get ok() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    const status = this[_status];
    return status >= 200 && status <= 299;
  }

  get statusText() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_statusText];
  }

  get headers() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return this[_headers];
  }

  get body() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return bodyStream(this[_body]);
  }

  get bodyUsed() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    return isBodyUsed(this[_body]);
  }

  arrayBuffer() {
    return bodyArrayBuffer(this, ResponsePrototype, "Response");
  }

  bytes() {
    return bodyBytes(this, ResponsePrototype, "Response");
  }

  text() {
    return bodyText(this, ResponsePrototype, "Response");
  }

  json() {
    return bodyJson(this, ResponsePrototype, "Response");
  }

  blob() {
    return unsupportedBodyMethod(this, ResponsePrototype, "Response", "blob");
  }

  formData() {
    return unsupportedBodyMethod(
      this,
      ResponsePrototype,
      "Response",
      "formData",
    );
  }

  clone() {
    webidl.assertBranded(this, ResponsePrototype, "Response");
    const reason = unusableReason(this[_body]);
    if (reason !== null) {
      throw new TypeError(
        `Failed to execute 'clone' on 'Response': ${reason}`,
      );
    }
    const clone = webidl.createBranded(Response);
    setResponseState(
      clone,
      this[_type],
      this[_status],
      this[_statusText],
      this[_url],
      this[_redirected],
      newHeaders(
        copyHeaderList(this[_headers][_list]),
        this[_headers][_guard],
      ),
      this[_body] === null ? null : newBody(this[_body].bytes),
    );
    return clone;
  }

  [inspectSymbol](inspect, inspectOptions) {
    return inspect(
      createFilteredInspectProxy({
        object: this,
        evaluate: isBranded(this, ResponsePrototype),
        keys: [
          "bodyUsed",
          "headers",
          "ok",
          "redirected",
          "status",
          "statusText",
          "type",
          "url",
        ],
      }),
      inspectOptions,
    );
  }
}

webidl.configureInterface(Response);
const ResponsePrototype = Response.prototype;

// ---------------------------------------------------------------------------
// fetch

// Network failures are TypeErrors in fetch; keep the host's message.
function toNetworkError(err) {
  if (ObjectPrototypeIsPrototypeOf(TypeErrorPrototype, err)) return err;
  const message = err !== null && typeof err === "object" &&
      typeof err.message === "string"
    ? err.message
    : "fetch failed";
  return new TypeError(message, { cause: err });
}

function responseFromHost(res, request) {
  const list = [];
  const hostHeaders = res.headers;
  for (let i = 0; i < hostHeaders.length; i++) {
    ArrayPrototypePush(list, [hostHeaders[i][0], hostHeaders[i][1]]);
  }
  const status = res.status;
  const nullBody = request[_method] === "HEAD" || isNullBodyStatus(status);
  let bytes = null;
  if (!nullBody) {
    bytes = core.isTypedArray(res.body)
      ? res.body
      : new Uint8Array(res.body ?? new Uint8Array(0));
  }
  const response = webidl.createBranded(Response);
  setResponseState(
    response,
    "basic",
    status,
    res.statusText ?? "",
    stripFragment(res.url ?? request[_url]),
    res.redirected === true,
    newHeaders(list, "immutable"),
    bytes === null ? null : newBody(bytes),
  );
  return response;
}

function sendRequest(request, signal) {
  const list = request[_headers][_list];
  const headers = [];
  let hasAccept = false;
  for (let i = 0; i < list.length; i++) {
    ArrayPrototypePush(headers, [list[i][0], list[i][1]]);
    if (lowerName(list[i][0]) === "accept") hasAccept = true;
  }
  // Fetch spec: a request without Accept gets `*/*`.
  if (!hasAccept) ArrayPrototypePush(headers, ["Accept", "*/*"]);
  const body = request[_body];

  return new Promise((resolve, reject) => {
    const cancelRid = op_eddy_fetch_cancel_handle();
    let settled = false;
    // Abort rejects at once; closing the handle makes the host drop the
    // request, and the op's own (later) rejection is then ignored.
    const onAbort = () => {
      if (settled) return;
      settled = true;
      core.tryClose(cancelRid);
      reject(FunctionPrototypeCall(signalReason, signal));
    };
    const cleanup = () => {
      signal[abortRemove](onAbort);
      core.tryClose(cancelRid);
    };
    signal[abortAdd](onAbort);

    let pending;
    try {
      pending = op_eddy_fetch_send(
        {
          method: request[_method],
          url: request[_url],
          headers,
          hasBody: body !== null,
          redirect: request[_redirect],
          cancelRid,
          // Which invocation to record this exchange for.
          invocation: invocationVar.get() ?? null,
        },
        // A copy: the bytes may be shared with clones of the Request.
        body !== null ? copyBytes(body.bytes) : new Uint8Array(0),
      );
    } catch (err) {
      cleanup();
      settled = true;
      reject(toNetworkError(err));
      return;
    }

    PromisePrototypeThen(
      pending,
      (res) => {
        cleanup();
        if (settled) return;
        settled = true;
        try {
          resolve(responseFromHost(res, request));
        } catch (err) {
          reject(err);
        }
      },
      (err) => {
        cleanup();
        if (settled) return;
        settled = true;
        reject(toNetworkError(err));
      },
    );
  });
}

function fetch(input, init = undefined) {
  // Every failure, including bad arguments, is a rejection, never a throw.
  try {
    webidl.requiredArguments(arguments.length, 1, "Failed to execute 'fetch'");
    const request = new Request(input, init);
    const signal = request[_signal];
    if (FunctionPrototypeCall(signalAborted, signal)) {
      return PromiseReject(FunctionPrototypeCall(signalReason, signal));
    }
    return sendRequest(request, signal);
  } catch (err) {
    return PromiseReject(err);
  }
}

export { fetch, Headers, Request, Response };
