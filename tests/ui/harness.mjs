// Shared by tests/browser/ui.test.mjs and tests/ui/screenshot.mjs: start the real `tether`
// binary with its UI relay, run a Python sidekick script, read the /ui page back.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, waitUntil, WAIT_MS } from '../browser/helpers.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');

/**
 * @typedef {import('../browser/helpers.mjs').Server & {relayPort: number, relayUrl: string}} Tether
 */

/**
 * Start `$TETHER_BIN serve --http H --tcp 127.0.0.1:0 --relay R` (helpers.mjs `startServer`) and
 * wait for its `listening` lines, the relay's included. A taken fixed address fails with the
 * server's message.
 * @param {{http?: string, relay?: string}} [opts]
 * @returns {Promise<Tether>}
 */
export async function startTether({ http = '127.0.0.1:0', relay = '127.0.0.1:0' } = {}) {
  const server = await startServer(['--relay', relay], { http });
  const { relayPort, relayUrl } = server;
  if (relayPort === undefined || relayUrl === undefined) {
    await server.stop();
    throw new Error(`the server printed no 'listening relay' line for --relay ${relay}\n${server.output()}`);
  }
  return { ...server, relayPort, relayUrl };
}

/**
 * The Python that runs the sidekick scripts: $TETHER_UI_PYTHON when set (e.g. a venv with the
 * `tether` package, together with UI_CLIENT=tether.ui), else the venv tests/ui/setup.sh makes
 * with the stock sidekick-py 0.0.7 from PyPI.
 */
export function uiPython() {
  if (process.env.TETHER_UI_PYTHON) return process.env.TETHER_UI_PYTHON;
  return execFileSync('bash', [join(HERE, 'setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/**
 * @typedef {object} Script
 * @property {import('node:child_process').ChildProcess} proc
 * @property {string[]} lines   stdout lines so far
 * @property {() => string} stderr
 * @property {(re: RegExp, timeout?: number) => Promise<RegExpExecArray>} waitForLine
 * @property {Promise<{code: number | null, signal: string | null}>} exited
 * @property {() => void} kill
 */

/**
 * Run `python -u <script> <args…>` and record its stdout lines.
 * @param {string} python
 * @param {string} script path
 * @param {string[]} args
 * @returns {Script}
 */
export function runScript(python, script, args) {
  const proc = spawn(python, ['-u', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  /** @type {string[]} */
  const lines = [];
  let err = '';
  let buf = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl).replace(/\r$/, ''));
      buf = buf.slice(nl + 1);
    }
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (c) => {
    err += c;
    if (err.length > 100_000) err = err.slice(-50_000);
  });
  /** @type {Promise<{code: number | null, signal: string | null}>} */
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    lines,
    stderr: () => err,
    async waitForLine(re, timeout = WAIT_MS) {
      try {
        return await waitUntil(() => {
          for (const l of lines) {
            const m = re.exec(l);
            if (m) return m;
          }
          return null;
        }, `a line matching ${re} from ${script}`, timeout);
      } catch (e) {
        throw new Error(`${/** @type {Error} */ (e).message}\n--- stdout ---\n${lines.join('\n')}\n--- stderr ---\n${err}`);
      }
    },
    exited,
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/**
 * Everything the page shows, per component, in a comparable form (no timing-dependent classes):
 * ids, types, parents and order; texts; textbox value; console lines; grid cells; viz text;
 * a hash of every canvas's pixels (read back with getImageData).
 * @param {import('playwright-core').Page} page
 */
export function snapshot(page) {
  return page.evaluate(() => {
    /** @param {Uint8ClampedArray} data */
    const fnv = (data) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < data.length; i++) {
        h ^= data[i];
        h = Math.imul(h, 0x01000193) >>> 0;
      }
      return h.toString(16);
    };
    /** @type {Record<string, unknown>[]} */
    const out = [];
    for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#sk-root [data-sk-id]'))) {
      const type = el.dataset.skType ?? '';
      /** @type {Record<string, unknown>} */
      const item = { id: el.dataset.skId, type, parent: /** @type {HTMLElement | null} */ (el.parentElement?.closest('[data-sk-id]'))?.dataset.skId };
      if (type === 'label' || type === 'button') item.text = el.textContent;
      else if (type === 'markdown') item.html = el.innerHTML;
      else if (type === 'textbox') item.value = [/** @type {HTMLInputElement} */ (el).value, /** @type {HTMLInputElement} */ (el).placeholder];
      else if (type === 'console') item.lines = [...el.querySelectorAll('.sk-console-line')].map((l) => /** @type {HTMLElement} */ (l).innerText);
      else if (type === 'grid') item.cells = [...el.querySelectorAll('.sk-cell')].map((c) => [/** @type {HTMLElement} */ (c).dataset.color ?? null, c.textContent]);
      else if (type === 'viz') item.text = el.innerText;
      else if (type === 'canvas') {
        const c = /** @type {HTMLCanvasElement} */ (el);
        const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
        item.size = [c.width, c.height];
        item.pixels = fnv(ctx.getImageData(0, 0, c.width, c.height).data);
      }
      out.push(item);
    }
    return out;
  });
}

/**
 * RGBA of canvas pixels.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 * @param {[number, number][]} points
 * @returns {Promise<number[][]>}
 */
export function pixels(page, id, points) {
  return page.evaluate(
    ([cid, pts]) => {
      const c = /** @type {HTMLCanvasElement} */ (document.querySelector(`[data-sk-id="${cid}"]`));
      const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
      return pts.map(([x, y]) => [...ctx.getImageData(x, y, 1, 1).data]);
    },
    /** @type {[string, [number, number][]]} */ ([id, points]),
  );
}

/**
 * Pixels of canvas `id` inside the rectangle that are not transparent.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 * @param {[number, number, number, number]} rect x, y, w, h
 */
export function inkIn(page, id, rect) {
  return page.evaluate(
    ([cid, [x, y, w, h]]) => {
      const c = /** @type {HTMLCanvasElement} */ (document.querySelector(`[data-sk-id="${cid}"]`));
      const d = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d')).getImageData(x, y, w, h).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    },
    /** @type {[string, [number, number, number, number]]} */ ([id, rect]),
  );
}

/** A free TCP port on 127.0.0.1 (bound and released; for restarting a server in place). */
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = /** @type {import('node:net').AddressInfo} */ (s.address()).port;
      s.close(() => resolve(port));
    });
  });
}

export { waitUntil, WAIT_MS };
