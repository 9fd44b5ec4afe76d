// Applies tether-patch's golden patches with fast-json-patch, the way ws-sync's React client
// does (`patch.reduce(applyReducer, deepClone(state))`) and with full validation, and checks
// that each gives the case's `after`.
// Usage: node tests/patch/check_fast_json_patch.mjs [CASES_JSON]   (after `npm ci` in tests/patch)
// Exits 1 on any mismatch.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import jsonpatch from 'fast-json-patch';

const { applyPatch, applyReducer, deepClone, validate } = jsonpatch;
const version = createRequire(import.meta.url)('fast-json-patch/package.json').version;
const file = process.argv[2] ?? fileURLToPath(new URL('../fixtures/patch/cases.json', import.meta.url));
const cases = JSON.parse(readFileSync(file, 'utf8'));

let passed = 0;
let failed = 0;
for (const { name, before, after, patch } of cases) {
  try {
    const invalid = validate(patch, deepClone(before));
    if (invalid) throw invalid;
    // The ws-sync client: sequential applyReducer on a deep clone of the current state.
    const reduced = patch.reduce(applyReducer, deepClone(before));
    // Strict: validate each op against the document as it goes.
    const validated = applyPatch(deepClone(before), deepClone(patch), true, true).newDocument;
    if (!isDeepStrictEqual(reduced, after) || !isDeepStrictEqual(validated, after)) {
      throw new Error('result differs from `after`');
    }
    console.log(`ok   ${name}: ${patch.length} ops`);
    passed += 1;
  } catch (err) {
    console.log(`FAIL ${name}: ${err.name ?? 'Error'}: ${err.message}`);
    failed += 1;
  }
}
console.log(`check_fast_json_patch (fast-json-patch ${version}): ${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
