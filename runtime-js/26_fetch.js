// Copyright the eddy authors. Apache-2.0 license.

// fetch for eddy handlers, on top of the host's two fetch ops.
//
// Bodies are always fully buffered: the host returns whole response bodies
// (it enforces a size cap), kept as bytes like every other body.
//
// User code shares this realm and may tamper with built-in prototypes, so
// built-ins are reached through primordials, and getters of deno_web classes
// are captured when this module is evaluated (before any user code runs).

import { core, primordials } from "ext:core/mod.js";
import { currentInvocation } from "ext:eddy/10_console.js";
import { _list, lowerName, newHeaders } from "ext:eddy/20_headers.js";
import { _body, copyBytes, newBody } from "ext:eddy/21_body.js";
import {
  _headers,
  _method,
  _options,
  _redirect,
  _signal,
  _url,
  getterOf,
  Request,
} from "ext:eddy/22_request.js";
import {
  isNullBodyStatus,
  Response,
  setResponseState,
} from "ext:eddy/23_response.js";

const {
  ArrayPrototypePush,
  FunctionPrototypeCall,
  ObjectPrototypeIsPrototypeOf,
  Promise,
  PromisePrototypeThen,
  PromiseReject,
  StringPrototypeIndexOf,
  StringPrototypeSlice,
  TypeError,
  TypeErrorPrototype,
  Uint8Array,
} = primordials;

const { op_eddy_fetch_send, op_eddy_fetch_cancel_handle } = core.ops;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const {
  AbortSignalPrototype,
  add: abortAdd,
  remove: abortRemove,
} = core.loadExtScript("ext:deno_web/03_abort_signal.js");

// Captured now so later tampering with these prototypes cannot reach us.
const signalAborted = getterOf(AbortSignalPrototype, "aborted");
const signalReason = getterOf(AbortSignalPrototype, "reason");

function stripFragment(url) {
  const hash = StringPrototypeIndexOf(url, "#");
  return hash === -1 ? url : StringPrototypeSlice(url, 0, hash);
}

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
          invocation: currentInvocation() || null,
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

/** Why fetch cannot do what a request's options ask, or null. */
function unsupported(options) {
  if (options.integrity !== "") {
    return "eddy does not check subresource integrity; leave 'integrity' empty";
  }
  if (options.cache === "only-if-cached") {
    // The standard's answer to a cache miss: eddy keeps no HTTP cache, so it always misses.
    return "eddy keeps no HTTP cache, so an 'only-if-cached' request finds nothing";
  }
  return null;
}

function fetch(input, init = undefined) {
  // Every failure, including bad arguments, is a rejection, never a throw.
  try {
    webidl.requiredArguments(arguments.length, 1, "Failed to execute 'fetch'");
    const request = new Request(input, init);
    const refused = unsupported(request[_options]);
    if (refused !== null) return PromiseReject(new TypeError(`Failed to execute 'fetch': ${refused}`));
    const signal = request[_signal];
    if (FunctionPrototypeCall(signalAborted, signal)) {
      return PromiseReject(FunctionPrototypeCall(signalReason, signal));
    }
    return sendRequest(request, signal);
  } catch (err) {
    return PromiseReject(err);
  }
}

export { fetch };
