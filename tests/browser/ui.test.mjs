// The /ui page (web/ui.html + web/ui*.js) against the real tether binary and its UI relay, in
// Debian's chromium through playwright-core:
//   1. the stock sidekick-py 0.0.7 from PyPI runs tests/ui/every_component.py through the relay
//      while the page is open: the DOM (grid colours and text, console lines, viz tree, layout,
//      sanitized markdown, canvas pixels read back with getImageData), then a button, a grid cell
//      and the canvas are clicked and a textbox and the console submitted, and each Python
//      callback is seen on the script's stdout; a UI opened afterwards and a reloaded UI show
//      the same page (the relay's replay log); `quit` ends the script, the hero shows offline;
//   2. the captured trace tests/fixtures/ui/sidekick-trace-0.0.7.jsonl replayed by a raw hero
//      socket renders the expected page, and the page's own frames (announce, events) are exact;
//   3. bad input (unknown targets, types and actions, invalid payloads, NaN, hostile markdown,
//      orphans, cycles) never breaks the page;
//   4. reconnect: backoff 250 ms doubling, re-announce with the same peerId, state reset; the
//      404 fallback to ws://<host>:5163 and `?session=` from /ui/session/<id>.
//
//   TETHER_BIN=/path/to/tether npm run test:ui --prefix tests/browser
//
// The relay listens on an ephemeral port (`--relay 127.0.0.1:0`); the script is pointed at it
// with sidekick.set_url(), so a relay already on 5163 does not matter. Python: tests/ui/setup.sh
// makes ${TETHER_UI_VENV:-~/.cache/tether-ui-venv} with sidekick-py 0.0.7 (needs PyPI once).
// UI_CLIENT=tether.ui TETHER_UI_PYTHON=<python with tether> runs part 1 on tether's own API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { launchChromium, openPage } from './helpers.mjs';
import { REPO, freePort, inkIn, pixels, runScript, snapshot, startTether, uiPython, waitUntil, WAIT_MS } from '../ui/harness.mjs';

const SCRIPT = join(REPO, 'tests/ui/every_component.py');
const TRACE = join(REPO, 'tests/fixtures/ui/sidekick-trace-0.0.7.jsonl');
const CLIENT = process.env.UI_CLIENT ?? 'sidekick';

/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{stop: () => Promise<unknown>}[]} */
const servers = [];
/** @type {{kill: () => void}[]} */
const scripts = [];

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  for (const s of scripts) s.kill();
  await browser?.close();
  for (const s of servers) await s.stop().catch(() => {});
});

/** @param {Parameters<typeof startTether>[0]} [opts] */
async function tether(opts) {
  const t = await startTether(opts);
  servers.push(t);
  return t;
}

/**
 * Open a /ui page and wait until it is connected to the relay.
 * @param {string} url
 * @param {string} label
 */
async function openUi(url, label) {
  const p = await openPage(browser, url, label, WAIT_MS);
  await p.page.locator('#status[data-state="connected"]').waitFor();
  return p;
}

/** @param {number[]} got @param {number[]} want @param {string} what */
function assertColor(got, want, what, tol = 12) {
  const ok = want.every((v, i) => Math.abs(got[i] - v) <= tol);
  assert.ok(ok, `${what}: got rgba(${got.join(', ')}), want rgba(${want.join(', ')})`);
}

/** Page errors are failures; console warnings are fine (the page warns on bad input). */
function noPageErrors(/** @type {{pageErrors: string[], consoleErrors: string[]}} */ p) {
  assert.deepEqual(p.pageErrors, [], 'uncaught errors in the page');
}

/**
 * A raw hero socket: records every frame it receives.
 * @param {string} url
 */
async function rawHero(url) {
  const ws = new WebSocket(url);
  /** @type {string[]} */
  const got = [];
  ws.on('message', (d, isBinary) => {
    if (!isBinary) got.push(d.toString());
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const peerId = `hero-py-${Math.random().toString(16).slice(2).padEnd(32, '0')}`;
  return {
    ws,
    got,
    peerId,
    /** @param {string | object} frame */
    send(frame) {
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    },
    announce(/** @type {'online' | 'offline'} */ status) {
      this.send({ id: 0, component: 'system', type: 'announce', payload: { peerId, role: 'hero', status, version: '0.0.7', timestamp: Date.now() } });
    },
    /** received frames parsed (strict JSON only) */
    frames() {
      return got.flatMap((t) => {
        try {
          return [JSON.parse(t)];
        } catch {
          return [];
        }
      });
    },
    /** @param {(f: any) => boolean} pred @param {string} what */
    waitFrame(pred, what) {
      return waitUntil(() => this.frames().find(pred), `${what}; frames so far:\n${got.join('\n')}`);
    },
    close() {
      ws.close();
    },
  };
}

// --- 1. stock sidekick-py 0.0.7 -----------------------------------------------------------

describe(`every component through the tether relay (${CLIENT})`, () => {
  /** @type {Awaited<ReturnType<typeof tether>>} */
  let server;
  /** @type {Awaited<ReturnType<typeof openUi>>} */
  let a;
  /** @type {ReturnType<typeof runScript>} */
  let script;
  const session = `every-${process.pid}`;

  before(async () => {
    const python = uiPython();
    server = await tether();
    a = await openUi(`${server.httpUrl}/ui/session/${session}`, 'ui A');
    script = runScript(python, SCRIPT, [`${server.relayUrl}/?session=${session}`]);
    scripts.push(script);
    await script.waitForLine(/^SCRIPT built$/, 30_000);
    await a.page.locator('[data-sk-id="done"]').waitFor({ timeout: 30_000 }).catch(async (err) => {
      throw new Error(`${err.message}\n--- script stderr ---\n${script.stderr()}\n--- server ---\n${server.output().slice(-4000)}`);
    });
  });

  test('layout: containers built bottom-up with changeParent, parent=, recursive remove', async () => {
    const snap = await snapshot(a.page);
    const where = Object.fromEntries(snap.map((c) => [c.id, c.parent]));
    const order = (/** @type {string} */ parent) => snap.filter((c) => c.parent === parent).map((c) => c.id);
    assert.deepEqual(order('root'), ['page', 'done'], 'top level');
    assert.deepEqual(order('page'), ['md', 'top', 'bottom']);
    assert.deepEqual(order('top'), ['left', 'right']);
    assert.deepEqual(order('left'), ['lab', 'btn', 'tb']);
    assert.deepEqual(order('right'), ['con', 'viz']);
    assert.deepEqual(order('bottom'), ['g', 'cv', 'byparent']);
    assert.equal(where.tmpcol, undefined, 'a removed column is gone');
    assert.equal(where.bye, undefined, "a removed column's child is gone too");
    assert.equal(await a.page.locator('[data-sk-id="top"]').evaluate((e) => getComputedStyle(e).flexDirection), 'row');
    assert.equal(await a.page.locator('[data-sk-id="left"]').evaluate((e) => getComputedStyle(e).flexDirection), 'column');
    assert.equal(await a.page.locator('#hero').getAttribute('data-state'), 'online');
    noPageErrors(a);
  });

  test('label, markdown (sanitized), button, textbox', async () => {
    const { page } = a;
    assert.equal(await page.locator('[data-sk-id="lab"]').textContent(), 'hi there');
    const md = page.locator('[data-sk-id="md"]');
    assert.equal(await md.locator('h1').textContent(), 'Every component');
    assert.equal(await md.locator('strong').textContent(), 'bold');
    assert.equal(await md.locator('em').textContent(), 'italic');
    assert.equal(await md.locator('code').textContent(), 'code');
    assert.equal(await md.locator('a').count(), 1, 'only the https link is a link');
    assert.equal(await md.locator('a').getAttribute('href'), 'https://example.com/docs');
    assert.equal(await md.locator('b, script').count(), 0, 'raw HTML is not markup');
    assert.match(/** @type {string} */ (await md.textContent()), /<b>raw html stays text<\/b> and a bad link/);
    assert.deepEqual(await md.locator('li').allTextContents(), ['one', 'two']);
    const btn = page.locator('[data-sk-id="btn"]');
    assert.equal(await btn.evaluate((e) => e.tagName), 'BUTTON');
    assert.equal(await btn.textContent(), 'Go');
    const tb = page.locator('[data-sk-id="tb"]');
    assert.equal(await tb.inputValue(), 'v');
    assert.equal(await tb.getAttribute('placeholder'), 'type something');
    assert.equal(await page.getByRole('textbox', { name: 'type something' }).count(), 1, 'the textbox is labelled');
  });

  test('console lines: print joins and splits as sidekick does', async () => {
    const lines = await a.page.locator('[data-sk-id="con"] .sk-console-line').evaluateAll((ls) => ls.map((l) => /** @type {HTMLElement} */ (l).innerText));
    assert.deepEqual(lines, ['boot', 'line one', 'a-b!', 'x\ny']);
    assert.equal(await a.page.getByRole('textbox', { name: 'Input for console con' }).count(), 1);
    assert.equal(await a.page.getByRole('button', { name: 'Send' }).count(), 1);
  });

  test('grid: colours and text per cell', async () => {
    const cells = await a.page.locator('[data-sk-id="g"] .sk-cell').evaluateAll((cs) =>
      cs.map((c) => ({
        x: Number(/** @type {HTMLElement} */ (c).dataset.x),
        y: Number(/** @type {HTMLElement} */ (c).dataset.y),
        color: /** @type {HTMLElement} */ (c).dataset.color ?? null,
        bg: /** @type {HTMLElement} */ (c).style.backgroundColor ? getComputedStyle(c).backgroundColor : null,
        text: c.textContent,
      })),
    );
    assert.equal(cells.length, 12);
    const at = (/** @type {number} */ x, /** @type {number} */ y) => cells.find((c) => c.x === x && c.y === y);
    assert.deepEqual(at(0, 0), { x: 0, y: 0, color: 'red', bg: 'rgb(255, 0, 0)', text: '' });
    assert.deepEqual(at(3, 2), { x: 3, y: 2, color: '#00ff00', bg: 'rgb(0, 255, 0)', text: '' });
    assert.deepEqual(at(1, 1), { x: 1, y: 1, color: 'orange', bg: 'rgb(255, 165, 0)', text: 'A' }, 'setColor keeps the text');
    assert.deepEqual(at(2, 0), { x: 2, y: 0, color: null, bg: null, text: 'word' });
    assert.deepEqual(at(1, 2), { x: 1, y: 2, color: null, bg: null, text: '' }, 'clearCell');
    assert.deepEqual(at(3, 0), { x: 3, y: 0, color: null, bg: null, text: '' }, 'setText None');
    assert.equal(
      await a.page.locator('[data-sk-id="g"] .sk-cell[data-x="1"][data-y="1"]').evaluate((c) => getComputedStyle(c).color),
      'rgb(17, 17, 17)',
      'dark text on a light cell colour',
    );
    const coloured = cells.filter((c) => c.color).length;
    assert.equal(coloured, 3);
    const box = /** @type {{width: number, height: number}} */ (await a.page.locator('[data-sk-id="g"] .sk-cell').first().boundingBox());
    assert.ok(Math.abs(box.width - box.height) < 1 && box.width >= 10 && box.width <= 100, `square cells of 10–100 px: ${box.width}×${box.height}`);
  });

  test('canvas: every draw op and an offscreen buffer, kept across changeParent', async () => {
    const cv = a.page.locator('[data-sk-id="cv"]');
    assert.deepEqual(await cv.evaluate((c) => [/** @type {HTMLCanvasElement} */ (c).width, /** @type {HTMLCanvasElement} */ (c).height]), [160, 100]);
    const [rect, circle, line, polyline, polygon, ellipse, buffer, empty] = await pixels(a.page, 'cv', [
      [10, 10],
      [80, 20],
      [75, 95],
      [150, 15],
      [25, 60],
      [80, 65],
      [140, 60],
      [100, 40],
    ]);
    assertColor(rect, [255, 0, 0, 255], 'drawRect fill');
    assertColor(circle, [0, 0, 255, 255], 'drawCircle fill');
    assertColor(line, [0, 0, 0, 255], 'drawLine 3 px');
    assertColor(polyline, [255, 165, 0, 255], 'drawPolyline');
    assertColor(polygon, [0, 255, 0, 255], 'drawPolygon fill');
    assertColor(ellipse, [255, 0, 255, 255], 'drawEllipse fill');
    assertColor(buffer, [128, 0, 128, 255], 'offscreen buffer drawn with drawBuffer');
    assert.equal(empty[3], 0, 'untouched pixels stay transparent');
    assert.ok((await inkIn(a.page, 'cv', [108, 55, 24, 18])) > 10, 'drawText "Hi" left ink');
  });

  test('viz: variables sorted, types and lengths, observable values, updates applied', async () => {
    const viz = a.page.locator('[data-sk-id="viz"]');
    assert.deepEqual(await viz.locator('.sk-viz-var').evaluateAll((vs) => vs.map((v) => /** @type {HTMLElement} */ (v).dataset.var)), ['num', 'od', 'ol', 'plain']);
    const head = (/** @type {string} */ name, path = '[]') =>
      viz.locator(`.sk-viz-var[data-var="${name}"] .sk-viz-node[data-path='${path}'] > .sk-viz-head`).first().innerText();
    assert.equal(await head('num'), 'num = float: 3.5');
    assert.equal(await head('ol'), '▾ol = list[3]');
    assert.deepEqual(
      await viz.locator('.sk-viz-var[data-var="ol"] .sk-viz-children .sk-viz-value').allTextContents(),
      ['9', '2', '3'],
      'append, then setitem [0]',
    );
    assert.equal(await head('od'), '▾od = dict[1]');
    assert.equal(await head('od', '["z"]'), '"z": int: 2');
    assert.equal(await head('plain'), '▾plain = dict[2]');
    const observable = await viz.locator('.sk-viz-var > .sk-viz-node').evaluateAll((ns) => ns.map((n) => n.classList.contains('sk-viz-observable')));
    assert.deepEqual(observable, [false, true, true, false], 'ObservableValue nodes are marked');
    // collapsed by default below the top level; the toggle expands it
    const b = viz.locator(`.sk-viz-var[data-var="plain"] .sk-viz-node[data-path='["b"]']`);
    assert.equal(await b.locator('.sk-viz-children').count(), 0);
    await b.locator('> .sk-viz-head > button.sk-viz-toggle').click();
    const bNode = viz.locator(`.sk-viz-var[data-var="plain"] .sk-viz-node[data-path='["b"]']`);
    assert.deepEqual(await bNode.locator('.sk-viz-children .sk-viz-value').allTextContents(), ['1', 'None']);
    await bNode.locator('> .sk-viz-head > button.sk-viz-toggle').click();
  });

  test('clicks and submits reach the Python callbacks', async () => {
    const { page } = a;
    await page.locator('[data-sk-id="btn"]').click();
    await script.waitForLine(/^CALLBACK button btn$/);
    await page.locator('[data-sk-id="btn"]', { hasText: 'Clicked' }).waitFor();

    await page.locator('[data-sk-id="g"] .sk-cell[data-x="2"][data-y="1"]').click();
    await script.waitForLine(/^CALLBACK grid 2 1$/);
    await page.locator('[data-sk-id="g"] .sk-cell[data-x="2"][data-y="1"][data-color="yellow"]').waitFor();

    await page.locator('[data-sk-id="cv"]').click({ position: { x: 30.5, y: 60.5 } });
    const m = await script.waitForLine(/^CALLBACK canvas (\d+) (\d+)$/);
    const [x, y] = [Number(m[1]), Number(m[2])];
    assert.ok(Math.abs(x - 30) <= 1 && Math.abs(y - 60) <= 1, `canvas click at (30, 60) arrived as (${x}, ${y})`);
    await waitUntil(async () => (await pixels(page, 'cv', [[x, y]]))[0][3] === 255, 'the dot the callback draws');

    const tb = page.locator('[data-sk-id="tb"]');
    await tb.fill('typed');
    await tb.press('Enter');
    await script.waitForLine(/^CALLBACK textbox typed$/);
    await waitUntil(async () => (await tb.inputValue()) === 'TYPED', 'the value the callback set');
    await tb.blur(); // the text is the hero's: no second submit
    await tb.fill('by blur');
    await tb.blur();
    await script.waitForLine(/^CALLBACK textbox by blur$/);
    await waitUntil(async () => (await tb.inputValue()) === 'BY BLUR', 'the value the callback set');
    assert.deepEqual(script.lines.filter((l) => l.startsWith('CALLBACK textbox')), ['CALLBACK textbox typed', 'CALLBACK textbox by blur']);

    const input = page.locator('[data-sk-id="con"] .sk-console-input');
    await input.fill('hello console');
    await page.locator('[data-sk-id="con"] .sk-console-send').click();
    await script.waitForLine(/^CALLBACK console hello console$/);
    assert.equal(await input.inputValue(), '', 'the input is cleared after sending');
    await input.fill('   ');
    await input.press('Enter'); // whitespace only: not sent
    await input.fill('again');
    await input.press('Enter');
    await script.waitForLine(/^CALLBACK console again$/);
    assert.deepEqual(script.lines.filter((l) => l.startsWith('CALLBACK console')), ['CALLBACK console hello console', 'CALLBACK console again']);
    await page.locator('[data-sk-id="con"] .sk-console-line', { hasText: '> again' }).waitFor();
    noPageErrors(a);
  });

  test('a UI opened after the script drew everything shows the same page (replay log)', async () => {
    const want = await snapshot(a.page);
    const b = await openUi(`${server.httpUrl}/ui/session/${session}`, 'ui B');
    try {
      await b.page.locator('[data-sk-id="done"]').waitFor();
      await waitUntil(async () => JSON.stringify(await snapshot(b.page)) === JSON.stringify(want), 'the late UI to match', 5000).catch(() => {});
      assert.deepEqual(await snapshot(b.page), want);
      assert.equal(await b.page.locator('#hero').getAttribute('data-state'), 'online', 'presence replayed to the newcomer');
      noPageErrors(b);
    } finally {
      await b.context.close();
    }
  });

  test('a reloaded UI shows the same page', async () => {
    const want = await snapshot(a.page);
    const peerBefore = await a.page.locator('#status').getAttribute('data-peer-id');
    await a.page.reload();
    await a.page.locator('#status[data-state="connected"]').waitFor();
    assert.notEqual(await a.page.locator('#status').getAttribute('data-peer-id'), peerBefore, 'a new page load is a new peer');
    await a.page.locator('[data-sk-id="done"]').waitFor();
    await waitUntil(async () => JSON.stringify(await snapshot(a.page)) === JSON.stringify(want), 'the reloaded UI to match', 5000).catch(() => {});
    assert.deepEqual(await snapshot(a.page), want);
    // the script still answers the reloaded page
    await a.page.locator('[data-sk-id="btn"]').click();
    await waitUntil(() => script.lines.filter((l) => l === 'CALLBACK button btn').length === 2, 'a second button callback');
  });

  test('quit: the script shuts down, the hero shows offline, the components stay', async () => {
    const input = a.page.locator('[data-sk-id="con"] .sk-console-input');
    await input.fill('quit');
    await input.press('Enter');
    await script.waitForLine(/^BYE$/);
    const { code } = await script.exited;
    assert.equal(code, 0, `the script's exit code\n${script.stderr()}`);
    await a.page.locator('#hero[data-state="offline"]').waitFor();
    assert.equal(await a.page.locator('[data-sk-id="g"]').count(), 1);
    noPageErrors(a);
  });
});

// --- 2. the captured trace -----------------------------------------------------------------

describe('the captured sidekick-py 0.0.7 trace, replayed by a hero socket', () => {
  /** @type {Awaited<ReturnType<typeof tether>>} */
  let server;
  /** the trace's frames, as the raw text lines Python wrote */
  const frames = readFileSync(TRACE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('{"_'));
  const firstRemove = frames.findIndex((l) => JSON.parse(l).type === 'remove');

  before(async () => {
    server = await tether();
  });

  test('renders the expected page; events go back with src, exact strings and integers', async () => {
    const ui = await openUi(`${server.httpUrl}/ui`, 'trace ui');
    const { page } = ui;
    const hero = await rawHero(`${server.relayUrl}/`);
    try {
      // announce (from the trace: online), then everything up to the first remove
      for (const f of frames.slice(0, firstRemove)) hero.send(f);
      const announce = await hero.waitFrame((f) => f.component === 'system' && f.payload?.role === 'sidekick', "the page's announce");
      assert.deepEqual(Object.keys(announce), ['id', 'component', 'type', 'payload']);
      assert.deepEqual(Object.keys(announce.payload), ['peerId', 'role', 'status', 'version', 'timestamp']);
      assert.equal(announce.id, 0);
      assert.equal(announce.type, 'announce');
      assert.equal(announce.payload.status, 'online');
      assert.match(announce.payload.peerId, /^sidekick-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(typeof announce.payload.version, 'string');
      assert.ok(Number.isInteger(announce.payload.timestamp) && Math.abs(announce.payload.timestamp - Date.now()) < 60_000);

      await page.locator('.sk-viz-var[data-var="os"]').waitFor();
      await page.locator('#hero[data-state="online"]').waitFor();
      const snap = await snapshot(page);
      const by = Object.fromEntries(snap.map((c) => [c.id, c]));
      assert.deepEqual(
        snap.map((c) => [c.id, c.parent]),
        [
          ['col', 'root'],
          ['row', 'col'],
          ['lab', 'row'],
          ['btn', 'row'],
          ['tb', 'root'],
          ['md', 'root'],
          ['con', 'root'],
          ['g', 'root'],
          ['cv', 'root'],
          ['viz', 'root'],
        ],
      );
      assert.equal(by.lab.text, 'hi');
      assert.equal(by.btn.text, 'Stop');
      assert.deepEqual(by.tb.value, ['x', 'p']);
      assert.equal(by.md.html, '<p><em>m</em></p>');
      assert.deepEqual(by.con.lines, [], 'console cleared');
      assert.deepEqual(by.g.cells, Array(6).fill([null, '']), 'grid cleared');
      assert.deepEqual(by.cv.size, [100, 50]);
      const [line, bufferRect, empty] = await pixels(page, 'cv', [[8, 8], [0, 3], [60, 30]]);
      assertColor(line, [255, 0, 0, 255], 'red 2 px line', 40);
      assert.ok(bufferRect[3] > 0, 'buffer 1 (a stroked 5×5 rect) was drawn onto the canvas');
      assert.equal(empty[3], 0);
      const viz = page.locator('[data-sk-id="viz"]');
      assert.deepEqual(await viz.locator('.sk-viz-var').evaluateAll((vs) => vs.map((v) => /** @type {HTMLElement} */ (v).dataset.var)), ['nested', 'od', 'ol', 'os'], 'plain was removed (removeVariable)');
      const head = (/** @type {string} */ name, path = '[]') => viz.locator(`.sk-viz-var[data-var="${name}"] .sk-viz-node[data-path='${path}'] > .sk-viz-head`).first().innerText();
      assert.equal(await head('ol'), 'ol = list[0]', 'clear() re-sent as a full set');
      assert.equal(await head('od'), '▾od = dict[2]');
      assert.deepEqual(await viz.locator(`.sk-viz-var[data-var="od"] .sk-viz-key`).allTextContents(), ['"z"', '"q"']);
      assert.match(await head('os'), /^▾os = set\[1\]/);

      // a UI that opens now sees the same page (relay replay log)
      const late = await openUi(`${server.httpUrl}/ui`, 'trace late ui');
      await late.page.locator('.sk-viz-var[data-var="os"]').waitFor();
      assert.deepEqual(await snapshot(late.page), await snapshot(page));
      await late.context.close();

      // the page's events, exactly as the stock UI writes them
      await page.locator('[data-sk-id="btn"]').click();
      await page.locator('[data-sk-id="g"] .sk-cell[data-x="1"][data-y="0"]').click();
      await page.locator('[data-sk-id="cv"]').click({ position: { x: 20.5, y: 10.5 } });
      await page.locator('[data-sk-id="tb"]').fill('typed');
      await page.locator('[data-sk-id="tb"]').press('Enter');
      await page.locator('[data-sk-id="con"] .sk-console-input').fill('line');
      await page.locator('[data-sk-id="con"] .sk-console-input').press('Enter');
      const events = () => hero.frames().filter((f) => f.type === 'event');
      await waitUntil(() => events().length === 5, 'five events at the hero');
      const ev = events();
      assert.deepEqual(ev[0], { id: 0, component: 'button', type: 'event', src: 'btn', payload: { event: 'click' } });
      assert.deepEqual(ev[1], { id: 0, component: 'grid', type: 'event', src: 'g', payload: { event: 'click', x: 1, y: 0 } });
      assert.deepEqual(Object.keys(ev[2]), ['id', 'component', 'type', 'src', 'payload']);
      assert.equal(ev[2].src, 'cv');
      assert.ok(Number.isInteger(ev[2].payload.x) && Number.isInteger(ev[2].payload.y), 'integer canvas coordinates');
      assert.ok(Math.abs(ev[2].payload.x - 20) <= 1 && Math.abs(ev[2].payload.y - 10) <= 1, JSON.stringify(ev[2]));
      assert.deepEqual(ev[3], { id: 0, component: 'textbox', type: 'event', src: 'tb', payload: { event: 'submit', value: 'typed' } });
      assert.deepEqual(ev[4], { id: 0, component: 'console', type: 'event', src: 'con', payload: { event: 'submit', value: 'line' } });
      for (const raw of hero.got.filter((t) => t.includes('"event"'))) assert.doesNotMatch(raw, /"[xy]":-?\d+\.\d/, 'no float coordinates on the wire');

      // the rest: remove md, destroy the buffer, remove cv, clearAll, offline announce
      const rest = frames.slice(firstRemove);
      const clearAt = rest.findIndex((l) => JSON.parse(l).type === 'clearAll');
      for (const f of rest.slice(0, clearAt)) hero.send(f);
      await page.locator('[data-sk-id="cv"]').waitFor({ state: 'detached' });
      assert.equal(await page.locator('[data-sk-id="md"]').count(), 0);
      assert.equal(await page.locator('[data-sk-id="g"]').count(), 1);
      for (const f of rest.slice(clearAt)) hero.send(f);
      await page.locator('#hero[data-state="offline"]').waitFor();
      await waitUntil(async () => (await page.locator('#sk-root > *').count()) === 0, 'clearAll to empty the page');
      assert.ok(await page.locator('.sk-empty').isVisible(), 'the empty page explains what to do');
      noPageErrors(ui);
    } finally {
      hero.close();
      await ui.context.close();
    }
  });

  test('viz highlights the changed path for 1.5 s', async () => {
    const session = 'viz-highlight';
    const ui = await openUi(`${server.httpUrl}/ui/session/${session}`, 'viz ui');
    const hero = await rawHero(`${server.relayUrl}/?session=${session}`);
    try {
      hero.announce('online');
      await hero.waitFrame((f) => f.payload?.role === 'sidekick', 'the page online');
      const int = (/** @type {number} */ v) => ({ id: `int_${v}_1`, type: 'int', observableTracked: false, value: v });
      hero.send({ id: 0, component: 'viz', type: 'spawn', target: 'v', payload: {} });
      hero.send({
        id: 0,
        component: 'viz',
        type: 'update',
        target: 'v',
        payload: { action: 'set', variableName: 'xs', options: { path: [], valueRepresentation: { id: 'obs_1', type: 'list', observableTracked: true, length: 2, value: [int(1), int(2)] }, length: 2 } },
      });
      const changed = ui.page.locator('[data-sk-id="v"] .sk-viz-changed');
      await ui.page.locator(`[data-sk-id="v"] .sk-viz-node[data-path='[]'].sk-viz-changed`).waitFor();
      await changed.waitFor({ state: 'detached' });
      hero.send({ id: 0, component: 'viz', type: 'update', target: 'v', payload: { action: 'setitem', variableName: 'xs', options: { path: [1], valueRepresentation: int(5) } } });
      const t0 = Date.now();
      await ui.page.locator(`[data-sk-id="v"] .sk-viz-node[data-path='[1]'].sk-viz-changed`).waitFor();
      assert.equal(await changed.count(), 1, 'only the changed node');
      await changed.waitFor({ state: 'detached', timeout: 4000 });
      const held = Date.now() - t0;
      assert.ok(held >= 1300 && held < 2500, `highlighted for ${held} ms`);
      assert.deepEqual(await ui.page.locator('[data-sk-id="v"] .sk-viz-children .sk-viz-value').allTextContents(), ['1', '5']);
      noPageErrors(ui);
    } finally {
      hero.close();
      await ui.context.close();
    }
  });

  test('bad input is ignored with a warning and never breaks the page', async () => {
    const session = 'bad-input';
    const ui = await openUi(`${server.httpUrl}/ui/session/${session}`, 'bad input ui');
    const { page } = ui;
    /** @type {string[]} */
    const warnings = [];
    page.on('console', (m) => {
      if (m.type() === 'warning') warnings.push(m.text());
    });
    const hero = await rawHero(`${server.relayUrl}/?session=${session}`);
    try {
      hero.announce('online');
      await hero.waitFrame((f) => f.payload?.role === 'sidekick', 'the page online');
      const spawn = (/** @type {string} */ component, /** @type {string} */ target, payload = {}) => hero.send({ id: 0, component, type: 'spawn', target, payload });
      const update = (/** @type {string} */ component, /** @type {string} */ target, /** @type {string} */ action, options = {}) =>
        hero.send({ id: 0, component, type: 'update', target, payload: { action, options } });
      hero.send('this is not json');
      hero.send('[1, 2, 3]');
      hero.send({ id: 0, component: 'label', type: 'update', target: 'nobody', payload: { action: 'setText', options: { text: 'x' } } });
      hero.send({ id: 0, component: 'label', type: 'remove', target: 'nobody' });
      hero.send({ id: 0, component: 'label', type: 'teleport', target: 'nobody' });
      hero.send({ id: 0, component: 'grid', type: 'event', src: 'g', payload: { event: 'click', x: 0, y: 0 } });
      spawn('widget', 'w1', {});
      spawn('label', 'l1', { text: 'first' });
      spawn('label', 'l1', { text: 'duplicate' });
      update('label', 'l1', 'explode', {});
      hero.send({ id: 0, component: 'label', type: 'update', target: 'l1', payload: {} });
      spawn('grid', 'badgrid', { numColumns: 0, numRows: 3 });
      spawn('grid', 'g1', { numColumns: 2, numRows: 2 });
      update('grid', 'g1', 'setColor', { x: 5, y: 0, color: 'red' });
      update('grid', 'g1', 'setColor', { x: 1.5, y: 0, color: 'red' });
      update('grid', 'g1', 'setColor', { x: 1, y: 1, color: 'javascript:alert(1)' });
      spawn('canvas', 'c1', { width: 10, height: 10 });
      update('canvas', 'c1', 'drawPolygon', { bufferId: 0, points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] });
      update('canvas', 'c1', 'drawRect', { bufferId: 7, x: 0, y: 0, width: 2, height: 2 });
      update('canvas', 'c1', 'warp', {});
      spawn('viz', 'v1', {});
      // Python's json.dumps writes bare NaN / Infinity; the frame still renders
      hero.send('{"id": 0, "component": "viz", "type": "update", "target": "v1", "payload": {"action": "set", "variableName": "x", "options": {"path": [], "valueRepresentation": {"id": "f_1_0", "type": "float", "observableTracked": false, "value": NaN}}}}');
      hero.send('{"id": 0, "component": "viz", "type": "update", "target": "v1", "payload": {"action": "set", "variableName": "y", "options": {"path": [], "valueRepresentation": {"id": "f_2_0", "type": "float", "observableTracked": false, "value": -Infinity}}}}');
      update('viz', 'v1', 'append', { path: [0] }); // unknown variable, not a root set
      hero.send({ id: 0, component: 'viz', type: 'update', target: 'v1', payload: { action: 'setitem', variableName: 'x', options: { path: [3, 'no'] } } });
      spawn('markdown', 'm1', {
        text: '<script>window.pwned = 1</script> <img src=x onerror="window.pwned=2">\n\n[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](java\tscript:alert(1)) [d](data:text/html,hi) ![e](javascript:alert(1)) [ok](https://example.com) <javascript:alert(1)>',
      });
      // an orphan waits for its parent; a container spawned later adopts it
      spawn('label', 'orphan', { text: 'adopted', parent: 'later' });
      spawn('column', 'later', {});
      // changeParent into a non-container, into itself, into its own child: ignored
      spawn('row', 'r1', {});
      spawn('column', 'r1child', { parent: 'r1' });
      update('row', 'r1', 'changeParent', { parent: 'r1child' });
      update('row', 'r1', 'changeParent', { parent: 'r1' });
      update('label', 'l1', 'changeParent', { parent: 'g1' });
      update('label', 'l1', 'changeParent', { parent: 'nowhere' });
      // insertBefore (defined by the protocol, unused by 0.0.7)
      spawn('label', 'ia', { text: 'a', parent: 'r1' });
      spawn('label', 'ib', { text: 'b', parent: 'r1' });
      spawn('label', 'ic', { text: 'c' });
      update('label', 'ic', 'changeParent', { parent: 'r1', insertBefore: 'ib' });
      spawn('label', 'end', { text: 'end' });

      await page.locator('[data-sk-id="end"]').waitFor();
      noPageErrors(ui);
      assert.equal(await page.locator('[data-sk-id="l1"]').textContent(), 'first', 'a duplicate spawn is ignored');
      assert.equal(await page.locator('[data-sk-id="l1"]').evaluate((e) => e.parentElement?.id), 'sk-root');
      assert.equal(await page.locator('[data-sk-id="w1"], [data-sk-id="badgrid"]').count(), 0);
      assert.equal(await page.locator('[data-sk-id="g1"] [data-color]').count(), 1, 'out-of-range and fractional cells ignored');
      assert.equal(await page.locator('[data-sk-id="g1"] .sk-cell[data-x="1"][data-y="1"]').evaluate((c) => /** @type {HTMLElement} */ (c).style.backgroundColor), '', 'an invalid colour is not applied');
      const viz = page.locator('[data-sk-id="v1"]');
      assert.equal(await viz.locator('.sk-viz-var[data-var="x"] .sk-viz-value').textContent(), 'nan');
      assert.equal(await viz.locator('.sk-viz-var[data-var="y"] .sk-viz-value').textContent(), '-inf');
      const md = page.locator('[data-sk-id="m1"]');
      assert.equal(await md.locator('script, img').count(), 0);
      assert.deepEqual(await md.locator('a').evaluateAll((as) => as.map((x) => /** @type {HTMLAnchorElement} */ (x).href)), ['https://example.com/']);
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).pwned), undefined);
      assert.equal(await page.locator('[data-sk-id="later"] > [data-sk-id="orphan"]').count(), 1, 'the orphan was adopted');
      assert.equal(await page.locator('[data-sk-id="r1child"] [data-sk-id="r1"]').count(), 0, 'no cycle');
      assert.deepEqual(await page.locator('[data-sk-id="r1"] > .sk-label').evaluateAll((ls) => ls.map((l) => l.textContent)), ['a', 'c', 'b']);
      // errors reported to the hero for the components concerned
      await hero.waitFrame((f) => f.type === 'error' && f.src === 'badgrid', 'an error for the invalid grid');
      const canvasErrors = await waitUntil(() => {
        const e = hero.frames().filter((f) => f.type === 'error' && f.src === 'c1');
        return e.length >= 2 ? e : null;
      }, 'two canvas errors');
      for (const e of canvasErrors) {
        assert.deepEqual(Object.keys(e), ['id', 'component', 'type', 'src', 'payload']);
        assert.equal(e.component, 'canvas');
        assert.equal(typeof e.payload.message, 'string');
      }
      assert.ok(warnings.some((w) => w.includes('unknown target')), 'warned about the unknown target');
      assert.ok(warnings.some((w) => w.includes('explode')), 'warned about the unknown action');
      assert.ok(warnings.some((w) => w.includes('widget')), 'warned about the unknown type');
      // still alive and rendering
      spawn('label', 'after', { text: 'still here' });
      await page.locator('[data-sk-id="after"]', { hasText: 'still here' }).waitFor();
    } finally {
      hero.close();
      await ui.context.close();
    }
  });
});

// --- 4. reconnect ------------------------------------------------------------------------

describe('reconnect', () => {
  test('a page whose /ui/config is missing dials ws://<host>:5163 with ?session=', async () => {
    const server = await tether();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      /** @type {string[]} */
      const dialed = [];
      // intercepted: nothing reaches whatever may listen on 5163 here
      await page.routeWebSocket(() => true, (ws) => {
        dialed.push(ws.url());
      });
      await page.route('**/ui/config', (route) => route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"NOT_FOUND"}' }));
      await page.goto(`${server.httpUrl}/ui/session/abc%20d`);
      await waitUntil(() => dialed.length > 0, 'a dial');
      assert.equal(dialed[0], 'ws://127.0.0.1:5163/?session=abc+d');
      assert.equal(await page.locator('#session').textContent(), 'session abc d');
    } finally {
      await context.close();
    }
  });

  test('backoff 250 ms doubling, same peerId re-announced, state rebuilt from the relay', async () => {
    const [httpPort, relayPort] = [await freePort(), await freePort()];
    const addrs = { http: `127.0.0.1:${httpPort}`, relay: `127.0.0.1:${relayPort}` };
    let server = await tether(addrs);
    const session = 'rc';
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    /** @type {string[]} */
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.addInitScript(() => {
      const Real = window.WebSocket;
      /** @type {any} */ (window).dials = [];
      /** @type {any} */ (window).closes = [];
      window.WebSocket = /** @type {any} */ (
        class extends Real {
          /** @param {string | URL} url @param {string | string[]} [protocols] */
          constructor(url, protocols) {
            /** @type {any} */ (window).dials.push([String(url), performance.now()]);
            super(url, protocols);
            this.addEventListener('close', () => /** @type {any} */ (window).closes.push(performance.now()));
          }
        }
      );
    });
    let hero;
    try {
      await page.goto(`${server.httpUrl}/ui/session/${session}`);
      await page.locator('#status[data-state="connected"]').waitFor();
      hero = await rawHero(`${server.relayUrl}/?session=${session}`);
      hero.announce('online');
      const first = await hero.waitFrame((f) => f.payload?.role === 'sidekick' && f.payload?.status === 'online', 'the page online');
      hero.send({ id: 0, component: 'label', type: 'spawn', target: 'before', payload: { text: 'before the restart' } });
      await page.locator('[data-sk-id="before"]').waitFor();

      await server.stop();
      hero.close();
      await page.locator('#status[data-state="reconnecting"]').waitFor();
      assert.equal(await page.locator('[data-sk-id="before"]').count(), 1, 'the last state stays on screen while disconnected');
      // Down until the page has retried four times (250 + 500 + 1000 + 2000 ms of backoff).
      await waitUntil(
        () =>
          page.evaluate(() => {
            const w = /** @type {any} */ (window);
            return w.dials.filter((/** @type {[string, number]} */ [, t]) => t > w.closes[0]).length >= 4;
          }),
        'four retries while the server is down',
        15_000,
      );
      server = await tether(addrs);
      await page.locator('#status[data-state="connected"]').waitFor({ timeout: 15_000 });
      /** @type {[string, number][]} */
      const dials = await page.evaluate(() => /** @type {any} */ (window).dials);
      /** @type {number} */
      const droppedAt = await page.evaluate(() => /** @type {any} */ (window).closes[0]);
      assert.ok(dials.every(([u]) => u === `ws://127.0.0.1:${relayPort}/?session=${session}`), JSON.stringify(dials));
      const retries = dials.filter(([, t]) => t > droppedAt).map(([, t]) => t);
      const gaps = retries.map((t, i) => t - (i ? retries[i - 1] : droppedAt));
      // 250, 500, 1000, 2000 ms (+ the time a refused fetch and dial take)
      assert.ok(gaps.length >= 4, `attempts while down: ${JSON.stringify(gaps)}`);
      [250, 500, 1000, 2000].forEach((want, i) => assert.ok(gaps[i] >= want - 20 && gaps[i] < want + 400, `retry ${i + 1} after ${gaps[i]} ms, want ~${want}: ${JSON.stringify(gaps)}`));

      await waitUntil(async () => (await page.locator('[data-sk-id="before"]').count()) === 0, 'the page to reset on reconnect (the new relay has no log)');
      hero = await rawHero(`${server.relayUrl}/?session=${session}`);
      hero.announce('online');
      const again = await hero.waitFrame((f) => f.payload?.role === 'sidekick' && f.payload?.status === 'online', 'the page re-announced');
      assert.equal(again.payload.peerId, first.payload.peerId, 'same peerId after a reconnect');
      hero.send({ id: 0, component: 'label', type: 'spawn', target: 'after', payload: { text: 'after' } });
      await page.locator('[data-sk-id="after"]').waitFor();
      assert.deepEqual(pageErrors, []);
    } finally {
      hero?.close();
      await context.close();
    }
  });
});
