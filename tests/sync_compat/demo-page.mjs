// Drive the todo-sync demo page (web/demo-sync.html + web/demo-sync.js) in a playwright page.
// Shared by tests/browser/sync-compat.test.mjs (tether and the ws-sync 0.6.9 app) and
// tests/browser/demo-sync.test.mjs (tether only). No playwright import here: callers pass pages,
// so this file resolves nothing from tests/browser/node_modules.
import { openPage } from '../browser/helpers.mjs';

/** The contract's initial state (examples/todo-sync/CONTRACT.md). */
export const INITIAL_STATE = {
  todos: [{ id: 1, text: 'try tether', done: false }],
  next_id: 2,
  progress: 0,
  running_tasks: [],
};
export const STATE_KEYS = ['todos', 'next_id', 'progress', 'running_tasks'];

/**
 * Open `url` (the demo page) in a fresh context of `browser`, collecting page errors and
 * console errors, and wait until the page says it is connected.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} label used in messages
 * @param {number} timeout default timeout for locator waits
 */
export async function openDemo(browser, url, label, timeout) {
  const { page, context, pageErrors, consoleErrors } = await openPage(browser, url, label, timeout);
  await waitConnected(page);
  return { page, context, pageErrors, consoleErrors, label };
}

/** @param {import('playwright-core').Page} page */
export async function waitConnected(page) {
  await page.waitForSelector('#status[data-state="connected"]');
}

/**
 * The store's state as the page holds it (`window.demo.store.state`).
 * @param {import('playwright-core').Page} page
 */
export function storeState(page) {
  return page.evaluate(() => /** @type {any} */ (window).demo.store.state);
}

/**
 * The rendered todo list: [{id, text, done}] from the DOM.
 * @param {import('playwright-core').Page} page
 */
export function renderedTodos(page) {
  return page.$$eval('#todos li', (els) =>
    els.map((li) => ({
      id: Number(/** @type {HTMLElement} */ (li).dataset.id),
      text: /** @type {HTMLElement} */ (li.querySelector('.text'))?.textContent ?? '',
      done: /** @type {HTMLInputElement} */ (li.querySelector('input[type=checkbox]'))?.checked ?? false,
    })),
  );
}

/**
 * Wait until the rendered list equals `expected` (ids, texts, done flags, in order).
 * @param {import('playwright-core').Page} page
 * @param {{id: number, text: string, done: boolean}[]} expected
 * @param {string} what
 */
export async function waitTodos(page, expected, what) {
  const want = JSON.stringify(expected);
  try {
    await page.waitForFunction(
      (w) =>
        JSON.stringify(
          [...document.querySelectorAll('#todos li')].map((li) => ({
            id: Number(/** @type {HTMLElement} */ (li).dataset.id),
            text: /** @type {HTMLElement} */ (li.querySelector('.text'))?.textContent ?? '',
            done: /** @type {HTMLInputElement} */ (li.querySelector('input[type=checkbox]'))?.checked ?? false,
          })),
        ) === w,
      want,
    );
  } catch (err) {
    throw new Error(`${what}: todos never became ${want}; shown: ${JSON.stringify(await renderedTodos(page))} (${String(err)})`);
  }
}

/** @param {import('playwright-core').Page} page */
export async function progressValue(page) {
  return Number(await page.getAttribute('#progress', 'data-value'));
}

/**
 * Record every `progress` value the page's store takes from now on (read with `progressLog`):
 * how a test sees that nothing of a cancelled task arrives, up to a later task as the marker.
 * @param {import('playwright-core').Page} page
 */
export async function recordProgress(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.progressLog = [];
    let last = w.demo.store.state.progress;
    w.demo.store.subscribe((/** @type {any} */ state) => {
      if (state.progress !== last) w.progressLog.push((last = state.progress));
    });
  });
}

/**
 * The `progress` values recorded since `recordProgress`, in order.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<number[]>}
 */
export function progressLog(page) {
  return page.evaluate(() => /** @type {any} */ (window).progressLog);
}

/**
 * Wait until `#progress[data-value]` satisfies `pred`; returns the value.
 * @param {import('playwright-core').Page} page
 * @param {string} predSrc a JS expression over `v` (a number), e.g. "v > 0.2"
 */
export async function waitProgress(page, predSrc) {
  const handle = await page.waitForFunction((src) => {
    const v = Number(document.getElementById('progress')?.dataset.value);
    // eslint-disable-next-line no-new-func
    return new Function('v', `return (${src});`)(v) ? String(v) : false;
  }, predSrc);
  return Number(await handle.jsonValue());
}

/**
 * Wait until `#running` has exactly `text`.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
export async function waitRunning(page, text) {
  await page.waitForFunction((t) => (document.getElementById('running')?.textContent ?? '') === t, text);
}

/**
 * The toasts shown: [{type, message}].
 * @param {import('playwright-core').Page} page
 */
export function toasts(page) {
  return page.$$eval('#toasts li', (els) =>
    els.map((li) => ({ type: /** @type {HTMLElement} */ (li).dataset.type ?? '', message: li.textContent ?? '' })),
  );
}

/**
 * Wait for a toast of `type` whose message equals `message` (string) or matches it (RegExp),
 * after the first `from` toasts.
 * @param {import('playwright-core').Page} page
 * @param {string} type
 * @param {string | RegExp} message
 * @param {number} [from]
 */
export async function waitToast(page, type, message, from = 0) {
  const src = typeof message === 'string' ? { s: message } : { re: message.source, flags: message.flags };
  try {
    await page.waitForFunction(
      ({ type: t, src: m, from: f }) =>
        [...document.querySelectorAll('#toasts li')].slice(f).some((li) => {
          if (/** @type {HTMLElement} */ (li).dataset.type !== t) return false;
          const text = li.textContent ?? '';
          return 's' in m ? text === m.s : new RegExp(m.re, m.flags).test(text);
        }),
      { type, src, from },
    );
  } catch (err) {
    throw new Error(`no ${type} toast ${String(message)}; shown: ${JSON.stringify(await toasts(page))} (${String(err)})`);
  }
}

/**
 * Add a todo through the form.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
export async function addTodo(page, text) {
  await page.fill('#new-text', text);
  await page.click('#add');
}

/**
 * Edit a todo's text inline (double-click, type, Enter): a client `_PATCH replace /todos/<i>/text`.
 * @param {import('playwright-core').Page} page
 * @param {number} id
 * @param {string} text
 */
export async function editTodo(page, id, text) {
  await page.dblclick(`#todos li[data-id="${id}"] .text`);
  const input = page.locator(`#todos li[data-id="${id}"] .edit-text`);
  await input.fill(text);
  await input.press('Enter');
  await input.waitFor({ state: 'detached' });
}

/**
 * Start an inline edit, type `text`, then press Escape: the page documents that Escape cancels
 * (nothing sent, the text unchanged).
 * @param {import('playwright-core').Page} page
 * @param {number} id
 * @param {string} text
 */
export async function cancelEdit(page, id, text) {
  await page.dblclick(`#todos li[data-id="${id}"] .text`);
  const input = page.locator(`#todos li[data-id="${id}"] .edit-text`);
  await input.fill(text);
  await input.press('Escape');
  await input.waitFor({ state: 'detached' });
}

/**
 * Ask the server for its state (`_GET:TODOS`) and wait for the `_SET` answer to be applied.
 * Proves what the server holds (e.g. that it kept a client patch).
 * @param {import('playwright-core').Page} page
 */
export async function refetch(page) {
  await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const { store } = /** @type {any} */ (window).demo;
        const off = store.subscribe(() => {
          off();
          resolve(undefined);
        });
        if (!store.fetchRemoteState()) {
          off();
          reject(new Error('_GET not sent (not connected)'));
        }
      }),
  );
}

/**
 * Upload a file through `#upload` (a binary `UPLOAD` action).
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {Buffer} bytes
 */
export async function uploadFile(page, name, bytes) {
  await page.setInputFiles('#upload', { name, mimeType: 'application/octet-stream', buffer: bytes });
}
