// Start / stop Python test apps for the browser tests: the ws-sync 0.6.9 todo-sync app
// (ws_sync_app.py via serve.py) for tests/browser/sync-compat.test.mjs, and any app that follows
// the same start-up contract (tests/fastapi_sync/app.py for tests/browser/fastapi-sync.test.mjs).
//
// - `ensurePythonSide()` runs setup.sh (idempotent: creates/updates the venv at
//   ${TETHER_VENV:-$HOME/.cache/tether-venv} from requirements.txt, quiet when nothing changed).
// - `startPythonApp({python, script, ...})` spawns `python script --host 127.0.0.1 --port 0`; the
//   script binds a free port itself and prints `listening http 127.0.0.1:<port>` (no port race, no
//   fixed sleep), and the promise resolves once the app answers `GET /healthz`. The child is killed
//   on `stop()`, when this process exits, and it exits by itself when its stdin pipe closes (this
//   process died without cleaning up).
// - `startWsSyncApp()`: `startPythonApp` for `<venv>/bin/python serve.py`.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const START_TIMEOUT_MS = 30_000;
export const STOP_TIMEOUT_MS = 10_000;
export const SETUP_TIMEOUT_MS = 300_000;

/** The venv shared with tests/patch/run.sh. */
export function venvDir() {
  return process.env.TETHER_VENV || path.join(homedir(), '.cache', 'tether-venv');
}

/** Run setup.sh (installs ws-sync 0.6.9 & co. from PyPI when missing); rejects with its output. */
export function ensurePythonSide() {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(HERE, 'setup.sh')], { timeout: SETUP_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`tests/sync_compat/setup.sh failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(undefined);
    });
  });
}

/** Live children, killed if this process exits without stopping them. */
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * @typedef {object} PythonApp
 * @property {import('node:child_process').ChildProcess} proc
 * @property {number} port
 * @property {string} httpUrl e.g. http://127.0.0.1:41234
 * @property {() => string} output its stdout and stderr (the last 100-200 kB)
 * @property {() => Promise<{code: number | null, signal: string | null}>} stop SIGTERM, then SIGKILL after STOP_TIMEOUT_MS
 */

/**
 * @typedef {object} PythonAppOptions
 * @property {string} python the interpreter
 * @property {string} script run as `python script --host 127.0.0.1 --port 0 ...args`
 * @property {string[]} [args] more arguments
 * @property {string} [cwd]
 * @property {string} [name] for errors, e.g. 'the ws-sync app'
 */

/**
 * Spawn a Python app and resolve once it printed `listening http <host>:<port>` and answers
 * `GET /healthz`; rejects (with its output) if it exits, fails to start or is not up within
 * START_TIMEOUT_MS.
 * @param {PythonAppOptions} opts
 * @returns {Promise<PythonApp>}
 */
export function startPythonApp({ python, script, args = [], cwd, name = 'the Python app' }) {
  const argv = [script, '--host', '127.0.0.1', '--port', '0', ...args];
  // stdin stays an open pipe: the app exits when it closes
  const proc = spawn(python, argv, { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  live.add(proc);
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
      live.delete(proc);
      resolve(exited);
    });
  });
  proc.stdin.on('error', () => {});
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', keep);
  proc.stdout.setEncoding('utf8');

  const stop = async () => {
    if (exited) return exited;
    proc.kill('SIGTERM');
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let t;
    const timeout = new Promise((resolve) => {
      t = setTimeout(() => {
        proc.kill('SIGKILL');
        resolve(undefined);
      }, STOP_TIMEOUT_MS);
    });
    await Promise.race([exitPromise, timeout]);
    clearTimeout(t);
    return exitPromise;
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    let buf = '';
    const fail = (/** @type {string} */ why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${why}\ncommand: ${python} ${argv.join(' ')}\n--- output ---\n${log}`));
    };
    const timer = setTimeout(() => fail(`${name} did not start within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.on('error', (err) => fail(`cannot start ${name}: ${err.message}`));
    proc.on('exit', (code, signal) => fail(`${name} exited (code ${code}, signal ${signal}) before serving`));
    proc.stdout.on('data', async (chunk) => {
      keep(chunk);
      if (settled) return;
      buf += chunk;
      const m = /^listening http (\S+):(\d+)$/m.exec(buf);
      if (!m) return;
      buf = '';
      const port = Number(m[2]);
      const httpUrl = `http://127.0.0.1:${port}`;
      // The socket already listens; wait until the app itself answers.
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        if (settled) return;
        try {
          const res = await fetch(`${httpUrl}/healthz`);
          if (res.ok) break;
        } catch {
          // not yet
        }
        if (Date.now() > deadline) return fail(`${name} does not answer /healthz`);
        await new Promise((r) => setTimeout(r, 50));
      }
      settled = true;
      clearTimeout(timer);
      resolve({ proc, port, httpUrl, output: () => log, stop });
    });
  });
}

/**
 * @typedef {object} PyApp
 * @property {PythonApp['proc']} proc
 * @property {number} httpPort
 * @property {string} httpUrl e.g. http://127.0.0.1:41234
 * @property {string} syncWsUrl e.g. ws://127.0.0.1:41234/ws/sync/demo
 * @property {() => string} output
 * @property {() => Promise<{code: number | null, signal: string | null}>} stop SIGTERM, then SIGKILL after STOP_TIMEOUT_MS
 */

/** @returns {Promise<PyApp>} */
export async function startWsSyncApp() {
  const py = path.join(venvDir(), 'bin', 'python');
  if (!existsSync(py)) {
    throw new Error(`no Python venv at ${venvDir()}: run tests/sync_compat/setup.sh first`);
  }
  const app = await startPythonApp({ python: py, script: path.join(HERE, 'serve.py'), name: 'the ws-sync app' });
  const { proc, port, httpUrl, output, stop } = app;
  return { proc, httpPort: port, httpUrl, syncWsUrl: `ws://127.0.0.1:${port}/ws/sync/demo`, output, stop };
}
