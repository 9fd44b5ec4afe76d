#!/usr/bin/env python3
"""Applies tether-patch's golden patches with Python `jsonpatch` (what ws-sync uses) and checks
that each gives the case's `after`.

Usage: python3 tests/patch/check_jsonpatch.py [CASES_JSON]   (needs `pip install jsonpatch`;
tests/patch/run.sh sets up a venv). Exits 1 on any mismatch. Also prints how many ops
`jsonpatch.make_patch` needs for the same change, for comparison.
"""

import copy
import json
import pathlib
import sys

import jsonpatch

DEFAULT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "patch" / "cases.json"


def same(a, b):
    """JSON equality that keeps int, float and bool apart (Python's == says True == 1 == 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def main() -> int:
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    cases = json.loads(path.read_text(encoding="utf-8"))
    passed = failed = 0
    for case in cases:
        name, before, after, patch = case["name"], case["before"], case["after"], case["patch"]
        try:
            # ws-sync's server applies client patches in place; the result must be the same.
            got = jsonpatch.apply_patch(copy.deepcopy(before), patch, in_place=False)
            got_in_place = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(before), in_place=True)
        except Exception as exc:
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        if not same(got, after) or not same(got_in_place, after):
            print(f"FAIL {name}: result differs from `after`")
            failed += 1
            continue
        theirs = len(jsonpatch.make_patch(before, after).patch)
        print(f"ok   {name}: {len(patch)} ops (jsonpatch.make_patch: {theirs})")
        passed += 1
    print(f"check_jsonpatch (jsonpatch {jsonpatch.__version__}): {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
