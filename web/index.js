// @ts-check
/**
 * index.js: the landing page (/). Shows the server's health, a few numbers from
 * `GET /server/status` and the exec processes running now (`GET /exec/processes`, polled).
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

/**
 * One running exec process, as `GET /exec/processes` lists it (docs/protocol/exec.md).
 * @typedef {object} ExecProcess
 * @property {number | string} id
 * @property {string} endpoint
 * @property {number} pid
 * @property {number | string} started  unix time (s or ms) or an RFC 3339 string
 * @property {number} bytes_out
 * @property {number} [elapsed_ms]  how long it has run, by the server's clock
 */

/** How often the process list is polled. */
const PROCESS_POLL_MS = 1000;

/**
 * `started` as a Date: seconds or milliseconds since the epoch, or a date string.
 * @param {number | string} started
 */
function startedAt(started) {
  if (typeof started === 'number') return new Date(started < 1e11 ? started * 1000 : started);
  return new Date(started);
}

/** @param {number} n */
function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** @param {Date} at */
function age(at) {
  const s = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

async function refreshProcesses() {
  const count = byId('process-count');
  const empty = byId('process-empty');
  const table = byId('process-table');
  const rows = byId('process-rows');
  /** @type {ExecProcess[]} */
  let list;
  /** @type {number | null} */
  let limit;
  try {
    const res = await fetch('/exec/processes', { cache: 'no-store' });
    if (!res.ok) {
      empty.textContent = res.status === 404 ? 'exec is not available on this server' : `GET /exec/processes: HTTP ${res.status}`;
      empty.hidden = false;
      table.hidden = true;
      count.textContent = '';
      return;
    }
    const body = await res.json();
    list = Array.isArray(body) ? body : Array.isArray(body?.processes) ? body.processes : [];
    limit = typeof body?.max_processes === 'number' ? body.max_processes : null;
  } catch {
    empty.textContent = 'server unreachable';
    empty.hidden = false;
    return;
  }
  count.textContent = limit === null ? `(${list.length})` : `(${list.length} / ${limit})`;
  count.dataset.count = String(list.length);
  rows.replaceChildren(
    ...list.map((p) => {
      const tr = document.createElement('tr');
      tr.dataset.id = String(p.id);
      tr.dataset.endpoint = p.endpoint;
      tr.dataset.pid = String(p.pid);
      const link = document.createElement('a');
      link.href = `/exec?endpoint=${encodeURIComponent(p.endpoint)}`;
      link.textContent = p.endpoint;
      const at = startedAt(p.started);
      const since = typeof p.elapsed_ms === 'number' ? new Date(Date.now() - p.elapsed_ms) : at;
      const cells = [link, String(p.pid), age(since), bytes(Number(p.bytes_out) || 0)];
      for (const c of cells) {
        const td = document.createElement('td');
        td.append(c);
        tr.append(td);
      }
      const startedCell = tr.children[2];
      if (startedCell instanceof HTMLElement && !Number.isNaN(at.getTime())) startedCell.title = at.toISOString();
      return tr;
    }),
  );
  table.hidden = list.length === 0;
  empty.textContent = 'no process running';
  empty.hidden = list.length > 0;
}

void refresh();
setInterval(() => void refresh(), 10000);
void refreshProcesses();
setInterval(() => {
  if (document.visibilityState !== 'hidden') void refreshProcesses();
}, PROCESS_POLL_MS);
