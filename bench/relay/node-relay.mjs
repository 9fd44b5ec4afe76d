// A sidekick relay on npm `ws` with tether's forwarding semantics (docs/protocol/ui.md §3–4),
// the peer bench/relay/run.sh measures tether's relay against: sessions by `?session=`, announces
// validated and tracked, presence replayed after a newcomer's online announce, offline announces
// relayed and synthesized on close, frames routed by role (hero → sidekicks, sidekick → heroes),
// forwarded as the very bytes received (no re-serialization), never echoed. Every frame is parsed
// with JSON.parse to read component/type (as the VS Code relay does); a frame that does not parse
// is still relayed by role. No replay log (tether keeps one on top: more work on its side).
//
// Usage: node node-relay.mjs HOST:PORT      prints `listening relay HOST:PORT`
import { WebSocketServer } from 'ws';

const [host, port] = (process.argv[2] ?? '127.0.0.1:5164').split(':');
/** @type {Map<string, Set<import('ws').WebSocket>>} */
const sessions = new Map();
/** @type {WeakMap<import('ws').WebSocket, {session: string, peer: null | {peerId: string, role: string, version: string, online: boolean, frame: Buffer}}>} */
const state = new WeakMap();

function validAnnounce(p) {
  return p && typeof p === 'object' && typeof p.peerId === 'string' && p.peerId !== '' &&
    (p.role === 'hero' || p.role === 'sidekick') && (p.status === 'online' || p.status === 'offline') &&
    typeof p.version === 'string' && typeof p.timestamp === 'number';
}

function others(ws, keep) {
  const s = state.get(ws);
  const out = [];
  for (const o of sessions.get(s.session) ?? []) {
    if (o === ws || o.readyState !== 1) continue;
    const st = state.get(o);
    if (st?.peer && keep(st.peer)) out.push(o);
  }
  return out;
}

const wss = new WebSocketServer({ host, port: Number(port), maxPayload: 1 << 20 });
wss.on('listening', () => console.log(`listening relay ${host}:${wss.address().port}`));
wss.on('connection', (ws, req) => {
  const session = new URL(req.url ?? '/', 'http://x').searchParams.get('session') ?? '';
  if (!sessions.has(session)) sessions.set(session, new Set());
  sessions.get(session).add(ws);
  state.set(ws, { session, peer: null });

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      ws.close(1003, 'binary frames are not part of the sidekick protocol');
      return;
    }
    const st = state.get(ws);
    let msg = null;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      msg = null;
    }
    if (msg && msg.component === 'system' && msg.type === 'announce') {
      const p = msg.payload;
      if (!validAnnounce(p)) return;
      if (st.peer && (st.peer.peerId !== p.peerId || st.peer.role !== p.role)) return;
      const online = p.status === 'online';
      if (online) {
        for (const o of others(ws, () => true)) {
          const op = state.get(o).peer;
          if (op.peerId === p.peerId) op.online = false;
          else if (op.online) ws.send(op.frame, { binary: false });
        }
      }
      st.peer = { peerId: p.peerId, role: p.role, version: p.version, online, frame: online ? data : st.peer?.frame ?? data };
      for (const o of others(ws, () => true)) o.send(data, { binary: false });
      return;
    }
    if (!st.peer) return;
    const to = st.peer.role === 'hero' ? 'sidekick' : 'hero';
    for (const o of others(ws, (p) => p.online && p.role === to)) o.send(data, { binary: false });
  });

  ws.on('close', () => {
    const st = state.get(ws);
    sessions.get(st.session)?.delete(ws);
    if (st.peer?.online) {
      const frame = JSON.stringify({
        id: 0, component: 'system', type: 'announce',
        payload: { peerId: st.peer.peerId, role: st.peer.role, status: 'offline', version: st.peer.version, timestamp: Date.now() },
      });
      st.peer.online = false;
      for (const o of others(ws, () => true)) o.send(frame);
    }
    if (sessions.get(st.session)?.size === 0) sessions.delete(st.session);
  });
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of wss.clients) c.close(1001, 'server shutting down');
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
