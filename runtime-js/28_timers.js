// Timers that end with their invocation: every timer and interval is registered to the
// invocation whose code started it (its async context), and `endInvocation` cancels them
// all when that invocation ends, however it ended. Work an ended invocation left behind
// cannot start new ones either. Loading the module counts as invocation 0.
import { core, primordials } from "ext:core/mod.js";
import { currentInvocation } from "ext:eddy/10_console.js";

const {
  MapPrototypeDelete,
  MapPrototypeGet,
  MapPrototypeSet,
  ReflectApply,
  SafeMap,
  SafeSet,
  SafeSetIterator,
  SetPrototypeAdd,
  SetPrototypeDelete,
} = primordials;

const {
  clearInterval: webClearInterval,
  clearTimeout: webClearTimeout,
  setInterval: webSetInterval,
  setTimeout: webSetTimeout,
} = core.loadExtScript("ext:deno_web/02_timers.js");

// Live invocation id -> ids of the timers it started.
const live = new SafeMap();
// Timer id -> the invocation that started it.
const owners = new SafeMap();
MapPrototypeSet(live, 0, new SafeSet());

function track(timerId) {
  const owner = currentInvocation();
  const started = MapPrototypeGet(live, owner);
  if (started === undefined) {
    // Started by leftover code of an invocation that already ended.
    webClearTimeout(timerId);
    return timerId;
  }
  SetPrototypeAdd(started, timerId);
  MapPrototypeSet(owners, timerId, owner);
  return timerId;
}

function forget(timerId) {
  const owner = MapPrototypeGet(owners, timerId);
  if (owner === undefined) return;
  MapPrototypeDelete(owners, timerId);
  const started = MapPrototypeGet(live, owner);
  if (started !== undefined) SetPrototypeDelete(started, timerId);
}

function setTimeout(_callback, _timeout = 0, ..._args) {
  return track(ReflectApply(webSetTimeout, this, arguments));
}

function setInterval(_callback, _timeout = 0, ..._args) {
  return track(ReflectApply(webSetInterval, this, arguments));
}

function clearTimeout(id = 0) {
  ReflectApply(webClearTimeout, this, arguments);
  forget(id);
}

function clearInterval(id = 0) {
  ReflectApply(webClearInterval, this, arguments);
  forget(id);
}

/** Invocation `id` starts: the timers it starts are its own. */
function beginInvocation(id) {
  MapPrototypeSet(live, id, new SafeSet());
}

/** Invocation `id` ended: cancels every timer and interval it left. */
function endInvocation(id) {
  const started = MapPrototypeGet(live, id);
  if (started === undefined) return;
  MapPrototypeDelete(live, id);
  for (const timerId of new SafeSetIterator(started)) {
    webClearTimeout(timerId);
    MapPrototypeDelete(owners, timerId);
  }
}

export { beginInvocation, clearInterval, clearTimeout, endInvocation, setInterval, setTimeout };
