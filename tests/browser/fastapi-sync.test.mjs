// Browser test of a FastAPI app on `tether.sync` (tests/fastapi_sync/app.py and its page) in
// Debian's chromium: the page (web/tether-client.js `Session` + web/sync.js store) renders the
// initial state, ADD / TOGGLE / a client patch reach the server (whose items stay pydantic models),
// a task's server-side changes show up, a second tab with the same session id takes over (the
// first shows "disconnected"), and a dropped socket and a server restart are followed by a
// reconnect and a resync.
//
//   TETHER_PYTHON=/path/to/venv/bin/python node --test tests/browser/fastapi-sync.test.mjs
//
// The Python is $TETHER_PYTHON, else ${TETHER_VENV:-~/.cache/tether-venv}/bin/python; it needs
// tether (with tether.sync), fastapi, uvicorn and pydantic. The page's socket goes through a local
// TCP proxy (helpers.mjs `startProxy`) that the test cuts, and points at the restarted server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WAIT_MS, launchChromium, openPage, startProxy, waitUntil } from './helpers.mjs';
import { startPythonApp, venvDir } from '../sync_compat/python-app.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const APP = path.resolve(HERE, '..', 'fastapi_sync', 'app.py');
/** How long a page gets to notice a drop or restart and reconnect (backoff 250 ms doubling to 10 s). */
const RECONNECT_MS = 30_000;
const SID = 'browser-test';

function python() {
  if (process.env.TETHER_PYTHON) return process.env.TETHER_PYTHON;
  return path.join(venvDir(), 'bin', 'python');
}

/** Fail early and clearly when the Python side cannot run the app. */
function checkPython() {
  const py = python();
  if (!existsSync(py)) {
    return Promise.reject(new Error(`no Python at ${py}: set TETHER_PYTHON or TETHER_VENV`));
  }
  const probe = 'import tether.sync, fastapi, uvicorn, pydantic';
  return new Promise((resolve, reject) => {
    execFile(py, ['-c', probe], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      reject(
        new Error(
          `${py} cannot import tether.sync / fastapi / uvicorn / pydantic (\`${probe}\` failed):\n${stderr}\n` +
            'install them into that venv: pip install fastapi uvicorn pydantic && ' +
            'pip install --force-reinstall --no-deps <repo root> (tether with python/tether/sync/)',
        ),
      );
    });
  });
}

/** @typedef {import('../sync_compat/python-app.mjs').PythonApp} App */

/**
 * Spawn `python app.py --port 0` and resolve once it printed `listening http 127.0.0.1:<port>`
 * and answers `/healthz` (tests/sync_compat/python-app.mjs `startPythonApp`).
 * @returns {Promise<App>}
 */
function startApp() {
  return startPythonApp({ python: python(), script: APP, name: 'the FastAPI app' });
}

/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {App[]} */
const apps = [];

before(async () => {
  await checkPython();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const a of apps) await a.stop().catch(() => {});
});

/**
 * @param {import('playwright-core').Page} page
 * @param {string} state
 * @param {number} [timeout]
 */
function waitStatus(page, state, timeout = WAIT_MS) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { timeout });
}

/** @typedef {{id: number, text: string, done: boolean}} ShownItem */

/**
 * The items as the DOM shows them.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<ShownItem[]>}
 */
function shownItems(page) {
  return page.$$eval('#items li', (lis) =>
    lis.map((li) => ({
      id: Number(/** @type {HTMLElement} */ (li).dataset.id),
      text: li.querySelector('.text')?.textContent ?? '',
      done: li.classList.contains('done'),
    })),
  );
}

/**
 * Wait until the DOM shows exactly `want`.
 * @param {import('playwright-core').Page} page
 * @param {ShownItem[]} want
 * @param {string} what
 * @param {number} [timeout]
 */
async function waitItems(page, want, what, timeout = WAIT_MS) {
  /** @type {ShownItem[]} */
  let last = [];
  try {
    await waitUntil(
      async () => {
        last = await shownItems(page);
        return JSON.stringify(last) === JSON.stringify(want);
      },
      what,
      timeout,
    );
  } catch (err) {
    throw new Error(`${/** @type {Error} */ (err).message}\nshown: ${JSON.stringify(last)}\nwanted: ${JSON.stringify(want)}`);
  }
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 * @param {(text: string) => boolean} ok
 * @param {string} what
 * @param {number} [timeout]
 */
async function waitText(page, selector, ok, what, timeout = WAIT_MS) {
  let last = '';
  try {
    await waitUntil(
      async () => {
        last = (await page.textContent(selector)) ?? '';
        return ok(last);
      },
      what,
      timeout,
    );
  } catch (err) {
    throw new Error(`${/** @type {Error} */ (err).message} (${selector} shows ${JSON.stringify(last)})`);
  }
  return last;
}

/**
 * The server's own view of the session (GET /api/sessions/<id>).
 * @param {App} app
 * @returns {Promise<{title: string, items: {id: number, text: string, done: boolean, tags: string[]}[], item_types: string[], connected: boolean}>}
 */
async function serverView(app) {
  const res = await fetch(`${app.httpUrl}/api/sessions/${SID}`);
  assert.equal(res.status, 200, 'GET /api/sessions/<id>');
  return res.json();
}

/**
 * Run one step of the scenario; a failure names the step (and stops the scenario).
 * @param {string} name
 * @param {() => Promise<void>} fn
 */
async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    const e = /** @type {Error} */ (err);
    throw new Error(`step "${name}" failed: ${e.message}`, { cause: err });
  }
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
async function add(page, text) {
  await page.fill('#new-text', text);
  await page.click('#add');
}

test('FastAPI + tether.sync: a page stays in sync', { timeout: 240_000 }, async () => {
  assert.ok(browser);
  let app = await startApp();
  apps.push(app);
  const proxy = await startProxy(app.port);
  const wsUrl = `ws://127.0.0.1:${proxy.port}/ws?s=${SID}`;
  const pageUrl = `${app.httpUrl}/?s=${SID}&ws=${encodeURIComponent(wsUrl)}`;
  /** @type {{page: import('playwright-core').Page, pageErrors: string[]}[]} */
  const opened = [];
  try {
    const a = await openPage(browser, pageUrl, 'A', WAIT_MS);
    opened.push(a);

    // ---- initial state ----------------------------------------------------------------------
    await step('initial state rendered', async () => {
      await waitStatus(a.page, 'connected');
      await waitItems(a.page, [{ id: 1, text: 'first item', done: false }], 'the initial item');
      await waitText(a.page, '#title', (s) => s === 'Board', 'the initial title');
      assert.equal(await a.page.textContent('#items li[data-id="1"] .tags'), 'seed');
      await waitText(a.page, '#boot', (s) => /^[0-9a-f]{8}$/.test(s), 'the server boot id');
    });
    const boot1 = (await a.page.textContent('#boot')) ?? '';

    // ---- actions and a client patch ---------------------------------------------------------
    const items = [{ id: 1, text: 'first item', done: false }];
    await step('ADD and TOGGLE from the page', async () => {
      await add(a.page, 'from A');
      items.push({ id: 2, text: 'from A', done: false });
      await waitItems(a.page, items, 'the ADDed item');
      await a.page.click('#items li[data-id="1"] input[type=checkbox]');
      items[0].done = true;
      await waitItems(a.page, items, 'item 1 toggled');
      const view = await serverView(app);
      assert.deepEqual(view.item_types, ['Item'], 'the server keeps pydantic Items');
      assert.deepEqual(
        view.items.map((i) => ({ id: i.id, text: i.text, done: i.done })),
        items,
      );
    });

    await step('a client patch (title) is validated into the server object', async () => {
      await a.page.fill('#title-input', 'Renamed');
      await a.page.click('#rename');
      await waitText(a.page, '#title', (s) => s === 'Renamed', 'the local title');
      await waitUntil(async () => (await serverView(app)).title === 'Renamed', 'the server to get the title');
      // The server still works on typed items after the client patch.
      await add(a.page, 'after patch');
      items.push({ id: 3, text: 'after patch', done: false });
      await waitItems(a.page, items, 'ADD after the client patch');
      assert.deepEqual((await serverView(app)).item_types, ['Item']);
    });

    // ---- a task's server-side changes ---------------------------------------------------------
    await step('a task pushes server-side changes', async () => {
      await a.page.click('#fill');
      await waitText(a.page, '#running', (s) => s === 'FILL', 'FILL in running_tasks');
      for (let i = 1; i <= 3; i++) items.push({ id: 3 + i, text: `auto ${i}`, done: false });
      await waitItems(a.page, items, 'the items FILL adds');
      await waitUntil(async () => (await a.page.getAttribute('#progress', 'data-value')) === '1', 'progress 1');
      await waitText(a.page, '#running', (s) => s === '', 'FILL to leave running_tasks');
      await a.page.waitForSelector('#toasts li[data-type="success"]:has-text("filled 3")');
      assert.equal(await a.page.textContent('#items li[data-id="6"] .tags'), 'auto');
      assert.deepEqual((await serverView(app)).item_types, ['Item']);
    });

    // ---- takeover by a second tab -----------------------------------------------------------
    const b = await openPage(browser, pageUrl, 'B', WAIT_MS);
    opened.push(b);
    await step('a second tab with the same session takes over', async () => {
      await waitStatus(a.page, 'disconnected');
      await waitItems(b.page, items, 'B renders the session state');
      await waitStatus(b.page, 'connected', RECONNECT_MS);
      await waitText(b.page, '#title', (s) => s === 'Renamed', 'B has the title');
      // B works; A stays disconnected and does not fight back
      await add(b.page, 'from B');
      items.push({ id: 7, text: 'from B', done: false });
      await waitItems(b.page, items, 'ADD from B');
      assert.equal(await a.page.getAttribute('#status', 'data-state'), 'disconnected', 'A is disconnected');
      assert.equal(await a.page.evaluate(() => /** @type {any} */ (window).board.session.active), false, 'A does not retry');
      // That A stays disconnected is checked after the next step: B's reconnect there is the marker.
    });

    // ---- a dropped socket ---------------------------------------------------------------------
    await step('a dropped socket: reconnect and resync (with a change made meanwhile)', async () => {
      proxy.state.refuse = true;
      proxy.cut();
      await waitStatus(b.page, 'reconnecting');
      await waitUntil(async () => !(await serverView(app)).connected, 'the server to see the drop');
      const res = await fetch(`${app.httpUrl}/api/sessions/${SID}/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'while away' }),
      });
      assert.equal(res.status, 200, 'POST a server-side change');
      items.push({ id: 8, text: 'while away', done: false });
      proxy.state.refuse = false;
      await waitStatus(b.page, 'connected', RECONNECT_MS);
      await waitItems(b.page, items, 'the change made while away', RECONNECT_MS);
      await add(b.page, 'after drop');
      items.push({ id: 9, text: 'after drop', done: false });
      await waitItems(b.page, items, 'ADD after the reconnect');
      // B waited out a retry delay (the same options as A) after A was told to go: a retry of A
      // would have come first, and taken the session back from B.
      assert.equal(await a.page.getAttribute('#status', 'data-state'), 'disconnected', 'A stays disconnected');
      assert.equal(await a.page.evaluate(() => /** @type {any} */ (window).board.session.active), false);
    });

    // ---- a server restart ---------------------------------------------------------------------
    await step('a server restart: reconnect and resync to the new server', async () => {
      await app.stop();
      await waitUntil(async () => (await b.page.getAttribute('#status', 'data-state')) !== 'connected', 'B to notice');
      app = await startApp();
      apps.push(app);
      proxy.state.targetPort = app.port;
      await waitText(b.page, '#boot', (s) => s !== boot1 && /^[0-9a-f]{8}$/.test(s), 'the new boot id', RECONNECT_MS);
      await waitStatus(b.page, 'connected');
      const fresh = [{ id: 1, text: 'first item', done: false }];
      await waitItems(b.page, fresh, 'the new server\'s initial state');
      await waitText(b.page, '#title', (s) => s === 'Board', 'the new server\'s title');
      await add(b.page, 'after restart');
      fresh.push({ id: 2, text: 'after restart', done: false });
      await waitItems(b.page, fresh, 'ADD on the new server');
    });

    for (const o of opened) assert.deepEqual(o.pageErrors, [], 'uncaught page errors');
  } catch (err) {
    const logs = apps.map((x, i) => `--- app ${i} output ---\n${x.output()}`).join('\n');
    throw new Error(`${/** @type {Error} */ (err).message}\n${logs}`, { cause: err });
  } finally {
    await proxy.close();
  }
});
