#!/usr/bin/env python3
"""Summarizes bench/js results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section; with --docs, rewrites only the text between `<!-- bench-js:begin`
and `<!-- bench-js:end -->` (appended at the end of the file if the markers are missing).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

VARIANTS = [
    ("tether", "tether.js (QuickJS-NG)"),
    ("tether-unpinned", "tether.js, unpinned"),
    ("jsrun", "jsrun 0.3.0 (V8)"),
    ("jsrun-unpinned", "jsrun 0.3.0, unpinned"),
    ("mini-racer", "mini-racer (V8)"),
]
METRICS = [
    ("create_close", "create + close a runtime"),
    ("eval_1p1", '`eval("1+1")`, the same source again (tether.js: a code cache hit)'),
    ("eval_1p1_miss", '`eval("1+1//<n>")`, a new source each call (a miss: compiled)'),
    ("eval_1p1_nocache", '`eval("1+1")` with the code cache off'),
    ("call_js", "Python calls a JS function `(x) => x + 1`"),
    ("roundtrip", "Python → JS → Python (JsFunction calling a bound Python function)"),
    ("js_to_py_loop", "JS → Python callback in a JS loop (per call)"),
    ("obj_1mb_js_to_py", "1 MB object JS → Python, native"),
    ("obj_1mb_js_to_py_json", "1 MB object JS → Python, JSON"),
    ("obj_1mb_py_to_js", "1 MB object Python → JS, native"),
    ("obj_1mb_py_to_js_json", "1 MB object Python → JS, JSON"),
    ("fib25", "fib(25)"),
    ("fib30", "fib(30)"),
    ("rss_per_runtime", "RSS per runtime ({n} kept, each ran one eval)"),
    ("create_n_runtimes", "time to create those {n} runtimes"),
    ("idle_cpu_1", "idle CPU, 1 runtime alive (% of a core)"),
    ("idle_cpu_n", "idle CPU, {n} runtimes alive (% of a core)"),
    ("create_big_n", "create {n} runtimes kept open at once"),
    ("rss_big_n", "RSS growth for those {n} runtimes"),
    ("idle_cpu_big_n", "idle CPU, {n} runtimes alive (% of a core)"),
]


def fmt(row: dict | None) -> str:
    if row is None:
        return "–"
    v, unit = row.get("value"), row.get("unit", "")
    if v is None:
        return "n/a" + (f" ({row['note']})" if row.get("note") else "")
    if unit == "%":
        s = f"{v:.0f} %" if v >= 1 else f"{v:.1f} %"
    elif v >= 100:
        s = f"{v:,.0f} {unit}"
    elif v >= 10:
        s = f"{v:.1f} {unit}"
    elif v >= 1:
        s = f"{v:.2f} {unit}"
    else:
        s = f"{v:.3f} {unit}"
    s = s.replace(" us", " µs")
    note = row.get("note")
    if note and note != "native" and not row.get("metric", "").endswith("_json"):
        s += f" ({note})"
    return s


def value(rows: dict, variant: str, metric: str) -> float | None:
    r = rows.get((variant, metric))
    return r.get("value") if r else None


def section(path: Path, meta: dict) -> tuple[str, list[benchlib.Check]]:
    rows: dict = {}
    metas: dict = {}
    for r in benchlib.read_jsonl(path):
        if r.get("meta"):
            metas[r["variant"]] = r
        else:
            rows[(r["variant"], r["metric"])] = r
    ver: dict = {}
    for m in metas.values():
        for k, v in m.items():
            if v and k not in ("variant", "meta"):
                ver.setdefault(k, v)
    out = ["## JS engines from Python: tether.js vs jsrun 0.3.0 vs mini-racer (`bench/js`)", ""]
    out.append(
        "Median of REPS repetitions (each a batch of calls for the sub-millisecond metrics). "
        "The 1 MB payload is 8000 records (about 0.95 MB of JSON). Each variant runs in its "
        "own process."
    )
    out.append("")
    out += benchlib.meta_lines(
        meta,
        "bench/js/run.sh",
        f"Python {ver.get('python', '?')}, tether {ver.get('tether', '?')} "
        f"(git {meta.get('git', '?')}), jsrun {ver.get('jsrun', '?')}, "
        f"mini-racer {ver.get('mini_racer', '?')}",
    )
    out.append("- **Raw results:** `bench/js/results/latest.jsonl` (one JSON line per metric)")
    out.append("")
    out.append("| metric | " + " | ".join(label for _, label in VARIANTS) + " |")
    out.append("|---|" + "---:|" * len(VARIANTS))
    for metric, label in METRICS:
        present = [rows.get((v, metric)) for v, _ in VARIANTS]
        if not any(present):
            continue
        n = next((r["n"] for r in present if r and "n" in r), "?")
        out.append(f"| {label.format(n=n)} | " + " | ".join(fmt(r) for r in present) + " |")
    out += benchlib.phases_lines(meta)

    checks: list[benchlib.Check] = []

    def target(metric: str, limit: float, what: str, unit: str) -> None:
        v = value(rows, "tether", metric)
        if v is None:
            return
        checks.append((v <= limit, what, f"{v:.3g} {unit} (target ≤ {limit:g} {unit})"))

    target("create_close", 0.5, "create + close ≤ 0.5 ms", "ms")
    target("eval_1p1", 1, 'eval("1+1") ≤ 1 µs on a code cache hit', "µs")
    v = value(rows, "tether-unpinned", "eval_1p1")
    if v is not None:
        checks.append(
            (v <= 1, 'eval("1+1") ≤ 1 µs on a hit, unpinned', f"{v:.3g} µs (target ≤ 1 µs)")
        )
    for ours, theirs, how in (
        ("tether", "jsrun", "both pinned"),
        ("tether-unpinned", "jsrun-unpinned", "both unpinned"),
        ("tether", "jsrun-unpinned", "tether pinned, jsrun unpinned"),
    ):
        t, j = value(rows, ours, "eval_1p1"), value(rows, theirs, "eval_1p1")
        if t and j:
            checks.append(
                (
                    j / t >= 4,
                    f'eval("1+1") ≥ 4× jsrun ({how})',
                    f"{j / t:.2f}× ({t:.3g} µs vs {j:.3g} µs)",
                )
            )
    target("rss_per_runtime", 0.3, "RSS per runtime ≤ 0.3 MB", "MB")
    target("idle_cpu_1", 1, "idle CPU 0 % (1 runtime)", "%")
    target("idle_cpu_n", 1, "idle CPU 0 % (N_RT runtimes)", "%")
    t, j = value(rows, "tether", "roundtrip"), value(rows, "jsrun", "roundtrip")
    if t is not None and j is not None:
        checks.append(
            (t < j, "call round trip faster than jsrun", f"{t:.3g} µs vs jsrun {j:.3g} µs")
        )
    gaps = []
    for fib, label in (("fib25", "fib(25)"), ("fib30", "fib(30)")):
        t, jv, m = (value(rows, v, fib) for v in ("tether", "jsrun", "mini-racer"))
        if t and jv:
            gaps.append(
                f"{label} {t:.3g} ms vs {jv:.3g} ms in jsrun ({t / jv:.0f}× slower)"
                + (f" and {m:.3g} ms in mini-racer ({t / m:.0f}×)" if m else "")
            )
    if checks:
        out.append("")
        out.append("Targets (from the issue):")
        out.append("")
        out += benchlib.target_lines(checks)
    if gaps:
        out.append("")
        out.append(
            "CPU-heavy JS (no target; QuickJS is an interpreter, V8 a JIT): tether.js runs "
            + "; ".join(gaps)
            + "."
        )
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(benchlib.main("bench-js", "bench/js/run.sh", section))
