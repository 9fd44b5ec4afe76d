#!/usr/bin/env python3
"""Summarizes bench/sync results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section; with --docs, rewrites only the text between
`<!-- bench-sync:begin` and `<!-- bench-sync:end -->` (appended at the end of the file if the
markers are missing).

What both summarize.py share (the command line, the run's bullets, the docs section) is in
bench/benchlib.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

SCENARIOS = [("change", "one change"), ("insert", "one front insert"), ("none", "no change")]


def fmt_t(ns: float | None) -> str:
    if ns is None:
        return "–"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return benchlib.fmt_ratio(a, b, sci_from=1e5)


def fmt_span(a: dict | None, b: dict | None) -> str:
    """The ratio of the medians and its bounds over the reps (the sides' reps are not paired)."""
    return benchlib.fmt_ratio_span(benchlib.bound_ratio(a, b) if a and b else None, 1e5)


def load(path: Path) -> dict:
    rows = {}
    for r in benchlib.read_jsonl(path):
        if r.get("meta"):
            rows["ws-meta"] = r
            continue
        rows[(r["side"], r["path"], r["n"], r["scenario"])] = r
    return rows


def section(rows: dict, meta: dict) -> tuple[str, list[benchlib.Check]]:
    ns = sorted({k[2] for k in rows if isinstance(k, tuple)})
    ws = rows.get("ws-meta", {})

    def get(side, path, n, sc):
        return rows.get((side, path, n, sc))

    out = []
    out.append("## Sync engine: tether-sync vs ws-sync 0.6.9 (`bench/sync`)")
    out.append("")
    out.append(
        'One synced object `{"items": [N items]}`, items '
        '`{"id": i, "text": "item i", "done": false, "tags": ["a","b"], "score": i*1.5}`; '
        "time of one server-side sync that produces the `_PATCH:ITEMS` frame, median of reps."
    )
    out.append("")
    out += benchlib.meta_lines(
        meta,
        "bench/sync/run.sh",
        f"Python {ws.get('python', '?')}, ws-sync {ws.get('ws_sync', '?')}, "
        f"jsonpatch {ws.get('jsonpatch', '?')}, starlette {ws.get('starlette', '?')}",
    )
    out.append(
        "- **Raw results:** `bench/sync/results/latest.jsonl` (one JSON line per side, path, N, scenario)"
    )
    out.append("")
    out.append(
        "| N | scenario | ws-sync `sync()` | tether `sync` (serialize + diff + frame) | ratio | "
        "tether `Synced` (revision) | ratio | ops ws-sync / tether | frame bytes ws-sync / tether |"
    )
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        for sc, label in SCENARIOS:
            w = get("ws-sync", "Sync.sync", n, sc)
            t = get("tether", "sync", n, sc)
            y = get("tether", "typed", n, sc)
            wm = w and w["median_ns"]
            tm = t and t["median_ns"]
            ym = y and y["median_ns"]
            ops = f"{w['ops'] if w else '–'} / {t['ops'] if t else '–'}"
            size = f"{w['bytes'] if w else '–'} / {t['bytes'] if t else '–'}"
            ylabel = fmt_t(ym) + (" per call" if sc == "none" and ym is not None else "")
            out.append(
                f"| {n:,} | {label} | {fmt_t(wm)} | {fmt_t(tm)} | {fmt_span(w, t)} | "
                f"{ylabel} | {fmt_span(w, y)} | {ops} | {size} |"
            )
    out.append("")
    out.append(
        "Ratio: ws-sync's median time ÷ tether's; in brackets the widest it can be over the reps "
        "(ws-sync's fastest rep ÷ tether's slowest, to ws-sync's slowest ÷ tether's fastest): the "
        "two sides run their reps in separate processes, one after the other, so reps are not "
        "paired. The revision path's reps are batches of calls."
    )
    out.append("")
    reps = []
    for n in ns:
        w = get("ws-sync", "Sync.sync", n, "change")
        t = get("tether", "sync", n, "change")
        y = get("tether", "typed", n, "none")
        reps.append(
            f"N={n:,}: ws-sync {w['reps'] if w else '?'} reps, tether {t['reps'] if t else '?'} reps"
            + (f", revision path {y['reps']}×{y.get('calls_per_rep', '?'):,} calls" if y else "")
        )
    out.append("Repetitions per scenario: " + "; ".join(reps) + ".")
    parts = []
    for n in ns:
        t = get("tether", "sync", n, "none")
        z = get("tether", "serialize", n, "none")
        if t and z:
            parts.append(
                f"N={n:,}: `to_value` {fmt_t(z['median_ns'])} of {fmt_t(t['median_ns'])} "
                f"({100 * z['median_ns'] / t['median_ns']:.0f} %)"
            )
    if parts:
        out.append("")
        out.append(
            "Breakdown of tether's no-change `sync` (serialize, then a lockstep compare that finds nothing, "
            "then the old value is freed): "
            + "; ".join(parts)
            + ". The rest is the compare and freeing "
            "the N-item `Value`; a changed sync adds only the one-op frame."
        )
    out += benchlib.phases_lines(meta)
    out.append("")

    # ---- targets ----
    checks: list[benchlib.Check] = []
    n10 = 10_000 if 10_000 in ns else (ns[len(ns) // 2] if ns else None)
    if n10 is not None:
        parts, ok_all = [], True
        for sc, label in SCENARIOS:
            w = get("ws-sync", "Sync.sync", n10, sc)
            t = get("tether", "sync", n10, sc)
            y = get("tether", "typed", n10, sc)
            if not (w and t and y):
                continue
            ry = w["median_ns"] / y["median_ns"]
            ok_all &= ry >= 100
            parts.append(
                f"{label} {fmt_ratio(w['median_ns'], y['median_ns'])} (plain `sync` of a prebuilt `Value`: {fmt_ratio(w['median_ns'], t['median_ns'])})"
            )
        checks.append(
            (
                ok_all,
                f"≥ 100× faster than ws-sync at {n10:,} items, every scenario, on the typed path apps use (`Synced::sync`, the server's `SyncedObject`)",
                "; ".join(parts),
            )
        )
    revs = [(n, get("tether", "typed", n, "none")) for n in ns]
    revs = [(n, r) for n, r in revs if r]
    if revs:
        worst = max(r["median_ns"] for _, r in revs)
        worst_max = max(r["max_ns"] for _, r in revs)
        checks.append(
            (
                worst < 1_000,
                "no-change sync under 1 µs per key (`Synced::sync` → `sync_serialize_if_changed`, revision unchanged)",
                (
                    f"median {worst:.0f} ns per call at worst over N (slowest batch {worst_max:.0f} ns); "
                    "the plain `sync` path without a revision still serializes and compares the whole value"
                ),
            )
        )
    ins = [(n, get("tether", "sync", n, "insert")) for n in ns]
    ins = [(n, r) for n, r in ins if r]
    if ins:
        checks.append(
            (
                all(r["ops"] == 1 for _, r in ins),
                "one op for one front insert",
                ", ".join(f"N={n:,}: {r['ops']} op ({r['bytes']} B)" for n, r in ins),
            )
        )
    out.append("**Targets:**")
    out.append("")
    out += benchlib.target_lines(checks)
    out.append("")
    out.append(
        "**Method.** Both sides run in one invocation, one N at a time (tether, then ws-sync), pinned to the "
        'same core, each process alone. ws-sync: `Sync.only(obj, "ITEMS", items=...)` in a `Session` '
        "connected to a real Starlette `WebSocket` whose ASGI `send` records the message, so `await sync()` "
        "runs the stock path: `_snapshot()` deepcopy + `jsonpatch.make_patch` + `send_json` "
        "(`json.dumps`, compact); the time is `perf_counter_ns` around `await obj.sync.sync()`, after an untimed "
        "`gc.collect()`. tether (release build): `sync` = `serde_json::to_value(&state)` + "
        '`Session::sync("ITEMS", value)` + draining the output (the frame string is built inside `sync`); '
        "`Synced` = `Synced<State>::sync` after `get_mut`: `diff_serialize` walks the typed value against the held "
        "snapshot in place (no `Value` tree is built; only changed parts are serialized) + frame, or with an unmoved revision "
        "(no change) a hash lookup and an integer compare, timed over batches of 100,000 calls and reported per "
        "call. Scenarios: the middle item's `text` changed; one item inserted at the front (removed and synced "
        "untimed after each rep, so every rep diffs N against N+1 items); nothing changed (ws-sync sends "
        "nothing then but still snapshots and diffs). Ops and bytes are of the last frame sent (ws-sync: "
        "python-json-patch's op list; both emit one `replace` / one `add`); the `text` values differ by rep "
        "number, hence a few bytes' difference. tether asserts that both of its paths sent identical frames. "
        "Medians of reps after warm-up (tether 2, ws-sync 1 below 100k); ws-sync at 100k takes seconds per "
        "sync, so it gets 3 reps."
    )
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(
        benchlib.main(
            "bench-sync", "bench/sync/run.sh", lambda path, meta: section(load(path), meta)
        )
    )
