// Shared helpers for the browser and client tests: start/stop the real `tether` binary, a TCP line
// client, a TCP proxy that can cut connections, and bounded wait-for-condition helpers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { chromium } from 'playwright-core';

/** How long the server gets to print its `listening` lines. */
export const START_TIMEOUT_MS = 30_000;
/** How long the server gets to exit after SIGTERM. */
export const STOP_TIMEOUT_MS = 15_000;
/** Default bound for a wait-for-condition. */
export const WAIT_MS = 15_000;

const LISTENING_RE = /^listening (http|tcp|relay) (\S+):(\d+)$/;

/** The server binary from $TETHER_BIN; throws a clear error when it is missing. */
export function tetherBin() {
  const bin = process.env.TETHER_BIN;
  if (!bin) {
    throw new Error(
      'TETHER_BIN is not set. Build the server and point TETHER_BIN at it, e.g.\n' +
        '  CARGO_TARGET_DIR=/root/.cache/tether-target cargo build -p tether-server\n' +
        '  TETHER_BIN=/root/.cache/tether-target/debug/tether node --test tests/browser/',
    );
  }
  if (!existsSync(bin)) throw new Error(`TETHER_BIN=${bin} does not exist`);
  return bin;
}

/**
 * @typedef {object} Server
 * @property {import('node:child_process').ChildProcess} proc
 * @property {number} httpPort
 * @property {number} tcpPort
 * @property {string} httpUrl   e.g. http://127.0.0.1:41234
 * @property {string} wsUrl     e.g. ws://127.0.0.1:41234/ws/rooms
 * @property {number | undefined} relayPort  the UI relay's port, when it runs (`--relay ADDR`)
 * @property {string | undefined} relayUrl   e.g. ws://127.0.0.1:5163
 * @property {() => string} output  everything the server printed (bounded)
 * @property {(signal?: NodeJS.Signals) => Promise<{code: number | null, signal: string | null}>} stop
 */

/**
 * Start `$TETHER_BIN serve --http 127.0.0.1:0 --tcp 127.0.0.1:0` and wait for its
 * `listening <kind> <host>:<port>` lines on stdout (the relay's, printed before tcp's, when
 * `extraArgs` turns it on; otherwise `--relay off`).
 * @param {string[]} [extraArgs]
 * @param {{http?: string}} [opts] `http`: a fixed HTTP address instead of an ephemeral port
 *   (to restart a server where pages expect it)
 * @returns {Promise<Server>}
 */
export function startServer(extraArgs = [], { http = '127.0.0.1:0' } = {}) {
  const bin = tetherBin();
  // The UI relay defaults to 127.0.0.1:5163; tests that do not ask for it keep it out of the way.
  const relay = extraArgs.includes('--relay') ? [] : ['--relay', 'off'];
  const args = ['serve', '--http', http, '--tcp', '127.0.0.1:0', ...relay, ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } });
  let log = '';
  const keep = (/** @type {string} */ s) => {
    log += s;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  /** @type {{code: number | null, signal: string | null} | null} */
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', keep); // keep draining so the pipe never fills

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
    const timer = setTimeout(() => fail(`the server printed no 'listening http/tcp' lines within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.on('error', (err) => fail(`cannot start the server: ${err.message}`));
    proc.on('exit', (code, signal) => {
      if (!('http' in ports && 'tcp' in ports)) fail(`the server exited (code ${code}, signal ${signal}) before listening`);
    });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      keep(chunk);
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        const m = LISTENING_RE.exec(line.trim());
        if (!m) continue;
        ports[m[1]] = Number(m[3]);
        if ('http' in ports && 'tcp' in ports && !settled) {
          settled = true;
          clearTimeout(timer);
          resolve({
            proc,
            httpPort: ports.http,
            tcpPort: ports.tcp,
            httpUrl: `http://127.0.0.1:${ports.http}`,
            wsUrl: `ws://127.0.0.1:${ports.http}/ws/rooms`,
            relayPort: ports.relay,
            relayUrl: 'relay' in ports ? `ws://127.0.0.1:${ports.relay}` : undefined,
            output: () => log,
            stop: async (signal = 'SIGTERM') => {
              if (exited) return exited;
              proc.kill(signal);
              let t;
              const timeout = new Promise((_, rej) => {
                t = setTimeout(() => rej(new Error(`the server did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}\n--- server output ---\n${log}`)), STOP_TIMEOUT_MS);
              });
              try {
                return await Promise.race([exitPromise, timeout]);
              } catch (err) {
                proc.kill('SIGKILL');
                throw err;
              } finally {
                clearTimeout(t);
              }
            },
          });
        }
      }
    });
  });
}

/**
 * Poll `cond` until it returns a truthy value (returned), or throw after `timeout` ms.
 * @template T
 * @param {() => T | Promise<T>} cond
 * @param {string} what described in the error
 * @param {number} [timeout]
 * @returns {Promise<T>}
 */
export async function waitUntil(cond, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A TCP line-protocol client that records every line the server writes.
 */
export class LineClient {
  /** @param {number} port */
  static async connect(port) {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return new LineClient(sock);
  }

  /** @param {net.Socket} sock */
  constructor(sock) {
    this.sock = sock;
    /** @type {string[]} */
    this.lines = [];
    this.closed = false;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl).replace(/\r$/, ''));
        buf = buf.slice(nl + 1);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
    });
  }

  /** @param {string} line without the newline */
  send(line) {
    this.sock.write(`${line}\n`);
  }

  /**
   * Wait for a line equal to `expected` (string) or matching it (RegExp); returns it.
   * @param {string | RegExp} expected
   * @param {number} [timeout]
   */
  async waitForLine(expected, timeout = WAIT_MS) {
    const match = (/** @type {string} */ l) => (typeof expected === 'string' ? l === expected : expected.test(l));
    try {
      return await waitUntil(() => this.lines.find(match), `TCP line ${expected}`, timeout);
    } catch (err) {
      throw new Error(`${/** @type {Error} */ (err).message}; lines so far:\n${this.lines.join('\n')}`);
    }
  }

  close() {
    this.sock.destroy();
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of the server, to cut connections (a network failure as seen by
 * the client) and to follow a restarted server to its new port.
 * @param {number} targetPort
 */
export async function startProxy(targetPort) {
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  const state = {
    targetPort,
    /** when true, incoming connections are dropped at once (the server "is down") */
    refuse: false,
    /** @type {number[]} times (ms) of incoming connections */
    accepted: [],
  };
  const server = net.createServer((down) => {
    state.accepted.push(Date.now());
    if (state.refuse) {
      down.destroy();
      return;
    }
    const up = net.connect(state.targetPort, '127.0.0.1');
    sockets.add(down);
    sockets.add(up);
    const kill = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('error', kill);
    up.on('error', kill);
    down.on('close', kill);
    up.on('close', kill);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return {
    port,
    state,
    url: `ws://127.0.0.1:${port}/ws/rooms`,
    /** drop every proxied connection at once */
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

/** Flags for Debian's headless chromium here: no sandbox as root, no calls to outside hosts. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** Debian's chromium, headless, with CHROMIUM_ARGS (CHROMIUM_PATH overrides the binary). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/**
 * Open `url` in a fresh context of `browser`, collecting uncaught page errors and console
 * errors (each prefixed with `label`), and check the page answered 200.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} label used in messages
 * @param {number} timeout default timeout for locator waits
 */
export async function openPage(browser, url, label, timeout) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  /** @type {string[]} */
  const pageErrors = [];
  /** @type {string[]} */
  const consoleErrors = [];
  page.on('pageerror', (err) => pageErrors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${label}: ${msg.text()}`);
  });
  const res = await page.goto(url);
  assert.equal(res?.status(), 200, `${label}: GET ${url}`);
  return { page, context, pageErrors, consoleErrors };
}
