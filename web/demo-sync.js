// @ts-check
/**
 * demo-sync.js: the todo-sync demo page (examples/todo-sync/CONTRACT.md) on tether-client.js.
 *
 * Talks to `/ws/sync/demo` on the page's own host (ws: or wss: after the page's scheme);
 * `?ws=<url>` points it elsewhere (the compat test serves this page from a ws-sync app too).
 * Element ids are stable for tests: #status, #todos (li[data-id] with .text, a checkbox and
 * .remove; double-click .text to edit, Enter sends a client `_PATCH`, Escape cancels), #new-text,
 * #add, #clear-done, #count-n, #count, #cancel, #progress[data-value], #running,
 * #toasts (li[data-type]), #upload, #echo[data-name][data-size]. `window.demo` holds
 * `{session, store}`.
 */
import { Session } from './tether-client.js';

const KEY = 'TODOS';

/** @returns {string} */
function wsUrl() {
  const override = new URLSearchParams(location.search).get('ws');
  if (override) return override;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws/sync/demo`;
}

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

/**
 * @typedef {{id: number, text: string, done: boolean}} Todo
 * @typedef {{todos: Todo[], next_id: number, progress: number, running_tasks: string[]}} Todos
 */

const session = new Session(wsUrl(), { binaryType: 'arraybuffer' });
/** @type {Todos} */
const empty = { todos: [], next_id: 1, progress: 0, running_tasks: [] };
const store = session.synced(KEY, empty);
Object.assign(window, { demo: { session, store } });

// ---- connection status ----------------------------------------------------------------------

const status = $('status');
/** @param {'connected' | 'reconnecting' | 'disconnected'} state */
function setStatus(state) {
  status.dataset.state = state;
  status.textContent = state;
}
session.on('connected', (on) => {
  if (on) setStatus('connected');
});
session.on('close', (info) => setStatus(info.willRetry ? 'reconnecting' : 'disconnected'));
session.on('disconnect', () => setStatus('disconnected'));

// ---- toasts -----------------------------------------------------------------------------------

const toasts = $('toasts');
/**
 * @param {string} type
 * @param {string} message
 */
function showToast(type, message) {
  const li = document.createElement('li');
  li.dataset.type = type;
  li.textContent = message;
  toasts.append(li);
  while (toasts.children.length > 20) toasts.firstElementChild?.remove();
}
session.on('toast', (t) => showToast(t.type, t.message));

// ---- todo list --------------------------------------------------------------------------------

const list = $('todos');

/** @param {number} id */
function indexOf(id) {
  return store.state.todos.findIndex((t) => t.id === id);
}

/**
 * @param {HTMLLIElement} li
 * @param {Todo} todo
 */
function startEdit(li, todo) {
  if (li.querySelector('.edit-text')) return;
  const text = /** @type {HTMLElement} */ (li.querySelector('.text'));
  const input = document.createElement('input');
  input.type = 'text';
  input.className = 'edit-text';
  input.value = todo.text;
  text.hidden = true;
  text.after(input);
  input.focus();
  input.select();
  let finished = false;
  const finish = (/** @type {boolean} */ commit) => {
    // Removing the input blurs it, which calls this again: only the first call counts.
    if (finished) return;
    finished = true;
    input.remove();
    text.hidden = false;
    const i = indexOf(todo.id);
    if (commit && i >= 0 && input.value !== store.state.todos[i].text) {
      store.patch([{ op: 'replace', path: `/todos/${i}/text`, value: input.value }]);
    }
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    else if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

/** @param {Todo} todo */
function makeItem(todo) {
  const li = document.createElement('li');
  li.dataset.id = String(todo.id);
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.addEventListener('change', () => {
    store.sendAction('TOGGLE', { id: todo.id });
  });
  const text = document.createElement('span');
  text.className = 'text';
  text.addEventListener('dblclick', () => {
    const i = indexOf(todo.id);
    if (i >= 0) startEdit(li, store.state.todos[i]);
  });
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'remove icon-button';
  remove.setAttribute('aria-label', 'Remove');
  remove.textContent = '×';
  remove.addEventListener('click', () => store.sendAction('REMOVE', { id: todo.id }));
  li.append(box, text, remove);
  return li;
}

/** @param {Todos} state */
function render(state) {
  const todos = Array.isArray(state.todos) ? state.todos : [];
  /** @type {Map<string, HTMLLIElement>} */
  const old = new Map();
  for (const li of /** @type {HTMLCollectionOf<HTMLLIElement>} */ (list.children)) {
    old.set(li.dataset.id ?? '', li);
  }
  /** @type {Element | null} */
  let prev = null;
  for (const todo of todos) {
    const id = String(todo.id);
    let li = old.get(id);
    old.delete(id);
    if (!li) li = makeItem(todo);
    const box = /** @type {HTMLInputElement} */ (li.querySelector('input[type=checkbox]'));
    box.checked = !!todo.done;
    li.classList.toggle('done', !!todo.done);
    const text = /** @type {HTMLElement} */ (li.querySelector('.text'));
    if (text.textContent !== todo.text) text.textContent = todo.text;
    /** @type {Element | null} */
    const at = prev ? prev.nextElementSibling : list.firstElementChild;
    if (at !== li) list.insertBefore(li, at);
    prev = li;
  }
  for (const li of old.values()) li.remove();

  const progress = /** @type {HTMLProgressElement} */ ($('progress'));
  const p = typeof state.progress === 'number' ? state.progress : 0;
  progress.value = p;
  progress.dataset.value = String(p);
  const running = Array.isArray(state.running_tasks) ? state.running_tasks : [];
  $('running').textContent = running.join(', ');
  /** @type {HTMLButtonElement} */ ($('cancel')).disabled = !running.includes('COUNT');
}
store.subscribe((state) => render(state));
render(store.state);

// ---- controls ---------------------------------------------------------------------------------

const newText = /** @type {HTMLInputElement} */ ($('new-text'));
$('add-form').addEventListener('submit', (e) => {
  e.preventDefault();
  store.sendAction('ADD', { text: newText.value });
  newText.value = '';
});
$('clear-done').addEventListener('click', () => store.sendAction('CLEAR_DONE'));

$('count').addEventListener('click', () => {
  const n = Number(/** @type {HTMLInputElement} */ ($('count-n')).value);
  store.startTask('COUNT', { n: Number.isFinite(n) ? Math.trunc(n) : 0 });
});
$('cancel').addEventListener('click', () => store.cancelTask('COUNT'));

const upload = /** @type {HTMLInputElement} */ ($('upload'));
upload.addEventListener('change', async () => {
  const file = upload.files?.[0];
  if (!file) return;
  const bytes = await file.arrayBuffer();
  store.sendBinary({ type: 'UPLOAD', name: file.name }, bytes);
  upload.value = '';
});

store.registerExposedActions({
  ECHO: (/** @type {{name?: string, data?: ArrayBuffer | Blob}} */ payload) => {
    const data = payload.data;
    const size = data instanceof ArrayBuffer ? data.byteLength : data instanceof Blob ? data.size : 0;
    const name = String(payload.name ?? '');
    const echo = $('echo');
    echo.dataset.name = name;
    echo.dataset.size = String(size);
    echo.textContent = `${name} (${size} bytes)`;
  },
});

session.connect();
