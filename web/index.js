// @ts-check
/**
 * index.js: the landing page (/). Shows the server's health and a few numbers from
 * `GET /server/status`; it is meant to grow into a dashboard.
 */

/**
 * The fields of `GET /server/status` this page shows (docs/protocol/rooms.md §5).
 * @typedef {object} ServerStatus
 * @property {string} host
 * @property {number} port
 * @property {number} client_count
 * @property {number} max_clients
 * @property {number} max_message_length
 * @property {{name: string, client_count: number}[]} chat_rooms
 */

/** @param {string} id */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html: #${id} is missing`);
  return el;
}

async function refresh() {
  const health = byId('health');
  try {
    const res = await fetch('/health', { cache: 'no-store' });
    const ok = res.ok && (await res.json()).status === 'ok';
    health.dataset.state = ok ? 'connected' : 'disconnected';
    health.textContent = ok ? 'healthy' : `unhealthy (${res.status})`;
  } catch {
    health.dataset.state = 'disconnected';
    health.textContent = 'unreachable';
  }
  try {
    const res = await fetch('/server/status', { cache: 'no-store' });
    if (!res.ok) return;
    /** @type {ServerStatus} */
    const s = await res.json();
    byId('live-tcp').textContent = `${s.host}:${s.port}`;
    byId('live-clients').textContent = `${s.client_count} / ${s.max_clients}`;
    byId('live-rooms').textContent = s.chat_rooms.map((r) => `${r.name} (${r.client_count})`).join(', ') || '—';
    byId('live-maxlen').textContent = `${s.max_message_length} characters`;
    byId('live').hidden = false;
  } catch {
    // not available (yet): keep the section hidden
  }
}

void refresh();
setInterval(() => void refresh(), 10000);
