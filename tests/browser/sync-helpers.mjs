// Helpers for the ws-sync client tests (sync-client.test.mjs): a scripted ws-sync "server" on a
// real local WebSocket (npm `ws`) that records what the client sends and plays frames back.
import { WebSocketServer } from 'ws';
import { waitUntil } from './helpers.mjs';

/**
 * A frame received from the client: text frames keep their raw text and parsed JSON,
 * binary frames their bytes.
 * @typedef {{binary: false, text: string, json: any, at: number} | {binary: true, bytes: Buffer, at: number}} Received
 */

/**
 * Start a scripted server on 127.0.0.1:<random>.
 * - `accept` (settable) decides whether handshakes succeed (false: HTTP 401, the client never opens);
 * - `attempts` lists the time of every handshake attempt, `connections` every accepted socket;
 * - `received` every frame from the client, in order, across connections;
 * - `send(obj)` / `sendText(text)` / `sendBinary(bytes)` go to the newest connection.
 */
export async function startScriptedServer() {
  /** @type {number[]} */
  const attempts = [];
  /** @type {import('ws').WebSocket[]} */
  const connections = [];
  /** @type {Received[]} */
  const received = [];
  const state = { accept: true };
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, cb) => {
      attempts.push(Date.now());
      if (state.accept) cb(true);
      else cb(false, 401, 'rejected by test');
    },
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    connections.push(ws);
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(/** @type {any} */ (data));
      if (isBinary) {
        received.push({ binary: true, bytes: buf, at: Date.now() });
      } else {
        const text = buf.toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        received.push({ binary: false, text, json, at: Date.now() });
      }
    });
  });
  const addr = /** @type {import('node:net').AddressInfo} */ (wss.address());
  const url = `ws://127.0.0.1:${addr.port}/ws/sync`;

  const current = () => {
    const ws = connections[connections.length - 1];
    if (!ws || ws.readyState !== 1) throw new Error('no open connection on the scripted server');
    return ws;
  };

  return {
    url,
    state,
    attempts,
    connections,
    received,
    /** @param {unknown} obj */
    send(obj) {
      current().send(JSON.stringify(obj));
    },
    /** @param {string} text */
    sendText(text) {
      current().send(text);
    },
    /** @param {Uint8Array} bytes */
    sendBinary(bytes) {
      current().send(bytes, { binary: true });
    },
    /** Text frames received so far, parsed. */
    texts() {
      return received.filter((r) => !r.binary).map((r) => /** @type {any} */ (r).json);
    },
    /**
     * Wait for a received frame matching `pred` (searching from index `from`); returns it.
     * @param {(r: Received) => boolean} pred
     * @param {string} what
     * @param {number} [from]
     */
    async waitReceived(pred, what, from = 0) {
      return waitUntil(() => received.slice(from).find(pred), what, 5000);
    },
    /**
     * Wait for a text frame of `type`.
     * @param {string} type
     * @param {number} [from]
     * @returns {Promise<{text: string, json: any}>}
     */
    async waitType(type, from = 0) {
      const r = await waitUntil(
        () => received.slice(from).find((x) => !x.binary && /** @type {any} */ (x).json?.type === type),
        `a '${type}' frame from the client (got ${JSON.stringify(received.map((x) => (x.binary ? '<binary>' : /** @type {any} */ (x).text)))})`,
        5000,
      );
      return /** @type {any} */ (r);
    },
    /** Wait until `n` connections have been accepted. @param {number} n */
    async waitConnections(n) {
      await waitUntil(() => connections.length >= n && connections[n - 1].readyState === 1, `${n} open connection(s)`, 15000);
      return connections[n - 1];
    },
    /** Close the newest connection from the server side. @param {number} [code] */
    drop(code = 1001) {
      current().close(code, 'test drop');
    },
    async close() {
      for (const ws of connections) ws.terminate();
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    },
  };
}

/**
 * An in-process WebSocket for replaying scripted frames into a `Session` without a network.
 * Every instance is recorded in `FakeWebSocket.instances`; the test drives it with `open()`,
 * `deliverText()`, `deliverBinary()` and `serverClose()`. `sent` records what the client sent.
 */
export class FakeWebSocket {
  /** @type {FakeWebSocket[]} */
  static instances = [];

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.binaryType = 'blob';
    /** @type {(string | ArrayBuffer | ArrayBufferView | Blob)[]} */
    this.sent = [];
    /** @type {Map<string, ((ev: any) => void)[]>} */
    this._listeners = new Map();
    FakeWebSocket.instances.push(this);
  }

  /**
   * @param {string} type
   * @param {(ev: any) => void} fn
   */
  addEventListener(type, fn) {
    const l = this._listeners.get(type) ?? [];
    l.push(fn);
    this._listeners.set(type, l);
  }

  /**
   * @param {string} type
   * @param {any} ev
   */
  _dispatch(type, ev) {
    for (const fn of this._listeners.get(type) ?? []) fn(ev);
  }

  /** @param {string | ArrayBuffer | ArrayBufferView | Blob} data */
  send(data) {
    if (this.readyState !== 1) throw new Error('FakeWebSocket: send while not open');
    this.sent.push(data);
  }

  /**
   * Client-side close.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this._dispatch('close', { code, reason });
  }

  open() {
    this.readyState = 1;
    this._dispatch('open', {});
  }

  /** @param {string} text */
  deliverText(text) {
    this._dispatch('message', { data: text });
  }

  /** @param {ArrayBuffer} buf */
  deliverBinary(buf) {
    this._dispatch('message', { data: buf });
  }

  /**
   * Server-side close.
   * @param {number} code
   * @param {string} reason
   */
  serverClose(code, reason) {
    this.close(code, reason);
  }

  /** Text frames sent by the client, parsed. */
  sentJson() {
    return this.sent.filter((d) => typeof d === 'string').map((d) => JSON.parse(/** @type {string} */ (d)));
  }
}
