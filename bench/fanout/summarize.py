#!/usr/bin/env python3
"""Summarizes bench/fanout results (stdlib only).

Usage: summarize.py RESULTS.jsonl [--meta META.json] [--docs docs/benchmarks.md]

One table per size (subscribers): a column per server, medians with min–max across reps, the
ratios of tether WS to each other server taken rep by rep (median and min–max), both CPUs, and
the issue's targets. With --docs, rewrites only the text between `<!-- bench-fanout:begin` and
`<!-- bench-fanout:end -->` of docs/benchmarks.md. The line format is in README.md.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib

SERVERS = [
    ("baseline", "raw axum broadcast (ceiling)"),
    ("tether-ws", "tether WS `/ws/rooms`"),
    ("tether-tcp", "tether TCP lines"),
    ("centrifugo", "Centrifugo"),
    ("socketio", "Socket.IO"),
]
# A load client at or above this share of its core may be what limits the figure.
CLIENT_BOUND_PCT = 90.0

Num = float | int | None


def med(vals: list[Num]) -> float | None:
    v = [x for x in vals if isinstance(x, (int, float))]
    return statistics.median(v) if v else None


def spread(vals: list[Num], f) -> str:
    """`median (min–max)` with f formatting each, or `median` for one value, `–` for none."""
    v = [x for x in vals if isinstance(x, (int, float))]
    if not v:
        return "–"
    if len(v) == 1:
        return f(v[0])
    return f"{f(statistics.median(v))} ({f(min(v))}–{f(max(v))})"


def rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def num(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def phase(r: dict, name: str) -> dict:
    return next((p for p in r.get("phases") or [] if p.get("phase") == name), {})


def us_per_delivery(p: dict) -> float | None:
    cpu, dps = p.get("server_cpu_pct"), p.get("deliveries_per_s")
    return cpu / 100 / dps * 1e6 if cpu is not None and dps else None


def summarize(path: Path, meta: dict) -> tuple[str, list[benchlib.Check]]:
    rows = list(benchlib.read_jsonl(path))
    params = meta.get("params", {})
    sizes = sorted({r["size"] for r in rows if "size" in r})
    present = [(s, label) for s, label in SERVERS if any(r.get("server") == s for r in rows)]
    paced = sorted(
        {
            p["phase"]
            for r in rows
            for p in r.get("phases") or []
            if p["phase"].startswith("paced-")
        },
        key=lambda n: float(n[6:]),
    )
    checks: list[benchlib.Check] = []
    out = [
        "## Room fan-out: tether vs Centrifugo, Socket.IO and a raw ceiling (`bench/fanout`)",
        "",
        (
            f"1 publisher → N subscribers in one room, {params.get('PAYLOAD', 64)}-byte payloads, N in "
            f"{', '.join(f'{n:,}' for n in sizes)}; every server gets the same messages. "
            "Medians across reps with min–max in parentheses; a ratio is taken rep by rep "
            "(tether WS ÷ the other server in the same rep), then its median and min–max."
        ),
        "",
        *benchlib.meta_lines(
            meta,
            "bench/fanout/run.sh",
            f"Go {params.get('GO_VERSION', '?')}, node {params.get('NODE_VERSION', '?')}, "
            f"Centrifugo {params.get('CENTRIFUGO_VERSION', '?')}, "
            f"Socket.IO {params.get('SIO_VERSION', '?')}",
        ),
    ]
    for n in sizes:
        lines, size_checks = size_section(n, rows, present, paced)
        out += lines
        checks += size_checks
    out += ["", "Targets (issue 14):", "", *benchlib.target_lines(checks)]
    out += ["", *method(params)]
    return "\n".join(out), checks


def size_section(
    n: int, rows: list[dict], present: list[tuple[str, str]], paced: list[str]
) -> tuple[list[str], list[benchlib.Check]]:
    """The table of one size (N subscribers) and the targets it measures."""
    at = [r for r in rows if r.get("size") == n]
    ok = {s: [r for r in at if r.get("server") == s and not r.get("failed")] for s, _ in present}
    by_rep = {s: {r["rep"]: r for r in ok[s]} for s, _ in present}

    def sat(r: dict) -> float | None:
        return phase(r, "saturated").get("deliveries_per_s")

    def ratio_vals(s: str) -> list[float]:
        return [
            sat(by_rep["tether-ws"][k]) / sat(r)
            for k, r in by_rep[s].items()
            if k in by_rep.get("tether-ws", {}) and sat(r) and sat(by_rep["tether-ws"][k])
        ]

    table: list[tuple[str, list[str]]] = []

    def row(label: str, f) -> None:
        table.append((label, [f(s) for s, _ in present]))

    row("runs (ok / all)", lambda s: f"{len(ok[s])} / {sum(r.get('server') == s for r in at)}")
    row(
        "load client",
        lambda s: (
            "node socket.io-client, 3 procs"
            if s == "socketio"
            else "Go loadclient, 1 proc"
            if ok[s]
            else "–"
        ),
    )
    row(
        "saturated messages sent",
        lambda s: spread([phase(r, "saturated").get("msgs") for r in ok[s]], lambda x: f"{x:,.0f}"),
    )
    row(
        "**saturated deliveries/s**",
        lambda s: "**" + spread([sat(r) for r in ok[s]], rate) + "**",
    )
    if "tether-ws" in by_rep:
        row(
            "tether WS ÷ this (saturated, per rep)",
            lambda s: "—" if s == "tether-ws" else spread(ratio_vals(s), lambda x: f"{x:.2f}×"),
        )

    def cpus(s: str) -> str:
        a = med([phase(r, "saturated").get("server_cpu_pct") for r in ok[s]])
        b = med([phase(r, "saturated").get("client_cpu_pct") for r in ok[s]])
        if a is None:
            return "–"
        bound = " **client-bound**" if b is not None and b >= CLIENT_BOUND_PCT else ""
        return f"{a:.0f} % / {'–' if b is None else f'{b:.0f} %'}{bound}"

    row("saturated: server / client CPU (% of a core)", cpus)
    row(
        "saturated: server CPU per delivery (µs)",
        lambda s: spread([us_per_delivery(phase(r, "saturated")) for r in ok[s]], num),
    )
    for name in paced:
        label = f"paced {name[6:]} msgs/s × {n:,}"
        row(
            f"{label}: p50 / p99 (ms)",
            lambda s, name=name: (
                "–"
                if med([phase(r, name).get("p50_ms") for r in ok[s]]) is None
                else f"{num(med([phase(r, name).get('p50_ms') for r in ok[s]]))} / "
                f"{num(med([phase(r, name).get('p99_ms') for r in ok[s]]))}"
            ),
        )
        row(
            f"{label}: server / client CPU (%), server µs per delivery",
            lambda s, name=name: (
                "–"
                if med([phase(r, name).get("server_cpu_pct") for r in ok[s]]) is None
                else f"{med([phase(r, name).get('server_cpu_pct') for r in ok[s]]):.0f} % / "
                f"{med([phase(r, name).get('client_cpu_pct') for r in ok[s]]):.0f} %, "
                + spread([us_per_delivery(phase(r, name)) for r in ok[s]], num)
            ),
        )
    row(
        "lost deliveries (all reps and phases)",
        lambda s: f"{sum(p.get('lost', 0) for r in ok[s] for p in r.get('phases') or []):,}",
    )
    row(
        "disconnects / connect errors",
        lambda s: (
            f"{sum(r.get('disconnects', 0) for r in ok[s])} / "
            f"{sum(r.get('connect_errors', 0) for r in ok[s])}"
        ),
    )
    row(
        "**RSS per idle connection (KiB)**",
        lambda s: "**" + spread([r.get("rss_per_conn_kib") for r in ok[s]], num) + "**",
    )
    row(
        f"join all {n:,} subscribers (s)",
        lambda s: spread([r.get("connect_s") for r in ok[s]], num),
    )
    head = [f"N = {n:,}"] + [label for _, label in present]
    out = [
        "",
        f"### {n:,} subscribers",
        "",
        "| " + " | ".join(head) + " |",
        "|---" + "|---:" * len(present) + "|",
        *("| " + " | ".join([label, *cells]) + " |" for label, cells in table),
    ]
    failed = [r for r in at if r.get("failed") or r.get("first_error")]
    if failed:
        out += ["", "Errors reported by the clients:", ""]
        out += [
            f"- {r['server']} rep {r.get('rep')}: `"
            + str(r.get("error") or r.get("first_error"))[:200].replace("`", "'")
            + "`"
            for r in failed
        ]
    return out, targets(n, ok, by_rep, ratio_vals)


def targets(n: int, ok: dict, by_rep: dict, ratio_vals) -> list[benchlib.Check]:
    """The issue's targets that this size measures (only when both sides ran)."""
    checks: list[benchlib.Check] = []
    ws = ok.get("tether-ws") or []
    if not ws:
        return checks
    lost = sum(p.get("lost", 0) for r in ws for p in r.get("phases") or [])
    if ok.get("baseline"):
        share = [
            phase(by_rep["tether-ws"][k], "saturated")["deliveries_per_s"]
            / phase(r, "saturated")["deliveries_per_s"]
            for k, r in by_rep["baseline"].items()
            if k in by_rep["tether-ws"]
            and phase(r, "saturated").get("deliveries_per_s")
            and phase(by_rep["tether-ws"][k], "saturated").get("deliveries_per_s")
        ]
        m = med(share)
        if m is not None:
            checks.append(
                (
                    m >= 0.6 and lost == 0,
                    f"N={n:,}: tether WS ≥ 60 % of the raw baseline's deliveries/s, 0 lost",
                    f"{100 * m:.0f} % (min {100 * min(share):.0f} %), {lost} lost",
                )
            )
    if ok.get("centrifugo"):
        r = ratio_vals("centrifugo")
        m = med(r)
        if m is not None:
            checks.append(
                (
                    m >= 2 and lost == 0,
                    f"N={n:,}: tether WS ≥ 2× Centrifugo's deliveries/s, 0 lost",
                    f"{m:.2f}× ({min(r):.2f}–{max(r):.2f}×), {lost} lost",
                )
            )
        jw = med([r.get("connect_s") for r in ws])
        jc = med([r.get("connect_s") for r in ok["centrifugo"]])
        if n >= 10000 and jw is not None and jc is not None:
            checks.append(
                (
                    jw < jc,
                    f"N={n:,}: joining takes less than Centrifugo",
                    f"{jw:.2f} s vs {jc:.2f} s",
                )
            )
        p99w = med([phase(r, "paced-50").get("p99_ms") for r in ws])
        p99c = med([phase(r, "paced-50").get("p99_ms") for r in ok["centrifugo"]])
        if n == 1000 and p99w is not None and p99c is not None:
            checks.append(
                (
                    p99w < 3 and p99w < p99c,
                    "N=1,000, paced 50 msgs/s: p99 under 3 ms and below Centrifugo's",
                    f"{p99w:.2f} ms vs {p99c:.2f} ms",
                )
            )
    if n == 1000:
        rss = med([r.get("rss_per_conn_kib") for r in ws])
        if rss is not None:
            checks.append((rss <= 12, "RSS per idle WebSocket ≤ 12 KiB", f"{rss:.1f} KiB"))
    if n >= 10000:
        sat_us = med([us_per_delivery(phase(r, "saturated")) for r in ws])
        pac_us = med([us_per_delivery(phase(r, "paced-20")) for r in ws])
        if sat_us and pac_us:
            checks.append(
                (
                    pac_us <= 2 * sat_us,
                    f"N={n:,}, paced 20 msgs/s: server CPU per delivery within 2× of saturated",
                    f"{pac_us:.2f} µs vs {sat_us:.2f} µs",
                )
            )
        p99 = med([phase(r, "paced-20").get("p99_ms") for r in ws])
        if p99 is not None:
            checks.append((p99 < 10, f"N={n:,}, paced 20 msgs/s: p99 under 10 ms", f"{p99:.2f} ms"))
    return checks


def method(params: dict) -> list[str]:
    w = params.get("WINDOW", "auto")
    window = (
        f"{params.get('WINDOW_DELIVERIES', '?')} ÷ N messages (4..128), the same deliveries in "
        "flight at every size"
        if w == "auto"
        else f"{w} messages"
    )
    if params.get("TETHER_PRESENCE", "events") == "off":
        join_how = (
            "tether's members join quiet (`\"presence\": false` /",
            "  `HELLO … QUIET`: none is sent the others' joins, as Centrifugo sends none without `join_leave`).",
        )
    else:
        join_how = (
            "tether pushes every join to every",
            "  member (the default; `TETHER_PRESENCE=events`).",
        )
    return [
        "Method:",
        "",
        "- **Runs.** Each (size, rep, server) is one client run against a freshly started server; the",
        f"  server order rotates every rep ({params.get('REPS', '?')} reps). Server pinned to one core,",
        "  load client(s) to the other (`taskset`). Loopback only.",
        "- **Servers.** tether: `tether serve --relay off --max-clients 2N+64 --max-connections N+1024",
        "  --max-connections-per-ip N+1024` (release build, defaults otherwise). Raw baseline:",
        "  `fanout-baseline` (`bench/fanout/src/baseline.rs`): axum + tungstenite like tether, one room,",
        "  tether's JSON frames, each message encoded once into one shared `Utf8Bytes` in a bounded",
        "  `tokio::sync::broadcast` log; each writer wakes once per batch, `feed`s and `flush`es once;",
        "  no presence. Centrifugo: `go install ...centrifugo/v6@v6.9.1`, memory engine,",
        "  `bench/fanout/centrifugo/config.json` (anonymous clients may subscribe and publish).",
        "  Socket.IO: `socketio/server.js`, `io.to(room).emit`, WebSocket transport only.",
        "- **Load clients.** `bench/fanout/loadclient` (Go, gobwas/ws, frames parsed in place from a",
        "  64 KiB buffer per connection) drives tether (WS and TCP), the baseline and Centrifugo",
        "  (a client connection publishes; Centrifugo may pack up to 16 messages into one frame,",
        "  tether sends one frame per message). Socket.IO needs its own protocol client:",
        "  `socketio/bench.js` + 2 subscriber processes, all on the client core; its client CPU is in",
        f"  the table, and a client at ≥ {CLIENT_BOUND_PCT:.0f} % of its core is marked client-bound.",
        "- **Phases.** Join: N subscribers connect and join (64 handshakes at a time); the join time is",
        "  from the first connect to the last join reply; " + join_how[0],
        join_how[1],
        f"  Saturated: `SAT_DELIVERIES`/N messages ({params.get('SAT_DELIVERIES', '?')} deliveries), closed",
        f"  loop with a window of {window} (each row's `window` in the raw results);",
        "  deliveries/s = deliveries ÷ (last delivery − first send).",
        f"  Paced: `{params.get('PACED', '?')}` (rate msgs/s : seconds) on an absolute schedule; latency",
        "  from a monotonic stamp in the payload to the read that returned it, p50/p99 over all",
        "  deliveries.",
        "- **CPU.** utime+stime from `/proc/PID/stat` over a phase, in % of one core (client: the",
        "  client's processes). Server CPU per delivery = server CPU time ÷ deliveries.",
        "- **RSS per idle connection.** Server VmRSS after the joins and 1.5 s of quiet, minus VmRSS",
        "  before the first connection, ÷ N.",
    ]


if __name__ == "__main__":
    sys.exit(benchlib.main("bench-fanout", "bench/fanout/run.sh", summarize))
