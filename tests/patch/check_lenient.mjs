// Checks the lenient-path fixtures (client patches as ws-sync's React client sends them) against
// independent oracles instead of our own implementation:
//   - tests/fixtures/patch/client.json: {name, before, patch, after}, what lenient mode makes of
//     an unescaped client patch;
//   - every client `_PATCH` frame of tests/fixtures/sync/*.json with the state it is applied to
//     (what the app held for the key) and the `patched` event's value.
// A patch whose paths resolve under RFC 6901 means what the RFC says: fast-json-patch (with
// validation) must give `after`. A patch that does not is a raw-key patch, and the client that
// sent it defines what it meant: ws-sync-react makes its patches with Immer and joins each path
// array with "/" unescaped. For those (and for the Immer-shaped standard ones) RECIPES below holds
// the edit the client made; real Immer (produceWithPatches) must give `after`, and its patches
// joined that way must be exactly the fixture's patch. Where another edit sends the same bytes
// (`alternatives`), the wire is ambiguous and the fixture shows the documented tie-break: each
// alternative must send the same patch, and the check says so. ws-sync 0.6.9's own server
// (Python jsonpatch, strict) is checked by check_jsonpatch.py --client.
// Usage: node tests/patch/check_lenient.mjs   (after `npm ci` in tests/patch). Exits 1 on any
// disagreement.
import { readFileSync, readdirSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { createRequire } from 'node:module';
import jsonpatch from 'fast-json-patch';
import { enablePatches, produceWithPatches } from 'immer';

enablePatches();
const require = createRequire(import.meta.url);
const versions = `fast-json-patch ${require('fast-json-patch/package.json').version}, immer ${require('immer/package.json').version}`;
const FIXTURES = new URL('../fixtures/', import.meta.url);

/**
 * The edit behind each case, as a ws-sync-react component makes it (an Immer recipe).
 * @type {Record<string, {edit: (d: any) => any, alternatives?: ((d: any) => any)[]}>}
 */
const RECIPES = {
  'raw-slash-key': { edit: (d) => void (d.files['src/main.rs'] = 'new') },
  'raw-tilde-key': {
    edit: (d) => {
      d['x~y'] = 10;
      delete d['a~1b'];
    },
  },
  'raw-new-key': { edit: (d) => void (d.files['docs/readme.md'] = '# hi') },
  'strict-reading-wins': {
    edit: (d) => void (d.a.b = 3),
    alternatives: [(d) => void (d['a/b'] = 3)],
  },
  'backtrack-to-raw-key': { edit: (d) => void (d['a/b'].c = 2) },
  'shortest-join-first': {
    edit: (d) => void (d['a/b']['c/d'] = 2),
    alternatives: [(d) => void (d['a/b/c'].d = 2)],
  },
  'raw-key-then-array': { edit: (d) => void d['by/id'].items.push({ 'k~v': 2 }) },
  'root-replace-slash': { edit: () => ({ count: 2 }) },
  'immer-array-shrink': {
    edit: (d) => {
      d.l.length = 2;
      d.l[0] = 0;
    },
  },
  'state.json#27': {
    edit: (d) => {
      d['a/b'] = 10;
      d['x~y'] = 20;
      d.plain.new = true;
    },
  },
  'state.json#32': { edit: () => ({ whole: 'doc' }) },
};

/** ws-sync-react's conversion: the Immer path array joined with "/" after a "/", unescaped. */
const wire = (/** @type {any[]} */ patches) =>
  patches.map(({ op, path, value }) => (op === 'remove' ? { op, path: `/${path.join('/')}` } : { op, path: `/${path.join('/')}`, value }));

/**
 * The client patches of the sync fixtures: each `recv` `_PATCH:KEY` frame with the value the app
 * held for KEY (register / sync / set commands, `set` and `patched` events) and the next `patched`
 * event's value (null: the patch is refused). Keys that expose running tasks are left out (the
 * server rewrites that member, which is not about paths).
 */
function syncCases() {
  const cases = [];
  const dir = new URL('sync/', FIXTURES);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const { steps } = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
    /** @type {Map<string, unknown>} */
    const held = new Map();
    /** @type {Map<string, unknown>} */
    const revisions = new Map();
    const exposed = new Set();
    steps.forEach((/** @type {any} */ st, /** @type {number} */ i) => {
      const app = st.app;
      if (app && !app.expect_error) {
        if (app.cmd === 'register') {
          held.set(app.key, app.value);
          if (app.options?.expose_running_tasks) exposed.add(app.key);
        } else if (app.cmd === 'sync' || app.cmd === 'set') {
          held.set(app.key, app.value);
        } else if (app.cmd === 'sync_if_changed' && revisions.get(app.key) !== app.revision) {
          revisions.set(app.key, app.revision);
          held.set(app.key, app.value);
        } else if (app.cmd === 'unregister') {
          held.delete(app.key);
        }
      }
      if (st.event?.type === 'set' || st.event?.type === 'patched') held.set(st.event.key, st.event.value);
      const frame = st.recv?.frame;
      const m = typeof frame?.type === 'string' ? /^_PATCH:(.*)$/.exec(frame.type) : null;
      if (!m || !held.has(m[1]) || exposed.has(m[1])) return;
      const key = m[1];
      let after = null;
      for (const next of steps.slice(i + 1)) {
        if (next.recv || next.recv_binary || next.connect !== undefined || next.close !== undefined || next.app) break;
        if (next.event?.type === 'patched' && next.event.key === key) {
          after = next.event.value;
          break;
        }
      }
      cases.push({ name: `${file}#${i}`, before: held.get(key), patch: frame.data, after });
    });
  }
  return cases;
}

const clientCases = JSON.parse(readFileSync(new URL('patch/client.json', FIXTURES), 'utf8'));
const cases = [...clientCases, ...syncCases()];
let passed = 0;
let failed = 0;
const ambiguous = [];
for (const { name, before, patch, after } of cases) {
  const problems = [];
  /** @type {string} */
  let how;
  let strict;
  try {
    strict = jsonpatch.applyPatch(jsonpatch.deepClone(before), jsonpatch.deepClone(patch), true, false).newDocument;
  } catch {
    strict = undefined;
  }
  const recipe = RECIPES[name];
  if (strict !== undefined) {
    how = 'RFC 6901 paths: fast-json-patch';
    if (!isDeepStrictEqual(strict, after)) problems.push(`fast-json-patch gives ${JSON.stringify(strict)}`);
  } else if (!recipe) {
    how = 'raw paths';
    problems.push('no Immer recipe for a patch that is not RFC 6901 (add one to RECIPES)');
  } else {
    how = 'raw paths';
  }
  if (recipe) {
    how += (strict !== undefined ? ' + ' : ': ') + 'Immer';
    const [next, patches] = produceWithPatches(before, recipe.edit);
    if (!isDeepStrictEqual(next, after)) problems.push(`Immer's edit gives ${JSON.stringify(next)}`);
    if (!isDeepStrictEqual(wire(patches), patch)) problems.push(`ws-sync-react would send ${JSON.stringify(wire(patches))}`);
    for (const alt of recipe.alternatives ?? []) {
      const [altNext, altPatches] = produceWithPatches(before, alt);
      if (!isDeepStrictEqual(wire(altPatches), patch)) problems.push(`an alternative edit sends ${JSON.stringify(wire(altPatches))}, not the same bytes`);
      ambiguous.push(`${name} (another edit sends the same patch and would give ${JSON.stringify(altNext)})`);
    }
  }
  if (problems.length) {
    console.log(`FAIL ${name} (${how}): ${problems.join('; ')}`);
    failed += 1;
  } else {
    console.log(`ok   ${name} (${how})`);
    passed += 1;
  }
}
for (const a of ambiguous) console.log(`note ambiguous on the wire, the fixture shows the tie-break: ${a}`);
console.log(`check_lenient (${versions}): ${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
