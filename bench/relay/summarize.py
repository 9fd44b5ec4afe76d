#!/usr/bin/env python3
"""Summarizes bench/relay results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section; with --docs, rewrites only the text between
`<!-- bench-relay:begin` and `<!-- bench-relay:end -->` (appended at the end if missing).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

SIDES = [
    ("tether", "tether relay"),
    ("tether-nolog", "tether, log idle (its cost, below)"),
    ("node", "Node relay (`ws`)"),
]


def med(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def span(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{min(vals):,.0f}–{max(vals):,.0f}" if vals else "–"


def mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


def summarize(path: Path, meta: dict) -> tuple[str, list[benchlib.Check]]:
    rows = list(benchlib.read_jsonl(path))
    by = {side: [r for r in rows if r.get("side") == side] for side, _ in SIDES}
    params = meta.get("params", {})
    versions = (
        f"node {os.environ.get('BENCH_NODE', '?')}, ws {os.environ.get('BENCH_WS_VERSION', '?')}"
    )
    out = ["## UI relay: tether vs a Node `ws` relay (`bench/relay`)", ""]
    out.append(
        "One hero → one UI peer in one session, through (a) tether's relay (`tether serve`, "
        "replay log on), (b) `bench/relay/node-relay.mjs`, the same forwarding semantics on npm "
        f"`ws` (routing by role, presence, verbatim frames, no log). The hero sends "
        f"{int(params.get('N', 0)):,} grid `setColor` updates as stock sidekick-py writes them "
        f"(~{med(rows, 'frame_bytes') or 0:.0f} bytes), at most {params.get('WINDOW', '?')} in "
        "flight; the UI counts them."
    )
    out.append("")
    out += benchlib.meta_lines(meta, "bench/relay/run.sh", versions)
    out.append("- **Raw results:** `bench/relay/results/latest.jsonl` (one JSON line per run)")
    out.append("")
    out.append("| figure (median of runs) | " + " | ".join(label for _, label in SIDES) + " |")
    out.append("|---|" + "---:|" * len(SIDES))
    out.append("| runs | " + " | ".join(str(len(by[s])) for s, _ in SIDES) + " |")
    out.append(
        "| **updates/s delivered to the UI** (min–max) | "
        + " | ".join(
            f"**{med(by[s], 'updates_per_s') or 0:,.0f}** ({span(by[s], 'updates_per_s')})"
            for s, _ in SIDES
        )
        + " |"
    )
    t_rate, n_rate = med(by["tether"], "updates_per_s"), med(by["node"], "updates_per_s")
    # Rep i of tether against rep i of node (run.sh interleaves them): the ratio's spread.
    rep_ratio = benchlib.paired_ratio(
        [r.get("updates_per_s") for r in by["tether"]], [r.get("updates_per_s") for r in by["node"]]
    )
    out.append(
        "| ratio to the Node relay (median of the reps' ratios; min–max) | "
        + benchlib.fmt_ratio_span(rep_ratio)
        + " | – | 1× |"
    )

    def cpu_us(rs: list[dict]) -> str:
        vals = [r["server_cpu_s"] / r["n"] * 1e6 for r in rs if r.get("server_cpu_s") is not None]
        if not vals:
            return "–"
        return f"{statistics.median(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"

    def pct(rs: list[dict], key: str) -> str:
        vals = [100 * r[key] / r["secs"] for r in rs if r.get(key) is not None]
        return f"{statistics.median(vals):.0f} %" if vals else "–"

    def cpu_pct(rs: list[dict]) -> str:
        return pct(rs, "server_cpu_s")

    out.append(
        "| relay CPU µs per update (min–max) | "
        + " | ".join(cpu_us(by[s]) for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| relay CPU during the run (% of a core) | "
        + " | ".join(cpu_pct(by[s]) for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| relay runnable but waiting for its core (% of the run) | "
        + " | ".join(pct(by[s], "server_wait_s") for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| load client CPU (% of its core) | "
        + " | ".join(pct(by[s], "client_cpu_s") for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| **relay RSS** idle / two peers connected / peak (MiB) | "
        + " | ".join(
            f"{mib(med(by[s], 'rss_idle_kib'))} / {mib(med(by[s], 'rss_connected_kib'))} / "
            f"**{mib(med(by[s], 'rss_peak_kib'))}**"
            for s, _ in SIDES
        )
        + " |"
    )
    out.append("")

    def cpu_per_update(rs: list[dict]) -> float | None:
        vals = [r["server_cpu_s"] / r["n"] * 1e6 for r in rs if r.get("server_cpu_s") is not None]
        return statistics.median(vals) if vals else None

    with_log, without = cpu_per_update(by["tether"]), cpu_per_update(by["tether-nolog"])
    node_cpu = cpu_per_update(by["node"])
    if with_log and node_cpu:
        # What the throughput ratio comes to once both relays are saturated: on a busy machine
        # the updates/s ratio also measures who got more of the shared core.
        out.append(
            f"Relay CPU per update, Node ÷ tether: {node_cpu / with_log:.2f}× "
            f"({node_cpu:.2f} / {with_log:.2f} µs, medians)."
        )
        out.append("")
    if with_log and without:
        out.append(
            f"Replay log cost: {with_log - without:.2f} µs of relay CPU per update "
            f"({100 * (with_log - without) / with_log:.0f} % of the relay's {with_log:.2f} µs): "
            "tether with the log folding each update into its cell, against the same server and "
            "frames sent to a grid that was never spawned (the log drops those at once)."
        )
        out.append("")
    checks: list[benchlib.Check] = []
    if t_rate and n_rate:
        r = t_rate / n_rate
        checks.append(
            (
                r >= 3,
                "tether ≥ 3× the Node relay's hero → UI updates/s",
                f"{r:.2f}× (ratio of the medians; per rep {benchlib.fmt_ratio_span(rep_ratio)})",
            )
        )
    out.append("Targets (from the issue):")
    out.append("")
    out += benchlib.target_lines(checks)
    out.append("")
    out.append(
        "Saturation: relay CPU plus the time it was runnable but waiting for its core is about "
        "100 % when the relay was the limit; the load client speaks WebSocket framing itself and "
        "should stay well under its own core."
    )
    out.append("")
    out.append(
        "Notes: tether parses every frame (to route and to log it) and keeps the session's replay "
        "log, which folds these updates to one entry per cell; the Node relay parses every frame "
        "with `JSON.parse` and keeps no log. Both forward the received bytes unchanged. The window "
        "keeps both relays' queues small: without it a relay that reads faster than its UI "
        "buffers without bound (Node) or closes the UI as too slow at 16 MiB queued (tether)."
    )
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(benchlib.main("bench-relay", "bench/relay/run.sh", summarize))
