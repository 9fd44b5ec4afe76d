// @ts-check
/**
 * page.js: the page of tests/fastapi_sync/app.py (tether.sync on FastAPI), on web/tether-client.js
 * (`Session`, ws-sync's protocol) and its `synced()` store from web/sync.js.
 *
 * Connects to `/ws?s=<s>` on the page's host (`?s=` from the page URL, default a fresh session);
 * `?ws=<url>` overrides the whole socket URL (the test goes through a proxy it can cut).
 * Stable ids for the test: #status[data-state], #title, #title-input + #title-form (a client
 * `_PATCH` of `/title`), #items li[data-id] (.text, .tags, a checkbox sending TOGGLE), #new-text +
 * #add-form (ADD), #fill / #cancel (task FILL), #progress[data-value], #running, #boot,
 * #toasts li[data-type]. `window.board` holds `{session, store}`.
 */
import { Session } from '../../web/tether-client.js';

/**
 * @typedef {{id: number, text: string, done: boolean, tags: string[]}} Item
 * @typedef {{title: string, items: Item[], progress: number, boot: string, running_tasks: string[]}} Board
 */

const params = new URLSearchParams(location.search);

/** @returns {string} */
function wsUrl() {
  const override = params.get('ws');
  if (override) return override;
  const s = params.get('s');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws${s ? `?s=${encodeURIComponent(s)}` : ''}`;
}

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

const session = new Session(wsUrl());
/** @type {Board} */
const empty = { title: '', items: [], progress: 0, boot: '', running_tasks: [] };
const store = session.synced('BOARD', empty);
Object.assign(window, { board: { session, store } });

/** @param {'connected' | 'reconnecting' | 'disconnected'} state */
function setStatus(state) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = state;
}
session.on('connected', (on) => {
  if (on) setStatus('connected');
});
session.on('close', (info) => setStatus(info.willRetry ? 'reconnecting' : 'disconnected'));
session.on('disconnect', () => setStatus('disconnected'));
session.on('toast', (t) => {
  const li = document.createElement('li');
  li.dataset.type = t.type;
  li.textContent = t.message;
  $('toasts').append(li);
});

/** @param {Item} item */
function renderItem(item) {
  const li = document.createElement('li');
  li.dataset.id = String(item.id);
  li.classList.toggle('done', item.done);
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.checked = item.done;
  box.addEventListener('change', () => store.sendAction('TOGGLE', { id: item.id }));
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = item.text;
  const tags = document.createElement('span');
  tags.className = 'tags';
  tags.textContent = item.tags.join(' ');
  li.append(box, text, tags);
  return li;
}

/** @param {Board} state */
function render(state) {
  $('title').textContent = state.title;
  $('items').replaceChildren(...(state.items ?? []).map(renderItem));
  const progress = /** @type {HTMLProgressElement} */ ($('progress'));
  progress.value = state.progress;
  progress.dataset.value = String(state.progress);
  const running = state.running_tasks ?? [];
  $('running').textContent = running.join(', ');
  /** @type {HTMLButtonElement} */ ($('fill')).disabled = running.includes('FILL');
  /** @type {HTMLButtonElement} */ ($('cancel')).disabled = !running.includes('FILL');
  $('boot').textContent = state.boot;
}
store.subscribe((state) => render(state));
render(store.state);

const newText = /** @type {HTMLInputElement} */ ($('new-text'));
$('add-form').addEventListener('submit', (e) => {
  e.preventDefault();
  store.sendAction('ADD', { text: newText.value });
  newText.value = '';
});
const titleInput = /** @type {HTMLInputElement} */ ($('title-input'));
$('title-form').addEventListener('submit', (e) => {
  e.preventDefault();
  store.set('title', titleInput.value); // a client `_PATCH`: [{op: "replace", path: "/title", ...}]
  titleInput.value = '';
});
$('fill').addEventListener('click', () => store.startTask('FILL', { n: 3, step: 0.2 }));
$('cancel').addEventListener('click', () => store.cancelTask('FILL'));

session.connect();
