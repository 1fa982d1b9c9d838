// Copyright the eddy authors. Apache-2.0 license.

// What a Request says about itself to a browser's fetch (referrer, referrer policy, mode,
// credentials, cache, integrity, keepalive, duplex, priority): converted and checked as the
// Fetch standard's Request constructor does, and kept for the getters and clone(). A handler
// has no page, origin, cookies or HTTP cache, so its environment is an opaque origin: every
// referrer URL counts as cross-origin and is reported as "about:client", and fetch itself
// acts on none of them but `integrity`, which it refuses rather than ignore.

import { core, primordials } from "ext:core/mod.js";

const { ObjectKeys, Symbol, TypeError } = primordials;

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const { URL } = core.loadExtScript("ext:deno_web/00_url.js");

const enumOf = (name, values) => webidl.createEnumConverter(name, values);

/** RequestInit's members besides method, headers, body, redirect and signal. */
const optionMembers = [
  { key: "referrer", converter: webidl.converters.USVString },
  {
    key: "referrerPolicy",
    converter: enumOf("ReferrerPolicy", [
      "",
      "no-referrer",
      "no-referrer-when-downgrade",
      "same-origin",
      "origin",
      "strict-origin",
      "origin-when-cross-origin",
      "strict-origin-when-cross-origin",
      "unsafe-url",
    ]),
  },
  { key: "mode", converter: enumOf("RequestMode", ["navigate", "same-origin", "no-cors", "cors"]) },
  { key: "credentials", converter: enumOf("RequestCredentials", ["omit", "same-origin", "include"]) },
  {
    key: "cache",
    converter: enumOf("RequestCache", ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"]),
  },
  { key: "integrity", converter: webidl.converters.DOMString },
  { key: "keepalive", converter: webidl.converters.boolean },
  { key: "duplex", converter: enumOf("RequestDuplex", ["half"]) },
  { key: "priority", converter: enumOf("RequestPriority", ["high", "low", "auto"]) },
  { key: "window", converter: webidl.converters.any },
];

const _options = Symbol("options");

/** A new request's options, as the standard's defaults. */
function defaultOptions() {
  return {
    referrer: "client",
    referrerPolicy: "",
    mode: "cors",
    credentials: "same-origin",
    cache: "default",
    integrity: "",
    keepalive: false,
    priority: "auto",
    reloadNavigation: false,
    historyNavigation: false,
  };
}

/**
 * The options of a Request built from `from` (the input Request's options, or null for a URL
 * input) and the converted `init`, throwing a TypeError where the standard's steps do.
 */
function optionsOf(from, init, method, prefix) {
  const options = from === null ? defaultOptions() : { ...from };
  if (init.window !== undefined && init.window !== null) {
    throw new TypeError(`${prefix}: 'window' can only be null`);
  }
  if (ObjectKeys(init).length > 0) {
    if (options.mode === "navigate") options.mode = "same-origin";
    options.reloadNavigation = false;
    options.historyNavigation = false;
    options.referrer = "client";
    options.referrerPolicy = "";
  }
  if (init.referrer !== undefined) options.referrer = referrerOf(init.referrer, prefix);
  if (init.referrerPolicy !== undefined) options.referrerPolicy = init.referrerPolicy;
  if (init.mode === "navigate") {
    throw new TypeError(`${prefix}: a Request cannot be made in 'navigate' mode`);
  }
  if (init.mode !== undefined) options.mode = init.mode;
  if (init.credentials !== undefined) options.credentials = init.credentials;
  if (init.cache !== undefined) options.cache = init.cache;
  if (options.cache === "only-if-cached" && options.mode !== "same-origin") {
    throw new TypeError(`${prefix}: 'only-if-cached' can be set only with 'same-origin' mode`);
  }
  if (init.integrity !== undefined) options.integrity = init.integrity;
  if (init.keepalive !== undefined) options.keepalive = init.keepalive;
  if (init.priority !== undefined) options.priority = init.priority;
  if (options.mode === "no-cors" && method !== "GET" && method !== "HEAD" && method !== "POST") {
    throw new TypeError(`${prefix}: '${method}' is unsupported in no-cors mode`);
  }
  return options;
}

/** The request referrer `init.referrer` asks for: "no-referrer" for "", else "client". */
function referrerOf(referrer, prefix) {
  if (referrer === "") return "no-referrer";
  try {
    new URL(referrer);
  } catch (err) {
    throw new TypeError(`${prefix}: referrer '${referrer}' is not a valid URL`, { cause: err });
  }
  // about:client is the client itself; any other URL is of another origin than the
  // handler's opaque one, which the standard also turns into the client.
  return "client";
}

/** The `referrer` getter's answer. */
function referrerText(options) {
  switch (options.referrer) {
    case "no-referrer":
      return "";
    case "client":
      return "about:client";
  }
  return options.referrer;
}

export { _options, optionMembers, optionsOf, referrerText };
