// Copyright the eddy authors. Apache-2.0 license.

// Headers for eddy handlers, and the small helpers the other fetch modules
// (21_body.js, 22_request.js, 23_response.js, 26_fetch.js) share.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials.

import { core, primordials } from "ext:core/mod.js";

const {
  ArrayIsArray,
  ArrayPrototypePush,
  ArrayPrototypeSort,
  ArrayPrototypeSplice,
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptor,
  ObjectPrototypeIsPrototypeOf,
  StringPrototypeCharCodeAt,
  StringPrototypeSlice,
  StringPrototypeToLowerCase,
  Symbol,
  SymbolFor,
  SymbolIterator,
  TypeError,
  Uint8Array,
} = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");

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

export {
  _guard,
  _list,
  appendHeader,
  convertHeadersInit,
  copyHeaderList,
  fillHeaders,
  hasHeader,
  Headers,
  inspectSymbol,
  isBranded,
  isToken,
  lowerName,
  newHeaders,
};
