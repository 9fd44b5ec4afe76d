// Node tests of the ws-sync client (web/sync.js + `Session` in web/tether-client.js), no browser
// and no tether binary: the JSON Patch core is tested directly, the `Session` against a scripted
// ws-sync server on a real local WebSocket (npm `ws`, sync-helpers.mjs).
//
//   node --test tests/browser/sync-client.test.mjs
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { WebSocket } from 'ws';
import {
  LocalErrors,
  PatchError,
  Session,
  SyncedStore,
  applyPatch,
  diff,
  escapePathToken,
  jsonEqual,
  parsePointer,
  setOps,
  toPointer,
} from '../../web/tether-client.js';
import { waitUntil } from './helpers.mjs';
import { FakeWebSocket, startScriptedServer } from './sync-helpers.mjs';

const FIXTURES = new URL('../fixtures/', import.meta.url);

/** @param {unknown} v */
const clone = (v) => JSON.parse(JSON.stringify(v));

// ---------------------------------------------------------------------------------------------
// JSON Pointer / JSON Patch core
// ---------------------------------------------------------------------------------------------

describe('JSON Pointer', () => {
  test('parse unescapes ~1 then ~0', () => {
    assert.deepEqual(parsePointer(''), []);
    assert.deepEqual(parsePointer('/'), ['']);
    assert.deepEqual(parsePointer('/a~1b/m~0n/~01'), ['a/b', 'm~n', '~1']);
    assert.deepEqual(parsePointer('/a//b'), ['a', '', 'b']);
  });
  test('bad pointers throw', () => {
    assert.throws(() => parsePointer('a'), PatchError);
    assert.throws(() => parsePointer('/a~2'), PatchError);
    assert.throws(() => parsePointer('/a~'), PatchError);
  });
  test('escape / toPointer round-trip', () => {
    assert.equal(escapePathToken('x/y~z'), 'x~1y~0z');
    const keys = ['a/b', 'm~n', '~1', '/', '', '~0/', 'plain', 0];
    assert.deepEqual(parsePointer(toPointer(keys)), keys.map(String));
  });
});

describe('applyPatch: every op', () => {
  const doc = () => ({ a: { x: 1 }, l: [1, 2, 3], s: 'str', n: null });

  test('add: member, replace-existing member, array insert, array end with "-" and with length', () => {
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/b', value: { y: 2 } }]).b, { y: 2 });
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/a', value: 5 }]).a, 5);
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/l/0', value: 0 }]).l, [0, 1, 2, 3]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/l/1', value: 9 }]).l, [1, 9, 2, 3]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/l/-', value: 4 }]).l, [1, 2, 3, 4]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '/l/3', value: 4 }]).l, [1, 2, 3, 4]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'add', path: '', value: [1] }]), [1]);
  });
  test('remove: member, array element', () => {
    assert.deepEqual(applyPatch(doc(), [{ op: 'remove', path: '/a' }]), { l: [1, 2, 3], s: 'str', n: null });
    assert.deepEqual(applyPatch(doc(), [{ op: 'remove', path: '/l/1' }]).l, [1, 3]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'remove', path: '/n' }]).n, undefined);
  });
  test('replace: member, array element, root', () => {
    assert.deepEqual(applyPatch(doc(), [{ op: 'replace', path: '/s', value: [1] }]).s, [1]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'replace', path: '/l/2', value: 'z' }]).l, [1, 2, 'z']);
    assert.deepEqual(applyPatch(doc(), [{ op: 'replace', path: '', value: { r: 1 } }]), { r: 1 });
  });
  test('move: between members, within an array, onto itself', () => {
    assert.deepEqual(applyPatch(doc(), [{ op: 'move', from: '/a', path: '/b' }]), { b: { x: 1 }, l: [1, 2, 3], s: 'str', n: null });
    assert.deepEqual(applyPatch(doc(), [{ op: 'move', from: '/l/0', path: '/l/2' }]).l, [2, 3, 1]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'move', from: '/l/2', path: '/l/0' }]).l, [3, 1, 2]);
    assert.deepEqual(applyPatch(doc(), [{ op: 'move', from: '/a/x', path: '/l/-' }]), { a: {}, l: [1, 2, 3, 1], s: 'str', n: null });
    const d = doc();
    assert.equal(applyPatch(d, [{ op: 'move', from: '/a', path: '/a' }]), d);
  });
  test('copy: the copy and the source stay independent in later ops', () => {
    const d = doc();
    const r = applyPatch(d, [
      { op: 'replace', path: '/a/x', value: 2 }, // /a is now a fresh copy owned by the patch
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'replace', path: '/b/x', value: 3 }, // must not change /a
      { op: 'copy', from: '/l', path: '/a/l' },
      { op: 'add', path: '/a/l/-', value: 4 },
    ]);
    assert.deepEqual(r, { a: { x: 2, l: [1, 2, 3, 4] }, b: { x: 3 }, l: [1, 2, 3], s: 'str', n: null });
    assert.deepEqual(d, doc(), 'input untouched');
  });
  test('test: deep equality, member order ignored; a failing test fails the patch', () => {
    const d = { o: { a: 1, b: [1, { c: 2 }] } };
    assert.equal(applyPatch(d, [{ op: 'test', path: '/o', value: { b: [1, { c: 2 }], a: 1 } }]), d);
    assert.throws(() => applyPatch(d, [{ op: 'test', path: '/o/a', value: '1' }]), PatchError);
    assert.throws(() => applyPatch(d, [{ op: 'test', path: '/o/b', value: [1] }]), PatchError);
  });
  test('RFC 6901 escaped keys in path and from', () => {
    const d = { 'a/b': 1, 'm~n': 2, '~1': 3, '/': 4, '': 5, 'x/y~z': { '~0/': [1] } };
    const r = applyPatch(d, [
      { op: 'replace', path: '/a~1b', value: 10 },
      { op: 'replace', path: '/m~0n', value: 20 },
      { op: 'replace', path: '/~01', value: 30 },
      { op: 'replace', path: '/~1', value: 40 },
      { op: 'replace', path: '/', value: 50 },
      { op: 'add', path: '/x~1y~0z/~00~1/-', value: 2 },
      { op: 'move', from: '/m~0n', path: '/new~1key~0' },
    ]);
    assert.deepEqual(r, { 'a/b': 10, '~1': 30, '/': 40, '': 50, 'x/y~z': { '~0/': [1, 2] }, 'new/key~': 20 });
  });
  test('__proto__ is an ordinary member', () => {
    const r = applyPatch(JSON.parse('{"a":1}'), [{ op: 'add', path: '/__proto__', value: { polluted: true } }]);
    assert.equal(Object.getPrototypeOf(r), Object.prototype);
    assert.deepEqual(Object.keys(r), ['a', '__proto__']);
    assert.equal(/** @type {any} */ ({}).polluted, undefined);
    const r2 = applyPatch(r, [{ op: 'replace', path: '/__proto__/polluted', value: false }]);
    assert.equal(JSON.stringify(r2), '{"a":1,"__proto__":{"polluted":false}}');
  });
  test('errors: each bad op throws a PatchError naming the op', () => {
    const bad = [
      { op: 'remove', path: '/missing' },
      { op: 'replace', path: '/missing', value: 1 },
      { op: 'add', path: '/missing/x', value: 1 },
      { op: 'add', path: '/l/4', value: 1 },
      { op: 'add', path: '/l/01', value: 1 },
      { op: 'add', path: '/l/x', value: 1 },
      { op: 'remove', path: '/l/3' },
      { op: 'remove', path: '/l/-' },
      { op: 'replace', path: '/l/-', value: 1 },
      { op: 'add', path: '/s/x', value: 1 },
      { op: 'move', from: '/a', path: '/a/b' },
      { op: 'move', from: '/missing', path: '/b' },
      { op: 'copy', from: '/missing', path: '/b' },
      { op: 'remove', path: '' },
      { op: 'add', path: '/b' },
      { op: 'frobnicate', path: '/a' },
      { op: 'add', path: 'a', value: 1 },
      { op: 'add', value: 1 },
      null,
    ];
    for (const op of bad) {
      assert.throws(
        () => applyPatch(doc(), [{ op: 'add', path: '/ok', value: 1 }, /** @type {any} */ (op)]),
        (err) => err instanceof PatchError && err.index === 1 && err.operation === op,
        JSON.stringify(op),
      );
    }
    assert.throws(() => applyPatch(doc(), /** @type {any} */ ({ op: 'add' })), PatchError);
  });
});

describe('applyPatch: structural sharing and atomicity', () => {
  const big = () => ({
    users: { u1: { name: 'a', tags: ['x'] }, u2: { name: 'b', tags: ['y'] } },
    items: Array.from({ length: 5 }, (_, i) => ({ id: i, v: { n: i } })),
    meta: { version: 1, nested: { deep: { deeper: true } } },
  });

  test('unchanged subtrees keep their identity, the changed path is copied', () => {
    const d = big();
    const r = applyPatch(d, [{ op: 'replace', path: '/items/2/v/n', value: 20 }]);
    assert.notEqual(r, d);
    assert.notEqual(r.items, d.items);
    assert.notEqual(r.items[2], d.items[2]);
    assert.notEqual(r.items[2].v, d.items[2].v);
    assert.equal(r.items[2].v.n, 20);
    assert.equal(d.items[2].v.n, 2, 'input not mutated');
    assert.equal(r.users, d.users);
    assert.equal(r.meta, d.meta);
    for (const i of [0, 1, 3, 4]) assert.equal(r.items[i], d.items[i]);
  });
  test('several ops on one path copy it once and share the rest', () => {
    const d = big();
    const r = applyPatch(d, [
      { op: 'add', path: '/users/u1/tags/-', value: 'z' },
      { op: 'replace', path: '/users/u1/name', value: 'A' },
      { op: 'add', path: '/items/0', value: { id: -1 } },
      { op: 'remove', path: '/items/5' },
      { op: 'move', from: '/items/1', path: '/items/4' },
    ]);
    assert.equal(r.users.u2, d.users.u2);
    assert.notEqual(r.users.u1, d.users.u1);
    assert.deepEqual(r.users.u1, { name: 'A', tags: ['x', 'z'] });
    assert.equal(r.meta, d.meta);
    assert.deepEqual(r.items.map((/** @type {any} */ x) => x.id), [-1, 1, 2, 3, 0]);
    // the moved and shifted items are still the original objects
    assert.equal(r.items[1], d.items[1]);
    assert.equal(r.items[4], d.items[0]);
    assert.deepEqual(d, big(), 'input untouched');
  });
  test('an empty patch returns the same document', () => {
    const d = big();
    assert.equal(applyPatch(d, []), d);
  });
  test('a failing op leaves the input unchanged (no half-applied state)', () => {
    const d = big();
    const snapshot = clone(d);
    const users = d.users;
    assert.throws(() =>
      applyPatch(d, [
        { op: 'replace', path: '/users/u1/name', value: 'changed' },
        { op: 'remove', path: '/items/0' },
        { op: 'remove', path: '/nope/x' },
      ]),
    );
    assert.deepEqual(d, snapshot);
    assert.equal(d.users, users);
    assert.equal(d.users.u1.name, 'a');
  });
  test('op values are inserted as given, later ops do not mutate them', () => {
    const value = { k: [1] };
    const r = applyPatch({}, [
      { op: 'add', path: '/v', value },
      { op: 'add', path: '/v/k/-', value: 2 },
    ]);
    assert.deepEqual(r, { v: { k: [1, 2] } });
    assert.deepEqual(value, { k: [1] });
  });
  test('1000 moves on a 1000-item array stay fast (each container copied once)', () => {
    const d = { l: Array.from({ length: 1000 }, (_, i) => ({ i })) };
    const ops = Array.from({ length: 999 }, (_, i) => ({ op: /** @type {const} */ ('move'), from: '/l/999', path: `/l/${i}` }));
    const t0 = performance.now();
    const r = applyPatch(d, ops);
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(r.l.map((/** @type {any} */ x) => x.i).slice(0, 3), [999, 998, 997]);
    assert.equal(r.l[0], d.l[999]);
  });
});

describe('diff', () => {
  test('ops are minimal for shared structure and apply back', () => {
    const a = { list: [{ id: 1 }, { id: 2 }, { id: 3 }], m: { k: 1 }, gone: 1 };
    const b = { ...a, list: [{ id: 0 }, ...a.list], m: { ...a.m, 'x/y': 2 }, gone: undefined };
    const ops = diff(a, b);
    assert.deepEqual(ops, [
      { op: 'remove', path: '/gone' },
      { op: 'add', path: '/list/0', value: { id: 0 } },
      { op: 'add', path: '/m/x~1y', value: 2 },
    ]);
    assert.deepEqual(applyPatch(a, ops), clone(b));
  });
  test('array shrink, grow in the middle, type change', () => {
    const cases = [
      [{ l: [1, 2, 3, 4] }, { l: [1, 4] }],
      [{ l: [1, 4] }, { l: [1, 2, 3, 4] }],
      [{ l: [1, 2, 3] }, { l: [3, 2, 1] }],
      [{ l: [1] }, { l: { 0: 1 } }],
      [{ x: 1 }, [1]],
      [{ a: { b: [1, { c: 2 }] } }, { a: { b: [1, { c: 3, d: [] }] } }],
    ];
    for (const [a, b] of cases) assert.deepEqual(applyPatch(clone(a), diff(a, b)), b, JSON.stringify([a, b]));
  });
  test('random round-trips', () => {
    let seed = 42;
    const rnd = (/** @type {number} */ n) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    /** @returns {any} */
    const gen = (/** @type {number} */ depth) => {
      const t = rnd(depth > 2 ? 3 : 6);
      if (t === 0) return rnd(5);
      if (t === 1) return ['a', 'b/c', 'd~e', ''][rnd(4)];
      if (t === 2) return rnd(2) === 0 ? null : true;
      if (t === 3) return Array.from({ length: rnd(5) }, () => gen(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd(4) }, () => [['k', 'x/y', 'm~n', '', '~1'][rnd(5)], gen(depth + 1)]));
    };
    for (let i = 0; i < 300; i++) {
      const a = gen(0);
      const b = gen(0);
      assert.ok(jsonEqual(applyPatch(clone(a), diff(a, b)), b), JSON.stringify([a, b]));
    }
  });
  test('setOps: replace an existing member, add a new one, escape the key', () => {
    assert.deepEqual(setOps({ title: 'a' }, 'title', 'b'), [{ op: 'replace', path: '/title', value: 'b' }]);
    assert.deepEqual(setOps({}, 'a/b', 1), [{ op: 'add', path: '/a~1b', value: 1 }]);
  });
});

describe('golden patch cases (tests/fixtures/patch/cases.json)', () => {
  const file = new URL('patch/cases.json', FIXTURES);
  const cases = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : [];
  test('fixture present', () => {
    assert.ok(cases.length > 0, 'tests/fixtures/patch/cases.json is missing or empty');
  });
  for (const c of cases) {
    test(`${c.name}: patch applies to before → after; diff(before, after) applies too`, () => {
      const before = clone(c.before);
      assert.deepEqual(applyPatch(before, c.patch), c.after);
      assert.deepEqual(before, c.before, 'before untouched');
      assert.ok(jsonEqual(applyPatch(clone(c.before), diff(c.before, c.after)), c.after));
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Session against a scripted ws-sync server
// ---------------------------------------------------------------------------------------------

/**
 * @param {string} url
 * @param {import('../../web/tether-client.js').SessionOptions} [opts]
 */
function makeSession(url, opts = {}) {
  return new Session(url, { WebSocket: /** @type {any} */ (WebSocket), binaryType: 'arraybuffer', ...opts });
}

/** An in-memory Web Storage. */
function memStorage() {
  /** @type {Map<string, string>} */
  const m = new Map();
  return { map: m, getItem: (/** @type {string} */ k) => m.get(k) ?? null, setItem: (/** @type {string} */ k, /** @type {string} */ v) => void m.set(k, v) };
}

describe('Session', () => {
  /** @type {Awaited<ReturnType<typeof startScriptedServer>>} */
  let srv;
  /** @type {Session[]} */
  let sessions = [];
  /** @param {import('../../web/tether-client.js').SessionOptions} [opts] */
  const open = async (opts) => {
    const s = makeSession(srv.url, opts);
    sessions.push(s);
    const n = srv.connections.length;
    s.connect();
    await srv.waitConnections(n + 1);
    await waitUntil(() => s.isConnected, 'the session to open', 5000);
    return s;
  };

  beforeEach(async () => {
    for (const s of sessions) s.disconnect();
    sessions = [];
    if (srv) await srv.close();
    srv = await startScriptedServer();
  });
  after(async () => {
    for (const s of sessions) s.disconnect();
    if (srv) await srv.close();
  });

  test('_SET replaces, _PATCH applies with sharing, subscribers get (new, old)', async () => {
    const s = await open();
    const store = s.synced('NOTES', { notes: [], title: '', total: 0 });
    /** @type {[any, any][]} */
    const seen = [];
    const off = store.subscribe((n, o) => seen.push([n, o]));
    const init = { notes: [{ text: 'a' }], title: 'T', meta: { deep: { x: 1 } }, total: 1 };
    srv.send({ type: '_SET:NOTES', data: init });
    await waitUntil(() => seen.length === 1, '_SET applied');
    assert.deepEqual(store.state, init);
    const s1 = store.state;
    srv.send({ type: '_PATCH:NOTES', data: [{ op: 'add', path: '/notes/1', value: { text: 'b' } }, { op: 'replace', path: '/total', value: 2 }] });
    await waitUntil(() => seen.length === 2, '_PATCH applied');
    const s2 = store.state;
    assert.deepEqual(s2, { ...init, notes: [{ text: 'a' }, { text: 'b' }], total: 2 });
    assert.equal(seen[1][0], s2);
    assert.equal(seen[1][1], s1);
    assert.notEqual(s2, s1);
    assert.notEqual(s2.notes, s1.notes);
    assert.equal(s2.notes[0], s1.notes[0], 'untouched array element keeps its identity');
    assert.equal(s2.meta, s1.meta, 'untouched subtree keeps its identity');
    off();
    srv.send({ type: '_PATCH:NOTES', data: [{ op: 'replace', path: '/title', value: 'U' }] });
    await waitUntil(() => store.state.title === 'U', 'third patch');
    assert.equal(seen.length, 2, 'unsubscribed');
    assert.equal(store.state.meta, s1.meta);
  });

  test('a failing _PATCH keeps the state, reports PATCH_FAILED and sends _GET once until the _SET', async () => {
    const s = await open();
    const store = s.synced('K');
    srv.send({ type: '_SET:K', data: { a: { b: 1 }, l: [1] } });
    await waitUntil(() => store.state.l, '_SET');
    const before = store.state;
    /** @type {any[]} */
    const errors = [];
    store.on('error', (e) => errors.push(e));
    let calls = 0;
    store.subscribe(() => calls++);
    srv.send({ type: '_PATCH:K', data: [{ op: 'replace', path: '/a/b', value: 2 }, { op: 'remove', path: '/l/5' }] });
    const get = await srv.waitType('_GET:K');
    assert.equal(get.text, '{"type":"_GET:K","data":{}}');
    await waitUntil(() => errors.length === 1, 'error event');
    assert.equal(errors[0].code, 'PATCH_FAILED');
    assert.equal(errors[0].key, 'K');
    assert.equal(errors[0].resync, true);
    assert.ok(errors[0].error instanceof PatchError);
    assert.equal(errors[0].error.index, 1);
    assert.equal(store.state, before, 'state object unchanged');
    assert.deepEqual(store.state, { a: { b: 1 }, l: [1] });
    assert.equal(calls, 0);
    // a second failure before the _SET does not ask again
    srv.send({ type: '_PATCH:K', data: [{ op: 'remove', path: '/zzz' }] });
    await waitUntil(() => errors.length === 2, 'second error');
    assert.equal(errors[1].resync, false);
    assert.equal(srv.texts().filter((f) => f.type === '_GET:K').length, 1);
    // the _SET reply clears it: the next failure asks again
    srv.send({ type: '_SET:K', data: { a: { b: 3 } } });
    await waitUntil(() => store.state.a.b === 3, 'resync _SET');
    srv.send({ type: '_PATCH:K', data: [{ op: 'remove', path: '/zzz' }] });
    await waitUntil(() => srv.texts().filter((f) => f.type === '_GET:K').length === 2, 'second _GET');
    // non-array patch data is a BAD_FRAME
    srv.send({ type: '_PATCH:K', data: { op: 'add' } });
    await waitUntil(() => errors.some((e) => e.code === 'BAD_FRAME'), 'BAD_FRAME');
  });

  test('outgoing frames are exact: actions, tasks, cancel, get, set, server _GET', async () => {
    const s = await open();
    const store = s.synced('NOTES', { notes: [], title: 'T' });
    const from = srv.received.length;
    assert.equal(store.sendAction({ type: 'ADD', note: 'hello' }), true);
    store.sendAction('ADD', { note: 'x', n: 1 });
    store.startTask({ type: 'LONG', n: 50 });
    store.startTask('LONG');
    store.cancelTask({ type: 'LONG' });
    store.cancelTask('LONG');
    store.fetchRemoteState();
    store.sendState({ notes: ['s'], title: 'S' });
    srv.send({ type: '_GET:NOTES', data: {} });
    await srv.waitReceived((r) => !r.binary && /** @type {any} */ (r).json?.type === '_SET:NOTES' && srv.received.indexOf(r) > from + 7, 'the _SET reply');
    const texts = srv.received.slice(from).map((r) => (r.binary ? '<binary>' : /** @type {any} */ (r).text));
    assert.deepEqual(texts, [
      '{"type":"_ACTION:NOTES","data":{"type":"ADD","note":"hello"}}',
      '{"type":"_ACTION:NOTES","data":{"type":"ADD","note":"x","n":1}}',
      '{"type":"_TASK_START:NOTES","data":{"type":"LONG","n":50}}',
      '{"type":"_TASK_START:NOTES","data":{"type":"LONG"}}',
      '{"type":"_TASK_CANCEL:NOTES","data":{"type":"LONG"}}',
      '{"type":"_TASK_CANCEL:NOTES","data":{"type":"LONG"}}',
      '{"type":"_GET:NOTES","data":{}}',
      '{"type":"_SET:NOTES","data":{"notes":["s"],"title":"S"}}',
      '{"type":"_SET:NOTES","data":{"notes":["s"],"title":"S"}}',
    ]);
    assert.deepEqual(store.state, { notes: ['s'], title: 'S' });
  });

  test('local changes: patch / update / set apply with sharing and send escaped _PATCH', async () => {
    const s = await open();
    const store = s.synced('D');
    srv.send({ type: '_SET:D', data: { files: { 'src/a.rs': 'old' }, keep: { deep: [1] }, list: [{ id: 1 }, { id: 2 }] } });
    await waitUntil(() => store.state.files, '_SET');
    const s0 = store.state;
    /** @type {any[]} */
    const seen = [];
    store.subscribe((n, o) => seen.push([n, o]));
    const from = srv.received.length;

    assert.equal(store.patch([{ op: 'replace', path: toPointer(['files', 'src/a.rs']), value: 'new' }]), true);
    const s1 = store.state;
    assert.equal(s1.files['src/a.rs'], 'new');
    assert.equal(s1.keep, s0.keep);
    assert.equal(s1.list, s0.list);
    assert.deepEqual(seen[0], [s1, s0]);

    store.update((st) => ({ ...st, list: [...st.list, { id: 3 }], files: { ...st.files, 'm~n': 1 } }));
    const s2 = store.state;
    assert.equal(s2.keep, s0.keep);
    assert.equal(s2.list[0], s0.list[0]);

    store.set('title', 'x/y');
    store.set('title', 'z');
    assert.equal(store.update((st) => st), true, 'no change sends nothing');
    assert.throws(() => store.patch([{ op: 'remove', path: '/nope' }]), PatchError);
    assert.equal(store.state.title, 'z');

    // A later frame as the marker: once it is in, anything the no-op update or the failed patch
    // had sent would be in too (one socket, in order).
    s.send('_MARK', 1);
    await srv.waitType('_MARK', from);
    assert.deepEqual(
      srv.received.slice(from).map((r) => /** @type {any} */ (r).text),
      [
        '{"type":"_PATCH:D","data":[{"op":"replace","path":"/files/src~1a.rs","value":"new"}]}',
        '{"type":"_PATCH:D","data":[{"op":"add","path":"/files/m~0n","value":1},{"op":"add","path":"/list/2","value":{"id":3}}]}',
        '{"type":"_PATCH:D","data":[{"op":"add","path":"/title","value":"x/y"}]}',
        '{"type":"_PATCH:D","data":[{"op":"replace","path":"/title","value":"z"}]}',
        '{"type":"_MARK","data":1}',
      ],
    );
  });

  test('binary client → server: _BIN_META {type: _ACTION:KEY, metadata: action} then the bytes', async () => {
    const s = await open();
    const store = s.synced('UP');
    const from = srv.received.length;
    assert.equal(store.sendBinary({ type: 'UPLOAD', name: 'f.bin' }, new Uint8Array([1, 2, 3, 255]).buffer), true);
    assert.equal(s.sendBinary('_CUSTOM', { a: 1 }, new Uint8Array([9])), true);
    await waitUntil(() => srv.received.length >= from + 4, 'four frames');
    const r = srv.received.slice(from);
    assert.equal(/** @type {any} */ (r[0]).text, '{"type":"_BIN_META","data":{"type":"_ACTION:UP","metadata":{"type":"UPLOAD","name":"f.bin"}}}');
    assert.equal(r[1].binary, true);
    assert.deepEqual([.../** @type {any} */ (r[1]).bytes], [1, 2, 3, 255]);
    assert.equal(/** @type {any} */ (r[2]).text, '{"type":"_BIN_META","data":{"type":"_CUSTOM","metadata":{"a":1}}}');
    assert.deepEqual([.../** @type {any} */ (r[3]).bytes], [9]);
  });

  test('binary server → client: meta + frame to the inner handler, raw frames to registerBinary', async () => {
    const s = await open();
    const store = s.synced('IMG');
    /** @type {any[]} */
    const got = [];
    store.registerExposedActions({ FRAME: (p) => got.push(['FRAME', p]) });
    s.registerBinary((d) => got.push(['raw', d]));
    s.registerEvent('_BLOB', (d) => got.push(['blob', d]));
    srv.send({ type: '_BIN_META', data: { type: '_ACTION:IMG', metadata: { type: 'FRAME', w: 2 } } });
    srv.sendBinary(new Uint8Array([7, 8]));
    srv.sendBinary(new Uint8Array([5]));
    srv.send({ type: '_BIN_META', data: { type: '_BLOB', metadata: { data: 'meta wins', k: 1 } } });
    srv.sendBinary(new Uint8Array([6]));
    await waitUntil(() => got.length === 3, 'three binary dispatches');
    assert.equal(got[0][0], 'FRAME');
    assert.deepEqual(Object.keys(got[0][1]), ['data', 'w']);
    assert.equal(got[0][1].w, 2);
    assert.ok(got[0][1].data instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(got[0][1].data)], [7, 8]);
    assert.equal(got[1][0], 'raw');
    assert.deepEqual([...new Uint8Array(got[1][1])], [5]);
    // like ws-sync: {data: bytes, ...metadata}, so a `data` key in the metadata wins
    assert.deepEqual(got[2], ['blob', { data: 'meta wins', k: 1 }]);
  });

  test('server actions: exposed handlers get the payload without type; others go to action listeners', async () => {
    const s = await open();
    const store = s.synced('A');
    /** @type {any[]} */
    const got = [];
    const off = store.registerExposedActions({ NOTIFY: (p) => got.push(['NOTIFY', p]) });
    assert.throws(() => store.registerExposedActions({ NOTIFY: () => {} }), /already registered/);
    store.on('action', (a) => got.push(['listener', a]));
    srv.send({ type: '_ACTION:A', data: { type: 'NOTIFY', text: 'hi', n: 1 } });
    srv.send({ type: '_ACTION:A', data: { type: 'OTHER', x: 1 } });
    await waitUntil(() => got.length === 2, 'two actions');
    assert.deepEqual(got, [
      ['NOTIFY', { text: 'hi', n: 1 }],
      ['listener', { type: 'OTHER', x: 1 }],
    ]);
    off();
    srv.send({ type: '_ACTION:A', data: { type: 'NOTIFY' } });
    await waitUntil(() => got.length === 3, 'after deregistering');
    assert.deepEqual(got[2], ['listener', { type: 'NOTIFY' }]);
  });

  test('_TOAST → onToast, _DOWNLOAD → download event, unknown types → unhandled', async () => {
    /** @type {any[]} */
    const toasts = [];
    const s = await open({ onToast: (t) => toasts.push(t) });
    /** @type {any[]} */
    const other = [];
    s.on('download', (d) => other.push(['download', d.filename, [...d.bytes]]));
    s.on('unhandled', (u) => other.push(['unhandled', u.type, u.data]));
    srv.send({ type: '_TOAST', data: { type: 'success', message: 'done' } });
    srv.send({ type: '_DOWNLOAD', data: { filename: 'a.txt', data: Buffer.from('hi').toString('base64') } });
    srv.send({ type: '_WHAT', data: 1 });
    await waitUntil(() => toasts.length === 1 && other.length === 2, 'events');
    assert.deepEqual(toasts, [{ type: 'success', message: 'done' }]);
    assert.deepEqual(other, [
      ['download', 'a.txt', [104, 105]],
      ['unhandled', '_WHAT', 1],
    ]);
  });

  test('_REQUEST_USER_SESSION is answered with stored ids (JSON-encoded like ws-sync-react)', async () => {
    const local = memStorage();
    const sess = memStorage();
    local.map.set('_USER_ID', JSON.stringify('user-123'));
    const s = await open({ storage: { local, session: sess } });
    srv.sendText('{"type":"_REQUEST_USER_SESSION"}');
    const reply = await srv.waitType('_USER_SESSION');
    assert.equal(reply.json.data.user, 'user-123');
    assert.match(reply.json.data.session, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(Object.keys(reply.json), ['type', 'data']);
    assert.deepEqual(Object.keys(reply.json.data), ['user', 'session']);
    assert.equal(sess.map.get('_SESSION_ID'), JSON.stringify(reply.json.data.session));
    assert.deepEqual(s.userSession(), reply.json.data, 'ids are stable');
    // without storage (node): in-memory ids, stable within the process
    const a = makeSession(srv.url).userSession();
    const b = makeSession(srv.url).userSession();
    assert.deepEqual(a, b);
  });

  test('_DISCONNECT stops reconnecting and surfaces the message', async () => {
    /** @type {string[]} */
    const msgs = [];
    const s = await open({ onDisconnect: (d) => msgs.push(d.message), minRetryInterval: 20 });
    /** @type {boolean[]} */
    const conn = [];
    s.on('connected', (c) => conn.push(c));
    srv.send({ type: '_DISCONNECT', data: "Seems like you're logged in somewhere else." });
    await waitUntil(() => msgs.length === 1 && !s.isConnected, 'disconnect');
    assert.deepEqual(msgs, ["Seems like you're logged in somewhere else."]);
    assert.equal(s.active, false);
    // The marker: a second session with the same 20 ms retry interval, dropped by the server
    // after s got _DISCONNECT, reconnects twice. A retry of s would have been due before the
    // control's first one, so by now it would have been seen.
    const control = await open({ minRetryInterval: 20 });
    for (const n of [3, 4]) {
      srv.drop();
      await srv.waitConnections(n);
      await waitUntil(() => control.isConnected, `the control session's reconnect ${n - 2}`, 5000);
    }
    assert.equal(srv.attempts.length, 4, 'no reconnect attempt of s (1 + the control session\'s 3)');
    assert.deepEqual(conn, [false]);
    // connect() starts it again
    s.connect();
    await srv.waitConnections(5);
    await waitUntil(() => s.isConnected, 's reconnected by connect()', 5000);
  });

  test('reconnect backoff: 250 ms doubling while failing, reset after an open', async () => {
    srv.state.accept = false;
    const s = makeSession(srv.url);
    sessions.push(s);
    /** @type {any[]} */
    const closes = [];
    s.on('close', (c) => closes.push(c));
    s.connect();
    await waitUntil(() => srv.attempts.length >= 4, 'four attempts', 10000);
    const gaps = srv.attempts.slice(1, 4).map((t, i) => t - srv.attempts[i]);
    const expected = [250, 500, 1000];
    gaps.forEach((g, i) => {
      assert.ok(g >= expected[i] - 30, `gap ${i} = ${g} ms, expected ≥ ${expected[i]}`);
      assert.ok(g <= expected[i] + 1000, `gap ${i} = ${g} ms, expected ≤ ${expected[i] + 1000}`);
    });
    assert.ok(closes.every((c) => c.willRetry));
    // now accept: the next attempt (after 2 s) opens and resets the delay
    srv.state.accept = true;
    await srv.waitConnections(1);
    await waitUntil(() => s.isConnected, 'open');
    const n = srv.attempts.length;
    const t0 = Date.now();
    srv.drop();
    await waitUntil(() => srv.attempts.length > n, 'reconnect attempt', 5000);
    const gap = srv.attempts[n] - t0;
    // without the reset it would be 4000 ms (250, 500, 1000, 2000 were used up while failing)
    assert.ok(gap >= 200 && gap <= 250 + 1000, `first retry after an open after ${gap} ms, expected ~250`);
    await srv.waitConnections(2);
    await waitUntil(() => s.isConnected, 'reopened');
  });

  test('reconnect delay is capped at maxRetryInterval; an open resets it to the minimum', async () => {
    srv.state.accept = false;
    const s = makeSession(srv.url, { minRetryInterval: 20, maxRetryInterval: 80 });
    sessions.push(s);
    s.connect();
    await waitUntil(() => srv.attempts.length >= 7, 'seven attempts', 10000);
    const gaps = srv.attempts.slice(1, 7).map((t, i) => t - srv.attempts[i]);
    const expected = [20, 40, 80, 80, 80, 80];
    gaps.forEach((g, i) => {
      assert.ok(g >= expected[i] - 10 && g <= expected[i] + 1000, `gap ${i} = ${g} ms, expected ~${expected[i]} (${gaps})`);
    });
    srv.state.accept = true;
    await srv.waitConnections(1);
    await waitUntil(() => s.isConnected, 'open');
    const t0 = Date.now();
    srv.drop();
    await srv.waitConnections(2);
    assert.ok(Date.now() - t0 < 20 + 1000, 'first retry after an open uses the minimum delay');
  });

  test('sends while not connected are refused: false + NOT_CONNECTED, nothing queued', async () => {
    const s = makeSession(srv.url);
    sessions.push(s);
    /** @type {any[]} */
    const errors = [];
    s.on('error', (e) => errors.push(e));
    const store = s.synced('Q', { v: 1 });
    assert.equal(s.send('_X', 1), false);
    assert.equal(store.sendAction('A'), false);
    assert.equal(store.sendBinary('B', new Uint8Array([1])), false);
    assert.equal(store.set('v', 2), false, 'applied locally, not sent');
    assert.deepEqual(store.state, { v: 2 });
    assert.equal(errors.length, 4);
    assert.ok(errors.every((e) => e.code === LocalErrors.NOT_CONNECTED));
    assert.match(errors[1].message, /_ACTION:Q/);
    s.connect();
    await srv.waitConnections(1);
    await waitUntil(() => s.isConnected, 'the session to open', 5000);
    // A frame sent now is the marker: a queued one would have gone out before it.
    s.send('_MARK', 1);
    await srv.waitType('_MARK');
    assert.deepEqual(srv.texts(), [{ type: '_MARK', data: 1 }], 'nothing was queued');
  });

  test('registration rules: one handler per type, one store per key, close() frees the key', async () => {
    const s = makeSession(srv.url);
    s.registerEvent('_E', () => {});
    assert.throws(() => s.registerEvent('_E', () => {}), /already subscribed to _E/);
    s.registerEvent('_E', () => {}, true);
    s.deregisterEvent('_E');
    assert.throws(() => s.deregisterEvent('_E'), /not subscribed/);
    const a = s.synced('K');
    assert.ok(a instanceof SyncedStore);
    assert.throws(() => s.synced('K'), /already subscribed to _SET:K/);
    a.close();
    const b = s.synced('K', { fresh: true });
    assert.deepEqual(b.state, { fresh: true });
    assert.throws(() => s.registerBinary(() => {}) ?? s.registerBinary(() => {}), /already registered/);
  });

  test('a handler that throws is reported and the session goes on', async () => {
    const s = await open();
    /** @type {any[]} */
    const errors = [];
    s.on('error', (e) => errors.push(e));
    s.registerEvent('_BOOM', () => {
      throw new Error('boom');
    });
    const store = s.synced('K');
    const origError = console.error;
    console.error = () => {};
    try {
      srv.send({ type: '_BOOM', data: null });
      srv.sendText('not json');
      srv.send({ type: '_SET:K', data: { ok: 1 } });
      await waitUntil(() => store.state.ok === 1, 'the _SET after the failures');
    } finally {
      console.error = origError;
    }
    assert.deepEqual(errors.map((e) => e.code), [LocalErrors.HANDLER_FAILED, LocalErrors.BAD_REPLY]);
    assert.ok(s.isConnected);
  });
});

// ---------------------------------------------------------------------------------------------
// Golden ws-sync fixtures (tests/fixtures/sync/*.json), replayed into the client
// ---------------------------------------------------------------------------------------------
//
// Each fixture is a list of steps seen from the server engine. This replay uses, per connection
// `conn`, a fresh `Session` over a FakeWebSocket (the real frame dispatch, no network) with one
// store per key named in the fixture; a key's initial client state is the value the app
// `register`ed (what a ws-sync-react `useSynced(key, initialState)` would start from), else {}.
//   send {conn, frame}        → delivered to the client as a text frame
//   send_binary {conn, data}  → delivered as a binary frame
//   server_close {conn, ...}  → the socket closes
//   close conn                → the client disconnects
//   client_state {conn, key, value} → the store's state must equal `value`
//   recv {conn, frame}        → made with the store API (sendAction, startTask, cancelTask,
//                               fetchRemoteState, sendState, patch; sendBinary for _BIN_META +
//                               recv_binary) and the frames the client sends must be exactly the
//                               fixture's. A client _PATCH with unescaped ws-sync-react paths
//                               (`/a/b` for key "a/b", `/` for the root) does not apply under
//                               RFC 6901: it is made with `update(<value of the next 'patched'
//                               event>)` instead, and the client must send RFC 6901 ops for it.
//                               Raw `text` frames (bad input), `_USER_SESSION` (the client
//                               answers by itself) and a binary frame without meta are skipped.
//                               On a connection the client has already lost (the taken-over tab
//                               of takeover.json) it must refuse to send (NOT_CONNECTED).
// Other steps (app, event, log) concern the server and are skipped. For every
// frame sent, the client-visible effect is checked too: _TOAST → toast event, _DOWNLOAD → bytes,
// _DISCONNECT → message and no reconnect, _REQUEST_USER_SESSION → a _USER_SESSION reply,
// _ACTION / _BIN_META + binary → the store's action listener; and no patch may fail.

describe('golden sync fixtures (tests/fixtures/sync/)', () => {
  const dir = new URL('sync/', FIXTURES);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  test('fixtures present', () => {
    assert.ok(files.length > 0, 'tests/fixtures/sync/ has no fixtures');
  });

  for (const file of files) {
    test(`replay ${file}`, () => {
      const fx = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
      /** @type {any[]} */
      const steps = fx.steps;
      /** @type {Map<string, unknown>} */
      const initial = new Map();
      /** @type {Set<string>} */
      const keys = new Set();
      for (const st of steps) {
        if (st.app?.cmd === 'register' && !st.app.expect_error && !initial.has(st.app.key)) initial.set(st.app.key, st.app.value);
        if (st.app?.key) keys.add(st.app.key);
        const t = st.send?.frame?.type;
        const m = typeof t === 'string' ? /^_(?:SET|PATCH|ACTION|GET):(.*)$/.exec(t) : null;
        if (m) keys.add(m[1]);
        if (st.client_state) keys.add(st.client_state.key);
      }

      /**
       * @typedef {object} Conn
       * @property {Session} session
       * @property {FakeWebSocket} ws
       * @property {Map<string, SyncedStore>} stores
       * @property {any[]} toasts
       * @property {any[]} downloads
       * @property {string[]} disconnects
       * @property {any[]} actions
       * @property {any[]} errors
       */
      /** @type {Map<number, Conn>} */
      const conns = new Map();
      /** @param {number} n */
      const conn = (n) => {
        const c = conns.get(n);
        if (!c) throw new Error(`${file}: step for conn ${n} before its connect`);
        return c;
      };
      const checked = { states: 0, frames: 0 };
      try {
        for (const [i, st] of steps.entries()) {
          const where = `${file} step ${i}: ${JSON.stringify(st).slice(0, 160)}`;
          if (st.connect !== undefined) {
            const n = FakeWebSocket.instances.length;
            const session = new Session('ws://fixture.invalid/ws/sync', { WebSocket: /** @type {any} */ (FakeWebSocket), binaryType: 'arraybuffer' });
            /** @type {Conn} */
            const c = { session, ws: /** @type {any} */ (null), stores: new Map(), toasts: [], downloads: [], disconnects: [], actions: [], errors: [] };
            for (const k of keys) {
              const store = session.synced(k, clone(initial.get(k) ?? {}));
              store.on('error', (e) => c.errors.push(e));
              store.on('action', (a) => c.actions.push(a));
              c.stores.set(k, store);
            }
            session.on('toast', (t) => c.toasts.push(t));
            session.on('download', (d) => c.downloads.push(d));
            session.on('disconnect', (d) => c.disconnects.push(d.message));
            session.on('error', (e) => c.errors.push(e));
            session.on('unhandled', () => {});
            session.connect();
            c.ws = FakeWebSocket.instances[n];
            c.ws.open();
            conns.set(st.connect, c);
          } else if (st.send) {
            const c = conn(st.send.conn);
            const f = st.send.frame;
            const before = { toasts: c.toasts.length, downloads: c.downloads.length, actions: c.actions.length, sent: c.ws.sent.length };
            c.ws.deliverText(JSON.stringify(f));
            checked.frames++;
            const key = typeof f.type === 'string' && f.type.includes(':') ? f.type.slice(f.type.indexOf(':') + 1) : '';
            if (f.type === '_TOAST') {
              assert.deepEqual(c.toasts.slice(before.toasts), [f.data], where);
            } else if (f.type === '_DOWNLOAD') {
              assert.equal(c.downloads.length, before.downloads + 1, where);
              const d = c.downloads[c.downloads.length - 1];
              assert.equal(d.filename, f.data.filename, where);
              assert.deepEqual([...d.bytes], [...Buffer.from(f.data.data, 'base64')], where);
            } else if (f.type === '_DISCONNECT') {
              assert.equal(c.disconnects[c.disconnects.length - 1], f.data, where);
              assert.equal(c.session.active, false, `${where}: stops reconnecting`);
            } else if (f.type === '_REQUEST_USER_SESSION') {
              const reply = c.ws.sentJson().slice(-1)[0];
              assert.equal(reply?.type, '_USER_SESSION', where);
              assert.deepEqual(Object.keys(reply.data), ['user', 'session'], where);
              assert.ok(typeof reply.data.user === 'string' && typeof reply.data.session === 'string', where);
            } else if (f.type.startsWith('_ACTION:')) {
              assert.deepEqual(c.actions.slice(before.actions), [f.data], where);
            } else if (f.type.startsWith('_SET:')) {
              assert.deepEqual(c.stores.get(key)?.state, f.data, where);
            } else if (f.type.startsWith('_GET:')) {
              const reply = c.ws.sentJson().slice(-1)[0];
              assert.deepEqual(reply, { type: `_SET:${key}`, data: c.stores.get(key)?.state }, where);
            }
            assert.deepEqual(c.errors, [], `${where}: no client error`);
          } else if (st.send_binary) {
            const c = conn(st.send_binary.conn);
            const before = c.actions.length;
            c.ws.deliverBinary(Uint8Array.from(st.send_binary.data).buffer);
            checked.frames++;
            // binary.json sends _BIN_META {type: _ACTION:KEY, metadata} first: the store's action listener gets it
            const got = c.actions.slice(before);
            assert.equal(got.length, 1, `${file} step ${i}: binary action dispatched`);
            assert.deepEqual([...new Uint8Array(got[0].data)], st.send_binary.data);
          } else if (st.server_close) {
            conn(st.server_close.conn).ws.serverClose(st.server_close.code, st.server_close.reason);
          } else if (st.close !== undefined) {
            conn(st.close).session.disconnect();
          } else if (st.recv?.frame) {
            const c = conn(st.recv.conn);
            const f = st.recv.frame;
            const where = `${file} step ${i}: ${JSON.stringify(st).slice(0, 160)}`;
            const m = /^(_[A-Z_]+):(.*)$/.exec(f.type);
            const store = m ? c.stores.get(m[2]) : undefined;
            const before = c.ws.sent.length;
            /** @type {string | null} */
            let expectText = JSON.stringify(f);
            if (f.type === '_BIN_META') {
              const next = steps[i + 1]?.recv_binary;
              if (!next) continue; // bad input: meta not followed by binary
              const bytes = Uint8Array.from(next.data);
              if (store && m?.[1] === '_ACTION' && f.data.type === `_ACTION:${m[2]}`) store.sendBinary(f.data.metadata, bytes);
              else c.session.sendBinary(f.data.type, f.data.metadata, bytes);
              assert.equal(c.ws.sent.length, before + 2, where);
              assert.equal(c.ws.sent[before], expectText, where);
              assert.deepEqual([.../** @type {Uint8Array} */ (c.ws.sent[before + 1])], next.data, where);
              checked.frames++;
              continue;
            }
            const inner = /^_(?:ACTION|TASK_START|TASK_CANCEL|GET|SET|PATCH):(.*)$/.exec(f.type);
            if (!inner || !store) continue; // _USER_SESSION, or a frame for an unknown key
            switch (m?.[1]) {
              case '_ACTION':
                store.sendAction(f.data);
                break;
              case '_TASK_START':
                store.startTask(f.data);
                break;
              case '_TASK_CANCEL':
                store.cancelTask(f.data);
                break;
              case '_GET':
                store.fetchRemoteState();
                break;
              case '_SET':
                store.sendState(clone(f.data));
                break;
              case '_PATCH': {
                try {
                  store.patch(clone(f.data));
                } catch (err) {
                  assert.ok(err instanceof PatchError, where);
                  const ev = steps.slice(i + 1).find((x) => x.event?.type === 'patched' && x.event.key === m?.[2]);
                  assert.ok(ev, `${where}: no 'patched' event to take the intended state from`);
                  const prev = store.state;
                  store.update(clone(ev.event.value));
                  const sent = JSON.parse(/** @type {string} */ (c.ws.sent[before]));
                  assert.equal(sent.type, f.type, where);
                  assert.deepEqual(applyPatch(clone(prev), sent.data), ev.event.value, `${where}: our RFC 6901 ops`);
                  expectText = null;
                }
                break;
              }
            }
            if (!c.session.isConnected) {
              // e.g. the taken-over tab of takeover.json: this client refuses to send at all
              assert.equal(c.ws.sent.length, before, `${where}: nothing sent while disconnected`);
              const e = c.errors.pop();
              assert.equal(e?.code, LocalErrors.NOT_CONNECTED, where);
              checked.frames++;
              continue;
            }
            assert.equal(c.ws.sent.length, before + 1, `${where}: one frame sent`);
            if (expectText !== null) assert.equal(c.ws.sent[before], expectText, where);
            checked.frames++;
          } else if (st.client_state) {
            const { conn: n, key, value } = st.client_state;
            assert.deepEqual(conn(n).stores.get(key)?.state, value, `${file} step ${i}: client state of ${key} on conn ${n}`);
            checked.states++;
          }
        }
      } finally {
        for (const c of conns.values()) c.session.disconnect();
      }
      assert.ok(checked.frames > 0 || checked.states > 0, `${file}: nothing replayed`);
    });
  }
});
