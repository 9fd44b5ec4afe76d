#!/usr/bin/env python3
"""Unit tests of bench/plot.py (stdlib unittest): raw result lines → an SVG that parses as XML,
holds the bars, whiskers and labels the lines call for, and is byte-identical when drawn again.

Run: python3 bench/test_plot.py (scripts/test.sh runs it).
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import plot

SVG = "{http://www.w3.org/2000/svg}"

RELAY_META = {
    "command": "bench/relay/run.sh",
    "date": "2026-12-01T10:00Z",
    "git": "abc1234",
    "run": "bench/relay/results/runs/20261201T100000Z-abc1234.jsonl",
    "nproc": 2,
    "cpu": "Test CPU",
    "pinning": "relay on CPU 0, load client on CPU 1 (taskset)",
    "load_start": "0.10 0.20 0.30",
    "load_end": "0.40 0.50 0.60",
}


def relay_line(side: str, rate: float, cpu_s: float, rss: int) -> dict:
    return {
        "side": side,
        "n": 300000,
        "secs": 300000 / rate,
        "updates_per_s": rate,
        "rss_idle_kib": rss,
        "rss_connected_kib": rss + 100,
        "rss_peak_kib": rss + 1000,
        "server_cpu_s": cpu_s,
    }


RELAY = [
    relay_line("tether", 400000, 0.9, 6000),
    relay_line("node", 100000, 4.0, 56000),
    relay_line("node", 120000, 4.2, 57000),
    relay_line("tether", 500000, 1.0, 6100),
    relay_line("tether", 450000, 0.95, 6200),
]


def fanout_line(server: str, size: int, rep: int, rate: float, p50: float, rss: float) -> dict:
    return {
        "server": server,
        "label": f"rep{rep}",
        "size": size,
        "subs": size,
        "rss_per_conn_kib": rss,
        "phases": [
            {
                "phase": "saturated",
                "deliveries_per_s": rate,
                "server_cpu_pct": 98.0,
                "p50_ms": 80.0,
                "p99_ms": 160.0,
            },
            {
                "phase": "paced-50",
                "deliveries_per_s": 50 * size,
                "server_cpu_pct": 20.0,
                "p50_ms": p50,
                "p99_ms": 2 * p50,
            },
        ],
    }


FANOUT = [
    fanout_line("tether-ws", 1000, 1, 2.9e6, 1.8, 15.8),
    fanout_line("centrifugo", 1000, 1, 1.85e6, 2.2, 72.4),
    fanout_line("axum-raw", 1000, 1, 7.5e6, 1.0, 9.0),
    fanout_line("tether-ws", 1000, 2, 3.0e6, 1.9, 15.7),
    fanout_line("centrifugo", 1000, 2, 1.80e6, 2.3, 72.0),
    fanout_line("axum-raw", 1000, 2, 7.9e6, 1.1, 9.1),
    fanout_line("tether-ws", 10000, 1, 2.3e6, 17.0, 17.2),
    fanout_line("centrifugo", 10000, 1, 0.57e6, 40.0, 72.1),
    {"server": "socketio", "label": "rep1", "failed": True},
]
FANOUT_META = {
    "BENCH_COMMAND": "bench/fanout/run.sh",
    "BENCH_DATE": "2026-12-02T11:00Z",
    "BENCH_GIT": "def5678",
    "BENCH_LOAD": "1/5/15-min load average 1.29 1.56 1.83 at start, 2.16 1.80 1.87 at end; 233 s",
    "BENCH_CPU": "Test CPU",
    "BENCH_NPROC": "2",
}


def soak_line(mode: str, procs: list[str], seconds: int, spike_at: int | None = None) -> dict:
    """A bench/soak run: 3 s of joins, then `seconds` of publishing; node RSS grows 1 MiB/s."""
    series = []
    for t in range(-3, seconds):
        publishing = t >= 0
        series.append(
            {
                "t": t + 0.5,
                "phase": "publish" if publishing else "join",
                "delivered": 49500 if publishing else 0,
                "p50_ms": 2.0 if publishing else None,
                "p99_ms": (400.0 if t == spike_at else 9.0) if publishing else None,
                "rss_kib": {p: (120000 if p == "redis" else 100000 + 1024 * t) for p in procs},
                "cpu_pct": {p: 30.0 for p in procs},
                "machine_cpu_pct": 90.0,
            }
        )
    return {
        "mode": mode,
        "nodes": len([p for p in procs if p.startswith("node")]),
        "procs": procs,
        "clients": 5000,
        "rooms": 50,
        "warmup_s": 60,
        "series": series,
    }


SOAK = [
    soak_line("three-nodes", ["node1", "node2", "node3", "redis"], 20),
    soak_line("one-node", ["node1"], 20),
]
SOAK_META = dict(RELAY_META, command="bench/soak/run.sh", run="bench/soak/results/runs/x.jsonl")


class PlotTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def draw(self, bench: str, lines: list[dict], meta: dict, name: str = "chart") -> bytes:
        """Writes the fixture as results/latest.jsonl + meta, runs plot.main, returns the SVG."""
        results = self.dir / bench / "results"
        results.mkdir(parents=True, exist_ok=True)
        (results / "latest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (results / "latest.meta.json").write_text(json.dumps(meta))
        out = self.dir / f"{name}.svg"
        self.assertEqual(plot.main([str(results / "latest.jsonl"), "--out", str(out)]), 0)
        return out.read_bytes()

    def parse(self, svg: bytes) -> ET.Element:
        root = ET.fromstring(svg)
        self.assertEqual(root.tag, SVG + "svg")
        return root

    def texts(self, root: ET.Element) -> list[str]:
        return [t.text or "" for t in root.iter(SVG + "text")]

    def bars(self, root: ET.Element, cls: str = "bar") -> list[ET.Element]:
        return [r for r in root.iter(SVG + "rect") if r.get("class") == cls]

    def test_relay_bars_whiskers_labels(self) -> None:
        svg = self.draw("relay", RELAY, RELAY_META)
        root = self.parse(svg)
        texts = self.texts(root)
        # The header names the bench, the commit, the date, the kept raw results and the load.
        self.assertEqual(root.find(SVG + "title").text, plot.BENCHES["relay"][0])
        self.assertIn(
            "commit abc1234 · run 2026-12-01T10:00Z · raw results "
            "bench/relay/results/runs/20261201T100000Z-abc1234.jsonl",
            texts,
        )
        self.assertTrue(
            any("load average 0.10 0.20 0.30 at start, 0.40 0.50 0.60" in t for t in texts)
        )
        for want in (
            "tether relay",
            "Node relay (ws)",
            "updates per second (higher is better)",
            "µs of relay CPU per update (lower is better)",
            "MiB (lower is better)",
        ):
            self.assertIn(want, texts)
        # updates/s, CPU per update: one bar per side; RSS: idle, connected, peak per side.
        bars = self.bars(root)
        self.assertEqual(len(bars), 2 + 2 + 6)
        # Every row has several reps that differ, so every bar has a whisker.
        whiskers = [p for p in root.iter(SVG + "path") if p.get("class") == "whisker"]
        self.assertEqual(len(whiskers), 10)
        # Linear scale from 0: bar lengths are in the ratio of the medians (450 k vs 110 k).
        tether, node = (float(b.get("width")) for b in bars[:2])
        self.assertAlmostEqual(tether / node, 450000 / 110000, delta=0.05)
        self.assertIn("450 k updates/s (400–500 k)", texts)
        self.assertIn("110 k updates/s (100–120 k)", texts)

    def test_same_input_same_bytes(self) -> None:
        a = self.draw("relay", RELAY, RELAY_META, "a")
        b = self.draw("relay", RELAY, RELAY_META, "b")
        self.assertEqual(a, b)
        # fan-out runs rotate their order each rep: the chart must not depend on it.
        c = self.draw("fanout", FANOUT, FANOUT_META, "c")
        shuffled = FANOUT[:]
        random.Random(7).shuffle(shuffled)
        self.assertNotEqual(shuffled, FANOUT)
        d = self.draw("fanout", shuffled, FANOUT_META, "d")
        self.assertEqual(c, d)

    def test_fanout_any_servers_and_sizes(self) -> None:
        root = self.parse(self.draw("fanout", FANOUT, FANOUT_META))
        texts = self.texts(root)
        self.assertTrue(any(t.startswith("commit def5678 · run 2026-12-02T11:00Z") for t in texts))
        self.assertTrue(
            any("load average 1.29 1.56 1.83 at start, 2.16 1.80 1.87 at end" in t for t in texts)
        )
        for want in (
            "1,000 subscribers",
            "10,000 subscribers",
            "tether WS /ws/rooms",
            "Centrifugo",
            "axum-raw",
            "1,000 subscribers · paced 50 msgs/s",
            "10,000 subscribers · paced 50 msgs/s",
        ):
            self.assertIn(want, texts)
        # The failed Socket.IO run has no numbers: Socket.IO appears nowhere.
        self.assertNotIn("Socket.IO", texts)
        # Saturated, CPU per delivery, RSS: 3 servers at 1,000 + 2 at 10,000, one bar each;
        # latency: one p50 bar per server and size.
        self.assertEqual(len(self.bars(root)), 4 * 5)
        self.assertEqual(len(self.bars(root, "bar pct")), 5)
        # Known peers in their fixed order, unknown ones after them.
        labels = [t for t in texts if t in ("tether WS /ws/rooms", "Centrifugo", "axum-raw")]
        self.assertEqual(labels[:3], ["tether WS /ws/rooms", "Centrifugo", "axum-raw"])
        self.assertIn("p50 1.85 · p99 3.70 ms (1.80–1.90 ms)", texts)

    def test_fanout_today_without_size_field(self) -> None:
        old = [{k: v for k, v in x.items() if k != "size"} for x in FANOUT if not x.get("failed")]
        texts = self.texts(self.parse(self.draw("fanout", old, {})))
        self.assertIn("10,000 subscribers", texts)
        self.assertTrue(any(t.startswith("commit not recorded · run not recorded") for t in texts))

    def test_committed_results_plot(self) -> None:
        """Every bench's committed raw results draw (the formats the charts in the docs use)."""
        found = sorted(HERE.glob("*/results/latest.jsonl"))
        self.assertTrue(found)
        for results in found:
            with self.subTest(bench=results.parent.parent.name):
                meta = json.loads(results.with_name("latest.meta.json").read_text())
                svg = plot.chart(results, meta, results.parent.parent.name)
                root = self.parse(svg.encode())
                self.assertTrue(self.bars(root) or self.lines(root))

    def lines(self, root: ET.Element) -> list[ET.Element]:
        return [p for p in root.iter(SVG + "polyline") if p.get("class") == "line"]

    def test_soak_time_series(self) -> None:
        svg = self.draw("soak", SOAK, SOAK_META)
        root = self.parse(svg)
        texts = self.texts(root)
        self.assertEqual(root.find(SVG + "title").text, plot.BENCHES["soak"][0])
        for want in (
            "Deliveries per second",
            "Latency, publish → receipt, per second",
            "Server RSS",
            "Server CPU",
            "one-node (5,000 clients)",
            "three-nodes p99",
            "three-nodes p50",
            "three-nodes redis",
            "seconds since the first message",
        ):
            self.assertIn(want, texts)
        # deliveries: a line per mode; latency: p99 and p50 per mode; RSS and CPU: a line per
        # process of each mode (1 + 4).
        lines = self.lines(root)
        self.assertEqual(len(lines), 2 + 4 + 5 + 5)
        self.assertEqual(len([x for x in lines if x.get("stroke-dasharray")]), 2)
        # one point per second, joins included (23 samples), and one-node first whatever the order
        self.assertEqual(len(lines[0].get("points").split()), 23)
        legend = [t for t in texts if t.endswith("(5,000 clients)")]
        self.assertEqual(legend, ["one-node (5,000 clients)", "three-nodes (5,000 clients)"])
        # RSS grows 1 MiB a second: the node's line rises left to right (SVG y falls).
        rss = lines[6]
        ys = [float(pt.split(",")[1]) for pt in rss.get("points").split()]
        self.assertLess(ys[-1], ys[0])
        # the warm-up mark is outside this 20 s run: not drawn
        self.assertFalse([x for x in root.iter(SVG + "line") if x.get("class") == "mark"])
        # same input (in any order) → same bytes
        self.assertEqual(svg, self.draw("soak", list(reversed(SOAK)), SOAK_META, "again"))

    def test_soak_long_run_is_thinned_keeping_peaks(self) -> None:
        long = [soak_line("one-node", ["node1"], 900, spike_at=700)]
        root = self.parse(self.draw("soak", long, SOAK_META))
        lines = self.lines(root)
        self.assertTrue(all(len(x.get("points").split()) <= plot.MAX_POINTS for x in lines))
        marks = [x for x in root.iter(SVG + "line") if x.get("class") == "mark"]
        self.assertEqual(len(marks), 4)  # the end of the warm-up (60 s), in every panel
        # the one 400 ms second survives in the p99 line: its top is far above its other points
        p99 = [float(pt.split(",")[1]) for pt in lines[1].get("points").split()]
        self.assertLess(min(p99), sorted(p99)[len(p99) // 2] - 50)

    def test_numbers(self) -> None:
        self.assertEqual(plot.fmt_si(874847.0), "875 k")
        self.assertEqual(plot.fmt_si(2065063.0), "2.07 M")
        self.assertEqual(plot.fmt_time(40.35e-9), "40.4 ns")
        self.assertEqual(plot.fmt_time(1e-7), "100 ns")
        self.assertEqual(plot.fmt_tick(2.5e6, ""), "2.5 M")
        self.assertEqual(plot.fmt_tick(0.0, "s"), "0")
        self.assertEqual(plot.same_unit(["1.6 ms", "2.4 ms"], "–"), "1.6–2.4 ms")
        self.assertEqual(plot.same_unit(["828 k", "1.08 M"], "–"), "828 k–1.08 M")


if __name__ == "__main__":
    unittest.main()
