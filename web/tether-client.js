// @ts-check
/**
 * tether-client.js: browser (and node) clients for the tether server.
 *
 * Plain ES module, no build step. Served by the server at `/tether-client.js`.
 *
 * Layout:
 *   1. shared plumbing: error type, typed event emitter, URL helper, a reconnecting JSON WebSocket
 *      (exponential backoff), usable by every client in this module;
 *   2. `RoomsClient`: the rooms protocol on `/ws/rooms` (docs/protocol/rooms.md §4);
 *   3. `Session`: a ws-sync compatible session (the wire protocol of ws-sync / ws-sync-react's
 *      `Session`), with `session.synced(key)` stores from `./sync.js`
 *      (JSON Patch with structural sharing), re-exported here.
 *
 * In node (no global WebSocket before node 22), inject one:
 *   `new RoomsClient('ws://127.0.0.1:8700/ws/rooms', { WebSocket: (await import('ws')).WebSocket })`.
 */

import { SyncedStore } from './sync.js';

export {
  PatchError,
  SyncedStore,
  applyPatch,
  diff,
  escapePathToken,
  jsonEqual,
  parsePointer,
  setOps,
  toPointer,
} from './sync.js';

// ---------------------------------------------------------------------------------------------
// 1. Shared plumbing
// ---------------------------------------------------------------------------------------------

/**
 * The subset of the browser `WebSocket` API the clients use (the npm `ws` package implements it).
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(data: string | ArrayBuffer | ArrayBufferView | Blob) => void} send
 * @property {string} [binaryType] set before use when the client asks for one (`Session`)
 * @property {(code?: number, reason?: string) => void} close
 * @property {(type: string, listener: (ev: any) => void) => void} addEventListener
 */

/** @typedef {new (url: string) => WebSocketLike} WebSocketCtor */

/** `WebSocket.OPEN`, spelled out so that injected implementations need no static constants. */
const WS_OPEN = 1;

/** Largest frame the server accepts (docs/protocol/rooms.md §1): larger ones close the socket with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * Error codes produced by the client itself (the server's codes are in docs/protocol/rooms.md §6).
 * @readonly
 */
export const LocalErrors = Object.freeze({
  /** the client was closed (`close()` / `quit()`) before the request completed */
  CLOSED: 'CLOSED',
  /** the connection dropped after the request was sent: it may or may not have been executed */
  DISCONNECTED: 'DISCONNECTED',
  /** too many requests awaiting a reply (see `maxPending`) */
  TOO_MANY_PENDING: 'TOO_MANY_PENDING',
  /** no reply within `timeout` ms */
  TIMEOUT: 'TIMEOUT',
  /** the request would exceed the server's 64 KiB frame limit */
  FRAME_TOO_BIG: 'FRAME_TOO_BIG',
  /** a server frame that is not a JSON object */
  BAD_REPLY: 'BAD_REPLY',
  /** `Session`: a frame was not sent because the socket is not open (nothing is queued) */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** `Session`: an event handler registered with `registerEvent`/`registerBinary` threw */
  HANDLER_FAILED: 'HANDLER_FAILED',
});

/** An error with a protocol code: the server's `error` field, or one of {@link LocalErrors}. */
export class TetherError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {unknown} [reply] the server's reply object, when there is one
   */
  constructor(code, message, reply) {
    super(message);
    this.name = 'TetherError';
    /** @type {string} */
    this.code = code;
    /** @type {unknown} */
    this.reply = reply;
  }
}

/**
 * A small typed event emitter. Listener exceptions are reported and never break the emitter.
 * @template {Record<string, any>} Events
 */
class Emitter {
  constructor() {
    /** @type {Map<keyof Events, Set<(ev: any) => void>>} */
    this._listeners = new Map();
  }

  /**
   * Subscribe to an event; returns the function that unsubscribes.
   * @template {keyof Events} K
   * @param {K} type
   * @param {(ev: Events[K]) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (!set) {
      set = new Set();
      this._listeners.set(type, set);
    }
    set.add(fn);
    return () => {
      this._listeners.get(type)?.delete(fn);
    };
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} ev
   */
  emit(type, ev) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(ev);
      } catch (err) {
        console.error(`tether-client: a '${String(type)}' listener threw`, err);
      }
    }
  }
}

/**
 * Resolve a WebSocket URL. `url` may be a full `ws(s)://` or `http(s)://` URL, or a path resolved
 * against the page's location (`http` becomes `ws`, `https` becomes `wss`).
 * @param {string | undefined} url
 * @param {string} defaultPath e.g. `/ws/rooms`
 * @returns {string}
 */
export function resolveWsUrl(url, defaultPath) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  if (!url && !base) {
    throw new TypeError('tether-client: no URL given and no page location to derive it from');
  }
  const u = new URL(url || defaultPath, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`tether-client: not a WebSocket URL: ${u.href}`);
  }
  return u.href;
}

/**
 * Exponential backoff: `min`, 2·min, 4·min, … capped at `max`.
 * @param {number} attempt 0 for the first retry
 * @param {number} min
 * @param {number} max
 */
export function backoffDelay(attempt, min, max) {
  return Math.min(max, min * 2 ** Math.min(attempt, 30));
}

/**
 * @typedef {object} SocketHooks
 * @property {(ws: WebSocketLike) => void} open a new socket is open
 * @property {(frame: Record<string, unknown>) => void} frame a JSON object arrived
 * @property {(info: {code: number, reason: string, willRetry: boolean}) => void} close the socket closed
 * @property {(err: TetherError) => void} error a frame that is not a JSON object arrived
 * @property {(data: unknown) => void} [binary] a binary frame arrived (without this hook binary
 *   frames are decoded as UTF-8 JSON like text frames)
 */

/**
 * One logical connection that reopens its WebSocket with exponential backoff until stopped.
 * It carries JSON objects, one per text frame. Shared by the clients of this module.
 */
class ReconnectingSocket {
  /**
   * @param {string} url
   * @param {{WebSocket: WebSocketCtor, minDelay: number, maxDelay: number, binaryType?: string}} opts
   * @param {SocketHooks} hooks
   */
  constructor(url, opts, hooks) {
    this.url = url;
    this._opts = opts;
    this._hooks = hooks;
    /** @type {WebSocketLike | null} */
    this._ws = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._timer = null;
    this._attempt = 0;
    this._running = false;
  }

  /** True while started (connected or trying to be). */
  get running() {
    return this._running;
  }

  /** True while the current socket is open. */
  get open() {
    return this._ws !== null && this._ws.readyState === WS_OPEN;
  }

  /** Start connecting (no-op when already started). */
  start() {
    if (this._running) return;
    this._running = true;
    this._attempt = 0;
    this._dial();
  }

  /**
   * Stop: close the socket (if any) and do not reconnect.
   * @param {number} [code]
   * @param {string} [reason]
   */
  stop(code = 1000, reason = '') {
    this._running = false;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    const ws = this._ws;
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
    }
  }

  /** Drop the current socket and reconnect after the backoff delay (used on a failed handshake). */
  drop() {
    if (this._ws) this._ws.close(4000, 'client retry');
  }

  /**
   * Whether a close should be followed by a reconnect (`stop()` clears it, `start()` sets it).
   * Cleared ahead of a close the server is expected to make (e.g. after `quit`).
   * @param {boolean} on
   */
  setRetry(on) {
    this._running = on;
  }

  /** The connection is healthy: the next failure retries after the shortest delay again. */
  resetBackoff() {
    this._attempt = 0;
  }

  /**
   * Send one JSON object. Returns false when the socket is not open.
   * @param {string} text an already serialized frame
   */
  sendText(text) {
    if (!this._ws || this._ws.readyState !== WS_OPEN) return false;
    this._ws.send(text);
    return true;
  }

  /**
   * Send one binary frame. Returns false when the socket is not open.
   * @param {ArrayBuffer | ArrayBufferView | Blob} data
   */
  sendBinary(data) {
    if (!this._ws || this._ws.readyState !== WS_OPEN) return false;
    this._ws.send(data);
    return true;
  }

  _dial() {
    this._timer = null;
    if (!this._running) return;
    /** @type {WebSocketLike} */
    let ws;
    try {
      ws = new this._opts.WebSocket(this.url);
    } catch (err) {
      // A malformed URL is a programming error: report it and stop instead of looping.
      this._running = false;
      this._hooks.error(new TetherError(LocalErrors.CLOSED, `cannot open ${this.url}: ${String(err)}`));
      this._hooks.close({ code: 1006, reason: String(err), willRetry: false });
      return;
    }
    this._ws = ws;
    if (this._opts.binaryType) ws.binaryType = this._opts.binaryType;
    ws.addEventListener('open', () => {
      if (this._ws === ws) this._hooks.open(ws);
    });
    ws.addEventListener('message', (ev) => {
      if (this._ws === ws) this._onMessage(ev.data);
    });
    // 'error' is always followed by 'close'; the listener keeps node's `ws` from throwing.
    ws.addEventListener('error', () => {});
    ws.addEventListener('close', (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      const willRetry = this._running;
      if (willRetry) {
        const delay = backoffDelay(this._attempt++, this._opts.minDelay, this._opts.maxDelay);
        this._timer = setTimeout(() => this._dial(), delay);
      }
      this._hooks.close({ code: Number(ev?.code ?? 1006), reason: String(ev?.reason ?? ''), willRetry });
    });
  }

  /** @param {unknown} data */
  _onMessage(data) {
    if (typeof data !== 'string' && this._hooks.binary) {
      this._hooks.binary(data);
      return;
    }
    let text;
    if (typeof data === 'string') text = data;
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) text = new TextDecoder().decode(data);
    else text = String(data);
    /** @type {unknown} */
    let obj;
    try {
      obj = JSON.parse(text);
    } catch {
      obj = undefined;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      this._hooks.error(new TetherError(LocalErrors.BAD_REPLY, `server frame is not a JSON object: ${text.slice(0, 200)}`));
      return;
    }
    this._hooks.frame(/** @type {Record<string, unknown>} */ (obj));
  }
}

// ---------------------------------------------------------------------------------------------
// 2. RoomsClient: WebSocket JSON rooms protocol on /ws/rooms
// ---------------------------------------------------------------------------------------------

/**
 * A membership status (docs/protocol/rooms.md §2).
 * @typedef {'NEW' | 'CONNECTED' | 'ACTIVE' | 'SUSPENDED' | 'ERROR' | 'CLOSING' | 'CLOSED'} Status
 */
/** @typedef {{client: string, status: Status}} Member */
/** @typedef {'CHAT_ROOMS' | 'ALL' | 'CHAT_ROOM_AND_CLIENTS' | 'CLIENT_CHAT_ROOMS' | 'CLIENTS_FOR_CHAT_ROOM'} ListType */
/** @typedef {{room: string, count: number, members: Member[]}} RoomInfo */

/** @typedef {{id: number | string, ok: true}} OkReply */
/**
 * A place in a room's stream of messages: the offset of the last message seen and its epoch
 * (docs/protocol/rooms.md §11).
 * @typedef {{offset: number, epoch: string}} Position
 */
/**
 * Reply to hello / new / join (the member list follows in a presence push): the room's position at
 * the join; with `since`, `recovered` says whether the missed messages follow (true) or are gone
 * (false: resync from `offset`).
 * @typedef {OkReply & {room: string, client: string, count: number, offset: number, epoch: string, recovered?: boolean}} JoinReply
 */
/** @typedef {OkReply & {room: string, delivered: number, offset: number, epoch: string}} SendReply */
/** @typedef {OkReply & {room: string, target: string, delivered: number}} ToReply */
/** @typedef {OkReply & {type: ListType, rooms: RoomInfo[]}} ListReply */
/** @typedef {OkReply & {room: string, client: string}} RoomReply reply to pause / resume / leave */
/** @typedef {{id: number | string | null, ok: false, error: string, message?: string}} ErrorReply */

/** @typedef {{type: 'message', room: string, from: string, text: string, offset: number, epoch: string}} MessagePush */
/** @typedef {{type: 'direct', room: string, from: string, to: string, text: string}} DirectPush */
/** @typedef {{type: 'join', room: string, client: string}} JoinPush */
/** @typedef {{type: 'leave', room: string, client: string}} LeavePush */
/** @typedef {{type: 'presence', room: string, members: Member[], count: number, truncated: boolean}} PresencePush */
/** @typedef {{type: 'bye', reason: string}} ByePush */
/** @typedef {MessagePush | DirectPush | JoinPush | LeavePush | PresencePush | ByePush} Push */

/**
 * Events of a {@link RoomsClient}: the server's pushes by `type`, plus:
 * - `connected`: the connection became ready (true: open and every room re-registered) or was lost (false);
 * - `close`: the socket closed (`willRetry` false once the client is stopped);
 * - `rejoin`: after a reconnect, the outcome of re-registering one room;
 * - `recover`: after a reconnect (or on a server's `resync` push, with a cluster that lost the
 *   room's history: `recovered: false`), whether a room's missed messages follow as `message` events
 *   (`recovered: true`, no gap and no duplicate) or are gone (`recovered: false`: reload the room's
 *   state, e.g. from `GET /chatrooms/{room}/history`; messages go on after `offset`);
 * - `error`: something went wrong outside any request (a bad frame, an unmatched error reply).
 * @typedef {object} RoomsEvents
 * @property {MessagePush} message
 * @property {DirectPush} direct
 * @property {JoinPush} join
 * @property {LeavePush} leave
 * @property {PresencePush} presence
 * @property {ByePush} bye
 * @property {boolean} connected
 * @property {{code: number, reason: string, willRetry: boolean}} close
 * @property {{room: string, ok: boolean, error?: TetherError}} rejoin
 * @property {{room: string, recovered: boolean, offset: number, epoch: string}} recover
 * @property {TetherError} error
 */

/**
 * @typedef {object} RoomsClientOptions
 * @property {WebSocketCtor} [WebSocket] WebSocket implementation (default: `globalThis.WebSocket`)
 * @property {number} [maxPending] requests awaiting a reply (queued or sent) before new ones are rejected (default 256)
 * @property {number} [timeout] ms before a request is rejected with `TIMEOUT`; 0 for none (default 15000)
 * @property {number} [minDelay] first reconnect delay in ms (default 250)
 * @property {number} [maxDelay] reconnect delay cap in ms (default 10000)
 * @property {'batch' | 'events'} [presence] how the server sends joins and leaves: `batch` (default)
 *   asks for one `presence_batch` frame per room and tick (`?presence=batch`), which the client
 *   hands to `join` / `leave` listeners one event at a time, as `events` would; a URL that already
 *   says `presence=` keeps its choice
 */

/**
 * @typedef {object} PendingRequest
 * @property {string} cmd
 * @property {string} text the serialized frame
 * @property {boolean} sent
 * @property {boolean} internal a re-registration request, sent ahead of the queue
 * @property {(reply: any) => void} resolve
 * @property {(err: TetherError) => void} reject
 * @property {ReturnType<typeof setTimeout> | null} timer
 */

/** Commands that register the connection and add a membership. */
const JOIN_CMDS = new Set(['hello', 'new', 'join']);

/**
 * Client for the rooms WebSocket JSON protocol (`/ws/rooms`, docs/protocol/rooms.md §4).
 *
 * - Requests (`hello`, `send`, …) return promises resolved with the matching reply (same `id`),
 *   or rejected with a {@link TetherError} whose `code` is the reply's `error`.
 * - Pushes are dispatched to listeners: `client.on('message', (m) => …)` returns an unsubscribe function.
 * - The connection reopens with exponential backoff (250 ms doubling to 10 s). After a reconnect the
 *   client re-registers every room it had joined (`hello`, or `new` if the room no longer exists),
 *   re-pauses the rooms it had paused, and only then sends requests made in the meantime.
 * - It remembers the last position (offset, epoch) it saw in each room, from messages and its own
 *   sends, and re-registers with `since`: what it missed arrives as `message` events before any
 *   new one, and a `recover` event says whether that worked or the room must be reloaded.
 * - Requests made while disconnected are queued (bounded by `maxPending`); requests already sent
 *   when the connection drops are rejected with `DISCONNECTED`.
 *
 * @extends {Emitter<RoomsEvents>}
 */
export class RoomsClient extends Emitter {
  /**
   * @param {string} [url] `ws(s)://host/ws/rooms`; default: `/ws/rooms` on the page's host
   * @param {RoomsClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    const WS = options.WebSocket ?? /** @type {WebSocketCtor | undefined} */ (globalThis.WebSocket);
    if (!WS) throw new TypeError('tether-client: no WebSocket implementation: pass options.WebSocket');
    const u = new URL(resolveWsUrl(url, '/ws/rooms'));
    if (!u.searchParams.has('presence')) u.searchParams.set('presence', options.presence ?? 'batch');
    /** @readonly */
    this.url = u.href;
    this._maxPending = options.maxPending ?? 256;
    this._timeout = options.timeout ?? 15000;
    this._socket = new ReconnectingSocket(
      this.url,
      { WebSocket: WS, minDelay: options.minDelay ?? 250, maxDelay: options.maxDelay ?? 10000 },
      {
        open: () => this._onOpen(),
        frame: (f) => this._onFrame(f),
        close: (info) => this._onClose(info),
        error: (err) => this.emit('error', err),
      },
    );
    this._nextId = 1;
    /** @type {Map<number, PendingRequest>} */
    this._pending = new Map();
    /** requests waiting for the connection to be ready, in order
     * @type {number[]} */
    this._queue = [];
    this._ready = false;
    /** the name this connection is bound to (set by the first successful hello / new / join)
     * @type {string | null} */
    this._client = null;
    /** rooms joined, in join order (re-registered after a reconnect)
     * @type {Set<string>} */
    this._rooms = new Set();
    /** rooms paused (re-paused after a reconnect)
     * @type {Set<string>} */
    this._paused = new Set();
    /** the last position seen per room (sent as `since` when re-registering)
     * @type {Map<string, Position>} */
    this._positions = new Map();
    /** @type {{resolve: () => void, reject: (e: TetherError) => void}[]} */
    this._readyWaiters = [];
  }

  // --- state ------------------------------------------------------------------------------

  /** True when the socket is open and the rooms are re-registered: requests go out at once. */
  get connected() {
    return this._ready;
  }

  /** The client name the connection is bound to, or null before the first hello / new / join. */
  get client() {
    return this._client;
  }

  /** The rooms this client is a member of, in join order. */
  get rooms() {
    return [...this._rooms];
  }

  /**
   * The last position seen in `room` (its last message's offset and epoch), or undefined.
   * @param {string} room
   * @returns {Position | undefined}
   */
  position(room) {
    const p = this._positions.get(room);
    return p && { ...p };
  }

  /** Number of requests awaiting a reply (queued or sent). */
  get pending() {
    return this._pending.size;
  }

  /**
   * Open the connection (requests also do it on demand). Resolves once connected; rejects with
   * `CLOSED` if `close()` is called first. While the server is unreachable it keeps retrying.
   * @returns {Promise<void>}
   */
  connect() {
    if (this._ready) return Promise.resolve();
    const p = new Promise((resolve, reject) => {
      this._readyWaiters.push({ resolve: () => resolve(undefined), reject });
    });
    this._socket.start();
    return p;
  }

  /**
   * Close the connection now and stop reconnecting. Pending requests are rejected with `CLOSED`.
   * The server removes the client (its members get a `leave`). `connect()` may be called again:
   * it re-registers the rooms this client was in (unlike after `quit()`, which forgets them).
   */
  close() {
    this._socket.stop(1000, 'client closed');
    this._stopped();
  }

  // --- requests ---------------------------------------------------------------------------

  /**
   * Register as `client` in the existing `room` (idempotent).
   * @param {string} room
   * @param {string} [client] default: the name the connection is bound to
   * @returns {Promise<JoinReply>}
   */
  hello(room, client) {
    return this.request('hello', { room, client: client ?? this._client ?? undefined });
  }

  /**
   * Create `room` and join it.
   * @param {string} room
   * @param {string} [client]
   * @returns {Promise<JoinReply>}
   */
  newRoom(room, client) {
    return this.request('new', { room, client: client ?? this._client ?? undefined });
  }

  /**
   * Join the existing `room` (`ALREADY_JOINED` if already a member).
   * @param {string} room
   * @param {string} [client]
   * @returns {Promise<JoinReply>}
   */
  join(room, client) {
    return this.request('join', { room, client: client ?? this._client ?? undefined });
  }

  /**
   * Send `text` to the other members of `room`.
   * @param {string} room
   * @param {string} text
   * @returns {Promise<SendReply>}
   */
  send(room, text) {
    return this.request('send', { room, text });
  }

  /**
   * Send `text` to `target`, a member of `room`.
   * @param {string} room
   * @param {string} target
   * @param {string} text
   * @returns {Promise<ToReply>}
   */
  to(room, target, text) {
    return this.request('to', { room, target, text });
  }

  /**
   * List rooms / members (`arg`: a client for `CLIENT_CHAT_ROOMS`, a room for `CLIENTS_FOR_CHAT_ROOM`).
   * @param {ListType} type
   * @param {string} [arg]
   * @returns {Promise<ListReply>}
   */
  list(type, arg) {
    return this.request('list', arg === undefined ? { type } : { type, arg });
  }

  /**
   * Suspend the membership in `room`: nothing is delivered until `resume`.
   * @param {string} room
   * @returns {Promise<RoomReply>}
   */
  pause(room) {
    return this.request('pause', { room });
  }

  /**
   * @param {string} room
   * @returns {Promise<RoomReply>}
   */
  resume(room) {
    return this.request('resume', { room });
  }

  /**
   * Leave `room` (it is no longer re-registered after a reconnect).
   * @param {string} room
   * @returns {Promise<RoomReply>}
   */
  leave(room) {
    return this.request('leave', { room });
  }

  /**
   * Leave every room and close: the server answers, then closes the connection (1000).
   * When not connected this only closes locally. The client does not reconnect afterwards.
   * @returns {Promise<void>}
   */
  async quit() {
    if (!this._ready) {
      this.close();
      return;
    }
    // Stop reconnecting now: the server closes the socket right after its reply.
    this._socket.setRetry(false);
    try {
      await this.request('quit', {});
    } catch (err) {
      // The close may beat the reply to us: the quit still happened.
      if (!(err instanceof TetherError && (err.code === LocalErrors.DISCONNECTED || err.code === LocalErrors.CLOSED))) {
        this._socket.setRetry(true);
        throw err;
      }
    }
    this._socket.stop(1000, 'quit');
    this._stopped();
  }

  /**
   * Send a raw request `{id, cmd, ...fields}`; resolves with the reply, rejects on `ok:false`.
   * Fields whose value is `undefined` are left out.
   * @param {string} cmd
   * @param {Record<string, unknown>} [fields]
   * @returns {Promise<any>}
   */
  request(cmd, fields = {}) {
    return this._request(cmd, fields, false);
  }

  // --- internals --------------------------------------------------------------------------

  /**
   * @param {string} cmd
   * @param {Record<string, unknown>} fields
   * @param {boolean} internal a re-registration request: bypasses the queue and the bound
   * @returns {Promise<any>}
   */
  _request(cmd, fields, internal) {
    if (!internal && this._pending.size >= this._maxPending) {
      return Promise.reject(
        new TetherError(LocalErrors.TOO_MANY_PENDING, `too many pending requests (${this._maxPending})`),
      );
    }
    const id = this._nextId++;
    const text = JSON.stringify({ id, cmd, ...fields });
    if (utf8Length(text) > MAX_FRAME_BYTES) {
      return Promise.reject(
        new TetherError(LocalErrors.FRAME_TOO_BIG, `request is larger than ${MAX_FRAME_BYTES} bytes`),
      );
    }
    return new Promise((resolve, reject) => {
      /** @type {PendingRequest} */
      const req = { cmd, text, sent: false, internal, resolve, reject, timer: null };
      this._pending.set(id, req);
      if (this._timeout > 0) {
        req.timer = setTimeout(() => {
          this._settle(id)?.reject(new TetherError(LocalErrors.TIMEOUT, `no reply to '${cmd}' within ${this._timeout} ms`));
        }, this._timeout);
      }
      if (internal || this._ready) {
        this._transmit(id, req);
      } else {
        this._queue.push(id);
        this._socket.start();
      }
    });
  }

  /**
   * @param {number} id
   * @param {PendingRequest} req
   */
  _transmit(id, req) {
    if (this._socket.sendText(req.text)) {
      req.sent = true;
    } else {
      this._settle(id)?.reject(new TetherError(LocalErrors.DISCONNECTED, `not connected: '${req.cmd}' not sent`));
    }
  }

  /**
   * Remove a pending request and clear its timer.
   * @param {number} id
   * @returns {PendingRequest | undefined}
   */
  _settle(id) {
    const req = this._pending.get(id);
    if (!req) return undefined;
    this._pending.delete(id);
    if (req.timer !== null) clearTimeout(req.timer);
    return req;
  }

  /** @param {Record<string, unknown>} frame */
  _onFrame(frame) {
    if ('id' in frame && frame.id !== undefined) {
      const id = frame.id;
      const req = typeof id === 'number' ? this._settle(id) : undefined;
      if (!req) {
        if (frame.ok === false) {
          const e = /** @type {ErrorReply} */ (/** @type {unknown} */ (frame));
          this.emit('error', new TetherError(String(e.error), String(e.message ?? e.error), frame));
        }
        return; // a late reply to a timed-out request
      }
      if (frame.ok === true) {
        this._track(req.cmd, frame);
        req.resolve(frame);
      } else {
        const e = /** @type {ErrorReply} */ (/** @type {unknown} */ (frame));
        const code = typeof e.error === 'string' ? e.error : LocalErrors.BAD_REPLY;
        req.reject(new TetherError(code, String(e.message ?? code), frame));
      }
      return;
    }
    switch (frame.type) {
      case 'message':
        this._advance(frame);
        this.emit('message', /** @type {any} */ (frame));
        return;
      case 'direct':
      case 'join':
      case 'leave':
      case 'presence':
      case 'bye':
        this.emit(frame.type, /** @type {any} */ (frame));
        return;
      case 'resync':
        // The room's history was lost in part while we were in it (rooms.md §11): go on from its
        // position, and tell the app, as a join answered "resync" does.
        this._advance(frame, true);
        this.emit('recover', {
          room: String(frame.room),
          recovered: false,
          offset: Number(frame.offset),
          epoch: String(frame.epoch),
        });
        return;
      case 'presence_batch': {
        // One tick's joins and leaves of a room (rooms.md §10), handed out as the events were.
        const room = String(frame.room);
        const events = Array.isArray(frame.events) ? frame.events : [];
        for (const e of events) {
          if (e && (e.type === 'join' || e.type === 'leave') && typeof e.client === 'string') {
            this.emit(e.type, { type: e.type, room, client: e.client });
          }
        }
        return;
      }
      default:
        this.emit('error', new TetherError(LocalErrors.BAD_REPLY, `unexpected frame: ${JSON.stringify(frame).slice(0, 200)}`, frame));
    }
  }

  /**
   * Keep the memberships up to date from successful replies.
   * @param {string} cmd
   * @param {Record<string, unknown>} reply
   */
  _track(cmd, reply) {
    const room = typeof reply.room === 'string' ? reply.room : null;
    if (JOIN_CMDS.has(cmd)) {
      if (typeof reply.client === 'string') this._client = reply.client;
      if (room !== null) {
        this._rooms.add(room);
        // Recovered: the missed messages follow and advance the position; otherwise (a first
        // join, or resync) the stream goes on from the room's position now.
        if (reply.recovered !== true) this._advance(reply, true);
        if (typeof reply.recovered === 'boolean') {
          // Emitted before the missed messages, which follow the reply.
          this.emit('recover', {
            room,
            recovered: reply.recovered,
            offset: Number(reply.offset),
            epoch: String(reply.epoch),
          });
        }
      }
    } else if (cmd === 'leave' && room !== null) {
      this._rooms.delete(room);
      this._paused.delete(room);
      this._positions.delete(room);
    } else if (cmd === 'pause' && room !== null) {
      this._paused.add(room);
    } else if ((cmd === 'resume' || cmd === 'send' || cmd === 'to') && room !== null) {
      // Sending resumes a suspended membership (rooms.md §2).
      this._paused.delete(room);
      // A room message of our own is not echoed back: its offset comes with the reply.
      if (cmd === 'send') this._advance(reply);
    } else if (cmd === 'quit') {
      this._rooms.clear();
      this._paused.clear();
      this._positions.clear();
    }
  }

  /**
   * Remember `{room, offset, epoch}` as the room's last position (never going back within an
   * epoch, unless `reset`).
   * @param {Record<string, unknown>} f
   * @param {boolean} [reset]
   */
  _advance(f, reset = false) {
    if (typeof f.room !== 'string' || typeof f.offset !== 'number' || typeof f.epoch !== 'string') return;
    const old = this._positions.get(f.room);
    if (!reset && old && old.epoch === f.epoch && old.offset >= f.offset) return;
    this._positions.set(f.room, { offset: f.offset, epoch: f.epoch });
  }

  async _onOpen() {
    // Re-register the memberships this client had, before anything queued goes out.
    const client = this._client;
    const rooms = [...this._rooms];
    const paused = [...this._paused];
    if (client !== null && rooms.length > 0) {
      for (const room of rooms) {
        if (!this._socket.open) return; // dropped again: the next open starts over
        try {
          // With the last position seen, the reply says whether the missed messages follow
          // (`recover` is emitted as the reply is handled, before them: see _track).
          const since = this._positions.get(room);
          try {
            await this._request('hello', { room, client, since }, true);
          } catch (err) {
            // A room this client created is gone if it was its last member: create it again.
            if (!(err instanceof TetherError && err.code === 'NO_SUCH_ROOM')) throw err;
            /** @type {JoinReply} */
            const reply = await this._request('new', { room, client }, true);
            // Its history went with it.
            if (since !== undefined) {
              this.emit('recover', { room, recovered: false, offset: reply.offset, epoch: reply.epoch });
            }
          }
          this.emit('rejoin', { room, ok: true });
        } catch (err) {
          const e = toTetherError(err);
          if (e.code === 'NAME_TAKEN' || e.code === LocalErrors.DISCONNECTED || e.code === LocalErrors.TIMEOUT) {
            // The server has not yet dropped our previous connection: retry after a backoff.
            this._socket.drop();
            return;
          }
          // Anything else (e.g. SERVER_FULL, BAD_NAME): give the room up.
          this._rooms.delete(room);
          this._paused.delete(room);
          this.emit('rejoin', { room, ok: false, error: e });
        }
      }
      for (const room of paused) {
        if (!this._rooms.has(room)) continue;
        try {
          await this._request('pause', { room }, true);
        } catch (err) {
          this.emit('error', toTetherError(err));
        }
      }
      if (!this._socket.open) return;
    }
    this._socket.resetBackoff();
    this._ready = true;
    this.emit('connected', true);
    for (const w of this._readyWaiters.splice(0)) w.resolve();
    // Flush what was requested while disconnected, in order.
    for (const id of this._queue.splice(0)) {
      const req = this._pending.get(id);
      if (req) this._transmit(id, req);
    }
  }

  /** @param {{code: number, reason: string, willRetry: boolean}} info */
  _onClose(info) {
    const wasReady = this._ready;
    this._ready = false;
    // Requests already on the wire will never be answered.
    for (const [id, req] of [...this._pending]) {
      if (req.sent || req.internal) {
        this._settle(id);
        req.reject(new TetherError(LocalErrors.DISCONNECTED, `connection closed (${info.code}) before the reply to '${req.cmd}'`));
      }
    }
    if (wasReady) this.emit('connected', false);
    this.emit('close', info);
    if (!info.willRetry) this._stopped();
  }

  /** The client is stopped: fail everything still waiting. */
  _stopped() {
    const wasReady = this._ready;
    this._ready = false;
    this._queue.length = 0;
    for (const [id, req] of [...this._pending]) {
      this._settle(id);
      req.reject(new TetherError(LocalErrors.CLOSED, `client closed before the reply to '${req.cmd}'`));
    }
    for (const w of this._readyWaiters.splice(0)) {
      w.reject(new TetherError(LocalErrors.CLOSED, 'client closed before it connected'));
    }
    if (wasReady) this.emit('connected', false);
  }
}

/** @param {string} s */
function utf8Length(s) {
  // Fast path: every UTF-16 unit is at most 3 UTF-8 bytes.
  if (s.length * 3 <= MAX_FRAME_BYTES) return s.length;
  return new TextEncoder().encode(s).length;
}

/**
 * @param {unknown} err
 * @returns {TetherError}
 */
function toTetherError(err) {
  if (err instanceof TetherError) return err;
  return new TetherError(LocalErrors.BAD_REPLY, err instanceof Error ? err.message : String(err));
}


// ---------------------------------------------------------------------------------------------
// 3. Session: the ws-sync wire protocol (one WebSocket per tab, `{type, data}` JSON text frames)
// ---------------------------------------------------------------------------------------------

/** @typedef {import('./sync.js').BinaryData} BinaryData */
/** @typedef {import('./sync.js').SyncTransport} SyncTransport */

/**
 * A server toast (`_TOAST`): `type` is one of `default`, `message`, `info`, `success`, `warning`,
 * `error` (sonner's method names).
 * @typedef {{type: string, message: string}} Toast
 */

/**
 * A server `_DOWNLOAD`: `data` is the base64 text as sent, `bytes` its decoded content.
 * @typedef {{filename: string, data: string, bytes: Uint8Array}} Download
 */

/**
 * Events of a {@link Session}:
 * - `connected`: the socket opened (true) or an open socket closed (false) (ws-sync's `onConnectionChange`);
 * - `close`: the socket closed or could not be opened (`willRetry` false once stopped);
 * - `toast`: a server `_TOAST` (unless a `_TOAST` handler is registered with `registerEvent`);
 * - `disconnect`: the server sent `_DISCONNECT` (e.g. the session was taken over by another tab);
 *   the session stops reconnecting, `connect()` starts it again;
 * - `download`: a server `_DOWNLOAD` (the client does not save files itself);
 * - `unhandled`: a frame with no handler (also console.warn'ed when nobody listens);
 * - `error`: a frame that is not `{type: string, ...}`, a handler that threw, or a send refused
 *   while not connected (`NOT_CONNECTED`).
 * @typedef {object} SessionEvents
 * @property {boolean} connected
 * @property {{code: number, reason: string, willRetry: boolean}} close
 * @property {Toast} toast
 * @property {{message: string}} disconnect
 * @property {Download} download
 * @property {{type: string, data: unknown, binary: boolean}} unhandled
 * @property {TetherError} error
 */

/**
 * The subset of the Web Storage API used for the user / session ids.
 * @typedef {{getItem(key: string): string | null, setItem(key: string, value: string): void}} StorageLike
 */

/**
 * @typedef {object} SessionOptions
 * @property {WebSocketCtor} [WebSocket] WebSocket implementation (default: `globalThis.WebSocket`)
 * @property {string} [label] name used in messages (default "Server")
 * @property {'blob' | 'arraybuffer'} [binaryType] how binary frames arrive (default "blob", like ws-sync-react)
 * @property {number} [minRetryInterval] first reconnect delay in ms (default 250)
 * @property {number} [maxRetryInterval] reconnect delay cap in ms (default 10000)
 * @property {boolean} [userSession] answer `_REQUEST_USER_SESSION` with `_USER_SESSION` (default true;
 *   ws-sync-react only does it under `SessionProvider wsAuth`)
 * @property {{local?: StorageLike | null, session?: StorageLike | null}} [storage] where the user id
 *   (`_USER_ID`) and session id (`_SESSION_ID`) are kept, JSON-encoded as ws-sync-react does
 *   (default: `localStorage` / `sessionStorage` when usable, else a per-process in-memory store)
 * @property {(toast: Toast) => void} [onToast] shorthand for `on('toast', fn)`
 * @property {(ev: {message: string}) => void} [onDisconnect] shorthand for `on('disconnect', fn)`
 * @property {(connected: boolean) => void} [onConnectionChange] shorthand for `on('connected', fn)`
 */

/** In-memory fallback for the id storage (node, or storage that throws); shared per process. */
const memoryStorage = (() => {
  /** @type {Map<string, string>} */
  const m = new Map();
  /** @type {StorageLike} */
  const s = {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => {
      m.set(k, String(v));
    },
  };
  return s;
})();

/**
 * `globalThis[name]` if it is a usable Web Storage, else null.
 * @param {'localStorage' | 'sessionStorage'} name
 * @returns {StorageLike | null}
 */
function webStorage(name) {
  try {
    const st = /** @type {any} */ (globalThis)[name];
    if (st && typeof st.getItem === 'function' && typeof st.setItem === 'function') {
      st.getItem('_USER_ID'); // throws in some sandboxes
      return st;
    }
  } catch {
    // unusable
  }
  return null;
}

/** A random UUID v4. */
function uuid4() {
  const c = /** @type {Crypto | undefined} */ (globalThis.crypto);
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Read the JSON-encoded id at `key`, or create, store and return a new one.
 * @param {StorageLike} storage
 * @param {string} key
 * @returns {string}
 */
function storedId(storage, key) {
  try {
    const raw = storage.getItem(key);
    if (raw) {
      const v = JSON.parse(raw);
      if (typeof v === 'string' && v) return v;
    }
  } catch {
    // unreadable: make a new one
  }
  const id = uuid4();
  try {
    storage.setItem(key, JSON.stringify(id));
  } catch {
    memoryStorage.setItem(key, JSON.stringify(id));
  }
  return id;
}

/** @param {string} b64 */
function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A ws-sync compatible client session: the same frames as ws-sync-react's `Session`, over one
 * WebSocket that reconnects on its own.
 *
 * - `connect()` opens the socket; on close it retries after 250 ms, doubling to 10 s; the delay
 *   is reset when a socket opens. The client sends nothing by itself on (re)connect: the server
 *   sends a `_SET:KEY` per synced object.
 * - `send(type, data)` sends `{"type": type, "data": data}`; `sendBinary(type, metadata, bytes)`
 *   sends `_BIN_META {type, metadata}` and then one binary frame.
 * - Incoming `{type, data}` goes to the handler registered for `type` (one per type);
 *   `_BIN_META` + a binary frame goes to the inner type's handler as `{data: bytes, ...metadata}`;
 *   a binary frame without meta goes to the `registerBinary` handler.
 * - Built in: `_DISCONNECT` (stops reconnecting, `disconnect` event), `_TOAST` (`toast` event),
 *   `_DOWNLOAD` (`download` event), `_REQUEST_USER_SESSION` (answers `_USER_SESSION {user, session}`).
 * - **Sends while the socket is not open are refused**, like ws-sync (which drops them with a
 *   warning and an error toast): nothing is queued, the method returns false and the session
 *   emits an `error` event with code `NOT_CONNECTED` (console.warn'ed when nobody listens).
 *   Queueing would replay patches computed against a state the server's `_SET` replaces anyway.
 * - `synced(key, initialState)` returns the {@link SyncedStore} of one synced object.
 *
 * In node, pass the `ws` package's WebSocket: `new Session(url, {WebSocket})`.
 *
 * @extends {Emitter<SessionEvents>}
 * @implements {SyncTransport}
 */
export class Session extends Emitter {
  /**
   * @param {string} url `ws(s)://…` (or a path / `http(s)://` URL resolved against the page)
   * @param {SessionOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    const WS = options.WebSocket ?? /** @type {WebSocketCtor | undefined} */ (globalThis.WebSocket);
    if (!WS) throw new TypeError('tether-client: no WebSocket implementation: pass options.WebSocket');
    /** @readonly */
    this.url = resolveWsUrl(url, '/');
    this.label = options.label ?? 'Server';
    this.minRetryInterval = options.minRetryInterval ?? 250;
    this.maxRetryInterval = options.maxRetryInterval ?? 10000;
    this._socket = new ReconnectingSocket(
      this.url,
      {
        WebSocket: WS,
        minDelay: this.minRetryInterval,
        maxDelay: this.maxRetryInterval,
        binaryType: options.binaryType ?? 'blob',
      },
      {
        open: () => this._onOpen(),
        frame: (f) => this._onFrame(f),
        binary: (d) => this._onBinary(d),
        close: (info) => this._onClose(info),
        error: (err) => this._emitError(err),
      },
    );
    this._answerUserSession = options.userSession ?? true;
    this._localStorage = options.storage?.local ?? webStorage('localStorage') ?? memoryStorage;
    this._sessionStorage = options.storage?.session ?? webStorage('sessionStorage') ?? memoryStorage;
    /** @type {Map<string, (data: any) => void>} */
    this._handlers = new Map();
    /** @type {((data: unknown) => void) | null} */
    this._binaryHandler = null;
    /** metadata announced by `_BIN_META` for the next binary frame
     * @type {{type: string, metadata: Record<string, unknown>} | null} */
    this._binMeta = null;
    /** @type {Set<() => void>} */
    this._openListeners = new Set();
    this._connected = false;
    if (options.onToast) this.on('toast', options.onToast);
    if (options.onDisconnect) this.on('disconnect', options.onDisconnect);
    if (options.onConnectionChange) this.on('connected', options.onConnectionChange);
  }

  /** True while the socket is open. */
  get isConnected() {
    return this._connected;
  }

  /** True while connected or trying to reconnect (false after `disconnect()` or a server `_DISCONNECT`). */
  get active() {
    return this._socket.running;
  }

  /**
   * Open the socket and keep it open (reconnecting with backoff) until `disconnect()`.
   * Returns the cleanup function (`disconnect`), like ws-sync-react.
   * @returns {() => void}
   */
  connect() {
    this._socket.start();
    return () => this.disconnect();
  }

  /** Close the socket and stop reconnecting. */
  disconnect() {
    this._socket.stop(1000, 'client disconnect');
  }

  // --- handlers ---------------------------------------------------------------------------

  /**
   * Handle frames of `type` (exact match; one handler per type, as in ws-sync-react).
   * A handler registered for a built-in type (`_TOAST`, `_DOWNLOAD`, `_REQUEST_USER_SESSION`)
   * replaces the built-in behaviour; `_DISCONNECT` and `_BIN_META` cannot be overridden.
   * @param {string} type
   * @param {(data: any) => void} handler
   * @param {boolean} [override] replace an existing handler instead of throwing
   */
  registerEvent(type, handler, override = false) {
    if (this._handlers.has(type) && !override) throw new Error(`already subscribed to ${type}`);
    this._handlers.set(type, handler);
  }

  /**
   * @param {string} type
   */
  deregisterEvent(type) {
    if (!this._handlers.delete(type)) throw new Error(`not subscribed to ${type}`);
  }

  /**
   * Handle binary frames that arrive without a `_BIN_META` before them.
   * @param {(data: unknown) => void} handler gets a Blob or ArrayBuffer (see `binaryType`)
   */
  registerBinary(handler) {
    if (this._binaryHandler !== null) throw new Error('already registered');
    this._binaryHandler = handler;
  }

  deregisterBinary() {
    if (this._binaryHandler === null) throw new Error('not registered');
    this._binaryHandler = null;
  }

  /**
   * Call `fn` whenever a socket opens (used by stores). Returns the unsubscribe.
   * @param {() => void} fn
   * @returns {() => void}
   */
  onOpen(fn) {
    this._openListeners.add(fn);
    return () => {
      this._openListeners.delete(fn);
    };
  }

  // --- sending ----------------------------------------------------------------------------

  /**
   * Send `{"type": type, "data": data}`. Returns false (and emits `error` `NOT_CONNECTED`) when
   * the socket is not open; nothing is queued.
   * @param {string} type
   * @param {unknown} data
   * @returns {boolean}
   */
  send(type, data) {
    const text = JSON.stringify({ type, data });
    if (this._socket.sendText(text)) return true;
    this._notSent(type);
    return false;
  }

  /**
   * Send `_BIN_META {type, metadata}` followed by one binary frame (ws-sync-react's
   * `sendBinary(event, metadata, data)`). For a synced object's action use
   * `store.sendBinary(action, data)`, which sends type `_ACTION:KEY` with the action as metadata.
   * @param {string} type the inner event, e.g. `_ACTION:KEY`
   * @param {unknown} metadata
   * @param {BinaryData} data
   * @returns {boolean} false when not connected (nothing sent)
   */
  sendBinary(type, metadata, data) {
    if (!this._socket.open) {
      this._notSent(type);
      return false;
    }
    this._socket.sendText(JSON.stringify({ type: '_BIN_META', data: { type, metadata } }));
    return this._socket.sendBinary(data);
  }

  /**
   * The ids sent in `_USER_SESSION`: `user` persisted in localStorage `_USER_ID`, `session` in
   * sessionStorage `_SESSION_ID` (per tab), created on first use.
   * @returns {{user: string, session: string}}
   */
  userSession() {
    return { user: storedId(this._localStorage, '_USER_ID'), session: storedId(this._sessionStorage, '_SESSION_ID') };
  }

  /**
   * The store of the synced object `key` (registers `_SET/_GET/_PATCH/_ACTION:key`; throws if
   * another store already has that key: `close()` it first).
   * @template [S=any]
   * @param {string} key
   * @param {S} [initialState] the state until the server's first `_SET` (default `{}`)
   * @returns {SyncedStore<S>}
   */
  synced(key, initialState) {
    return new SyncedStore(this, key, initialState);
  }

  // --- internals --------------------------------------------------------------------------

  /** @param {string} type */
  _notSent(type) {
    this._emitError(new TetherError(LocalErrors.NOT_CONNECTED, `${this.label}: not connected: '${type}' not sent`));
  }

  /** @param {TetherError} err */
  _emitError(err) {
    if (!this._listeners.get('error')?.size) console.warn(`[tether sync] ${err.message}`);
    this.emit('error', err);
  }

  _onOpen() {
    this._socket.resetBackoff();
    this._binMeta = null;
    this._connected = true;
    for (const fn of [...this._openListeners]) {
      try {
        fn();
      } catch (err) {
        console.error('tether-client: an open listener threw', err);
      }
    }
    this.emit('connected', true);
  }

  /** @param {{code: number, reason: string, willRetry: boolean}} info */
  _onClose(info) {
    const was = this._connected;
    this._connected = false;
    this._binMeta = null;
    if (was) this.emit('connected', false);
    this.emit('close', info);
  }

  /**
   * @param {string} type
   * @param {(data: any) => void} handler
   * @param {unknown} data
   */
  _call(type, handler, data) {
    try {
      handler(data);
    } catch (err) {
      console.error(`tether-client: the '${type}' handler threw`, err);
      this.emit('error', new TetherError(LocalErrors.HANDLER_FAILED, `the '${type}' handler threw: ${String(err)}`));
    }
  }

  /**
   * @param {string} type
   * @param {unknown} data
   * @param {boolean} binary
   */
  _unhandled(type, data, binary) {
    if (!this._listeners.get('unhandled')?.size) console.warn(`[tether sync] no handler for ${binary ? 'binary ' : ''}event ${type}`);
    this.emit('unhandled', { type, data, binary });
  }

  /** @param {Record<string, unknown>} frame */
  _onFrame(frame) {
    const type = frame.type;
    if (typeof type !== 'string') {
      this._emitError(new TetherError(LocalErrors.BAD_REPLY, `frame without a string 'type': ${JSON.stringify(frame).slice(0, 200)}`, frame));
      return;
    }
    const data = frame.data;
    if (type === '_DISCONNECT') {
      // Another tab took the session over (or the app ended it): do not fight back.
      this.disconnect();
      this.emit('disconnect', { message: typeof data === 'string' ? data : String(data ?? '') });
      return;
    }
    if (type === '_BIN_META') {
      const meta = /** @type {any} */ (data);
      if (meta === null || typeof meta !== 'object' || typeof meta.type !== 'string') {
        this._emitError(new TetherError(LocalErrors.BAD_REPLY, `_BIN_META without a string 'type'`, frame));
        return;
      }
      if (this._binMeta !== null) console.warn('[tether sync] _BIN_META overwrites an unused one');
      const md = meta.metadata;
      this._binMeta = { type: meta.type, metadata: md !== null && typeof md === 'object' ? md : {} };
      return;
    }
    const handler = this._handlers.get(type);
    if (handler) {
      this._call(type, handler, data);
      return;
    }
    switch (type) {
      case '_TOAST': {
        const t = /** @type {any} */ (data) ?? {};
        this.emit('toast', { type: typeof t.type === 'string' ? t.type : 'default', message: String(t.message ?? '') });
        return;
      }
      case '_DOWNLOAD': {
        const d = /** @type {any} */ (data) ?? {};
        try {
          const b64 = String(d.data ?? '');
          this.emit('download', { filename: String(d.filename ?? 'download'), data: b64, bytes: base64ToBytes(b64) });
        } catch (err) {
          this._emitError(new TetherError(LocalErrors.BAD_REPLY, `_DOWNLOAD with bad base64: ${String(err)}`, frame));
        }
        return;
      }
      case '_REQUEST_USER_SESSION':
        if (this._answerUserSession) {
          this.send('_USER_SESSION', this.userSession());
          return;
        }
        break;
      default:
        break;
    }
    this._unhandled(type, data, false);
  }

  /** @param {unknown} data */
  _onBinary(data) {
    const meta = this._binMeta;
    if (meta !== null) {
      this._binMeta = null;
      const handler = this._handlers.get(meta.type);
      if (handler) this._call(meta.type, handler, { data, ...meta.metadata });
      else this._unhandled(meta.type, { data, ...meta.metadata }, true);
      return;
    }
    if (this._binaryHandler !== null) this._call('binary', this._binaryHandler, data);
    else this._unhandled('', data, true);
  }
}
