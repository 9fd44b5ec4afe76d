// @ts-check
/**
 * ui-protocol.js: the sidekick wire format as the /ui page speaks it (sidekick-py 0.0.7; the
 * envelope and payloads are in docs/protocol/ui.md; they are sidekick-py 0.0.7's).
 *
 * Every frame is one JSON object `{id: 0, component, type, target?, src?, payload?}`. The page
 * receives `system/announce`, `global/clearAll` and `<component>/spawn|update|remove`, and sends
 * its own `system/announce` plus `<component>/event|error` with `src` set to the instance id.
 */

/**
 * A decoded JSON object (a frame, a payload or its options).
 * @typedef {{[key: string]: unknown}} Obj
 */

/**
 * The version this page puts in its announce. Nothing checks it (there is no protocol version in
 * sidekick); it is the version of the stock webapp whose behaviour the page implements.
 */
export const UI_VERSION = '0.0.8';

/** The implicit top-level container; the hero never spawns it. */
export const ROOT_ID = 'root';

/** @param {unknown} v @returns {v is Obj} */
export function isObj(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A string for display: `null`/`undefined` become `''`, anything else goes through `String`.
 * @param {unknown} v
 */
export function str(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : String(v);
}

/**
 * Parse one text frame. Python's `json.dumps` writes bare `NaN`, `Infinity` and `-Infinity` for
 * such floats (not strict JSON); they are read back as the numbers they stand for. Returns `null`
 * (and warns) when the text is not a JSON object even then.
 * @param {string} text
 * @returns {Obj | null}
 */
export function parseFrame(text) {
  /** @type {unknown} */
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    const tag = `\u0000nonfinite-${Math.random().toString(36).slice(2)}:`;
    try {
      v = JSON.parse(rewriteNonFinite(text, tag), (_k, x) =>
        typeof x === 'string' && x.startsWith(tag) ? Number(x.slice(tag.length)) : x,
      );
    } catch (err) {
      console.warn('ui: ignoring a frame that is not JSON:', /** @type {Error} */ (err).message, text.slice(0, 200));
      return null;
    }
  }
  if (!isObj(v)) {
    console.warn('ui: ignoring a frame that is not a JSON object:', text.slice(0, 200));
    return null;
  }
  return v;
}

/**
 * Replace the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings by tagged strings.
 * @param {string} text
 * @param {string} tag
 */
function rewriteNonFinite(text, tag) {
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      i++;
      while (i < n && text.charCodeAt(i) !== 34) i += text.charCodeAt(i) === 92 /* \ */ ? 2 : 1;
      i++;
      continue;
    }
    const tok = ['NaN', 'Infinity', '-Infinity'].find((t) => text.startsWith(t, i));
    if (tok) {
      out += `${text.slice(last, i)}${JSON.stringify(tag + tok)}`;
      i += tok.length;
      last = i;
    } else {
      i++;
    }
  }
  return out + text.slice(last);
}

/** A random UUID v4, also where `crypto.randomUUID` is missing (plain http on a LAN address). */
export function uuid4() {
  if (typeof crypto.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch {
      // not a secure context: fall through
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** This page's peer id: `sidekick-<uuid v4>`, fixed per page load like the stock UI's. */
export function newPeerId() {
  return `sidekick-${uuid4()}`;
}

/**
 * The page's presence announce (as sidekick-py 0.0.7's page sends it): no `target`/`src`, `role: "sidekick"`.
 * @param {string} peerId
 * @param {'online' | 'offline'} status
 */
export function announceFrame(peerId, status) {
  return {
    id: 0,
    component: 'system',
    type: 'announce',
    payload: { peerId, role: 'sidekick', status, version: UI_VERSION, timestamp: Date.now() },
  };
}

/**
 * A UI → hero event, key order as the stock UI writes it.
 * @param {string} component
 * @param {string} src the instance id
 * @param {Obj} payload `{event: "click" | "submit", …}`
 */
export function eventFrame(component, src, payload) {
  return { id: 0, component, type: 'event', src, payload };
}

/**
 * A UI → hero error report for one component; it becomes an `ErrorEvent` in the hero.
 * @param {string} component
 * @param {string} src
 * @param {string} message
 */
export function errorFrame(component, src, message) {
  return { id: 0, component, type: 'error', src, payload: { message } };
}
