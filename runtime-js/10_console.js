// Console for handlers: every line is captured for the invocation that wrote it, found through
// the async context, so interleaved invocations on one isolate keep separate logs.
import { core, primordials } from "ext:core/mod.js";

const { ArrayPrototypeForEach, ObjectKeys, ReflectApply } = primordials;
const { op_eddy_console_write } = core.ops;
const { Console, setNoColorFns } = core.loadExtScript("ext:deno_web/01_console.js");

// Captured logs are stored and shown later, never written to a terminal: no colour codes.
setNoColorFns(() => true, () => true);

/**
 * The id of the invocation whose code is running: `invoke` sets it as the async context, which
 * V8 carries across awaits, promise reactions and (in deno_web) timers. Zero outside any.
 */
function currentInvocation() {
  const context = core.getAsyncContext();
  return typeof context === "number" ? context : 0;
}

const LEVEL_BY_NUMBER = ["debug", "log", "warn", "error"];
const LEVEL_BY_METHOD = {
  __proto__: null,
  debug: "debug",
  info: "info",
  log: "log",
  warn: "warn",
  error: "error",
  trace: "error",
  assert: "error",
};
let currentLevel = null;

function print(message, level) {
  op_eddy_console_write(
    currentInvocation(),
    currentLevel ?? LEVEL_BY_NUMBER[level] ?? "log",
    message,
  );
}

const inner = new Console(print);
const console = {};
// Wrap each method to know its exact level name (the printer only gets a number).
ArrayPrototypeForEach(ObjectKeys(inner), (name) => {
  const method = inner[name];
  if (typeof method !== "function") return;
  const level = LEVEL_BY_METHOD[name] ?? null;
  console[name] = function (...args) {
    const previous = currentLevel;
    currentLevel = level ?? previous;
    try {
      return ReflectApply(method, inner, args);
    } finally {
      currentLevel = previous;
    }
  };
});

export { console, currentInvocation };
