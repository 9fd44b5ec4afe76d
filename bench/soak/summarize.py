#!/usr/bin/env python3
"""Summarizes bench/soak results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

Prints the markdown section and the targets; with --docs, rewrites only the text between
`<!-- bench-soak:begin` and `<!-- bench-soak:end -->` (appended at the end if missing).

Targets, per mode (one line of RESULTS each):
- every client joined and none was disconnected; lost = 0, no duplicate, none out of order
  (docs/protocol/rooms.md §11: every other member of the room, on every node, in publisher order);
- steady-state delivered/s at least 98 % of what was offered (the server keeps up);
- the RSS bound, per tether node: after the warm-up, RSS grows by at most RSS_GROWTH_PCT % of its
  level at the end of the warm-up (or 8 MiB, if more: allocator noise on a small heap), and never
  exceeds RSS_MAX_MIB at any sample of the run. The level at a point is the median of the 5
  samples from there (the end: the last 5 samples of publishing), so one sample's noise does not
  decide.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

MODES = [("one-node", "one node"), ("three-nodes", "three nodes over Redis")]
GROWTH_FLOOR_MIB = 8.0


def mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:,.1f}"


def num(x: float | None, fmt: str = ",.0f") -> str:
    return "–" if x is None else format(x, fmt)


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}" if x < 10 else f"{x:,.1f}"


def steady(r: dict) -> list[dict]:
    """The samples of the publishing phase after the warm-up."""
    w = r.get("warmup_s", 0)
    return [s for s in r.get("series", []) if s.get("phase") == "publish" and s["t"] >= w]


def level(samples: list[dict], proc: str, at_end: bool = False) -> float | None:
    vals = [s["rss_kib"][proc] for s in samples if proc in (s.get("rss_kib") or {})]
    vals = vals[-5:] if at_end else vals[:5]
    return statistics.median(vals) if vals else None


def mean_cpu(samples: list[dict], proc: str) -> float | None:
    vals = [s["cpu_pct"][proc] for s in samples if proc in (s.get("cpu_pct") or {})]
    return statistics.mean(vals) if vals else None


def rss_check(r: dict, proc: str, max_mib: float, growth_pct: float) -> benchlib.Check | None:
    st = steady(r)
    base, end = level(st, proc), level(st, proc, at_end=True)
    peak = max(
        (s["rss_kib"][proc] for s in r.get("series", []) if proc in (s.get("rss_kib") or {})),
        default=None,
    )
    if base is None or end is None or peak is None:
        return None
    allowed = max(base * growth_pct / 100, GROWTH_FLOOR_MIB * 1024)
    grew = end - base
    ok = grew <= allowed and peak <= max_mib * 1024
    return (
        ok,
        (
            f"{r['mode']} {proc}: RSS after the warm-up grows ≤ {growth_pct:g} % (or "
            f"{GROWTH_FLOOR_MIB:g} MiB) and stays ≤ {max_mib:g} MiB"
        ),
        (
            f"{mib(base)} → {mib(end)} MiB ({grew / 1024:+.1f} MiB, allowed "
            f"{allowed / 1024:+.1f}), peak {mib(peak)} MiB"
        ),
    )


def summarize(path: Path, meta: dict) -> tuple[str, list[benchlib.Check]]:
    rows = list(benchlib.read_jsonl(path))
    runs = {r["mode"]: r for r in rows if r.get("mode")}
    modes = [(m, label) for m, label in MODES if m in runs] + [
        (m, m) for m in sorted(runs) if m not in dict(MODES)
    ]
    params = meta.get("params", {})
    max_mib = float(params.get("RSS_MAX_MIB", 512))
    growth_pct = float(params.get("RSS_GROWTH_PCT", 10))
    any_r = next(iter(runs.values()), {})
    versions = (
        f"{params.get('GO_VERSION', '?')} (load client), redis-server "
        f"{params.get('REDIS_VERSION', '?')}; tether built with the `{params.get('PROFILE', '?')}` "
        "profile"
    )
    out = [
        "## Soak: many WebSocket clients in many rooms, one node and three over Redis (`bench/soak`)",
        "",
    ]
    out.append(
        f"{any_r.get('clients', 0):,} WebSocket clients (`/ws/rooms`) in {any_r.get('rooms', 0)} "
        f"rooms ({any_r.get('clients', 0) // max(1, any_r.get('rooms', 1))} members each), "
        f"{any_r.get('pubs_per_room', '?')} publishers per room sending "
        f"{any_r.get('rate_msgs_per_s', 0):,.0f} msgs/s in all ({any_r.get('payload_bytes', '?')}-"
        f"byte texts) for {any_r.get('duration_s', 0):,.0f} s, first on one tether node, then on "
        "three nodes joined by one `redis-server` (`--bus`), with the clients spread round-robin "
        "over the nodes (every room has members on every node). Every message is expected at "
        "every other member of its room on every node, in its publisher's order "
        "(docs/protocol/rooms.md §11); latency is publish → receipt from a stamp in the text "
        "(one process, one clock). Steady-state figures leave out the first "
        f"{any_r.get('warmup_s', '?')} s (warm-up). Load client: `bench/soak/loadclient` (Go)."
    )
    out.append("")
    out += benchlib.meta_lines(meta, "bench/soak/run.sh", versions)
    out.append(
        "- **Raw results:** `bench/soak/results/latest.jsonl` (one JSON line per mode, with its "
        "per-second series)"
    )
    out.append("")
    head = [label for _, label in modes]
    out.append("| figure | " + " | ".join(head) + " |")
    out.append("|---|" + "---:|" * len(head))

    def row(name: str, f) -> None:
        out.append(f"| {name} | " + " | ".join(f(runs[m]) for m, _ in modes) + " |")

    row("clients joined (connect + join time)", lambda r: f"{r['joined']:,} ({r['connect_s']} s)")
    row(
        "messages sent (msgs/s)",
        lambda r: f"{r['sent']:,} ({r['sent'] / max(r['duration_s'], 1e-9):,.0f})",
    )
    row("deliveries expected / received", lambda r: f"{r['expected']:,} / {r['received']:,}")
    row(
        "**lost** / duplicates / out of order",
        lambda r: f"**{r['lost']:,}** / {r['duplicates']:,} / {r['out_of_order']:,}",
    )
    row("disconnects / send errors", lambda r: f"{r['disconnects']} / {r['send_errors']}")
    row(
        "**delivered/s**, steady (offered)",
        lambda r: f"**{num(r.get('delivered_per_s'))}** ({num(r.get('offered_per_s'))})",
    )
    row(
        "**latency p50 / p99** (ms, steady)",
        lambda r: f"**{ms(r.get('p50_ms'))} / {ms(r.get('p99_ms'))}**",
    )
    row(
        "latency p99.9 / max (ms, steady)",
        lambda r: f"{ms(r.get('p999_ms'))} / {ms(r.get('max_ms'))}",
    )
    row(
        "latency p99 / max (ms, whole run incl. warm-up)",
        lambda r: f"{ms(r.get('all_p99_ms'))} / {ms(r.get('all_max_ms'))}",
    )

    def per_proc(r: dict, f) -> str:
        return "<br>".join(f"{p}: {f(r, p)}" for p in r.get("procs") or [])

    row(
        "RSS after warm-up → end (peak), MiB",
        lambda r: per_proc(
            r,
            lambda r, p: (
                f"{mib(level(steady(r), p))} → {mib(level(steady(r), p, True))} ("
                + mib(max((s["rss_kib"].get(p, 0) for s in r["series"]), default=None))
                + ")"
            ),
        ),
    )
    row(
        "CPU, steady mean (% of a core)",
        lambda r: per_proc(r, lambda r, p: f"{num(mean_cpu(steady(r), p), '.1f')} %"),
    )
    row(
        "whole machine CPU, steady mean (% of a core)",
        lambda r: (
            f"{num(statistics.mean([s['machine_cpu_pct'] for s in steady(r)]) if steady(r) else None, '.0f')} %"
        ),
    )
    out.append("")
    out.append(
        "Latency percentiles come from log-scaled histograms (2.5 % wide buckets); RSS is VmRSS "
        "and CPU utime + stime of each process, from /proc once a second (the chart shows the "
        "series)."
    )
    out.append("")

    checks: list[benchlib.Check] = []
    for m, _ in modes:
        r = runs[m]
        checks.append(
            (
                r["joined"] == r["clients"] and r["disconnects"] == 0,
                f"{m}: every client joined and stayed",
                f"{r['joined']:,}/{r['clients']:,} joined, {r['disconnects']} disconnected",
            )
        )
        checks.append(
            (
                r["lost"] == 0 and r["duplicates"] == 0 and r["out_of_order"] == 0,
                f"{m}: lost = 0 (no duplicate, none out of publisher order)",
                (
                    f"lost {r['lost']:,}, duplicates {r['duplicates']:,}, out of order "
                    f"{r['out_of_order']:,} of {r['expected']:,} expected"
                ),
            )
        )
        d, o = r.get("delivered_per_s"), r.get("offered_per_s")
        if d is not None and o:
            checks.append(
                (
                    d >= 0.98 * o,
                    f"{m}: steady delivered/s ≥ 98 % of offered",
                    f"{d:,.0f}/s of {o:,.0f}/s ({100 * d / o:.1f} %)",
                )
            )
        for p in r.get("procs") or []:
            if p.startswith("node"):
                c = rss_check(r, p, max_mib, growth_pct)
                if c:
                    checks.append(c)
    out.append("Targets (the RSS bound is stated in `bench/soak/README.md`):")
    out.append("")
    out += benchlib.target_lines(checks)
    return "\n".join(out), checks


if __name__ == "__main__":
    sys.exit(benchlib.main("bench-soak", "bench/soak/run.sh", summarize))
