// @ts-check
/**
 * sync.js: the state side of the ws-sync compatible client (re-exported by tether-client.js).
 *
 * Plain ES module, no dependencies, no build step. Two parts:
 *   1. JSON Pointer (RFC 6901) and JSON Patch (RFC 6902) with structural sharing: `applyPatch`
 *      never mutates its input; it copies only the containers on the path from the root to each
 *      changed node (each at most once per patch) and keeps every untouched subtree by identity.
 *      `diff` computes the ops between two states, skipping subtrees that are `===`.
 *   2. `SyncedStore`: one synced object (`KEY`) of a ws-sync session. It applies the server's
 *      `_SET:KEY` / `_PATCH:KEY`, answers `_GET:KEY`, routes `_ACTION:KEY`, and sends local
 *      changes, actions and tasks. It talks to the socket through a {@link SyncTransport}
 *      (`Session` in tether-client.js implements it), so it can also be driven without one.
 *
 * Difference from ws-sync-react, on purpose: local changes are sent with RFC 6901-escaped paths
 * (`a/b` → `/a~1b`, `m~n` → `/m~0n`); ws-sync-react joins Immer paths with `/` unescaped, which
 * produces a wrong pointer for keys containing `/` or `~`.
 */

// ---------------------------------------------------------------------------------------------
// 1. JSON Pointer and JSON Patch
// ---------------------------------------------------------------------------------------------

/**
 * A JSON value (what `JSON.parse` returns).
 * @typedef {null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue}} JsonValue
 */

/**
 * One RFC 6902 operation.
 * @typedef {{op: 'add', path: string, value: any}
 *   | {op: 'remove', path: string}
 *   | {op: 'replace', path: string, value: any}
 *   | {op: 'move', from: string, path: string}
 *   | {op: 'copy', from: string, path: string}
 *   | {op: 'test', path: string, value: any}} Operation
 */

/** A JSON Patch operation that could not be applied; the document was left unchanged. */
export class PatchError extends Error {
  /**
   * @param {string} message
   * @param {number} index position of the failing op in the patch (-1: the patch itself)
   * @param {unknown} [operation] the failing op
   */
  constructor(message, index, operation) {
    super(index >= 0 ? `op ${index} (${safeJson(operation)}): ${message}` : message);
    this.name = 'PatchError';
    /** @type {number} */
    this.index = index;
    /** @type {unknown} */
    this.operation = operation;
  }
}

/** @param {unknown} v */
function safeJson(v) {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 200 ? s.slice(0, 200) + '…' : s;
  } catch {
    return String(v);
  }
}

/**
 * Escape one reference token (RFC 6901 §3): `~` → `~0`, `/` → `~1`.
 * @param {string | number} token
 * @returns {string}
 */
export function escapePathToken(token) {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Build a JSON Pointer from unescaped tokens: `['a/b', 0]` → `/a~1b/0`; `[]` → `''` (the root).
 * @param {readonly (string | number)[]} tokens
 * @returns {string}
 */
export function toPointer(tokens) {
  let s = '';
  for (const t of tokens) s += '/' + escapePathToken(t);
  return s;
}

/**
 * Split a JSON Pointer into unescaped tokens (RFC 6901 §4): `/a~1b/~0c` → `['a/b', '~c']`.
 * @param {string} pointer
 * @returns {string[]}
 * @throws {PatchError} when it is not a valid pointer
 */
export function parsePointer(pointer) {
  if (typeof pointer !== 'string') throw new PatchError(`path is not a string: ${safeJson(pointer)}`, -1);
  if (pointer === '') return [];
  if (pointer[0] !== '/') throw new PatchError(`path does not start with '/': ${safeJson(pointer)}`, -1);
  const raw = pointer.slice(1).split('/');
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i];
    if (t.includes('~')) {
      if (/~(?![01])/.test(t)) throw new PatchError(`bad escape in path ${safeJson(pointer)}`, -1);
      raw[i] = t.replace(/~1/g, '/').replace(/~0/g, '~');
    }
  }
  return raw;
}

/**
 * Structural equality of JSON values (RFC 6902 §4.6: object member order does not matter).
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const aArr = Array.isArray(a);
  if (aArr !== Array.isArray(b)) return false;
  if (aArr) {
    const x = /** @type {unknown[]} */ (a);
    const y = /** @type {unknown[]} */ (b);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!jsonEqual(x[i], y[i])) return false;
    return true;
  }
  const x = /** @type {Record<string, unknown>} */ (a);
  const y = /** @type {Record<string, unknown>} */ (b);
  const kx = Object.keys(x);
  if (kx.length !== Object.keys(y).length) return false;
  for (const k of kx) {
    if (!Object.prototype.hasOwnProperty.call(y, k) || !jsonEqual(x[k], y[k])) return false;
  }
  return true;
}

/** @typedef {Record<string, unknown> | unknown[]} Container */

/**
 * @param {unknown} v
 * @returns {v is Container}
 */
function isContainer(v) {
  return typeof v === 'object' && v !== null;
}

/**
 * @param {object} obj
 * @param {string} key
 */
function hasOwn(obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/**
 * Set an own data property, also for the key `__proto__` (which plain assignment would turn into
 * a prototype change).
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {unknown} value
 */
function setKey(obj, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/**
 * An array index token: `0` or digits without a leading zero (RFC 6901 §4), `-` if `allowEnd`.
 * @param {string} token
 * @param {number} length
 * @param {boolean} allowEnd true for `add`: the index may equal the length, `-` means the end
 * @returns {number}
 */
function arrayIndex(token, length, allowEnd) {
  if (token === '-') {
    if (allowEnd) return length;
    throw new Error(`'-' only names a position for 'add'`);
  }
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`bad array index ${safeJson(token)}`);
  const i = Number(token);
  if (i > length || (i === length && !allowEnd)) throw new Error(`array index ${i} out of bounds (length ${length})`);
  return i;
}

/**
 * Copy-on-write context of one `applyPatch` call: containers copied during this call are owned
 * and may be mutated in place; every other container is shared and copied before a change.
 */
class Writer {
  constructor() {
    /** @type {Set<object>} */
    this.owned = new Set();
  }

  /**
   * @template {Container} T
   * @param {T} node
   * @returns {T}
   */
  own(node) {
    if (this.owned.has(node)) return node;
    const copy = /** @type {T} */ (Array.isArray(node) ? node.slice() : { ...node });
    this.owned.add(copy);
    return copy;
  }

  /**
   * Walk `tokens[0..n-1]` from `root`, owning every container on the way, and call `fn` on the
   * owned parent with the last token. Returns the (possibly new) root.
   * @param {unknown} root
   * @param {string[]} tokens at least one
   * @param {(parent: Container, token: string) => void} fn
   * @returns {unknown}
   */
  edit(root, tokens, fn) {
    if (!isContainer(root)) throw new Error('path not found: the document is not a container');
    const newRoot = this.own(root);
    /** @type {Container} */
    let node = newRoot;
    for (let i = 0; i < tokens.length - 1; i++) {
      const t = tokens[i];
      /** @type {unknown} */
      let child;
      if (Array.isArray(node)) {
        const idx = arrayIndex(t, node.length, false);
        child = node[idx];
        if (!isContainer(child)) throw new Error(`path not found at ${safeJson(toPointer(tokens.slice(0, i + 1)))}`);
        const owned = this.own(child);
        node[idx] = owned;
        node = owned;
      } else {
        if (!hasOwn(node, t)) throw new Error(`path not found at ${safeJson(toPointer(tokens.slice(0, i + 1)))}`);
        child = node[t];
        if (!isContainer(child)) throw new Error(`path not found at ${safeJson(toPointer(tokens.slice(0, i + 1)))}`);
        const owned = this.own(child);
        setKey(node, t, owned);
        node = owned;
      }
    }
    fn(node, tokens[tokens.length - 1]);
    return newRoot;
  }
}

/**
 * The value at `tokens`, or throws when there is none.
 * @param {unknown} root
 * @param {string[]} tokens
 * @returns {unknown}
 */
function getAt(root, tokens) {
  let node = root;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (Array.isArray(node)) {
      node = node[arrayIndex(t, node.length, false)];
    } else if (isPlainObject(node) && hasOwn(node, t)) {
      node = node[t];
    } else {
      throw new Error(`path not found at ${safeJson(toPointer(tokens.slice(0, i + 1)))}`);
    }
  }
  return node;
}

/**
 * @param {Writer} w
 * @param {unknown} root
 * @param {string[]} tokens
 * @param {unknown} value
 * @returns {unknown}
 */
function addAt(w, root, tokens, value) {
  if (tokens.length === 0) return value;
  return w.edit(root, tokens, (parent, t) => {
    if (Array.isArray(parent)) parent.splice(arrayIndex(t, parent.length, true), 0, value);
    else setKey(parent, t, value);
  });
}

/**
 * @param {Writer} w
 * @param {unknown} root
 * @param {string[]} tokens
 * @returns {unknown}
 */
function removeAt(w, root, tokens) {
  if (tokens.length === 0) throw new Error('cannot remove the whole document');
  return w.edit(root, tokens, (parent, t) => {
    if (Array.isArray(parent)) {
      parent.splice(arrayIndex(t, parent.length, false), 1);
    } else {
      if (!hasOwn(parent, t)) throw new Error(`no member ${safeJson(t)} to remove`);
      delete parent[t];
    }
  });
}

/**
 * @param {Writer} w
 * @param {unknown} root
 * @param {string[]} tokens
 * @param {unknown} value
 * @returns {unknown}
 */
function replaceAt(w, root, tokens, value) {
  if (tokens.length === 0) return value;
  return w.edit(root, tokens, (parent, t) => {
    if (Array.isArray(parent)) {
      parent[arrayIndex(t, parent.length, false)] = value;
    } else {
      if (!hasOwn(parent, t)) throw new Error(`no member ${safeJson(t)} to replace`);
      setKey(parent, t, value);
    }
  });
}

/**
 * @param {Writer} w
 * @param {unknown} root
 * @param {unknown} op
 * @returns {unknown} the new root
 */
function applyOp(w, root, op) {
  if (!isContainer(op) || Array.isArray(op)) throw new Error('an operation must be an object');
  const o = /** @type {Record<string, unknown>} */ (op);
  const path = parsePointer(/** @type {string} */ (o.path));
  const needValue = () => {
    if (!hasOwn(o, 'value')) throw new Error(`'${o.op}' needs a 'value'`);
    return o.value;
  };
  switch (o.op) {
    case 'add':
      return addAt(w, root, path, needValue());
    case 'remove':
      return removeAt(w, root, path);
    case 'replace':
      return replaceAt(w, root, path, needValue());
    case 'test': {
      const expected = needValue();
      if (!jsonEqual(getAt(root, path), expected)) throw new Error('test failed');
      return root;
    }
    case 'move': {
      const fromStr = /** @type {string} */ (o.from);
      const from = parsePointer(fromStr);
      if (fromStr === o.path) {
        getAt(root, from); // must exist
        return root;
      }
      if (String(o.path).startsWith(fromStr + '/')) throw new Error(`cannot move ${safeJson(fromStr)} into itself`);
      const value = getAt(root, from);
      return addAt(w, removeAt(w, root, from), path, value);
    }
    case 'copy': {
      const value = getAt(root, parsePointer(/** @type {string} */ (o.from)));
      // The copy now shares its containers with the source: none of them may be edited in place.
      if (isContainer(value)) w.owned.clear();
      return addAt(w, root, path, value);
    }
    default:
      throw new Error(`unknown op ${safeJson(o.op)}`);
  }
}

/**
 * Apply an RFC 6902 patch and return the new document. Atomic and non-mutating: `doc` and the
 * ops' values are never modified; on any failure a {@link PatchError} is thrown and nothing
 * observable has changed. Unchanged subtrees of the result are the same objects as in `doc`;
 * containers on a changed path are fresh copies (each copied at most once per call).
 * Op values are inserted as they are (not cloned): they become part of the new document.
 * @template T
 * @param {T} doc
 * @param {readonly Operation[] | readonly unknown[]} ops
 * @returns {T}
 */
export function applyPatch(doc, ops) {
  if (!Array.isArray(ops)) throw new PatchError(`a patch must be an array, got ${safeJson(ops)}`, -1);
  const w = new Writer();
  /** @type {unknown} */
  let root = doc;
  for (let i = 0; i < ops.length; i++) {
    try {
      root = applyOp(w, root, ops[i]);
    } catch (err) {
      throw new PatchError(err instanceof Error ? err.message : String(err), i, ops[i]);
    }
  }
  return /** @type {T} */ (root);
}

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
function isPlainObject(v) {
  return isContainer(v) && !Array.isArray(v);
}

/**
 * The ops (`add` / `remove` / `replace`, paths RFC 6901-escaped) that turn `a` into `b`.
 * Subtrees that are `===` are skipped without being visited, so a state built with structural
 * sharing diffs in time proportional to what changed. Arrays: the common prefix and suffix
 * (by identity) are skipped, the middle is diffed pairwise and the rest added or removed, so one
 * insertion or removal anywhere is one op. Object members whose value is `undefined` count as
 * absent (as in JSON).
 * @param {unknown} a
 * @param {unknown} b
 * @param {string} [path] pointer prefix of `a`/`b` (default: the root)
 * @returns {Operation[]}
 */
export function diff(a, b, path = '') {
  /** @type {Operation[]} */
  const ops = [];
  diffInto(a, b, path, ops);
  return ops;
}

/**
 * @param {unknown} a
 * @param {unknown} b
 * @param {string} path
 * @param {Operation[]} ops
 */
function diffInto(a, b, path, ops) {
  if (a === b) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    let start = 0;
    const min = Math.min(a.length, b.length);
    while (start < min && a[start] === b[start]) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
      endA--;
      endB--;
    }
    const common = Math.min(endA, endB) - start;
    for (let k = 0; k < common; k++) diffInto(a[start + k], b[start + k], `${path}/${start + k}`, ops);
    for (let i = start + common; i < endB; i++) ops.push({ op: 'add', path: `${path}/${i}`, value: b[i] });
    for (let i = start + common; i < endA; i++) ops.push({ op: 'remove', path: `${path}/${start + common}` });
    return;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const k of Object.keys(a)) {
      if (a[k] !== undefined && (!hasOwn(b, k) || b[k] === undefined)) {
        ops.push({ op: 'remove', path: `${path}/${escapePathToken(k)}` });
      }
    }
    for (const k of Object.keys(b)) {
      const bv = b[k];
      if (bv === undefined) continue;
      const p = `${path}/${escapePathToken(k)}`;
      if (!hasOwn(a, k) || a[k] === undefined) ops.push({ op: 'add', path: p, value: bv });
      else diffInto(a[k], bv, p, ops);
    }
    return;
  }
  if (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)) return;
  ops.push({ op: 'replace', path, value: b });
}

/**
 * The ops for setting one top-level member, like ws-sync-react's `syncFoo(v)`:
 * `[{op: 'replace', path: '/foo', value}]` (`add` when `state` has no such member, since RFC 6902
 * `replace` requires the target to exist). The key is RFC 6901-escaped.
 * @param {unknown} state
 * @param {string} key
 * @param {unknown} value
 * @returns {Operation[]}
 */
export function setOps(state, key, value) {
  const path = '/' + escapePathToken(key);
  const exists = isPlainObject(state) && hasOwn(state, key);
  return [exists ? { op: 'replace', path, value } : { op: 'add', path, value }];
}

// ---------------------------------------------------------------------------------------------
// 2. SyncedStore: one synced object of a ws-sync session
// ---------------------------------------------------------------------------------------------

/** Binary payloads accepted by `sendBinary`. @typedef {ArrayBuffer | ArrayBufferView | Blob} BinaryData */

/**
 * What a {@link SyncedStore} needs from the session (tether-client.js `Session` implements it).
 * `send`/`sendBinary` return false when the frame was not sent (not connected).
 * @typedef {object} SyncTransport
 * @property {(type: string, handler: (data: any) => void) => void} registerEvent throws if `type` is taken
 * @property {(type: string) => void} deregisterEvent
 * @property {(type: string, data: unknown) => boolean} send
 * @property {(type: string, metadata: unknown, data: BinaryData) => boolean} sendBinary
 * @property {(fn: () => void) => () => void} [onOpen] called on every (re)connect; returns an unsubscribe
 */

/** An action or task request: `{type: name, ...args}`. @typedef {{type: string} & Record<string, unknown>} Action */

/**
 * A problem of one store, never thrown at the server's frames:
 * - `PATCH_FAILED`: a `_PATCH:KEY` could not be applied; the state was kept and `_GET:KEY` sent
 *   (`resync` tells whether it could be sent);
 * - `BAD_FRAME`: a `_SET`/`_PATCH`/`_ACTION` whose data has the wrong shape;
 * - `HANDLER_FAILED`: an exposed action handler or subscriber threw.
 * @typedef {object} StoreError
 * @property {'PATCH_FAILED' | 'BAD_FRAME' | 'HANDLER_FAILED'} code
 * @property {string} key
 * @property {string} message
 * @property {unknown} [error] the underlying error (a {@link PatchError} for `PATCH_FAILED`)
 * @property {unknown} [data] the frame's data
 * @property {boolean} [resync]
 */

/**
 * @template T
 * @typedef {(ev: T) => void} Listener
 */

/**
 * The state of one synced object `KEY`, kept in step with the server over a ws-sync session.
 *
 * Incoming (server → client):
 * - `_SET:KEY` replaces the state (whole: like ws-sync-react's `useSyncedReducer`, not zustand's
 *   shallow merge);
 * - `_PATCH:KEY` is applied with {@link applyPatch} (structural sharing, atomic). If it fails the
 *   state is kept, a `PATCH_FAILED` error is emitted (and console.warn'ed when nobody listens)
 *   and `_GET:KEY {}` is sent once to ask for a fresh `_SET` (again only after that `_SET` or a
 *   reconnect);
 * - `_GET:KEY` is answered with `_SET:KEY` and the current state;
 * - `_ACTION:KEY` `{type, ...payload}` goes to the handler registered with
 *   {@link SyncedStore#registerExposedActions} for `type` (called with `payload`, without `type`),
 *   else to the `action` listeners with the whole action. A binary action arrives the same way
 *   with the bytes in `payload.data`.
 *
 * Outgoing: every method sends at once (no batching, so order is kept) and returns whether the
 * frame went out; when the session is not connected nothing is queued (like ws-sync) and the
 * session reports a `NOT_CONNECTED` error. Local changes (`patch`, `update`, `set`, `sendState`)
 * are applied locally even when they cannot be sent; the server's `_SET` after the reconnect
 * replaces them.
 *
 * @template [S=any]
 */
export class SyncedStore {
  /**
   * Registers `_SET`, `_GET`, `_PATCH` and `_ACTION` for `key` on the transport (throws if one of
   * them is taken, e.g. by another store with the same key). `close()` deregisters them.
   * @param {SyncTransport} transport
   * @param {string} key
   * @param {S} [initialState]
   */
  constructor(transport, key, initialState) {
    /** @readonly */
    this.key = key;
    this._t = transport;
    /** @type {S} */
    this._state = /** @type {S} */ (initialState === undefined ? {} : initialState);
    /** @type {Set<(state: S, prev: S) => void>} */
    this._subs = new Set();
    /** @type {Set<Listener<StoreError>>} */
    this._errorListeners = new Set();
    /** @type {Set<Listener<Action>>} */
    this._actionListeners = new Set();
    /** @type {Map<string, (payload: Record<string, unknown>) => void>} */
    this._exposed = new Map();
    this._resyncPending = false;
    this._closed = false;

    /** @type {string[]} */
    this._registered = [];
    try {
      this._register(`_SET:${key}`, (data) => this._onSet(data));
      this._register(`_GET:${key}`, () => this._onGet());
      this._register(`_PATCH:${key}`, (data) => this._onPatch(data));
      this._register(`_ACTION:${key}`, (data) => this._onAction(data));
    } catch (err) {
      for (const t of this._registered) transport.deregisterEvent(t);
      throw err;
    }
    this._offOpen = transport.onOpen?.(() => {
      this._resyncPending = false;
    });
  }

  /**
   * @param {string} type
   * @param {(data: any) => void} handler
   */
  _register(type, handler) {
    this._t.registerEvent(type, handler);
    this._registered.push(type);
  }

  /** The current state. Never mutate it: changes go through `update`/`patch`/`set`. */
  get state() {
    return this._state;
  }

  /** Same as the `state` getter (for store-style consumers, e.g. React's `useSyncExternalStore`). */
  getState() {
    return this._state;
  }

  /**
   * Call `fn(newState, oldState)` after every change (remote or local). Returns the unsubscribe.
   * @param {(state: S, prev: S) => void} fn
   * @returns {() => void}
   */
  subscribe(fn) {
    this._subs.add(fn);
    return () => {
      this._subs.delete(fn);
    };
  }

  /**
   * Listen to `error` ({@link StoreError}) or `action` (a remote `_ACTION:KEY` that no exposed
   * action handles, with its `type`). Returns the unsubscribe.
   * @overload
   * @param {'error'} type
   * @param {Listener<StoreError>} fn
   * @returns {() => void}
   */
  /**
   * @overload
   * @param {'action'} type
   * @param {Listener<Action>} fn
   * @returns {() => void}
   */
  /**
   * @param {'error' | 'action'} type
   * @param {Listener<any>} fn
   * @returns {() => void}
   */
  on(type, fn) {
    const set = type === 'error' ? this._errorListeners : this._actionListeners;
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /** Deregister from the session; the store keeps its last state but no longer syncs. */
  close() {
    if (this._closed) return;
    this._closed = true;
    for (const t of this._registered) {
      try {
        this._t.deregisterEvent(t);
      } catch {
        // already gone
      }
    }
    this._registered = [];
    this._offOpen?.();
  }

  // --- outgoing ---------------------------------------------------------------------------

  /**
   * Send `_ACTION:KEY` with `{type, ...args}`: `sendAction({type: 'ADD', note: 'x'})` or
   * `sendAction('ADD', {note: 'x'})`.
   * @param {Action | string} action
   * @param {Record<string, unknown>} [args]
   * @returns {boolean} sent
   */
  sendAction(action, args) {
    return this._t.send(`_ACTION:${this.key}`, toAction(action, args));
  }

  /**
   * Send `_TASK_START:KEY` with `{type, ...args}`.
   * @param {Action | string} task
   * @param {Record<string, unknown>} [args]
   * @returns {boolean} sent
   */
  startTask(task, args) {
    return this._t.send(`_TASK_START:${this.key}`, toAction(task, args));
  }

  /**
   * Send `_TASK_CANCEL:KEY` with `{type}` (other fields of an object argument are sent as given).
   * @param {{type: string} | string} task
   * @returns {boolean} sent
   */
  cancelTask(task) {
    return this._t.send(`_TASK_CANCEL:${this.key}`, typeof task === 'string' ? { type: task } : task);
  }

  /**
   * Send `_GET:KEY {}`: the server answers with `_SET:KEY`.
   * @returns {boolean} sent
   */
  fetchRemoteState() {
    return this._t.send(`_GET:${this.key}`, {});
  }

  /**
   * Replace the state locally and send it whole as `_SET:KEY` (ws-sync-react only sends it).
   * @param {S} state
   * @returns {boolean} sent
   */
  sendState(state) {
    this._commit(state);
    return this._t.send(`_SET:${this.key}`, state);
  }

  /**
   * Send a binary action: `_BIN_META {type: "_ACTION:KEY", metadata: action}` then the bytes.
   * The server's action handler receives `data=<bytes>` plus the action's other fields.
   * @param {Action | string} action
   * @param {BinaryData} data
   * @returns {boolean} sent
   */
  sendBinary(action, data) {
    return this._t.sendBinary(`_ACTION:${this.key}`, toAction(action), data);
  }

  /**
   * Apply `ops` locally (atomically, with structural sharing) and send them as `_PATCH:KEY`.
   * Throws a {@link PatchError} (and sends nothing) if they do not apply to the current state.
   * Paths must be RFC 6901-escaped (use {@link toPointer}).
   * @param {readonly Operation[]} ops
   * @returns {boolean} sent (true for an empty patch, which is not sent)
   */
  patch(ops) {
    const next = applyPatch(this._state, ops);
    if (ops.length === 0) return true;
    this._commit(next);
    return this._t.send(`_PATCH:${this.key}`, ops);
  }

  /**
   * Change the state locally and send the difference as one `_PATCH:KEY`. `next` is the new state,
   * or a function from the current state to the new one. Build it immutably, reusing unchanged
   * subtrees (`{...s, todo: [...s.todo, item]}`): it becomes the state as it is, and the ops are
   * computed by {@link diff}, which skips shared subtrees. Never mutate the current state.
   * @param {S | ((state: S) => S)} next
   * @returns {boolean} sent (true when nothing changed)
   */
  update(next) {
    const value = typeof next === 'function' ? /** @type {(state: S) => S} */ (next)(this._state) : next;
    const ops = diff(this._state, value);
    if (ops.length === 0) return true;
    this._commit(value);
    return this._t.send(`_PATCH:${this.key}`, ops);
  }

  /**
   * Set one top-level member locally and send `[{op: 'replace', path: '/<key>', value}]`, like
   * ws-sync-react's `syncFoo(value)` (`add` if the member does not exist yet).
   * @param {string} member
   * @param {unknown} value
   * @returns {boolean} sent
   */
  set(member, value) {
    return this.patch(setOps(this._state, member, value));
  }

  /**
   * Handlers for server → client actions (`Sync.send_action({type: name, ...})` in Python).
   * A handler gets the action without `type`. They take precedence over `action` listeners.
   * Throws if one of the names already has a handler. Returns the function that removes them.
   * @param {Record<string, (payload: any) => void>} handlers
   * @returns {() => void}
   */
  registerExposedActions(handlers) {
    const names = Object.keys(handlers);
    for (const n of names) {
      if (this._exposed.has(n)) throw new Error(`action handler already registered for ${n}`);
    }
    for (const n of names) this._exposed.set(n, handlers[n]);
    return () => {
      for (const n of names) if (this._exposed.get(n) === handlers[n]) this._exposed.delete(n);
    };
  }

  // --- incoming ---------------------------------------------------------------------------

  /** @param {unknown} data */
  _onSet(data) {
    this._resyncPending = false;
    this._commit(/** @type {S} */ (data));
  }

  _onGet() {
    this._t.send(`_SET:${this.key}`, this._state);
  }

  /** @param {unknown} data */
  _onPatch(data) {
    if (!Array.isArray(data)) {
      this._error({ code: 'BAD_FRAME', key: this.key, message: `_PATCH:${this.key} data is not an array`, data });
      return;
    }
    let next;
    try {
      next = applyPatch(this._state, data);
    } catch (err) {
      let resync = false;
      if (!this._resyncPending) {
        resync = this._t.send(`_GET:${this.key}`, {});
        this._resyncPending = resync;
      }
      const message = `_PATCH:${this.key} not applied, state kept${resync ? ', _GET sent' : ''}: ${
        err instanceof Error ? err.message : String(err)
      }`;
      this._error({ code: 'PATCH_FAILED', key: this.key, message, error: err, data, resync });
      return;
    }
    if (data.length > 0) this._commit(next);
  }

  /** @param {unknown} data */
  _onAction(data) {
    if (!isPlainObject(data) || typeof data.type !== 'string') {
      this._error({ code: 'BAD_FRAME', key: this.key, message: `_ACTION:${this.key} data has no string 'type'`, data });
      return;
    }
    const action = /** @type {Action} */ (data);
    const handler = this._exposed.get(action.type);
    if (handler) {
      const { type: _type, ...payload } = action;
      try {
        handler(payload);
      } catch (err) {
        this._error({ code: 'HANDLER_FAILED', key: this.key, message: `action handler '${action.type}' threw: ${String(err)}`, error: err });
      }
      return;
    }
    if (this._actionListeners.size === 0) {
      console.warn(`[tether sync] no handler for action '${action.type}' of ${this.key}`);
      return;
    }
    for (const fn of [...this._actionListeners]) {
      try {
        fn(action);
      } catch (err) {
        this._error({ code: 'HANDLER_FAILED', key: this.key, message: `action listener threw: ${String(err)}`, error: err });
      }
    }
  }

  /** @param {S} next */
  _commit(next) {
    const prev = this._state;
    if (next === prev) return;
    this._state = next;
    for (const fn of [...this._subs]) {
      try {
        fn(next, prev);
      } catch (err) {
        this._error({ code: 'HANDLER_FAILED', key: this.key, message: `subscriber threw: ${String(err)}`, error: err });
      }
    }
  }

  /** @param {StoreError} e */
  _error(e) {
    if (this._errorListeners.size === 0) {
      console.warn(`[tether sync] ${e.message}`);
      return;
    }
    for (const fn of [...this._errorListeners]) {
      try {
        fn(e);
      } catch (err) {
        console.error('[tether sync] an error listener threw', err);
      }
    }
  }
}

/**
 * @param {Action | string} action
 * @param {Record<string, unknown>} [args]
 * @returns {Action}
 */
function toAction(action, args) {
  // `type` first, as ws-sync-react sends it (`{type: name, ...args}`), and not overridable by args.
  const type = typeof action === 'string' ? action : action?.type;
  if (typeof type !== 'string') throw new TypeError('an action needs a string `type`');
  if (typeof action === 'string') return Object.assign({ type }, args, { type });
  return args ? Object.assign({ type }, action, args, { type }) : action;
}
