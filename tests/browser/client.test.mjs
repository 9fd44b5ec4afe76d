// Node tests of RoomsClient (web/tether-client.js), no browser: the npm `ws` package is injected as
// the WebSocket implementation. The protocol tests run against the real server binary:
//
//   TETHER_BIN=/path/to/tether node --test tests/browser/client.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import {
  LocalErrors,
  RoomsClient,
  TetherError,
  backoffDelay,
  resolveWsUrl,
} from '../../web/tether-client.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, startServer, waitUntil } from './helpers.mjs';

/**
 * @param {string} url
 * @param {import('../../web/tether-client.js').RoomsClientOptions} [opts]
 */
function makeClient(url, opts = {}) {
  return new RoomsClient(url, { WebSocket: /** @type {any} */ (WebSocket), ...opts });
}

/**
 * Record a client's events. `waitFor(pred)` waits for an event satisfying `pred` and returns it.
 * @param {RoomsClient} client
 */
function record(client) {
  /** @type {{type: string, ev: any, at: number}[]} */
  const events = [];
  const types = /** @type {const} */ (['message', 'direct', 'join', 'leave', 'presence', 'bye', 'connected', 'close', 'rejoin', 'recover', 'error']);
  const offs = types.map((type) => client.on(type, (ev) => events.push({ type, ev, at: Date.now() })));
  return {
    events,
    /** @param {string} type */
    of: (type) => events.filter((e) => e.type === type).map((e) => e.ev),
    /**
     * @param {string} type
     * @param {(ev: any) => boolean} [pred]
     * @param {number} [timeout]
     */
    async waitFor(type, pred = () => true, timeout) {
      try {
        const hit = await waitUntil(() => events.find((e) => e.type === type && pred(e.ev)), `a '${type}' event`, timeout);
        return hit.ev;
      } catch (err) {
        throw new Error(`${/** @type {Error} */ (err).message}; events so far: ${JSON.stringify(events.map((e) => [e.type, e.ev]))}`);
      }
    },
    /** forget what was recorded so far */
    clear: () => {
      events.length = 0;
    },
    off: () => offs.forEach((off) => off()),
  };
}

/**
 * @param {Promise<unknown>} promise
 * @param {string} code
 */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof TetherError, `a TetherError, got ${err}`);
    assert.equal(err.code, code, `error code (message: ${err.message})`);
    return true;
  });
}

// --- no server needed ---------------------------------------------------------------------------

describe('RoomsClient without a server', () => {
  test('backoff: 250 ms doubling up to 10 s', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelay(n, 250, 10_000)),
      [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000],
    );
  });

  test('URLs: ws(s) kept, http(s) mapped, paths need a page', () => {
    assert.equal(resolveWsUrl('ws://h:1/ws/rooms', '/ws/rooms'), 'ws://h:1/ws/rooms');
    assert.equal(resolveWsUrl('https://h/ws/rooms', '/ws/rooms'), 'wss://h/ws/rooms');
    assert.equal(resolveWsUrl('http://h:8700/ws/rooms', '/ws/rooms'), 'ws://h:8700/ws/rooms');
    assert.throws(() => resolveWsUrl(undefined, '/ws/rooms'), TypeError);
    assert.throws(() => resolveWsUrl('ftp://h/', '/ws/rooms'), TypeError);
    assert.throws(() => new RoomsClient('ws://127.0.0.1:1/ws/rooms'), /WebSocket/, 'node 20 has no global WebSocket');
  });

  test('pending requests are bounded and close() rejects them with CLOSED', async () => {
    // Port 1 refuses connections: the requests stay queued until close().
    const c = makeClient('ws://127.0.0.1:1/ws/rooms', { maxPending: 3 });
    const queued = [c.hello('main', 'x'), c.send('main', 'a'), c.send('main', 'b')];
    await rejectsWith(c.send('main', 'c'), LocalErrors.TOO_MANY_PENDING);
    assert.equal(c.pending, 3);
    const connecting = c.connect();
    c.close();
    for (const p of queued) await rejectsWith(p, LocalErrors.CLOSED);
    await rejectsWith(connecting, LocalErrors.CLOSED);
    assert.equal(c.pending, 0);
    assert.equal(c.connected, false);
  });

  test('a request over 64 KiB is refused locally', async () => {
    const c = makeClient('ws://127.0.0.1:1/ws/rooms');
    await rejectsWith(c.send('main', 'x'.repeat(70_000)), LocalErrors.FRAME_TOO_BIG);
    c.close();
  });
});

// --- against the real server --------------------------------------------------------------------

describe('RoomsClient against the server', () => {
  /** @type {import('./helpers.mjs').Server} */
  let server;
  /** @type {RoomsClient[]} */
  const clients = [];
  /** @type {Awaited<ReturnType<typeof startProxy>>[]} */
  const proxies = [];

  /**
   * @param {string} [url]
   * @param {import('../../web/tether-client.js').RoomsClientOptions} [opts]
   */
  const client = (url, opts) => {
    const c = makeClient(url ?? server.wsUrl, opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const p of proxies) await p.close();
    if (server) {
      const { code, signal } = await server.stop('SIGTERM');
      assert.equal(signal, null, `server killed by ${signal}`);
      assert.equal(code, 0, `server exit code after SIGTERM\n${server.output()}`);
    }
  });

  test('requests resolve with the reply of the same id', async () => {
    const a = client();
    await a.connect();
    assert.equal(a.connected, true);
    const hello = await a.hello('main', 'c_alice');
    assert.equal(hello.ok, true);
    assert.equal(hello.room, 'main');
    assert.equal(hello.client, 'c_alice');
    assert.equal(hello.count, 1);
    assert.equal(hello.members, undefined, 'the member list comes once, in the presence push');
    assert.equal(a.client, 'c_alice');

    // Several requests in flight at once: each promise gets its own reply.
    const [r1, r2, list, sent, again] = await Promise.all([
      a.newRoom('c_r1'),
      a.newRoom('c_r2'),
      a.list('CHAT_ROOMS'),
      a.send('main', 'nobody listens'),
      a.hello('main'),
    ]);
    assert.deepEqual([r1.room, r2.room], ['c_r1', 'c_r2']);
    assert.equal(list.type, 'CHAT_ROOMS');
    assert.ok(list.rooms.some((r) => r.room === 'main' && typeof r.count === 'number'), JSON.stringify(list.rooms));
    assert.equal(sent.room, 'main');
    assert.equal(typeof sent.delivered, 'number');
    assert.equal(again.room, 'main');
    assert.equal(new Set([hello.id, r1.id, r2.id, list.id, sent.id, again.id]).size, 6, 'distinct ids');
    assert.deepEqual(a.rooms, ['main', 'c_r1', 'c_r2']);

    const mine = await a.list('CLIENT_CHAT_ROOMS', 'c_alice');
    assert.deepEqual(mine.rooms.map((r) => r.room), ['c_r1', 'c_r2', 'main']);
  });

  test('error replies reject with .code = error', async () => {
    const a = client();
    await a.hello('main', 'c_err');
    await rejectsWith(a.join('c_nope'), 'NO_SUCH_ROOM');
    await rejectsWith(a.newRoom('main'), 'MAIN_ROOM');
    await rejectsWith(a.join('main'), 'ALREADY_JOINED');
    await rejectsWith(a.hello('main', 'c_someone_else'), 'IDENTITY');
    await rejectsWith(a.newRoom('bad name!'), 'BAD_NAME');
    await rejectsWith(a.list(/** @type {any} */ ('BOGUS')), 'BAD_LIST_TYPE');
    await rejectsWith(a.send('main', ''), 'BAD_SYNTAX');
    await rejectsWith(a.request('frobnicate'), 'BAD_COMMAND');
    const err = await a.join('c_nope').catch((e) => e);
    assert.equal(err.reply.ok, false);
    assert.equal(typeof err.message, 'string');

    const b = client();
    await rejectsWith(b.hello('main', 'c_err'), 'NAME_TAKEN');

    // Errors leave the connection usable.
    const ok = await a.send('main', 'still here');
    assert.equal(ok.room, 'main');
  });

  test('pushes are dispatched to listeners; on() returns an unsubscribe function', async () => {
    const a = client();
    const b = client();
    const ra = record(a);
    const rb = record(b);
    await a.hello('main', 'p_alice');
    await b.hello('main', 'p_bob');

    assert.deepEqual(await ra.waitFor('join', (e) => e.client === 'p_bob'), { type: 'join', room: 'main', client: 'p_bob' });
    const presence = await rb.waitFor('presence', (e) => e.room === 'main');
    const names = presence.members.map((/** @type {{client: string}} */ m) => m.client);
    assert.ok(names.includes('p_alice') && names.includes('p_bob'), JSON.stringify(presence));

    let unsubscribed = 0;
    const off = a.on('message', () => unsubscribed++);
    off();

    const sent = await b.send('main', 'hi  alice');
    assert.ok(sent.delivered >= 1);
    assert.deepEqual(await ra.waitFor('message', (e) => e.from === 'p_bob'), {
      type: 'message',
      room: 'main',
      from: 'p_bob',
      text: 'hi  alice',
      offset: sent.offset,
      epoch: sent.epoch,
    });
    assert.deepEqual(a.position('main'), { offset: sent.offset, epoch: sent.epoch }, 'the last position seen');
    assert.deepEqual(b.position('main'), { offset: sent.offset, epoch: sent.epoch }, 'its own send counts');
    assert.equal(unsubscribed, 0, 'an unsubscribed listener is not called');

    const direct = await b.to('main', 'p_alice', 'psst');
    assert.equal(direct.target, 'p_alice');
    assert.equal(direct.delivered, 1);
    assert.deepEqual(await ra.waitFor('direct'), { type: 'direct', room: 'main', from: 'p_bob', to: 'p_alice', text: 'psst' });

    // pause / resume: nothing is delivered while suspended.
    const paused = await a.pause('main');
    assert.deepEqual([paused.room, paused.client], ['main', 'p_alice']);
    const whilePaused = await b.to('main', 'p_alice', 'while paused');
    assert.equal(whilePaused.delivered, 0, 'TO a suspended member delivers 0');
    await b.send('main', 'room while paused');
    await a.resume('main');
    await b.send('main', 'after resume');
    await ra.waitFor('message', (e) => e.text === 'after resume');
    assert.ok(!ra.events.some((e) => e.ev?.text === 'room while paused' || e.ev?.text === 'while paused'), 'nothing kept while paused');

    // leave and quit push `leave` to the others.
    await b.leave('main');
    assert.deepEqual(await ra.waitFor('leave', (e) => e.client === 'p_bob'), { type: 'leave', room: 'main', client: 'p_bob' });
    assert.deepEqual(b.rooms, []);
    ra.clear();
    await a.quit();
    assert.equal(a.connected, false);
    assert.deepEqual(ra.of('connected'), [false]);
    const closed = await ra.waitFor('close');
    assert.equal(closed.willRetry, false, 'no reconnect after quit');
    const list = await b.list('CLIENTS_FOR_CHAT_ROOM', 'main');
    assert.ok(!list.rooms[0].members.some((m) => m.client === 'p_alice'), 'quit removed the client');
    ra.off();
    rb.off();
  });

  test('a burst of joins arrives as presence_batch frames, handed out as join events in order', async () => {
    // Count what reaches the socket: the client asks for batches and expands them itself.
    /** @type {string[]} */
    const frames = [];
    class Spy extends WebSocket {
      /** @param {ConstructorParameters<typeof WebSocket>} args */
      constructor(...args) {
        super(...args);
        this.on('message', (/** @type {Buffer} */ data) => frames.push(data.toString()));
      }
    }
    const a = client(undefined, { WebSocket: /** @type {any} */ (Spy) });
    assert.match(a.url, /[?&]presence=batch\b/, 'the client asks for batches');
    const ra = record(a);
    await a.hello('main', 'b_watcher');
    await a.newRoom('burst');
    const names = Array.from({ length: 30 }, (_, i) => `b_${String(i).padStart(2, '0')}`);
    // One after the other (each join answered before the next), so the order is known; they all
    // fall within a few ticks, so most come in batches.
    for (const name of names) {
      const c = client();
      await c.hello('main', name);
      await c.join('burst');
    }
    const joins = () => ra.of('join').filter((e) => e.room === 'burst');
    await waitUntil(() => joins().length >= names.length, `${names.length} join events`);
    assert.deepEqual(joins(), names.map((client) => ({ type: 'join', room: 'burst', client })));
    const batches = frames.map((f) => JSON.parse(f)).filter((f) => f.type === 'presence_batch' && f.room === 'burst');
    assert.ok(batches.length > 0, `at least one presence_batch frame (frames: ${frames.length})`);
    assert.ok(batches.length < names.length, 'fewer batches than joins');
    assert.equal(frames.map((f) => JSON.parse(f)).filter((f) => f.type === 'join').length, 0, 'no single join frames');
    ra.off();
  });

  test('reconnects with backoff and re-registers its rooms after the connection drops', async () => {
    const proxy = await startProxy(server.httpPort);
    proxies.push(proxy);
    const a = client(proxy.url);
    const obs = client();
    const ra = record(a);
    const ro = record(obs);
    await a.hello('main', 'r_alice');
    await a.newRoom('r_room');
    await a.pause('r_room');
    await obs.hello('main', 'r_obs');
    await obs.join('r_room');
    assert.deepEqual(a.rooms, ['main', 'r_room']);

    // The "server" becomes unreachable: the client retries at 250, 500, 1000, 2000 ms.
    ra.clear();
    proxy.state.refuse = true;
    const cutAt = Date.now();
    proxy.state.accepted.length = 0;
    proxy.cut();
    await ra.waitFor('connected', (up) => up === false);
    // While down, requests are queued (and sent after the re-registration).
    const queued = a.send('main', 'sent while down');
    await waitUntil(() => proxy.state.accepted.length >= 4, '4 reconnection attempts', 10_000);
    const times = [cutAt, ...proxy.state.accepted.slice(0, 4)];
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    [250, 500, 1000, 2000].forEach((want, i) => {
      // Lower bound: the delay doubles. Upper bound: loose, for a loaded machine.
      assert.ok(gaps[i] >= want - 50 && gaps[i] <= want * 1.5 + 300, `retry ${i + 1} after ~${want} ms, got gaps ${gaps}`);
    });

    // Back up: the client re-joins main and r_room (as r_alice), re-pauses r_room, then sends.
    proxy.state.refuse = false;
    await ra.waitFor('connected', (up) => up === true, 15_000);
    assert.deepEqual(
      ra.of('rejoin').map((r) => [r.room, r.ok]),
      [['main', true], ['r_room', true]],
    );
    assert.equal((await queued).room, 'main');
    await ro.waitFor('message', (m) => m.from === 'r_alice' && m.text === 'sent while down');
    await ro.waitFor('leave', (e) => e.client === 'r_alice' && e.room === 'r_room');
    await ro.waitFor('join', (e) => e.client === 'r_alice' && e.room === 'r_room');
    const members = await obs.list('CLIENTS_FOR_CHAT_ROOM', 'r_room');
    assert.deepEqual(
      members.rooms[0].members.map((m) => `${m.client}:${m.status}`).sort(),
      ['r_alice:SUSPENDED', 'r_obs:CONNECTED'],
    );
    assert.deepEqual(a.rooms, ['main', 'r_room']);

    // Healthy again: the backoff starts over at 250 ms.
    ra.clear();
    proxy.state.accepted.length = 0;
    const cut2 = Date.now();
    proxy.cut();
    await ra.waitFor('connected', (up) => up === false);
    await ra.waitFor('connected', (up) => up === true, 10_000);
    assert.ok(proxy.state.accepted[0] - cut2 < 250 * 1.5 + 300, `first retry after ${proxy.state.accepted[0] - cut2} ms`);
    ra.off();
    ro.off();
  });

  test('after a reconnect, the messages missed meanwhile arrive once, in order, before new ones', async () => {
    const proxy = await startProxy(server.httpPort);
    proxies.push(proxy);
    const a = client(proxy.url);
    const obs = client();
    const ra = record(a);
    await a.hello('main', 'h_alice');
    await a.newRoom('h_room');
    await obs.hello('main', 'h_obs');
    await obs.join('h_room');
    for (const t of ['m1', 'm2']) await obs.send('h_room', t);
    await ra.waitFor('message', (m) => m.text === 'm2');
    const before = a.position('h_room');
    assert.equal(before?.offset, 2);

    proxy.state.refuse = true;
    proxy.cut();
    await ra.waitFor('connected', (up) => up === false);
    // Sent while alice is away: the server has let her go (her leave reached obs) first.
    await waitUntil(async () => {
      const list = await obs.list('CLIENTS_FOR_CHAT_ROOM', 'h_room');
      return !list.rooms[0].members.some((m) => m.client === 'h_alice');
    }, 'alice gone from h_room');
    for (const t of ['m3', 'm4', 'm5']) await obs.send('h_room', t);
    proxy.state.refuse = false;
    // The second `connected: true`: open again, every room re-registered.
    await waitUntil(() => ra.of('connected').filter((up) => up === true).length >= 2, 'the reconnect', 15_000);
    await obs.send('h_room', 'm6');
    await ra.waitFor('message', (m) => m.text === 'm6');
    const rec = ra.of('recover').find((r) => r.room === 'h_room');
    assert.deepEqual(rec, { room: 'h_room', recovered: true, offset: 5, epoch: before?.epoch });
    const seen = ra.events
      .filter((e) => (e.type === 'message' && e.ev.room === 'h_room') || (e.type === 'recover' && e.ev.room === 'h_room'))
      .map((e) => (e.type === 'recover' ? 'recover' : `${e.ev.offset}:${e.ev.text}`));
    assert.deepEqual(seen, ['1:m1', '2:m2', 'recover', '3:m3', '4:m4', '5:m5', '6:m6'], 'no gap, no duplicate');
    assert.deepEqual(a.position('h_room'), { offset: 6, epoch: before?.epoch });
    ra.off();
  });

  test('follows a server restart: bye, reconnect, rooms created again', { timeout: 90_000 }, async () => {
    const proxy = await startProxy(server.httpPort);
    proxies.push(proxy);
    const a = client(proxy.url);
    const ra = record(a);
    await a.hello('main', 's_alice');
    await a.newRoom('s_solo');

    ra.clear();
    const { code, signal } = await server.stop('SIGTERM');
    assert.equal(signal, null, `server killed by ${signal}`);
    assert.equal(code, 0, `server exit code after SIGTERM\n${server.output()}`);
    const bye = await ra.waitFor('bye');
    assert.equal(typeof bye.reason, 'string');
    const closed = await ra.waitFor('close');
    assert.equal(closed.code, 1001, 'close code on shutdown');
    assert.equal(closed.willRetry, true);

    server = await startServer();
    proxy.state.targetPort = server.httpPort;
    await ra.waitFor('connected', (up) => up === true, 30_000);
    // main exists from the start; s_solo was removed with the old server and is created again.
    const obs = client();
    await obs.hello('main', 's_obs');
    const rooms = await obs.list('CLIENT_CHAT_ROOMS', 's_alice');
    assert.deepEqual(rooms.rooms.map((r) => r.room), ['main', 's_solo']);
    assert.deepEqual(
      ra.of('rejoin').map((r) => [r.room, r.ok]),
      [['main', true], ['s_solo', true]],
    );
    // Without --data the history went with the old server: both rooms resync.
    assert.deepEqual(
      ra.of('recover').map((r) => [r.room, r.recovered, r.offset]),
      [['main', false, 0], ['s_solo', false, 0]],
    );
    ra.off();
  });

  test('recovers across a restart of a server with --data', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-client-data-'));
    let keeper = await startServer(['--data', dir]);
    try {
      const proxy = await startProxy(keeper.httpPort);
      proxies.push(proxy);
      const a = client(proxy.url);
      const ra = record(a);
      await a.hello('main', 'd_alice');
      const obs = makeClient(keeper.wsUrl);
      await obs.hello('main', 'd_obs');
      await obs.send('main', 'before');
      await ra.waitFor('message', (m) => m.text === 'before');
      const seen = a.position('main');
      // Stop the server in order (everything written), a message gets in while alice is away.
      obs.close();
      proxy.state.refuse = true;
      const stopped = await keeper.stop('SIGTERM');
      assert.equal(stopped.code, 0, keeper.output());
      keeper = await startServer(['--data', dir]);
      const obs2 = makeClient(keeper.wsUrl);
      await obs2.hello('main', 'd_obs2');
      const missed = await obs2.send('main', 'while away');
      assert.equal(missed.epoch, seen?.epoch, 'the epoch survived the orderly restart');
      proxy.state.targetPort = keeper.httpPort;
      proxy.state.refuse = false;
      const rec = await ra.waitFor('recover', (r) => r.room === 'main', 30_000);
      assert.deepEqual(rec, { room: 'main', recovered: true, offset: missed.offset, epoch: seen?.epoch });
      const m = await ra.waitFor('message', (x) => x.text === 'while away');
      assert.equal(m.offset, missed.offset);
      obs2.close();
      a.close();
      ra.off();
    } finally {
      await keeper.stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
