// @ts-check
/**
 * ui.js: the /ui page, a sidekick UI peer for Python scripts (stock sidekick-py 0.0.7 or
 * `tether.ui`) that talk to tether's UI relay.
 *
 * - **Relay address.** `GET /ui/config` answers `{"relay": "ws://127.0.0.1:5163"}`; when that
 *   endpoint is missing (404) or unreachable the page dials `ws://<page hostname>:5163`
 *   (`wss:` on an https page). At `/ui/session/<id>` it appends `?session=<id>`.
 * - **Presence.** On every open it sends the announce
 *   `{"id":0,"component":"system","type":"announce","payload":{"peerId":"sidekick-<uuid>",
 *   "role":"sidekick","status":"online","version":"0.0.8","timestamp":<ms>}}` (same peerId for
 *   the page's lifetime); on page hide an offline announce. Hero announces drive the header.
 * - **Reconnect.** On close it retries after 250 ms, doubling up to 10 s; the delay starts over
 *   once a connection has stayed up for 5 s.
 * - **State on (re)connect.** Assumption: the relay sends a newcomer the current state (online
 *   peers, then its replay log of spawn/update/remove since the last clearAll) only after the
 *   socket is open. So the page clears its component tree and its list of heroes in the socket's
 *   `open` handler, before any frame of the new connection can arrive, and then rebuilds
 *   everything from what the relay sends. While disconnected the last state stays on screen.
 *
 * Element ids (tests/browser/ui.test.mjs): `#status` (data-state = connecting | connected |
 * reconnecting; data-peer-id), `#hero` (data-state = none | online | offline), `#sk-root` (the
 * root container; components are described in ui-components.js).
 */
import { announceFrame, isObj, newPeerId, parseFrame } from './ui-protocol.js';
import { Renderer } from './ui-components.js';

/** The relay port stock sidekick-py dials. */
const DEFAULT_RELAY_PORT = 5163;
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 10_000;
/** A connection that lasted this long resets the backoff. */
const STABLE_MS = 5_000;

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`ui.html: #${id} is missing`);
  return el;
}

const ui = {
  status: byId('status'),
  hero: byId('hero'),
  session: byId('session'),
  root: byId('sk-root'),
};

const peerId = newPeerId();
ui.status.dataset.peerId = peerId;

const sessionMatch = /^\/ui\/session\/([^/]+)\/?$/.exec(location.pathname);
/** The session id from `/ui/session/<id>`, or null for the default session. */
const session = sessionMatch ? decodeURIComponent(sessionMatch[1]) : null;
if (session !== null) {
  ui.session.hidden = false;
  ui.session.textContent = `session ${session}`;
  document.title = `tether ui · ${session}`;
}

/** @type {WebSocket | null} */
let ws = null;
let retryMs = FIRST_RETRY_MS;
/** @type {ReturnType<typeof setTimeout> | null} */
let retryTimer = null;
let openedAt = 0;
/** set while the page is being hidden/unloaded: no reconnect */
let leaving = false;
/** the relay address last read from /ui/config */
/** @type {string | null} */
let configuredRelay = null;

/** Heroes seen on this connection: peerId → online. */
/** @type {Map<string, boolean>} */
const heroes = new Map();

/** @param {import('./ui-protocol.js').Obj} frame */
function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(frame));
  } else {
    console.warn('ui: not connected; dropped', frame);
  }
}

const renderer = new Renderer(ui.root, send);

/**
 * @param {'connecting' | 'connected' | 'reconnecting'} state
 * @param {string} text
 */
function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function renderHero() {
  const online = [...heroes.values()].filter(Boolean).length;
  if (online > 0) {
    ui.hero.dataset.state = 'online';
    ui.hero.textContent = online === 1 ? 'hero online' : `${online} heroes online`;
  } else if (heroes.size > 0 || renderer.components.size > 0) {
    ui.hero.dataset.state = 'offline';
    ui.hero.textContent = 'hero offline';
  } else {
    ui.hero.dataset.state = 'none';
    ui.hero.textContent = 'no hero yet';
  }
}

/** The relay URL: /ui/config, else the page's host on port 5163; plus `?session=`. */
async function relayUrl() {
  try {
    const res = await fetch('/ui/config', { cache: 'no-store' });
    if (res.ok) {
      const body = await res.json();
      if (isObj(body) && typeof body.relay === 'string' && body.relay !== '') configuredRelay = body.relay;
    } else if (res.status === 404) {
      configuredRelay = null;
    }
  } catch {
    // the HTTP server is unreachable: keep the last known address
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = new URL(configuredRelay ?? `${scheme}://${location.hostname || '127.0.0.1'}:${DEFAULT_RELAY_PORT}`);
  if (session !== null) url.searchParams.set('session', session);
  return url.toString();
}

function scheduleReconnect() {
  if (leaving || retryTimer) return;
  const delay = retryMs;
  retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  setStatus('reconnecting', `reconnecting in ${delay < 1000 ? `${delay} ms` : `${Math.round(delay / 1000)} s`}…`);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    void connect();
  }, delay);
}

async function connect() {
  if (leaving || ws) return;
  if (ui.status.dataset.state !== 'reconnecting') setStatus('connecting', 'connecting…');
  let url;
  try {
    url = await relayUrl();
  } catch (err) {
    console.warn('ui: bad relay address', err);
    scheduleReconnect();
    return;
  }
  if (leaving || ws) return;
  /** @type {WebSocket} */
  let sock;
  try {
    sock = new WebSocket(url);
  } catch (err) {
    console.warn(`ui: cannot open ${url}`, err);
    scheduleReconnect();
    return;
  }
  ws = sock;
  sock.addEventListener('open', () => {
    if (ws !== sock) return;
    openedAt = Date.now();
    // The relay replays the current state to this socket: start from nothing (see the header).
    renderer.clear();
    heroes.clear();
    renderHero();
    setStatus('connected', 'connected');
    send(announceFrame(peerId, 'online'));
  });
  sock.addEventListener('message', (e) => {
    if (ws !== sock) return;
    if (typeof e.data !== 'string') {
      console.warn('ui: binary frame ignored');
      return;
    }
    const msg = parseFrame(e.data);
    if (msg) onFrame(msg);
  });
  sock.addEventListener('close', (e) => {
    if (ws !== sock) return;
    ws = null;
    if (e.reason) console.warn(`ui: relay closed the connection: ${e.code} ${e.reason}`);
    if (openedAt && Date.now() - openedAt >= STABLE_MS) retryMs = FIRST_RETRY_MS;
    openedAt = 0;
    scheduleReconnect();
  });
  // 'error' is always followed by 'close', which reconnects.
}

/** @param {import('./ui-protocol.js').Obj} msg */
function onFrame(msg) {
  if (msg.component === 'system' && msg.type === 'announce') {
    const p = msg.payload;
    if (isObj(p) && p.role === 'hero' && typeof p.peerId === 'string') {
      heroes.set(p.peerId, p.status === 'online');
      renderHero();
    }
    return;
  }
  renderer.handle(msg);
  if (msg.type === 'spawn' || msg.type === 'clearAll' || msg.type === 'remove') renderHero();
}

window.addEventListener('pagehide', () => {
  leaving = true;
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  const sock = ws;
  if (sock && sock.readyState === WebSocket.OPEN) {
    send(announceFrame(peerId, 'offline'));
    ws = null;
    sock.close(1000, 'page closed');
  }
});

window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return; // restored from the back/forward cache: connect again
  leaving = false;
  retryMs = FIRST_RETRY_MS;
  void connect();
});

void connect();
