// Copyright the eddy authors. Apache-2.0 license.

// Request for eddy handlers.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials, and getters of deno_web classes
// are captured when this module is evaluated (before any user code runs).

import { core, primordials } from "ext:core/mod.js";
import {
  _guard,
  _list,
  appendHeader,
  convertHeadersInit,
  copyHeaderList,
  fillHeaders,
  hasHeader,
  inspectSymbol,
  isBranded,
  isToken,
  newHeaders,
} from "ext:eddy/20_headers.js";
import {
  _body,
  extractBody,
  newBody,
  mixinBody,
  takeBody,
  unusableReason,
} from "ext:eddy/21_body.js";
import { _options, optionMembers, optionsOf, referrerText } from "ext:eddy/21_request_options.js";

const {
  FunctionPrototypeCall,
  ObjectGetOwnPropertyDescriptor,
  SafeArrayIterator,
  StringPrototypeToUpperCase,
  Symbol,
  TypeError,
} = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const { URL, URLPrototype } = core.loadExtScript("ext:deno_web/00_url.js");
// Also defines webidl.converters.AbortSignal, which RequestInit needs below.
const { createDependentAbortSignal, newSignal } = core.loadExtScript(
  "ext:deno_web/03_abort_signal.js",
);
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

const brand = webidl.brand;

// ---------------------------------------------------------------------------
// Request

const _url = Symbol("url");
const _method = Symbol("method");
const _headers = Symbol("headers");
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
  ...new SafeArrayIterator(optionMembers),
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
  [_options];

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
    let inputOptions = null;
    if (isBranded(input, RequestPrototype)) {
      inputOptions = input[_options];
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
    const options = optionsOf(inputOptions, init, method, prefix);
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
    this[_options] = options;
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

  get destination() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return "";
  }

  get referrer() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return referrerText(this[_options]);
  }

  get referrerPolicy() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].referrerPolicy;
  }

  get mode() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].mode;
  }

  get credentials() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].credentials;
  }

  get cache() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].cache;
  }

  get integrity() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].integrity;
  }

  get keepalive() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].keepalive;
  }

  get isReloadNavigation() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].reloadNavigation;
  }

  get isHistoryNavigation() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return this[_options].historyNavigation;
  }

  get duplex() {
    webidl.assertBranded(this, RequestPrototype, "Request");
    return "half";
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
    clone[_options] = { ...this[_options] };
    return clone;
  }

  [inspectSymbol](inspect, inspectOptions) {
    return inspect(
      createFilteredInspectProxy({
        object: this,
        evaluate: isBranded(this, RequestPrototype),
        keys: [
          "bodyUsed",
          "cache",
          "credentials",
          "destination",
          "headers",
          "integrity",
          "isHistoryNavigation",
          "isReloadNavigation",
          "keepalive",
          "method",
          "mode",
          "redirect",
          "referrer",
          "referrerPolicy",
          "url",
        ],
      }),
      inspectOptions,
    );
  }
}

mixinBody(Request.prototype, "Request");
webidl.configureInterface(Request);
const RequestPrototype = Request.prototype;

export {
  _headers,
  _options,
  _method,
  _redirect,
  _signal,
  _url,
  getterOf,
  parseAbsoluteUrl,
  Request,
  urlHref,
};
