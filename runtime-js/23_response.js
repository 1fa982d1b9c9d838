// Copyright the eddy authors. Apache-2.0 license.

// Response for eddy handlers.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials, and getters of deno_web classes
// are captured (in 22_request.js) before any user code runs.

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
  newHeaders,
} from "ext:eddy/20_headers.js";
import {
  _body,
  extractBody,
  newBody,
  mixinBody,
  unusableReason,
} from "ext:eddy/21_body.js";
import {
  _headers,
  _url,
  parseAbsoluteUrl,
  urlHref,
} from "ext:eddy/22_request.js";

const {
  FunctionPrototypeCall,
  JSONStringify,
  RangeError,
  StringPrototypeCharCodeAt,
  Symbol,
  TypeError,
} = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const { createFilteredInspectProxy } = core.loadExtScript(
  "ext:deno_web/01_console.js",
);

const brand = webidl.brand;

// reason-phrase from RFC 7230: HTAB, SP, VCHAR, obs-text.
function isValidStatusText(text) {
  for (let i = 0; i < text.length; i++) {
    const c = StringPrototypeCharCodeAt(text, i);
    if (!(c === 0x09 || (c >= 0x20 && c !== 0x7f && c <= 0xff))) return false;
  }
  return true;
}

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

mixinBody(Response.prototype, "Response");
webidl.configureInterface(Response);
const ResponsePrototype = Response.prototype;

export { isNullBodyStatus, Response, setResponseState };
