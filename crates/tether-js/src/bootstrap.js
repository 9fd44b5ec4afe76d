// Runtime shims for tether-js, evaluated once per runtime as a classic script.
// The script is a function expression; the isolate calls it with native helpers and keeps the
// object it returns. Nothing here is reachable from user code except the globals it defines
// on purpose (timers, console, ReadableStream).
(function (native) {
  'use strict';
  const define = (name, value) =>
    Object.defineProperty(globalThis, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });

  // ---- timers: JS keeps the callbacks, Rust keeps the deadlines (native.schedule) ----
  const timers = new Map();
  let nextTimer = 1;
  let intervals = 0;
  function addTimer(callback, delay, args, repeat) {
    if (typeof callback !== 'function') {
      throw new TypeError('The "callback" argument must be of type function');
    }
    let ms = Number(delay);
    if (!(ms > 0)) ms = 0;
    if (ms > 2147483647) ms = 1;
    const id = nextTimer++;
    timers.set(id, { callback, args, repeat, ms });
    if (repeat) intervals++;
    native.schedule(id, ms);
    return id;
  }
  function clearTimer(id) {
    const t = timers.get(id);
    if (t === undefined) return;
    timers.delete(id);
    if (t.repeat) intervals--;
  }
  function fire(id) {
    const t = timers.get(id);
    if (t === undefined) return;
    if (t.repeat) native.schedule(id, t.ms);
    else timers.delete(id);
    t.callback(...t.args);
  }
  define('setTimeout', function setTimeout(callback, delay, ...args) {
    return addTimer(callback, delay, args, false);
  });
  define('setInterval', function setInterval(callback, delay, ...args) {
    return addTimer(callback, delay, args, true);
  });
  define('clearTimeout', function clearTimeout(id) {
    clearTimer(id);
  });
  define('clearInterval', function clearInterval(id) {
    clearTimer(id);
  });
  if (typeof globalThis.queueMicrotask !== 'function') {
    define('queueMicrotask', function queueMicrotask(callback) {
      if (typeof callback !== 'function') {
        throw new TypeError('The "callback" argument must be of type function');
      }
      Promise.resolve().then(() => callback());
    });
  }

  // ---- console: always present; prints only when enabled ----
  function show(v, depth) {
    if (typeof v === 'string') return depth ? JSON.stringify(v) : v;
    if (typeof v === 'function') return `[Function: ${v.name || '(anonymous)'}]`;
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'symbol') return v.toString();
    if (v === null || typeof v !== 'object') return String(v);
    if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : String(v);
    if (depth > 2) return Array.isArray(v) ? '[Array]' : '[Object]';
    try {
      if (Array.isArray(v)) return `[ ${v.map((x) => show(x, depth + 1)).join(', ')} ]`;
      const keys = Object.keys(v);
      if (keys.length === 0) return '{}';
      return `{ ${keys.map((k) => `${k}: ${show(v[k], depth + 1)}`).join(', ')} }`;
    } catch (e) {
      return String(v);
    }
  }
  const format = (args) => args.map((a) => show(a, 0)).join(' ');
  const consoleObj = {};
  const counts = new Map();
  const times = new Map();
  const levels = {
    log: 1, info: 1, debug: 1, trace: 2, warn: 2, error: 2, dir: 1, dirxml: 1, table: 1,
  };
  for (const [m, stream] of Object.entries(levels)) {
    consoleObj[m] = function (...args) {
      if (native.consoleEnabled) native.print(stream, format(args));
    };
  }
  consoleObj.assert = function (cond, ...args) {
    if (!cond && native.consoleEnabled) native.print(2, format(['Assertion failed:', ...args]));
  };
  consoleObj.count = function (label = 'default') {
    const n = (counts.get(label) || 0) + 1;
    counts.set(label, n);
    if (native.consoleEnabled) native.print(1, `${label}: ${n}`);
  };
  consoleObj.countReset = function (label = 'default') {
    counts.delete(label);
  };
  consoleObj.time = function (label = 'default') {
    times.set(label, Date.now());
  };
  consoleObj.timeLog = consoleObj.timeEnd = function (label = 'default') {
    const t = times.get(label);
    if (t !== undefined && native.consoleEnabled) native.print(1, `${label}: ${Date.now() - t}ms`);
  };
  consoleObj.group = consoleObj.groupCollapsed = consoleObj.groupEnd = consoleObj.clear =
    function () {};
  define('console', consoleObj);

  // ---- ReadableStream: defined on first use (see readable_stream.js) ----
  let RS = null;
  const streamClass = () => {
    if (RS === null) RS = native.readableStream();
    return RS;
  };
  Object.defineProperty(globalThis, 'ReadableStream', {
    get() {
      const c = streamClass();
      define('ReadableStream', c);
      return c;
    },
    set(v) {
      streamClass();
      define('ReadableStream', v);
    },
    configurable: true,
    enumerable: false,
  });

  // ---- helpers for the value converters (closed over, never global) ----
  const TypedArray = Object.getPrototypeOf(Uint8Array);
  const dateGetTime = Date.prototype.getTime;
  const setValues = Set.prototype.values;
  const bigToString = BigInt.prototype.toString;
  const toWellFormed = String.prototype.toWellFormed;
  const BI = BigInt;
  const D = Date;
  const S = Set;
  return {
    fire,
    activeTimers: () => timers.size - intervals,
    activeIntervals: () => intervals,
    // 1 Date, 2 Set, 3 Uint8Array, 4 ArrayBuffer, 5 other typed array, 6 ReadableStream
    kind(v) {
      if (v instanceof D) return 1;
      if (v instanceof S) return 2;
      if (v instanceof Uint8Array) return 3;
      if (v instanceof ArrayBuffer) return 4;
      if (v instanceof TypedArray) return 5;
      if (RS !== null && v instanceof RS) return 6;
      return 0;
    },
    time: (d) => dateGetTime.call(d),
    setItems: (s) => [...setValues.call(s)],
    bigToString: (b) => bigToString.call(b),
    bigint: (s) => BI(s),
    date: (ms) => new D(ms),
    set: (items) => new S(items),
    wellFormed: (s) => (toWellFormed ? toWellFormed.call(s) : s),
    u8FromBuffer: (b) => new Uint8Array(b),
    streamReader(stream) {
      const reader = stream.getReader();
      return [() => reader.read(), (reason) => reader.cancel(reason)];
    },
    hostStream(pull, cancel) {
      return new (streamClass())({
        async pull(controller) {
          const r = await pull();
          if (r.done) controller.close();
          else controller.enqueue(r.value);
        },
        cancel() {
          return cancel();
        },
      });
    },
  };
});
