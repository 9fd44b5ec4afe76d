#!/usr/bin/env python3
"""Summarizes bench/py-sync results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section; with --docs, rewrites only the text between
`<!-- bench-py-sync:begin` and `<!-- bench-py-sync:end -->` (appended at the end of the file if
the markers are missing).

What both summarize.py share (the command line, the run's bullets, the docs section) is in
bench/benchlib.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

SCENARIOS = [("changed", "one field changed"), ("unchanged", "nothing changed")]
VARIANTS = [
    ("ws-sync", "ws-sync 0.6.9 (dicts)"),
    ("tether-typed", "tether.sync typed (`list[Item]`)"),
    ("tether-untyped", "tether.sync untyped (dicts)"),
]
# The targets: ws-sync time / tether time, at 10,000 items. The sync issue asked for 20× (one
# change) and 100× (no change); issue 14 raised both to 150×, on every path.
TARGETS = {"changed": 150, "unchanged": 150}


def ms(ns: float | None) -> str:
    if ns is None:
        return "–"
    v = ns / 1e6
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 1:
        return f"{v:.1f} ms"
    if v >= 0.01:
        return f"{v:.2f} ms"
    return f"{v:.4f} ms"


def ratio(a: float | None, b: float | None) -> str:
    return benchlib.fmt_ratio(a, b, sci_from=1e4)


def load(path: Path) -> tuple[dict, dict]:
    rows, metas = {}, {}
    for r in benchlib.read_jsonl(path):
        if r.get("meta"):
            metas[r["variant"]] = r
        else:
            rows[(r["variant"], r["scenario"])] = r
    return rows, metas


def baseline_lines(rows: dict, labels: list[str]) -> list[str]:
    """The tether variants of this build against a baseline build run in the same session
    (run.sh `BASELINE=<rev>`): after / before = this build's median / the baseline's."""
    out = []
    for label in labels:
        out.append(
            f"**Against the baseline `{label}`** (same run, interleaved; after / before < 1 is "
            "faster; in brackets its bounds over the reps, as for the ratio above):"
        )
        out.append("")
        out.append(
            "| scenario | variant | baseline median / p90 | this build median / p90 | after / before |"
        )
        out.append("|---|---|---:|---:|---:|")
        for sc, sc_label in SCENARIOS:
            for v, v_label in VARIANTS[1:]:
                before, after = rows.get((f"{v}@{label}", sc)), rows.get((v, sc))
                if not (before and after):
                    continue
                r, lo, hi = benchlib.bound_ratio(after, before) or (0.0, 0.0, 0.0)
                out.append(
                    f"| {sc_label} | {v_label} | {ms(before['median_ns'])} / {ms(before['p90_ns'])} "
                    f"| {ms(after['median_ns'])} / {ms(after['p90_ns'])} | {r:.2f} ({lo:.2f}–{hi:.2f}) |"
                )
        out.append("")
    return out


def section(rows: dict, metas: dict, meta: dict) -> tuple[str, list[benchlib.Check]]:
    ns = sorted({r["n"] for r in rows.values()})
    n = ns[0] if ns else "?"
    ver = {}
    for m in metas.values():
        for k, v in m.items():
            if v and k not in ("variant", "meta"):
                ver.setdefault(k, v)
    out = []
    out.append("## Python sync: tether.sync vs ws-sync 0.6.9 (`bench/py-sync`)")
    out.append("")
    out.append(
        f"Time of one `await obj.sync()` for a synced object with {n:,} items "
        if isinstance(n, int)
        else "Time of one `await obj.sync()` "
    )
    out[-1] += (
        '(`{"id": i, "text": "item i", "done": false, "tags": ["a","b"], "score": i*1.5}`), '
        "in ms, median and p90 of reps; ratio = ws-sync's time / tether's (median)."
    )
    out.append("")
    out += benchlib.meta_lines(
        meta,
        "bench/py-sync/run.sh",
        f"Python {ver.get('python', '?')}, ws-sync {ver.get('ws_sync', '?')}, "
        f"tether {ver.get('tether', '?')} (git {meta.get('git', '?')}), "
        f"pydantic {ver.get('pydantic', '?')}, jsonpatch {ver.get('jsonpatch', '?')}, "
        f"starlette {ver.get('starlette', '?')}",
    )
    out.append(
        "- **Raw results:** `bench/py-sync/results/latest.jsonl` (one JSON line per variant and scenario)"
    )
    out.append("")
    head = "| scenario |"
    rule = "|---|"
    for v, label in VARIANTS:
        head += f" {label} median / p90 |"
        rule += "---:|"
        if v != "ws-sync":
            head += " ratio |"
            rule += "---:|"
    head += " ops / frame bytes |"
    rule += "---:|"
    out.append(head)
    out.append(rule)
    for sc, label in SCENARIOS:
        w = rows.get(("ws-sync", sc))
        line = f"| {label} |"
        opsb = []
        for v, _ in VARIANTS:
            r = rows.get((v, sc))
            line += f" {ms(r and r['median_ns'])} / {ms(r and r['p90_ns'])} |"
            if v != "ws-sync":
                span = benchlib.bound_ratio(w, r) if w and r else None
                line += f" {benchlib.fmt_ratio_span(span, 1e4)} |"
            opsb.append(f"{r['ops']}/{r['bytes']}" if r else "–")
        line += " " + " · ".join(opsb) + " |"
        out.append(line)
    out.append("")
    out.append(
        "Ratio: ws-sync's median time ÷ tether's; in brackets the widest it can be over the reps "
        "(ws-sync's fastest rep ÷ tether's slowest, to ws-sync's slowest ÷ tether's fastest): "
        "each variant runs its reps in its own process, one after the other, so reps are not "
        "paired."
    )
    base = sorted({v.split("@", 1)[1] for v, _ in rows if "@" in v})
    if base:
        out.append("")
        out += baseline_lines(rows, base)
    out.append("")
    out.append(
        "Repetitions: "
        + ", ".join(
            f"{label} {rows[(v, 'changed')]['reps']}"
            for v, label in VARIANTS
            if (v, "changed") in rows
        )
        + " per scenario, after one warm-up sync."
    )
    out += benchlib.phases_lines(meta)
    out.append("")

    checks: list[benchlib.Check] = []
    for sc, label in SCENARIOS:
        w = rows.get(("ws-sync", sc))
        for v, vlabel in VARIANTS[1:]:
            t = rows.get((v, sc))
            if not (w and t):
                continue
            r = w["median_ns"] / t["median_ns"]
            checks.append(
                (
                    r >= TARGETS[sc],
                    f"{vlabel} ≥ {TARGETS[sc]}× faster than ws-sync, {label}",
                    f"{ratio(w['median_ns'], t['median_ns'])} ({ms(w['median_ns'])} vs {ms(t['median_ns'])})",
                )
            )
    out.append(f"**Targets** (issue 14, at {n:,} items):" if isinstance(n, int) else "**Targets:**")
    out.append("")
    out += benchlib.target_lines(checks)
    out.append("")
    out.append(
        "**Method.** Each variant runs `bench/py-sync/bench.py` in its own process, one after the other, "
        "pinned to the same core. Each builds a `Session` connected to a real Starlette `WebSocket` whose "
        'ASGI `send` records the message, and one object synced with `Sync.only(obj, "ITEMS", items=...)`, '
        "then times `await obj.sync()` (`perf_counter_ns`, after an untimed `gc.collect()`): snapshot, diff, "
        "frame and send. *changed*: the middle item's `text` is set before each sync (every variant sends the "
        "same one-op `replace` frame, asserted); *unchanged*: nothing changed (no frame; asserted). "
        "ws-sync 0.6.9 syncs plain dicts only: its `_snapshot()` deep-copies raw values and `send_json` "
        'json-encodes them, so pydantic models cannot be sent ("Object of type Item is not JSON '
        'serializable"); its numbers are for the same data as dicts. tether.sync typed: `items: list[Item]` '
        "is a class-level annotation, `Item` a pydantic `BaseModel` (`id: int, text: str, done: bool, "
        "tags: list[str], score: float`), dumped and validated with a pydantic `TypeAdapter`; untyped: the "
        "same dicts as ws-sync."
    )
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(
        benchlib.main(
            "bench-py-sync",
            "bench/py-sync/run.sh",
            lambda path, meta: section(*load(path), meta),
        )
    )
