// ws-sync compatibility: the SAME todo-sync scenario (examples/todo-sync/CONTRACT.md) against
//   (a) the real ws-sync 0.6.9 from PyPI (tests/sync_compat/ws_sync_app.py, Starlette + uvicorn),
//   (b) tether's own `/demo/sync` + `/ws/sync/demo`,
// driven through the demo page (web/demo-sync.html) in Debian's chromium, plus the same frames
// over a raw WebSocket (npm `ws`) to pin the wire level (initial `_SET`, binary echo).
//
//   TETHER_BIN=/path/to/tether node --test tests/browser/sync-compat.test.mjs
//
// The Python side is installed by tests/sync_compat/setup.sh (run from `before`, idempotent;
// needs PyPI the first time) into ${TETHER_VENV:-~/.cache/tether-venv}. Each server is started on
// a free port by the test and killed at the end (and if the test process dies).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { launchChromium, startServer, waitUntil, WAIT_MS } from './helpers.mjs';
import { ensurePythonSide, startWsSyncApp } from '../sync_compat/python-app.mjs';
import {
  INITIAL_STATE,
  STATE_KEYS,
  addTodo,
  editTodo,
  openDemo,
  progressLog,
  progressValue,
  recordProgress,
  refetch,
  storeState,
  toasts,
  uploadFile,
  waitProgress,
  waitRunning,
  waitToast,
  waitTodos,
} from '../sync_compat/demo-page.mjs';

/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {{stop: () => Promise<unknown>, output: () => string}[]} */
const servers = [];

before(async () => {
  await ensurePythonSide();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop().catch(() => {});
});

/**
 * The two servers under test. `httpUrl` serves the demo page at /demo/sync and the socket at
 * /ws/sync/demo on the same host.
 * @typedef {{name: string, tether: boolean, start: () => Promise<{httpUrl: string, stop: () => Promise<unknown>, output: () => string}>}} Target
 * @type {Target[]}
 */
const TARGETS = [
  {
    name: 'ws-sync 0.6.9 (Python)',
    tether: false,
    start: async () => {
      const app = await startWsSyncApp();
      servers.push(app);
      return app;
    },
  },
  {
    name: 'tether',
    tether: true,
    start: async () => {
      const s = await startServer(['--shutdown-grace', '1']);
      const srv = { httpUrl: s.httpUrl, output: s.output, stop: () => s.stop('SIGKILL') };
      servers.push(srv);
      return srv;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Wire level: one raw WebSocket, exact frames
// ---------------------------------------------------------------------------------------------

/**
 * A raw client recording every frame (text parsed, binary as Buffer).
 * @param {string} url
 */
async function rawClient(url) {
  const ws = new WebSocket(url);
  /** @type {({binary: false, json: any, text: string} | {binary: true, bytes: Buffer})[]} */
  const frames = [];
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(/** @type {any} */ (data));
    if (isBinary) frames.push({ binary: true, bytes: buf });
    else frames.push({ binary: false, text: buf.toString('utf8'), json: JSON.parse(buf.toString('utf8')) });
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    /** @param {string} type @param {unknown} data */
    send(type, data) {
      ws.send(JSON.stringify({ type, data }));
    },
    /** @param {(f: any, i: number) => boolean} pred @param {string} what @param {number} [from] */
    async wait(pred, what, from = 0) {
      const i = await waitUntil(
        () => {
          const k = frames.findIndex((f, j) => j >= from && pred(f, j));
          return k >= 0 ? k + 1 : 0;
        },
        `${what}; frames: ${JSON.stringify(frames.map((f) => (f.binary ? `<binary ${f.bytes.length}>` : f.text)))}`,
        WAIT_MS,
      );
      return i - 1;
    },
    close() {
      ws.terminate();
    },
  };
}

for (const target of TARGETS) {
  describe(`todo-sync contract on ${target.name}`, () => {
    // Every test gets a fresh server: tether's demo state is shared by all its connections.
    test('wire: initial _SET, key order, binary UPLOAD echoed reversed', { timeout: 60_000 }, async () => {
      const server = await target.start();
      const c = await rawClient(`${server.httpUrl.replace(/^http/, 'ws')}/ws/sync/demo`);
      try {
        const i = await c.wait((f) => !f.binary && f.json.type === '_SET:TODOS', 'the initial _SET:TODOS');
        assert.equal(i, 0, 'the _SET is the first frame');
        const set = /** @type {any} */ (c.frames[0]).json;
        assert.deepEqual(Object.keys(set), ['type', 'data'], 'frame shape {type, data}');
        assert.deepEqual(set.data, INITIAL_STATE, 'initial state');
        assert.deepEqual(Object.keys(set.data), STATE_KEYS, 'state key order');

        // UPLOAD: _BIN_META + binary from the client; the server echoes the bytes reversed
        // with send_binary({"type": "ECHO", "name"}, ...) = _BIN_META {type: "_ACTION:TODOS"} + binary.
        const bytes = Buffer.from('hello, ws-sync \u00e9\u00e8 \x00\x01\x02', 'utf8');
        const from = c.frames.length;
        c.send('_BIN_META', { type: '_ACTION:TODOS', metadata: { type: 'UPLOAD', name: 'raw.bin' } });
        c.ws.send(bytes, { binary: true });
        const m = await c.wait((f) => !f.binary && f.json.type === '_BIN_META', 'the echo _BIN_META', from);
        assert.deepEqual(/** @type {any} */ (c.frames[m]).json.data, {
          type: '_ACTION:TODOS',
          metadata: { type: 'ECHO', name: 'raw.bin' },
        });
        const b = await c.wait((f) => f.binary, 'the echoed binary frame', m);
        assert.equal(b, m + 1, 'the binary frame follows its _BIN_META at once');
        assert.deepEqual(/** @type {any} */ (c.frames[b]).bytes, Buffer.from([...bytes].reverse()), 'bytes reversed');
        // the todo was added by a _PATCH before the echo
        const patches = c.frames.slice(from, m).filter((f) => !f.binary && f.json.type === '_PATCH:TODOS');
        assert.ok(patches.length >= 1, 'a _PATCH before the echo');
      } finally {
        c.close();
        await server.stop();
      }
    });

    test('demo page: the contract scenario in chromium', { timeout: 120_000 }, async () => {
      assert.ok(browser);
      const server = await target.start();
      const { page, context, pageErrors } = await openDemo(browser, `${server.httpUrl}/demo/sync`, target.name, WAIT_MS);
      try {
        await scenario(page, target);
        assert.deepEqual(pageErrors, [], 'no uncaught page errors');
      } catch (err) {
        throw new Error(`${String(err)}\n--- ${target.name} output ---\n${server.output().slice(-5000)}`);
      } finally {
        await context.close();
        await server.stop();
      }
    });
  });
}

/**
 * The contract scenario on one fresh page of a fresh server (both servers behave the same here).
 * @param {import('playwright-core').Page} page
 * @param {Target} target
 */
async function scenario(page, target) {
  // Initial state, shown and held with the contract's key order.
  await waitTodos(page, [{ id: 1, text: 'try tether', done: false }], 'initial list');
  assert.deepEqual(await storeState(page), INITIAL_STATE, 'initial store state');
  assert.deepEqual(Object.keys(await storeState(page)), STATE_KEYS, 'state key order');
  assert.equal(await progressValue(page), 0, 'initial progress');
  await waitRunning(page, '');

  // ADD
  await addTodo(page, 'buy milk');
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether', done: false },
      { id: 2, text: 'buy milk', done: false },
    ],
    'after ADD',
  );
  assert.equal((await storeState(page)).next_id, 3, 'next_id after ADD');

  // TOGGLE
  await page.click('#todos li[data-id="2"] input[type=checkbox]');
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether', done: false },
      { id: 2, text: 'buy milk', done: true },
    ],
    'after TOGGLE',
  );
  await page.waitForSelector('#todos li[data-id="2"].done');

  // Inline edit = a client _PATCH; it is kept through a server sync (the next ADD's _PATCH) and
  // the server holds it (a _GET answers with a _SET carrying it).
  await editTodo(page, 1, 'try tether (edited)');
  await addTodo(page, 'third');
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether (edited)', done: false },
      { id: 2, text: 'buy milk', done: true },
      { id: 3, text: 'third', done: false },
    ],
    'edit kept after a server sync',
  );
  await refetch(page);
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether (edited)', done: false },
      { id: 2, text: 'buy milk', done: true },
      { id: 3, text: 'third', done: false },
    ],
    'edit held by the server (_GET -> _SET)',
  );

  // REMOVE
  await page.click('#todos li[data-id="3"] .remove');
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether (edited)', done: false },
      { id: 2, text: 'buy milk', done: true },
    ],
    'after REMOVE',
  );

  // CLEAR_DONE
  await page.click('#clear-done');
  await waitTodos(page, [{ id: 1, text: 'try tether (edited)', done: false }], 'after CLEAR_DONE');

  // COUNT: progress advances, running_tasks shows it; cancel resets progress, clears it, toasts.
  let nToasts = (await toasts(page)).length;
  await page.fill('#count-n', '50');
  await page.click('#count');
  await waitRunning(page, 'COUNT');
  const p1 = await waitProgress(page, 'v > 0');
  const p2 = await waitProgress(page, `v > ${p1}`);
  assert.ok(p2 > p1 && p2 < 1, `progress advances (${p1} -> ${p2})`);
  await page.click('#cancel'); // enabled only while running_tasks has COUNT
  await waitToast(page, 'info', 'count cancelled', nToasts);
  await waitProgress(page, 'v === 0');
  await waitRunning(page, '');
  assert.equal(await progressValue(page), 0, 'progress 0 after the cancel');
  assert.equal((await storeState(page)).running_tasks.length, 0, 'running_tasks empty');

  // A short COUNT completes: success toast, progress 1, running cleared. It is also the marker
  // that nothing of the cancelled task arrives afterwards: every progress value from the cancel
  // on is one of its three steps (the cancelled COUNT of 50 would show k/50).
  await recordProgress(page);
  nToasts = (await toasts(page)).length;
  await page.fill('#count-n', '3');
  await page.click('#count');
  await waitToast(page, 'success', 'counted to 3', nToasts);
  await waitProgress(page, 'v === 1');
  const progress = await progressLog(page);
  assert.ok(progress.length > 0 && progress.every((v) => [1 / 3, 2 / 3, 1].includes(v)), `progress after the cancel: ${JSON.stringify(progress)}`);
  await waitRunning(page, '');

  // UPLOAD a small file: a todo, and the echo (the bytes reversed) shows its size.
  const content = Buffer.from('hello from the browser\n', 'utf8');
  await uploadFile(page, 'note.txt', content);
  await waitTodos(
    page,
    [
      { id: 1, text: 'try tether (edited)', done: false },
      { id: 4, text: `uploaded note.txt (${content.length} bytes)`, done: false },
    ],
    'after UPLOAD',
  );
  await page.waitForSelector(`#echo[data-name="note.txt"][data-size="${content.length}"]`);

  if (target.tether) {
    // tether only: a failing handler becomes an error toast and the session goes on.
    // ws-sync 0.6.9 has no error reporting: the exception ends the WebSocket (the client
    // reconnects to a fresh Session/state), so there is nothing comparable to check there.
    nToasts = (await toasts(page)).length;
    await addTodo(page, '   ');
    await waitToast(page, 'error', /text must not be empty/, nToasts);
    assert.equal(await page.getAttribute('#status', 'data-state'), 'connected', 'still connected after the error');
    await addTodo(page, 'after the error');
    await waitTodos(
      page,
      [
        { id: 1, text: 'try tether (edited)', done: false },
        { id: 4, text: `uploaded note.txt (${content.length} bytes)`, done: false },
        { id: 5, text: 'after the error', done: false },
      ],
      'the session goes on after an error toast',
    );
  }

  // Toasts seen: exactly the contract's (no error toasts on a clean run).
  const seen = (await toasts(page)).filter((t) => !(target.tether && t.type === 'error' && /text must not be empty/.test(t.message)));
  assert.deepEqual(
    seen,
    [
      { type: 'info', message: 'count cancelled' },
      { type: 'success', message: 'counted to 3' },
    ],
    'toasts',
  );
}

// Wire level, both servers side by side: the same client frames give byte-identical server
// frames (text as sent, binary bytes), step by step. Each step waits for the frame that ends it,
// so no timing is involved (the COUNT cancel is left out: where it lands is timing).
test('wire: ws-sync 0.6.9 and tether answer with byte-identical frames', { timeout: 120_000 }, async () => {
  /** @param {string} httpUrl */
  const transcript = async (httpUrl) => {
    const c = await rawClient(`${httpUrl.replace(/^http/, 'ws')}/ws/sync/demo`);
    /** @type {string[][]} */
    const steps = [];
    let from = 0;
    /** @param {string} what @param {(f: any) => boolean} end */
    const step = async (what, end) => {
      const i = await c.wait(end, what, from);
      steps.push(c.frames.slice(from, i + 1).map((f) => (f.binary ? `<binary ${f.bytes.toString('hex')}>` : f.text)));
      from = i + 1;
    };
    const isText = (/** @type {string} */ type) => (/** @type {any} */ f) => !f.binary && f.json.type === type;
    const action = (/** @type {any} */ data) => c.send('_ACTION:TODOS', data);
    try {
      await step('initial _SET', isText('_SET:TODOS'));
      action({ type: 'ADD', text: 'a ünïcode ✓' });
      await step('ADD', isText('_PATCH:TODOS'));
      action({ type: 'TOGGLE', id: 2 });
      await step('TOGGLE', isText('_PATCH:TODOS'));
      c.send('_PATCH:TODOS', [{ op: 'replace', path: '/todos/0/text', value: 'edited' }]); // no reply
      action({ type: 'ADD', text: 'b' });
      await step('client _PATCH then ADD', isText('_PATCH:TODOS'));
      action({ type: 'REMOVE', id: 3 });
      await step('REMOVE', isText('_PATCH:TODOS'));
      action({ type: 'CLEAR_DONE' });
      await step('CLEAR_DONE', isText('_PATCH:TODOS'));
      c.send('_TASK_START:TODOS', { type: 'COUNT', n: 4 });
      await step('COUNT 4 to its end', (f) => !f.binary && f.json.type === '_PATCH:TODOS' && f.json.data[0]?.op === 'remove' && f.json.data[0]?.path === '/running_tasks/0');
      c.send('_BIN_META', { type: '_ACTION:TODOS', metadata: { type: 'UPLOAD', name: 'data.bin' } });
      c.ws.send(Buffer.from([0, 1, 2, 250, 255]), { binary: true });
      await step('UPLOAD', (f) => f.binary);
      c.send('_GET:TODOS', {});
      await step('_GET', isText('_SET:TODOS'));
    } finally {
      c.close();
    }
    return steps;
  };
  const py = await TARGETS[0].start();
  const t = await TARGETS[1].start();
  try {
    const [a, b] = [await transcript(py.httpUrl), await transcript(t.httpUrl)];
    assert.deepEqual(b, a, 'tether frames (actual) vs ws-sync 0.6.9 frames (expected)');
    // sanity: the transcript is what the contract says
    assert.equal(a[6].length, 7, `COUNT 4: running, 4 progress patches, toast, done (${JSON.stringify(a[6])})`);
    assert.equal(a[6][5], '{"type":"_TOAST","data":{"type":"success","message":"counted to 4"}}');
  } finally {
    await py.stop();
    await t.stop();
  }
});

// The page served by tether pointed at the ws-sync app with `?ws=` (the page's override).
test('demo page from tether with ?ws= pointing at the ws-sync app', { timeout: 120_000 }, async () => {
  assert.ok(browser);
  const py = await TARGETS[0].start();
  const t = await TARGETS[1].start();
  const ws = `${py.httpUrl.replace(/^http/, 'ws')}/ws/sync/demo`;
  const { page, context, pageErrors } = await openDemo(browser, `${t.httpUrl}/demo/sync?ws=${encodeURIComponent(ws)}`, 'tether page -> ws-sync', WAIT_MS);
  try {
    await waitTodos(page, [{ id: 1, text: 'try tether', done: false }], 'initial list');
    await addTodo(page, 'via ?ws=');
    await waitTodos(
      page,
      [
        { id: 1, text: 'try tether', done: false },
        { id: 2, text: 'via ?ws=', done: false },
      ],
      'after ADD',
    );
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
    await py.stop();
    await t.stop();
  }
});
