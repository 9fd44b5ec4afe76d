#!/usr/bin/env python3
"""Summarizes bench/exec results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section; with --docs, rewrites only the text between
`<!-- bench-exec:begin` and `<!-- bench-exec:end -->` (appended at the end if missing).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

SIDES = [("tether", "tether exec"), ("websocketd", "websocketd")]


def med(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def span(rows: list[dict], key: str, fmt: str) -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{min(vals):{fmt}}–{max(vals):{fmt}}" if vals else "–"


def ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def closes(rows: list[dict]) -> str:
    total: dict[str, int] = {}
    for r in rows:
        for code, n in r.get("closes", {}).items():
            total[code] = total.get(code, 0) + n
    return ", ".join(f"{code} ×{n}" for code, n in sorted(total.items())) or "–"


def summarize(path: Path, meta: dict) -> tuple[str, list[benchlib.Check]]:
    rows = list(benchlib.read_jsonl(path))
    lat = {
        s: [r for r in rows if r.get("side") == s and r.get("phase") == "latency"] for s, _ in SIDES
    }
    thr = {
        s: [r for r in rows if r.get("side") == s and r.get("phase") == "throughput"]
        for s, _ in SIDES
    }
    params = meta.get("params", {})
    versions = f"websocketd {os.environ.get('BENCH_WEBSOCKETD_VERSION', '?')} (Debian)"
    n_lines = int(params.get("LINES", 0) or 0)
    out = ["## Process over WebSocket: tether exec vs websocketd (`bench/exec`)", ""]
    out.append(
        "The same commands behind (a) tether's `/ws/exec/<name>` (`tether serve --config` with "
        "two `[[exec]]` entries, release build) and (b) websocketd (one instance per command). "
        f"**Latency:** {params.get('LAT_N', '?')} connections to each server to `echo hello`, one "
        "after another and alternating between the two servers (both up, so load from elsewhere "
        "weighs on both alike), "
        "timed from the start of the TCP connect to the first output line (tether gets its "
        "request frame right after the handshake; websocketd has no request frame and starts the "
        f"process on connect). **Throughput:** one connection to `seq {n_lines}`, from connect to "
        "the end of the stream, every line counted. Client: `exec-client` (Rust, blocking, "
        "one thread, its own WebSocket frame parser: a few ns per frame, so that it is not the "
        "limit; its CPU is shown beside the server's). Both children get the same environment: websocketd runs with "
        "`--passenv=PATH,HOME,LANG`, the variables tether passes on by default (with `LANG` set, "
        "`echo` reads the locale files at start)."
    )
    out.append("")
    out += benchlib.meta_lines(meta, "bench/exec/run.sh", versions)
    out.append(
        "- **Raw results:** `bench/exec/results/latest.jsonl` (one JSON line per measurement)"
    )
    out.append("")
    out.append("| figure (median of runs) | " + " | ".join(label for _, label in SIDES) + " |")
    out.append("|---|" + "---:|" * len(SIDES))
    out.append("| runs | " + " | ".join(f"{len(lat[s])} + {len(thr[s])}" for s, _ in SIDES) + " |")
    out.append(
        "| **connect → first line p50** (ms; min–max of runs) | "
        + " | ".join(
            f"**{ms(med(lat[s], 'first_line_p50_ms'))}** ({span(lat[s], 'first_line_p50_ms', '.2f')})"
            for s, _ in SIDES
        )
        + " |"
    )
    for key, what in (("first_line_p50_ms", "p50"), ("first_line_p99_ms", "p99")):
        out.append(
            f"| websocketd's first line {what} ÷ tether's (median of the reps' ratios; min–max) | "
            + benchlib.fmt_ratio_span(
                benchlib.paired_ratio(
                    [r.get(key) for r in lat["websocketd"]], [r.get(key) for r in lat["tether"]]
                )
            )
            + " | 1× |"
        )
    out.append(
        "| connect → first line p10 / fastest (ms) | "
        + " | ".join(
            f"{ms(med(lat[s], 'first_line_p10_ms'))} / {ms(med(lat[s], 'first_line_min_ms'))}"
            for s, _ in SIDES
        )
        + " |"
    )
    out.append(
        "| connect → first line p99 (ms) | "
        + " | ".join(ms(med(lat[s], "first_line_p99_ms")) for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| of which the WebSocket handshake, p50 (ms) | "
        + " | ".join(ms(med(lat[s], "handshake_p50_ms")) for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| connect → close p50 (ms) | "
        + " | ".join(ms(med(lat[s], "to_close_p50_ms")) for s, _ in SIDES)
        + " |"
    )

    def per_conn(rs: list[dict]) -> str:
        vals = [r["server_cpu_s"] / r["n"] * 1e3 for r in rs if r.get("server_cpu_s") is not None]
        return f"{statistics.median(vals):.2f}" if vals else "–"

    out.append(
        "| server CPU per connection (ms, the process's own excluded) | "
        + " | ".join(per_conn(lat[s]) for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| close codes seen (latency runs) | " + " | ".join(closes(lat[s]) for s, _ in SIDES) + " |"
    )
    out.append(
        f"| **lines/s** (`seq {n_lines}`; min–max) | "
        + " | ".join(
            f"**{med(thr[s], 'lines_per_s') or 0:,.0f}** ({span(thr[s], 'lines_per_s', ',.0f')})"
            for s, _ in SIDES
        )
        + " |"
    )
    t_rate, w_rate = med(thr["tether"], "lines_per_s"), med(thr["websocketd"], "lines_per_s")
    # Rep i of one side against rep i of the other (run.sh interleaves them): the ratios' spread.
    lines_ratio = benchlib.paired_ratio(
        [r.get("lines_per_s") for r in thr["tether"]],
        [r.get("lines_per_s") for r in thr["websocketd"]],
    )
    out.append(
        "| lines/s ratio to websocketd (median of the reps' ratios; min–max) | "
        + benchlib.fmt_ratio_span(lines_ratio)
        + " | 1× |"
    )
    out.append(
        "| lines per frame | "
        + " | ".join(
            "–"
            if med(thr[s], "lines_per_frame") is None
            else f"{med(thr[s], 'lines_per_frame'):.1f}"
            for s, _ in SIDES
        )
        + " |"
    )

    def cpu(rs: list[dict], key: str) -> str:
        vals = [r[key] / r["secs"] * 100 for r in rs if r.get(key) is not None and r.get("secs")]
        return f"{statistics.median(vals):.0f} %" if vals else "–"

    out.append(
        "| server CPU during the throughput run (% of a core) | "
        + " | ".join(cpu(thr[s], "server_cpu_s") for s, _ in SIDES)
        + " |"
    )
    out.append(
        "| client CPU during the throughput run (% of a core) | "
        + " | ".join(cpu(thr[s], "client_cpu_s") for s, _ in SIDES)
        + " |"
    )
    out.append("")
    checks: list[benchlib.Check] = []
    # Target (issue 14): websocketd's first-line time ≥ 1.25× tether's at p50 and at p99, per rep.
    for key, what in (("first_line_p50_ms", "p50"), ("first_line_p99_ms", "p99")):
        span_ = benchlib.paired_ratio(
            [r.get(key) for r in lat["websocketd"]], [r.get(key) for r in lat["tether"]]
        )
        t_v, w_v = med(lat["tether"], key), med(lat["websocketd"], key)
        if span_ and t_v and w_v:
            checks.append(
                (
                    span_[0] >= 1.25,
                    f"connect → first line {what} ≥ 1.25× faster than websocketd's",
                    (
                        f"{t_v:.2f} ms vs {w_v:.2f} ms; websocketd ÷ tether "
                        f"{benchlib.fmt_ratio_span(span_)} over the reps"
                    ),
                )
            )
    if t_rate and w_rate:
        r = t_rate / w_rate
        checks.append(
            (
                r >= 2,
                "tether ≥ 2× websocketd's lines/s",
                f"{r:.2f}× (ratio of the medians; per rep {benchlib.fmt_ratio_span(lines_ratio)})",
            )
        )

    def busy(rs: list[dict], key: str) -> float | None:
        vals = [r[key] / r["secs"] * 100 for r in rs if r.get(key) is not None and r.get("secs")]
        return statistics.median(vals) if vals else None

    c_busy, s_busy = busy(thr["tether"], "client_cpu_s"), busy(thr["tether"], "server_cpu_s")
    if c_busy is not None and s_busy is not None:
        checks.append(
            (
                c_busy < 80 and c_busy < s_busy,
                "the lines/s client is not the limit (below 80 % of its core and below the server)",
                f"client {c_busy:.0f} %, tether {s_busy:.0f} % of a core",
            )
        )
    out.append("Targets (from the issue):")
    out.append("")
    out += benchlib.target_lines(checks)
    out += benchlib.phases_lines(meta)
    out.append("")
    out.append(
        "Notes: websocketd writes each line as its own frame and ends every connection without a "
        "close frame (1006 above); tether sends each line as one frame (`line\\n`) and closes with "
        "1000 / 1011 `exit N`. The command runs on the server's core, so its own CPU competes with "
        "the server's; the client's CPU row shows it is not the limit. The p99 figures come "
        "from a shared 2-core machine (see the load and phase lines) and mostly measure "
        "scheduling noise; the medians of the per-run p50s are the comparison. Most of the "
        "first-line time is `echo` itself (exec, dynamic loading, locale files), the same on "
        "both sides; where the rest goes is in bench/exec/README.md."
    )
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(benchlib.main("bench-exec", "bench/exec/run.sh", summarize))
