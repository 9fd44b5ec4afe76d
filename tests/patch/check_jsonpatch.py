#!/usr/bin/env python3
"""Applies tether-patch's golden patches with Python `jsonpatch` (what ws-sync uses) and checks
that each gives the case's `after`.

Usage: python3 tests/patch/check_jsonpatch.py [CASES_JSON]   (needs `pip install jsonpatch`;
tests/patch/run.sh sets up a venv). Exits 1 on any mismatch. Also prints how many ops
`jsonpatch.make_patch` needs for the same change, for comparison.

`--client`: the lenient-path fixtures instead (tests/fixtures/patch/client.json and the client
`_PATCH` frames of tests/fixtures/sync/, as check_lenient.mjs collects them), each applied by
ws-sync 0.6.9's own server: a `Sync` over an object holding the document's members, and its
`_PATCH:KEY` handler. Wherever ws-sync applies a patch, tether's result must be the same;
ws-sync refuses the raw-key paths (its socket closes), and check_lenient.mjs checks those
against the edit the client made (Immer).
"""

import asyncio
import copy
import json
import pathlib
import sys

import jsonpatch

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
DEFAULT = FIXTURES / "patch" / "cases.json"


def same(a, b):
    """JSON equality that keeps int, float and bool apart (Python's == says True == 1 == 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def sync_cases():
    """The client `_PATCH` frames of the sync fixtures, as check_lenient.mjs's syncCases: the
    value the app held for the key, and the next `patched` event's value (None: refused)."""
    cases = []
    for file in sorted((FIXTURES / "sync").glob("*.json")):
        steps = json.loads(file.read_text(encoding="utf-8"))["steps"]
        held, revisions, exposed = {}, {}, set()
        for i, st in enumerate(steps):
            app = st.get("app")
            if app and not app.get("expect_error"):
                cmd, key = app.get("cmd"), app.get("key")
                if cmd == "register":
                    held[key] = app["value"]
                    if (app.get("options") or {}).get("expose_running_tasks"):
                        exposed.add(key)
                elif cmd in ("sync", "set"):
                    held[key] = app["value"]
                elif cmd == "sync_if_changed" and revisions.get(key) != app["revision"]:
                    revisions[key] = app["revision"]
                    held[key] = app["value"]
                elif cmd == "unregister":
                    held.pop(key, None)
            event = st.get("event") or {}
            if event.get("type") in ("set", "patched"):
                held[event["key"]] = event["value"]
            frame = (st.get("recv") or {}).get("frame") or {}
            kind = frame.get("type")
            if not isinstance(kind, str) or not kind.startswith("_PATCH:"):
                continue
            key = kind[len("_PATCH:") :]
            if key not in held or key in exposed:
                continue
            after = None
            for nxt in steps[i + 1 :]:
                if any(k in nxt for k in ("recv", "recv_binary", "connect", "close", "app")):
                    break
                ev = nxt.get("event") or {}
                if ev.get("type") == "patched" and ev.get("key") == key:
                    after = ev["value"]
                    break
            cases.append(
                {
                    "name": f"{file.name}#{i}",
                    "before": held[key],
                    "patch": frame["data"],
                    "after": after,
                }
            )
    return cases


def ws_sync_apply(before, patch):
    """ws-sync 0.6.9's server applying a client `_PATCH:KEY`: its own handler, on a `Sync` of an
    object whose attributes are the document's members. Returns the synced state."""
    from ws_sync.session import Session
    from ws_sync.sync import Sync

    class Doc:
        pass

    obj = Doc()
    for name, value in copy.deepcopy(before).items():
        setattr(obj, name, value)
    with Session():
        sync = Sync(obj, "K", sync_all=True)
        asyncio.run(sync.session.event_handlers["_PATCH:K"](copy.deepcopy(patch)))
        return sync._snapshot()


def check_client() -> int:
    import ws_sync

    cases = json.loads((FIXTURES / "patch" / "client.json").read_text(encoding="utf-8"))
    cases += sync_cases()
    passed = failed = refused = 0
    for case in cases:
        name, before, patch, after = case["name"], case["before"], case["patch"], case["after"]
        try:
            got = ws_sync_apply(before, patch)
        except Exception as exc:
            # Raw-key paths: ws-sync's jsonpatch is strict (check_lenient.mjs has the oracle).
            print(f"ok   {name}: ws-sync refuses it ({type(exc).__name__}: {exc})")
            passed += 1
            refused += 1
            continue
        if after is None:
            print(f"FAIL {name}: ws-sync applies it ({json.dumps(got)}); the fixture refuses it")
            failed += 1
        elif not same(got, after):
            print(f"FAIL {name}: ws-sync gives {json.dumps(got)}, the fixture {json.dumps(after)}")
            failed += 1
        else:
            print(f"ok   {name}: ws-sync gives the same")
            passed += 1
    version = getattr(ws_sync, "__version__", None) or _dist_version("ws-sync")
    print(
        f"check_jsonpatch --client (ws-sync {version}, {refused} refused by ws-sync): "
        f"{passed} passed, {failed} failed"
    )
    return 1 if failed or not passed else 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> int:
    if sys.argv[1:] == ["--client"]:
        return check_client()
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
