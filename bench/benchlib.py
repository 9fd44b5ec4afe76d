"""What bench/sync/summarize.py and bench/py-sync/summarize.py share (stdlib only).

The scripts run as scripts, so they put this directory on `sys.path` before `import benchlib`.

- `fmt_ratio`: a ratio `a / b` as `12×`, `3.4×`, `1.2e+05×`.
- `paired_ratio`, `bound_ratio`, `fmt_ratio_span`: a ratio's median and min–max across reps
  (paired reps: the ratio of each pair; unpaired: bounded by each side's fastest and slowest rep).
- `read_jsonl`: the JSON objects of a results file (lines that start with `{`).
- `meta_lines`: the Command / Machine / Date / Run / Pinning / Load bullets from latest.meta.json.
- `chart_lines`: the chart (bench/plot.py, docs/bench/<bench>.svg) and how to read it; `main`
  puts them after the section's Raw results bullet.
- `phases_lines`: the "CPU seen on the machine during each phase" paragraph.
- `target_lines`, `check_lines`: the targets as docs bullets and as the printed summary.
- `write_docs`: rewrites the `<!-- TAG:begin ... -->` ... `<!-- TAG:end -->` section of a file.
- `main`: the command line both scripts have (RESULTS.jsonl [--meta META.json] [--docs FILE]).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# A target: (met, what, detail).
Check = tuple[bool, str, str]

# Benches whose chart is per-second time series (bench/plot.py's line panels), not bars over reps.
TIME_SERIES = {"soak"}


def fmt_ratio(a: float | None, b: float | None, sci_from: float) -> str:
    """`a / b` as `12×` (`3.4×` below 10, `1.2e+05×` from `sci_from` on); `–` without both."""
    if not a or not b:
        return "–"
    r = a / b
    if r >= sci_from:
        return f"{r:.1e}×"
    return f"{r:,.0f}×" if r >= 10 else f"{r:.1f}×"


def _ratio_num(r: float, sci_from: float) -> str:
    if r >= sci_from:
        return f"{r:.1e}"
    return f"{r:,.0f}" if r >= 10 else f"{r:.2f}"


def paired_ratio(a: list[float | None], b: list[float | None]) -> tuple[float, float, float] | None:
    """Median, min and max of a[i] / b[i] over the reps where both sides have a value (rep i of
    one side against rep i of the other: the reps were run interleaved)."""
    rs = [x / y for x, y in zip(a, b, strict=False) if x and y]
    if not rs:
        return None
    return statistics.median(rs), min(rs), max(rs)


def bound_ratio(a: dict, b: dict, key: str = "median_ns") -> tuple[float, float, float] | None:
    """a's time / b's time for sides whose reps are not paired (each ran its own reps, one
    process after the other): the ratio of the medians, and the widest it can be over the reps,
    a's fastest / b's slowest to a's slowest / b's fastest (`min_ns`, `max_ns`)."""
    try:
        return a[key] / b[key], a["min_ns"] / b["max_ns"], a["max_ns"] / b["min_ns"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def fmt_ratio_span(span: tuple[float, float, float] | None, sci_from: float = 1e5) -> str:
    """`3.4× (1.3–4.4×)`: a ratio's median and, in brackets, its min–max; `–` without one."""
    if span is None:
        return "–"
    mid, lo, hi = span
    return f"{_ratio_num(mid, sci_from)}× ({_ratio_num(lo, sci_from)}–{_ratio_num(hi, sci_from)}×)"


def read_jsonl(path: Path) -> Iterator[dict]:
    """The JSON objects of a results file; lines that do not start with `{` are skipped."""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)


def meta_lines(meta: dict, command: str, versions: str) -> list[str]:
    """The run's bullets; `versions` ends the Machine bullet (after the rustc version)."""
    params = meta.get("params", {})
    return [
        f"- **Command:** `{meta.get('command', command)}` (parameters: "
        + " ".join(f"`{k}={v}`" for k, v in params.items())
        + ")",
        (
            f"- **Machine:** {meta.get('nproc', '?')} cores, {meta.get('cpu', '?')}, "
            f"{meta.get('mem_gib', '?')} GiB RAM, Linux {meta.get('kernel', '?')}; "
            f"{meta.get('rustc', '?')}; {versions}"
        ),
        f"- **Date:** {meta.get('date', '?')}; {meta.get('elapsed_s', '?')} s in all",
        run_line(meta),
        f"- **Pinning:** {meta.get('pinning', '?')}",
        (
            f"- **Load:** 1/5/15-min load average {meta.get('load_start', '?')} at start, "
            f"{meta.get('load_end', '?')} at end; other work used "
            f"{meta.get('busy_before_pct', '?')} % of a core just before the start (waited "
            f"{meta.get('quiet_waited_s', '?')} s for a quiet machine)"
        ),
    ]


def run_line(meta: dict) -> str:
    """The Run bullet: which commit was measured and where the run's raw results are kept."""
    git = meta.get("git")
    if not git:
        return "- **Run:** commit not recorded (a run from before bench/lib.sh recorded it)"
    if meta.get("run"):
        kept = f"raw results kept in `{meta['run']}` (+ `.meta.json`)"
    elif "dirty" in git:
        kept = "a tree with uncommitted changes: not kept under `results/runs/`"
    else:
        kept = (
            "the kept copy of its raw results is not named in its meta (a run from before "
            f"bench/record.sh: see `results/runs/*-{git}.jsonl`)"
        )
    return f"- **Run:** commit `{git}`; {kept}"


def chart_lines(bench: str) -> list[str]:
    """The section's chart, drawn by bench/plot.py from the same raw results, and how to read it."""
    if bench in TIME_SERIES:
        return [
            "",
            f"![Chart of this bench/{bench} run: per-second series of each mode](bench/{bench}.svg)",
            "",
            (
                "*How to read the chart:* one point per second of the run (x: seconds since the "
                "first message; the dotted line ends the warm-up); a line per mode, or per mode "
                "and process for RSS and CPU; long runs are averaged down to 300 points (latency: "
                "the largest p99 of the seconds averaged). The chart's header names the commit, "
                "date, raw-results file and load average of the run it was drawn from "
                "(`bench/plot.py`)."
            ),
        ]
    return [
        "",
        f"![Chart of this bench/{bench} run: medians with min–max over reps](bench/{bench}.svg)",
        "",
        (
            "*How to read the chart:* a bar is the median over reps and its whisker the min–max "
            "over reps; a latency row is light up to its highest percentile, solid up to p50, "
            "with a tick at each other percentile; an axis marked *log scale* compares ratios, "
            "not differences. The chart's header names the commit, date, raw-results file and "
            "load average of the run it was drawn from (`bench/plot.py`)."
        ),
    ]


def with_chart(body: str, bench: str) -> str:
    """`body` with the chart's lines after its Raw results bullet (at its end without one)."""
    lines = body.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("- **Raw results:**")), None)
    if at is None:
        return "\n".join(lines + chart_lines(bench))
    return "\n".join(lines[: at + 1] + chart_lines(bench) + lines[at + 1 :])


def phases_lines(meta: dict) -> list[str]:
    """A blank line and the per-phase CPU paragraph, or nothing when the meta has no phases."""
    phases = meta.get("phases", [])
    if not phases:
        return []
    return [
        "",
        "CPU seen on the machine during each phase (the pinned core runs the benchmark; any use of "
        "the other core(s) is other work; steal is time the hypervisor took): "
        + "; ".join(
            f"{p['phase']}: other cores {p['other_pct']} %, steal {p['steal_pct']} %"
            for p in phases
        )
        + ".",
    ]


def target_lines(checks: list[Check]) -> list[str]:
    """The targets as docs bullets."""
    return [f"- {'met' if ok else '**not met**'}: {what}: {detail}." for ok, what, detail in checks]


def check_lines(checks: list[Check]) -> list[str]:
    """The targets as the lines printed after the section."""
    return [f"{'met' if ok else 'NOT MET'}: {what}: {detail}" for ok, what, detail in checks]


def write_docs(path: Path, tag: str, script: str, body: str) -> None:
    """Replace the `tag` section of `path` with `body` (appended, markers and all, if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin = f"<!-- {tag}:begin (generated by {script}; edits inside are overwritten) -->"
    block = f"{begin}\n{body}\n<!-- {tag}:end -->"
    pat = re.compile(
        rf"<!-- {re.escape(tag)}:begin[^\n]*-->.*?<!-- {re.escape(tag)}:end -->", re.DOTALL
    )
    if pat.search(text):
        text = pat.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(tag: str, script: str, summarize: Callable[[Path, dict], tuple[str, list[Check]]]) -> int:
    """Print the section for RESULTS.jsonl (+ --meta) and the targets; --docs: write it there."""
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--meta")
    ap.add_argument("--docs")
    a = ap.parse_args()
    meta = json.loads(Path(a.meta).read_text()) if a.meta else {}
    body, checks = summarize(Path(a.results), meta)
    body = with_chart(body, tag.removeprefix("bench-"))
    print(body)
    print()
    for c in check_lines(checks):
        print(c)
    if a.docs:
        write_docs(Path(a.docs), tag, script, body)
        print(f"wrote the {tag} section of {a.docs}", file=sys.stderr)
    return 0
