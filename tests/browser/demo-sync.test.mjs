// Browser test of tether's todo-sync demo (`/demo/sync`, examples/todo-sync/CONTRACT.md) on
// tether alone: two pages share one list, a task shows progress on both and can be cancelled,
// and the pages survive a server restart on the same port (reconnect with backoff, resync to the
// new server's initial state, and go on working).
//
//   TETHER_BIN=/path/to/tether node --test tests/browser/demo-sync.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startServer, WAIT_MS } from './helpers.mjs';
import {
  INITIAL_STATE,
  addTodo,
  cancelEdit,
  editTodo,
  openDemo,
  progressLog,
  progressValue,
  recordProgress,
  storeState,
  toasts,
  waitProgress,
  waitRunning,
  waitToast,
  waitTodos,
} from '../sync_compat/demo-page.mjs';

/** How long the pages get to notice the restart and reconnect (backoff 250 ms doubling to 10 s). */
const RECONNECT_MS = 30_000;

/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {{stop: (signal?: NodeJS.Signals) => Promise<unknown>}[]} */
const servers = [];

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop('SIGKILL').catch(() => {});
});

/**
 * @param {import('playwright-core').Page} page
 * @param {string} state
 * @param {number} [timeout]
 */
function waitStatus(page, state, timeout = WAIT_MS) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { timeout });
}

test('demo page: two pages share the list, a task, a server restart', { timeout: 240_000 }, async () => {
  assert.ok(browser);
  const first = await startServer(['--shutdown-grace', '1']);
  servers.push(first);
  const url = `${first.httpUrl}/demo/sync`;
  const a = await openDemo(browser, url, 'A', WAIT_MS);
  const b = await openDemo(browser, url, 'B', WAIT_MS);
  try {
    for (const { page } of [a, b]) {
      await waitTodos(page, [{ id: 1, text: 'try tether', done: false }], 'initial list');
      assert.deepEqual(await storeState(page), INITIAL_STATE, 'initial state');
    }

    // ---- a shared list: each page's changes reach the other one -----------------------------
    await addTodo(a.page, 'from A');
    const two = [
      { id: 1, text: 'try tether', done: false },
      { id: 2, text: 'from A', done: false },
    ];
    await waitTodos(b.page, two, 'B sees A\'s ADD');
    await b.page.click('#todos li[data-id="2"] input[type=checkbox]');
    two[1].done = true;
    await waitTodos(a.page, two, 'A sees B\'s TOGGLE');
    // B's inline edit (a client _PATCH) reaches A at the latest with the next server sync.
    await editTodo(b.page, 1, 'edited by B');
    // Escape cancels an edit (the page's documented behaviour): nothing is sent.
    await cancelEdit(b.page, 1, 'cancelled edit');
    await addTodo(a.page, 'from A again');
    const three = [
      { id: 1, text: 'edited by B', done: false },
      { id: 2, text: 'from A', done: true },
      { id: 3, text: 'from A again', done: false },
    ];
    for (const { page, label } of [a, b]) await waitTodos(page, three, `${label} after B's edit + A's ADD`);
    await b.page.click('#todos li[data-id="3"] .remove');
    await waitTodos(a.page, three.slice(0, 2), 'A sees B\'s REMOVE');
    await a.page.click('#clear-done');
    await waitTodos(b.page, three.slice(0, 1), 'B sees A\'s CLEAR_DONE');

    // ---- a task: progress on both pages, cancelled from the page that started it -------------
    const aToasts = (await toasts(a.page)).length;
    await a.page.fill('#count-n', '100');
    await a.page.click('#count');
    await waitRunning(a.page, 'COUNT');
    for (const { page } of [a, b]) {
      const p1 = await waitProgress(page, 'v > 0');
      await waitProgress(page, `v > ${p1}`);
    }
    await a.page.click('#cancel');
    await waitToast(a.page, 'info', 'count cancelled', aToasts);
    for (const { page } of [a, b]) await waitProgress(page, 'v === 0');
    await waitRunning(a.page, '');
    for (const { page, label } of [a, b]) assert.equal(await progressValue(page), 0, `${label}: progress 0`);
    // Nothing of the cancelled task arrives afterwards; a short COUNT is the marker: every progress
    // value from here on is one of its three steps (the cancelled COUNT of 100 would show k/100).
    for (const { page } of [a, b]) await recordProgress(page);
    const markerToasts = (await toasts(a.page)).length;
    await a.page.fill('#count-n', '3');
    await a.page.click('#count');
    await waitToast(a.page, 'success', 'counted to 3', markerToasts);
    for (const { page, label } of [a, b]) {
      await waitProgress(page, 'v === 1');
      const seen = await progressLog(page);
      assert.ok(seen.length > 0 && seen.every((v) => [1 / 3, 2 / 3, 1].includes(v)), `${label}: progress after the cancel: ${JSON.stringify(seen)}`);
    }
    await waitRunning(a.page, '');

    // ---- restart on the same port ------------------------------------------------------------
    const stopped = await first.stop('SIGTERM');
    assert.equal(stopped.code, 0, `SIGTERM exits 0 (got ${JSON.stringify(stopped)})`);
    // Both pages notice and keep retrying (a `_DISCONNECT` would stop them: status "disconnected").
    for (const { page } of [a, b]) await waitStatus(page, 'reconnecting');
    const second = await startServer(['--shutdown-grace', '1'], { http: `127.0.0.1:${first.httpPort}` });
    servers.push(second);
    for (const { page } of [a, b]) {
      await waitStatus(page, 'connected', RECONNECT_MS);
      // The new server's initial state replaces what the pages held.
      await waitTodos(page, [{ id: 1, text: 'try tether', done: false }], 'initial list after the restart');
      assert.deepEqual(await storeState(page), INITIAL_STATE, 'state after the restart');
      await waitRunning(page, '');
    }
    // ... and the pages go on working against the new server.
    await addTodo(b.page, 'after restart');
    const afterRestart = [
      { id: 1, text: 'try tether', done: false },
      { id: 2, text: 'after restart', done: false },
    ];
    for (const { page, label } of [a, b]) await waitTodos(page, afterRestart, `${label} after the restart`);
    const bToasts = (await toasts(b.page)).length;
    await b.page.fill('#count-n', '3');
    await b.page.click('#count');
    await waitToast(b.page, 'success', 'counted to 3', bToasts);
    for (const { page } of [a, b]) await waitProgress(page, 'v === 1');
    await waitRunning(b.page, '');

    const stopped2 = await second.stop('SIGTERM');
    assert.equal(stopped2.code, 0, 'second server exits 0');
    assert.deepEqual([...a.pageErrors, ...b.pageErrors], [], 'no uncaught page errors');
  } finally {
    await a.context.close();
    await b.context.close();
  }
});
