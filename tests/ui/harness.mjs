// Shared by tests/browser/ui.test.mjs and tests/ui/screenshot.mjs: start the real `tether`
// binary with its UI relay, run a Python sidekick script, read the /ui page back.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tetherBin, waitUntil, START_TIMEOUT_MS, STOP_TIMEOUT_MS, WAIT_MS } from '../browser/helpers.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');

const LISTENING_RE = /^listening (http|tcp|relay) (\S+):(\d+)$/;

/**
 * @typedef {object} Tether
 * @property {import('node:child_process').ChildProcess} proc
 * @property {number} httpPort
 * @property {number} relayPort
 * @property {string} httpUrl   http://127.0.0.1:<port>
 * @property {string} relayUrl  ws://127.0.0.1:<port>
 * @property {() => string} output
 * @property {() => Promise<{code: number | null, signal: string | null}>} stop  SIGTERM, then wait
 */

/**
 * Start `$TETHER_BIN serve --http H --tcp 127.0.0.1:0 --relay R` and wait for its three
 * `listening <kind> <host>:<port>` lines. A taken fixed address fails with the server's message.
 * @param {{http?: string, relay?: string}} [opts]
 * @returns {Promise<Tether>}
 */
export function startTether({ http = '127.0.0.1:0', relay = '127.0.0.1:0' } = {}) {
  const bin = tetherBin();
  const args = ['serve', '--http', http, '--tcp', '127.0.0.1:0', '--relay', relay];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } });
  let log = '';
  const keep = (/** @type {string} */ s) => {
    log += s;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  /** @type {{code: number | null, signal: string | null} | null} */
  let exited = null;
  /** @type {Promise<{code: number | null, signal: string | null}>} */
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', keep);
  return new Promise((resolve, reject) => {
    /** @type {Record<string, number>} */
    const ports = {};
    let buf = '';
    let settled = false;
    const fail = (/** @type {string} */ why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${why}\ncommand: ${bin} ${args.join(' ')}\n--- server output ---\n${log}`));
    };
    const timer = setTimeout(() => fail(`no 'listening http/tcp/relay' lines within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.on('error', (err) => fail(`cannot start the server: ${err.message}`));
    proc.on('exit', (code, signal) => fail(`the server exited (code ${code}, signal ${signal}) before listening (is ${relay} or ${http} taken?)`));
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk) => {
      keep(chunk);
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        const m = LISTENING_RE.exec(line);
        if (m) ports[m[1]] = Number(m[3]);
      }
      if ('http' in ports && 'tcp' in ports && 'relay' in ports && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({
          proc,
          httpPort: ports.http,
          relayPort: ports.relay,
          httpUrl: `http://127.0.0.1:${ports.http}`,
          relayUrl: `ws://127.0.0.1:${ports.relay}`,
          output: () => log,
          stop: async () => {
            if (exited) return exited;
            proc.kill('SIGTERM');
            /** @type {ReturnType<typeof setTimeout> | undefined} */
            let t;
            const timeout = new Promise((_, rej) => {
              t = setTimeout(() => rej(new Error(`the server did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`)), STOP_TIMEOUT_MS);
            });
            try {
              return /** @type {{code: number | null, signal: string | null}} */ (await Promise.race([exitPromise, timeout]));
            } catch (err) {
              proc.kill('SIGKILL');
              throw err;
            } finally {
              clearTimeout(t);
            }
          },
        });
      }
    });
  });
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
