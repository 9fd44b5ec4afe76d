#!/usr/bin/env python3
"""bench/plot.py: an SVG chart of one bench run, drawn from its raw results (stdlib only).

Usage: plot.py RESULTS.jsonl [--meta META.json] [--bench NAME] --out CHART.svg

RESULTS.jsonl is a bench's raw results (`bench/<name>/results/latest.jsonl` or a kept run under
`results/runs/`); META defaults to the file beside it (`latest.meta.json`); NAME (sync, py-sync,
exec, relay, js, fanout, soak) defaults to the directory above `results/`. Each bench gets the panels
its results hold: throughput per peer (bar = median over reps, whisker = min–max over reps),
latency percentiles per peer, time per operation, RSS per connection; bench/soak gets
time-series panels instead (a line per mode or process over the run's seconds). The header names the
bench, the commit, the date, the raw-results file and the load average, so a chart cut out of
the docs still says which run it shows.

The SVG is plain (rects, lines, text; no script, no external font or style sheet), so GitHub and
any Markdown viewer render it through `![...](...)`, and deterministic: the same input gives the
same bytes (no clock, no randomness, fixed number formats, a fixed order of peers), so a diff of
a chart is a diff of the results. bench/lib.sh (`summarize`) and bench/fanout/run.sh call it
after every run; bench/test_plot.py tests it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# The chart model: a figure is a stack of panels; a panel has one value axis and groups of rows.


@dataclass
class Row:
    """One horizontal bar: `value` (the median), optional whisker `lo`–`hi` (min–max over reps),
    or, for a latency row, `pcts` [(name, value)] drawn as one bar to the highest percentile with
    the p50 part solid and a tick at each other percentile."""

    label: str
    key: str  # the peer: rows of the same key share a colour across the figure
    value: float | None = None
    lo: float | None = None
    hi: float | None = None
    pcts: list[tuple[str, float]] = field(default_factory=list)
    note: str = ""  # printed instead of a value when there is none


@dataclass
class Group:
    label: str  # "" for a panel with one unnamed group
    rows: list[Row]


@dataclass
class Panel:
    title: str
    axis: str  # the value axis's label, with its unit
    groups: list[Group]
    unit: str = ""  # "s" formats values as times (ns … s); anything else is appended
    log: bool | None = None  # None: log scale when the values span more than 30×
    note: str = ""  # one grey line under the title: what a bar and a whisker are


@dataclass
class Series:
    """One line of a time-series panel: (x, y) points in x order; `dash` draws it dashed."""

    label: str
    key: str  # rows and lines of the same key share a colour across the figure
    points: list[tuple[float, float]]
    dash: bool = False


@dataclass
class LinePanel:
    """A time-series panel: lines over a shared x axis (seconds), a linear y axis from 0, a
    legend on the right, optional vertical `marks` [(x, label)] (e.g. the end of a warm-up)."""

    title: str
    axis: str  # the y axis's label, with its unit
    series: list[Series]
    unit: str = ""  # as Panel.unit
    xaxis: str = "seconds since the first message"
    note: str = ""
    marks: list[tuple[float, str]] = field(default_factory=list)
    xlim: tuple[float, float] | None = None  # None: the points' own range

    @property
    def groups(self) -> list[Series]:
        """What is drawn (the figure skips a panel without any)."""
        return [s for s in self.series if s.points]


# Okabe-Ito: tells peers apart for colour-blind readers too (yellow last: weak on white).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442"]

W = 920
LEFT = 16
LABEL_W = 236
X0 = LEFT + LABEL_W + 6
X1 = X0 + 340
VAL_X = X1 + 10
ROW_H = 16
BAR_H = 10
CHAR_W = 6.1  # average advance of an 11 px sans-serif glyph, for fitting labels


# ---------------------------------------------------------------------------------------------
# Numbers


def sig(x: float) -> str:
    """Three significant digits at most, no exponent: 874.8 → `875`, 2.065 → `2.07`."""
    if x == 0:
        return "0"
    x = float(f"{x:.3g}")  # round first: 99.9999 must print as 100, not 100.0
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    digits = min(6, 2 - math.floor(math.log10(a)))
    return f"{x:.{digits}f}"


def fmt_si(x: float) -> str:
    """A count or rate: `875 k`, `2.07 M`, `14.3`."""
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return sig(x / div) + suffix
    return sig(x)


def fmt_time(s: float) -> str:
    """A duration in seconds as `40.4 ns`, `1.14 ms`, `4.03 s`."""
    a = abs(s)
    for div, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if a >= div:
            return f"{sig(s / div)} {unit}"
    return f"{sig(s / 1e-9)} ns"


def fmt_value(x: float, unit: str) -> str:
    """A value with its unit: `1.14 ms`, `875 k/s`, `1.66 M lines/s`, `14.3 KiB`, `50%`."""
    if unit == "s":
        return fmt_time(x)
    if unit.startswith("/") or unit == "%":
        return fmt_si(x) + unit
    return fmt_si(x) + (f" {unit}" if unit else "")


def fmt_bare(x: float, unit: str) -> str:
    """A value in a range or list, where the unit is said once: times keep theirs."""
    return fmt_time(x) if unit == "s" else fmt_si(x)


def same_unit(parts: list[str], sep: str) -> str:
    """`1.6 ms`, `2.4 ms` → `1.6–2.4 ms` (sep `–`): a unit shared by all is said once, at the end."""
    tails = {p.rsplit(" ", 1)[1] if " " in p else "" for p in parts}
    if len(tails) == 1 and "" not in tails and len(parts) > 1:
        parts = [p.rsplit(" ", 1)[0] for p in parts[:-1]] + [parts[-1]]
    return sep.join(parts)


def fmt_tick(x: float, unit: str) -> str:
    """An axis label: like a value, without trailing zeros (`1 ms`, `2.5 M`)."""
    if x == 0:
        return "0"
    s = fmt_time(x) if unit == "s" else fmt_si(x)
    head, _, tail = s.partition(" ")
    if "." in head:
        head = head.rstrip("0").rstrip(".")
    return f"{head} {tail}" if tail else head


def num(x: float) -> str:
    """An SVG coordinate: one decimal, no `-0.0`, no trailing `.0`."""
    s = f"{x:.1f}"
    if s == "-0.0":
        s = "0.0"
    return s.removesuffix(".0")


# ---------------------------------------------------------------------------------------------
# Scales


class Scale:
    """Maps a value to an x coordinate between X0 and X1 (linear from 0, or log10)."""

    def __init__(self, values: list[float], log: bool | None):
        pos = [v for v in values if v is not None and v > 0]
        vmax = max(pos) if pos else 1.0
        vmin = min(pos) if pos else 1.0
        self.log = (vmax / vmin > 30) if log is None else log
        if self.log:
            self.lo = 10 ** math.floor(math.log10(vmin))
            self.hi = 10 ** math.ceil(math.log10(vmax))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
        else:
            self.lo = 0.0
            step = nice_step(vmax / 5)
            self.hi = step * math.ceil(vmax / step) if vmax > 0 else 1.0
            if self.hi <= 0:
                self.hi = 1.0

    def x(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = v / self.hi
        return X0 + max(0.0, min(1.0, f)) * (X1 - X0)

    def ticks(self) -> list[tuple[float, bool]]:
        """Grid values, each with whether it gets a label (labels stay >= 55 px apart)."""
        if self.log:
            decades = round(math.log10(self.hi / self.lo))
            mult = (1, 2, 5) if decades <= 2 else (1,)
            every = max(1, math.ceil(55 / ((X1 - X0) / decades)))
            out = []
            for i in range(decades + 1):
                d = self.lo * 10**i
                out += [(d * m, (decades - i) % every == 0) for m in mult if m == 1 or i < decades]
            return out
        step = nice_step(self.hi / 5)
        n = round(self.hi / step)
        return [(i * step, True) for i in range(n + 1)]


def nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    p = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * p:
            return m * p
    return 10 * p


# ---------------------------------------------------------------------------------------------
# SVG


def text(x: float, y: float, s: str, **attrs: str) -> str:
    a = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
    return f'<text x="{num(x)}" y="{num(y)}"{a}>{escape(s)}</text>'


def fit(s: str, width: float) -> str:
    """`s`, cut with `…` to about `width` px."""
    n = int(width / CHAR_W)
    return s if len(s) <= n else s[: max(1, n - 1)] + "…"


def row_values(r: Row) -> list[float]:
    vals = [r.value, r.lo, r.hi] + [v for _, v in r.pcts]
    return [v for v in vals if v is not None]


def render(title: str, header: list[str], panels: list[Panel | LinePanel]) -> str:
    colours: dict[str, str] = {}
    for p in panels:
        keys = (
            [x.key for x in p.series]
            if isinstance(p, LinePanel)
            else [r.key for g in p.groups for r in g.rows]
        )
        for k in keys:
            if k not in colours:
                colours[k] = PALETTE[len(colours) % len(PALETTE)]
    body: list[str] = []
    y = 28.0
    body.append(text(LEFT, y, title, font_size="15", font_weight="bold"))
    for line in header:
        y += 16
        body.append(text(LEFT, y, fit(line, W - 2 * LEFT), fill="#444"))
    y += 12
    for p in panels:
        if isinstance(p, LinePanel):
            y = render_lines(p, y + 18, colours, body)
        else:
            y = render_panel(p, y + 18, colours, body)
    height = math.ceil(y + 14)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">'
    )
    return "\n".join(
        [
            head,
            f"<title>{escape(title)}</title>",
            f'<rect width="{W}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
            "",
        ]
    )


def render_panel(p: Panel, y: float, colours: dict[str, str], out: list[str]) -> float:
    rows = [r for g in p.groups for r in g.rows]
    scale = Scale([v for r in rows for v in row_values(r)], p.log)
    out.append(text(LEFT, y, p.title, font_size="13", font_weight="bold"))
    if p.note:
        y += 15
        out.append(text(LEFT, y, fit(p.note, W - 2 * LEFT), fill="#666"))
    y += 10
    top = y
    # Rows first (their height fixes the grid's), then the grid under them.
    drawn: list[str] = []
    for g in p.groups:
        if g.label:
            y += ROW_H
            drawn.append(text(LEFT, y - 4, fit(g.label, LABEL_W + 4), font_weight="bold"))
        for r in g.rows:
            y += ROW_H
            drawn += render_row(r, y, scale, p.unit, colours[r.key], indent=bool(g.label))
    bottom = y + 6
    out.append('<g class="grid" stroke="#e3e3e3">')
    for t, _ in scale.ticks():
        x = num(scale.x(t))
        out.append(f'<line x1="{x}" y1="{num(top)}" x2="{x}" y2="{num(bottom)}"/>')
    out.append("</g>")
    out += drawn
    out.append(f'<line x1="{X0}" y1="{num(bottom)}" x2="{X1}" y2="{num(bottom)}" stroke="#333"/>')
    for t, labelled in scale.ticks():
        x = scale.x(t)
        out.append(
            f'<line x1="{num(x)}" y1="{num(bottom)}" x2="{num(x)}" y2="{num(bottom + 4)}" '
            'stroke="#333"/>'
        )
        if labelled:
            out.append(text(x, bottom + 15, fmt_tick(t, p.unit), text_anchor="middle", fill="#333"))
    axis = p.axis + (" (log scale)" if scale.log else "")
    out.append(text((X0 + X1) / 2, bottom + 30, axis, text_anchor="middle"))
    return bottom + 34


def render_row(r: Row, y: float, scale: Scale, unit: str, colour: str, indent: bool) -> list[str]:
    out = []
    lx = LEFT + (12 if indent else 0)
    out.append(text(lx, y - 4, fit(r.label, LABEL_W - (lx - LEFT))))
    by = y - 4 - BAR_H + 2
    if r.pcts:
        main = dict(r.pcts).get("p50", r.pcts[0][1])
        top = max(v for _, v in r.pcts)
        out.append(bar(scale, top, by, colour, 'class="bar pct" fill-opacity="0.35"'))
        out.append(bar(scale, main, by, colour, 'class="bar"'))
        for n, v in r.pcts:
            if v not in (main, top):
                x = num(scale.x(v))
                out.append(
                    f'<line class="tick" x1="{x}" y1="{num(by)}" x2="{x}" y2="{num(by + BAR_H)}" '
                    'stroke="#222"/>'
                )
        label = same_unit([f"{n} {fmt_bare(v, unit)}" for n, v in r.pcts], " · ")
        if unit != "s" and unit:
            label += f" {unit}"
    elif r.value is not None:
        out.append(bar(scale, r.value, by, colour, 'class="bar"'))
        label = fmt_value(r.value, unit)
    else:
        return out + [text(VAL_X, y - 4, fit(r.note or "n/a", W - VAL_X - LEFT), fill="#666")]
    if r.lo is not None and r.hi is not None and r.hi > r.lo:
        xa, xb, cy = scale.x(r.lo), scale.x(r.hi), by + BAR_H / 2
        out.append(
            f'<path class="whisker" d="M{num(xa)} {num(cy)}H{num(xb)}'
            f'M{num(xa)} {num(cy - 4)}V{num(cy + 4)}M{num(xb)} {num(cy - 4)}V{num(cy + 4)}" '
            'stroke="#222" fill="none"/>'
        )
        span = same_unit([fmt_bare(r.lo, unit), fmt_bare(r.hi, unit)], "–")
        label += f" ({span})"
    if r.note:
        label += f"; {r.note}"
    out.append(text(VAL_X, y - 4, fit(label, W - VAL_X - LEFT)))
    return out


LX0 = LEFT + 56  # a line panel's plot area: x from LX0 to LX1, LINE_H high
LX1 = W - LEFT - 210
LINE_H = 150
MAX_POINTS = 300  # a longer series is averaged down to this many points (peaks: see thin())


def thin(points: list[tuple[float, float]], peak: bool) -> list[tuple[float, float]]:
    """At most MAX_POINTS points: consecutive runs of points become one, at the run's mean x and
    its mean y (its largest y when `peak`, so a spike stays visible)."""
    if len(points) <= MAX_POINTS:
        return points
    n = math.ceil(len(points) / MAX_POINTS)
    out = []
    for i in range(0, len(points), n):
        run = points[i : i + n]
        x = sum(p[0] for p in run) / len(run)
        y = max(p[1] for p in run) if peak else sum(p[1] for p in run) / len(run)
        out.append((x, y))
    return out


def render_lines(p: LinePanel, y: float, colours: dict[str, str], out: list[str]) -> float:
    series = [x for x in p.series if x.points]
    xs = [pt[0] for x in series for pt in x.points]
    ys = [pt[1] for x in series for pt in x.points]
    xlo, xhi = p.xlim or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if xhi <= xlo:
        xhi = xlo + 1
    ymax = max(ys) if ys else 1.0
    ystep = nice_step(ymax / 4) if ymax > 0 else 1.0
    yhi = ystep * max(1, math.ceil(ymax / ystep))
    xstep = nice_step((xhi - xlo) / 6)

    def px(v: float) -> float:
        return LX0 + (v - xlo) / (xhi - xlo) * (LX1 - LX0)

    out.append(text(LEFT, y, p.title, font_size="13", font_weight="bold"))
    if p.note:
        y += 15
        out.append(text(LEFT, y, fit(p.note, W - 2 * LEFT), fill="#666"))
    top = y + 12
    bottom = top + LINE_H

    def py(v: float) -> float:
        return bottom - max(0.0, min(1.0, v / yhi)) * LINE_H

    out.append('<g class="grid" stroke="#e3e3e3">')
    n = round(yhi / ystep)
    for i in range(n + 1):
        gy = num(py(i * ystep))
        out.append(f'<line x1="{LX0}" y1="{gy}" x2="{LX1}" y2="{gy}"/>')
    x = math.ceil(xlo / xstep) * xstep
    xticks = []
    while x <= xhi + 1e-9:
        xticks.append(x)
        out.append(
            f'<line x1="{num(px(x))}" y1="{num(top)}" x2="{num(px(x))}" y2="{num(bottom)}"/>'
        )
        x += xstep
    out.append("</g>")
    for i in range(n + 1):
        out.append(
            text(
                LX0 - 4,
                py(i * ystep) + 4,
                fmt_tick(i * ystep, p.unit),
                text_anchor="end",
                fill="#333",
            )
        )
    for mx, label in p.marks:
        if xlo <= mx <= xhi:
            out.append(
                f'<line class="mark" x1="{num(px(mx))}" y1="{num(top)}" x2="{num(px(mx))}" '
                f'y2="{num(bottom)}" stroke="#888" stroke-dasharray="2 3"/>'
            )
            out.append(text(px(mx) + 3, top + 10, label, fill="#666"))
    for x in series:
        pts = " ".join(f"{num(px(a))},{num(py(b))}" for a, b in x.points)
        dash = ' stroke-dasharray="5 3"' if x.dash else ""
        out.append(
            f'<polyline class="line" points="{pts}" fill="none" stroke="{colours[x.key]}" '
            f'stroke-width="1.5"{dash}/>'
        )
    out.append(f'<line x1="{LX0}" y1="{num(bottom)}" x2="{LX1}" y2="{num(bottom)}" stroke="#333"/>')
    out.append(f'<line x1="{LX0}" y1="{num(top)}" x2="{LX0}" y2="{num(bottom)}" stroke="#333"/>')
    for x in xticks:
        out.append(text(px(x), bottom + 15, fmt_tick(x, ""), text_anchor="middle", fill="#333"))
    out.append(text((LX0 + LX1) / 2, bottom + 30, p.xaxis, text_anchor="middle"))
    out.append(
        text(
            LEFT + 8,
            top + LINE_H / 2,
            fit(p.axis, LINE_H + 40),
            text_anchor="middle",
            fill="#333",
            transform=f"rotate(-90 {num(LEFT + 8)} {num(top + LINE_H / 2)})",
        )
    )
    # the legend: one line per series, with its last value
    ly = top + 4
    for x in series:
        dash = ' stroke-dasharray="5 3"' if x.dash else ""
        out.append(
            f'<line x1="{LX1 + 12}" y1="{num(ly)}" x2="{LX1 + 30}" y2="{num(ly)}" '
            f'stroke="{colours[x.key]}" stroke-width="2"{dash}/>'
        )
        out.append(text(LX1 + 34, ly + 4, fit(x.label, W - LX1 - 34 - LEFT)))
        ly += 15
    return max(bottom + 34, ly)


def bar(scale: Scale, v: float, y: float, colour: str, attrs: str) -> str:
    x0 = scale.x(scale.lo)
    w = max(0.5, scale.x(v) - x0)
    return (
        f'<rect {attrs} x="{num(x0)}" y="{num(y)}" width="{num(w)}" height="{BAR_H}" '
        f'fill="{colour}"/>'
    )


# ---------------------------------------------------------------------------------------------
# Raw results → panels, one function per bench


def read_jsonl(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def spread(vals: list[float | None]) -> tuple[float | None, float | None, float | None]:
    """Median, min, max of the values that are there (None, None, None without any)."""
    v = [x for x in vals if isinstance(x, (int, float)) and math.isfinite(x)]
    if not v:
        return None, None, None
    return statistics.median(v), min(v), max(v)


def spread_row(label: str, key: str, vals: list[float | None], scale: float = 1.0) -> Row:
    m, lo, hi = spread([None if v is None else v * scale for v in vals])
    if len([v for v in vals if v is not None]) < 2:
        lo = hi = None
    return Row(label, key, m, lo, hi, note="" if m is not None else "not measured")


def ordered(keys: list[str], known: list[str]) -> list[str]:
    """Known keys in their fixed order, then the others sorted (never in the order runs came)."""
    seen = set(keys)
    return [k for k in known if k in seen] + sorted(seen - set(known))


MEDIAN_NOTE = "bar: median over reps; whisker: min–max over reps"


def plot_sync(rows: list[dict], meta: dict) -> list[Panel]:
    series = [
        ("ws-sync", "Sync.sync", "ws-sync sync()"),
        ("tether", "sync", "tether sync (serialize + diff)"),
        ("tether", "typed", "tether Synced (typed)"),
    ]
    scenarios = [("change", "one change"), ("insert", "one front insert"), ("none", "no change")]
    by = {(r["side"], r["path"], r["n"], r["scenario"]): r for r in rows if not r.get("meta")}
    panels = []
    for n in sorted({k[2] for k in by}):
        groups = []
        for sc, sc_label in scenarios:
            g = []
            for side, path, label in series:
                r = by.get((side, path, n, sc))
                if r:
                    g.append(
                        Row(
                            label,
                            side + "/" + path,
                            r["median_ns"] / 1e9,
                            r["min_ns"] / 1e9,
                            r["max_ns"] / 1e9,
                            note="per call" if r.get("calls_per_rep") else "",
                        )
                    )
            if g:
                groups.append(Group(sc_label, g))
        panels.append(
            Panel(
                f"One server-side sync of {n:,} items",
                "time per sync (lower is better)",
                groups,
                unit="s",
                note="bar: median of reps; whisker: fastest–slowest rep (Synced no-change: per "
                "call, batches of calls)",
            )
        )
    return panels


def plot_py_sync(rows: list[dict], meta: dict) -> list[Panel]:
    known = ["ws-sync", "tether-typed", "tether-untyped"]
    labels = {
        "ws-sync": "ws-sync 0.6.9 (dicts)",
        "tether-typed": "tether.sync typed",
        "tether-untyped": "tether.sync untyped",
    }
    data = [r for r in rows if not r.get("meta")]
    variants = ordered([r["variant"] for r in data], known)
    by = {(r["variant"], r["scenario"]): r for r in data}
    ns = sorted({r["n"] for r in data})
    groups = []
    for sc, sc_label in [("changed", "one field changed"), ("unchanged", "nothing changed")]:
        g = []
        for v in variants:
            r = by.get((v, sc))
            if r:
                base, _, rev = v.partition("@")
                label = labels.get(base, base) + (f" @{rev}" if rev else "")
                g.append(Row(label, v, r["median_ns"] / 1e9, r["min_ns"] / 1e9, r["max_ns"] / 1e9))
        if g:
            groups.append(Group(sc_label, g))
    n = f"{ns[0]:,} items" if len(ns) == 1 else "N items"
    return [
        Panel(
            f"One await obj.sync() of {n}",
            "time per sync (lower is better)",
            groups,
            unit="s",
            note="bar: median of reps; whisker: fastest–slowest rep",
        )
    ]


def plot_exec(rows: list[dict], meta: dict) -> list[Panel]:
    known = ["tether", "websocketd"]
    labels = {"tether": "tether exec", "websocketd": "websocketd"}
    sides = ordered([r["side"] for r in rows if "side" in r], known)
    lat = {
        s: [r for r in rows if r.get("side") == s and r.get("phase") == "latency"] for s in sides
    }
    thr = {
        s: [r for r in rows if r.get("side") == s and r.get("phase") == "throughput"] for s in sides
    }
    lat_rows = []
    for s in sides:
        if not lat[s]:
            continue
        pcts = []
        for p in ("p10", "p50", "p90", "p99"):
            m, _, _ = spread([r.get(f"first_line_{p}_ms") for r in lat[s]])
            if m is not None:
                pcts.append((p, m / 1e3))
        _, lo, hi = spread([r.get("first_line_p50_ms") for r in lat[s]])
        whisk = len(lat[s]) > 1
        lat_rows.append(
            Row(
                labels.get(s, s),
                s,
                pcts=pcts,
                lo=lo / 1e3 if whisk and lo else None,
                hi=hi / 1e3 if whisk and hi else None,
            )
        )
    reps = max((len(v) for v in lat.values()), default=0)
    panels = [
        Panel(
            "Connect → first output line (echo hello)",
            "time from TCP connect to the first line (lower is better)",
            [Group("", lat_rows)],
            unit="s",
            note=f"percentiles of each run's connections, median over {reps} runs; "
            "whisker: min–max of the runs' p50",
        ),
        Panel(
            "Throughput: lines/s of one connection to seq N",
            "lines per second (higher is better)",
            [
                Group(
                    "",
                    [
                        spread_row(labels.get(s, s), s, [r.get("lines_per_s") for r in thr[s]])
                        for s in sides
                        if thr[s]
                    ],
                )
            ],
            unit="lines/s",
            log=False,
            note=MEDIAN_NOTE,
        ),
    ]
    return panels


def plot_relay(rows: list[dict], meta: dict) -> list[Panel]:
    known = ["tether", "tether-nolog", "node"]
    labels = {
        "tether": "tether relay",
        "tether-nolog": "tether, log idle",
        "node": "Node relay (ws)",
    }
    sides = ordered([r["side"] for r in rows if "side" in r], known)
    by = {s: [r for r in rows if r.get("side") == s] for s in sides}
    cpu = {
        s: [
            r["server_cpu_s"] / r["n"] * 1e6
            if r.get("server_cpu_s") is not None and r.get("n")
            else None
            for r in by[s]
        ]
        for s in sides
    }
    rss_groups = []
    for s in sides:
        rss_groups.append(
            Group(
                labels.get(s, s),
                [
                    spread_row(what, s, [r.get(k) for r in by[s]], 1 / 1024)
                    for k, what in (
                        ("rss_idle_kib", "idle"),
                        ("rss_connected_kib", "two peers connected"),
                        ("rss_peak_kib", "peak during the run"),
                    )
                ],
            )
        )
    return [
        Panel(
            "Hero → UI updates delivered per second",
            "updates per second (higher is better)",
            [
                Group(
                    "",
                    [
                        spread_row(labels.get(s, s), s, [r.get("updates_per_s") for r in by[s]])
                        for s in sides
                    ],
                )
            ],
            unit="updates/s",
            log=False,
            note=MEDIAN_NOTE,
        ),
        Panel(
            "Relay CPU per update",
            "µs of relay CPU per update (lower is better)",
            [Group("", [spread_row(labels.get(s, s), s, cpu[s]) for s in sides])],
            unit="µs",
            log=False,
            note=MEDIAN_NOTE,
        ),
        Panel(
            "Relay RSS",
            "MiB (lower is better)",
            rss_groups,
            unit="MiB",
            log=False,
            note=MEDIAN_NOTE,
        ),
    ]


JS_METRICS = {
    "create_close": "create + close a runtime",
    "eval_1p1": 'eval("1+1")',
    "call_js": "Python calls (x) => x + 1",
    "roundtrip": "Python → JS → Python",
    "js_to_py_loop": "JS → Python callback (per call)",
    "obj_1mb_js_to_py": "1 MB object JS → Python, native",
    "obj_1mb_js_to_py_json": "1 MB object JS → Python, JSON",
    "obj_1mb_py_to_js": "1 MB object Python → JS, native",
    "obj_1mb_py_to_js_json": "1 MB object Python → JS, JSON",
    "fib25": "fib(25)",
    "fib30": "fib(30)",
    "rss_per_runtime": "RSS per runtime",
    "rss_big_n": "RSS growth, many runtimes",
    "create_n_runtimes": "create many runtimes",
    "create_big_n": "create many runtimes, kept open",
    "idle_cpu_1": "idle CPU, 1 runtime",
    "idle_cpu_n": "idle CPU, many runtimes",
    "idle_cpu_big_n": "idle CPU, more runtimes",
}
UNIT_SCALE = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def plot_js(rows: list[dict], meta: dict) -> list[Panel]:
    known = ["tether", "tether-unpinned", "jsrun", "jsrun-unpinned", "mini-racer"]
    data = [r for r in rows if not r.get("meta") and "metric" in r]
    variants = ordered([r["variant"] for r in data], known)
    by = {(r["variant"], r["metric"]): r for r in data}
    metrics: list[str] = []
    for r in data:
        if r["metric"] not in metrics:
            metrics.append(r["metric"])
    # One panel per kind of unit (time, memory, CPU share, ...): values of one axis compare.
    kinds: dict[str, list[str]] = {}
    for m in metrics:
        unit = next(by[(v, m)].get("unit", "") for v in variants if (v, m) in by)
        kind = "s" if unit in UNIT_SCALE else unit
        kinds.setdefault(kind, []).append(m)
    titles = {"s": "Time per operation", "MB": "Memory", "%": "Idle CPU"}
    axes = {
        "s": "time (lower is better)",
        "MB": "MB (lower is better)",
        "%": "% of one core (lower is better)",
    }
    panels = []
    for kind, ms in kinds.items():
        groups = []
        for m in ms:
            label = JS_METRICS.get(m, m)
            n = next((by[(v, m)].get("n") for v in variants if (v, m) in by), None)
            if n and m != "idle_cpu_1":
                label += f" ({n:,})"
            g = []
            for v in variants:
                r = by.get((v, m))
                if r is None:
                    continue
                val = r.get("value")
                if val is not None and kind == "s":
                    val = val * UNIT_SCALE[r.get("unit", "s")]
                g.append(Row(v, v, val, note="" if val is not None else r.get("note", "n/a")))
            groups.append(Group(label, g))
        panels.append(
            Panel(
                titles.get(kind, f"Measured in {kind}"),
                axes.get(kind, kind),
                groups,
                unit=kind,
                log=False if kind == "%" else None,
                note="bar: median of reps (the raw results keep no min–max)",
            )
        )
    return panels


FANOUT_KNOWN = ["tether-ws", "tether-tcp", "socketio", "centrifugo"]
FANOUT_LABELS = {
    "tether-ws": "tether WS /ws/rooms",
    "tether-tcp": "tether TCP lines",
    "socketio": "Socket.IO",
    "centrifugo": "Centrifugo",
    "tether-ws-ownroom": "tether WS, each in its own room",
}


def fanout_size(r: dict) -> int | None:
    s = r.get("size", r.get("subs"))
    return s if isinstance(s, int) else None


def plot_fanout(rows: list[dict], meta: dict) -> list[Panel]:
    ok = [r for r in rows if not r.get("failed") and "server" in r]
    servers = ordered([r["server"] for r in ok], FANOUT_KNOWN)
    servers = [s for s in servers if not s.endswith("-ownroom")] + [
        s for s in servers if s.endswith("-ownroom")
    ]
    sizes = sorted({fanout_size(r) for r in ok if fanout_size(r) is not None})

    def runs(server: str, size: int) -> list[dict]:
        return [r for r in ok if r["server"] == server and fanout_size(r) == size]

    def phase(r: dict, name: str) -> dict | None:
        return next((p for p in r.get("phases") or [] if p.get("phase") == name), None)

    def size_label(n: int) -> str:
        return f"{n:,} subscribers"

    sat_groups, cpu_groups, rss_groups, lat_groups = [], [], [], []
    for n in sizes:
        sat, cpu, rss = [], [], []
        for s in servers:
            rs = runs(s, n)
            label = FANOUT_LABELS.get(s, s)
            ph = [phase(r, "saturated") for r in rs]
            if any(ph):
                sat.append(
                    spread_row(label, s, [p.get("deliveries_per_s") if p else None for p in ph])
                )
                cpu.append(
                    spread_row(
                        label,
                        s,
                        [
                            p["server_cpu_pct"] / 100 / p["deliveries_per_s"] * 1e6
                            if p
                            and p.get("server_cpu_pct") is not None
                            and p.get("deliveries_per_s")
                            else None
                            for p in ph
                        ],
                    )
                )
            if any(r.get("rss_per_conn_kib") is not None for r in rs):
                rss.append(spread_row(label, s, [r.get("rss_per_conn_kib") for r in rs]))
        if sat:
            sat_groups.append(Group(size_label(n), sat))
        if any(r.value is not None for r in cpu):
            cpu_groups.append(Group(size_label(n), cpu))
        if rss:
            rss_groups.append(Group(size_label(n), rss))
        names: list[str] = []
        for s in servers:
            for r in runs(s, n):
                for p in r.get("phases") or []:
                    if p.get("phase") != "saturated" and p.get("phase") not in names:
                        names.append(p["phase"])
        names.sort(
            key=lambda x: (float(x[6:]) if re.fullmatch(r"paced-\d+(\.\d+)?", x) else 1e18, x)
        )
        for name in names:
            g = []
            for s in servers:
                ph = [p for p in (phase(r, name) for r in runs(s, n)) if p]
                if not ph:
                    continue
                pcts = []
                for key, pname in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
                    m, _, _ = spread([p.get(key) for p in ph])
                    if m is not None:
                        pcts.append((pname, m / 1e3))
                _, lo, hi = spread([p.get("p50_ms") for p in ph])
                whisk = len(ph) > 1 and lo is not None
                g.append(
                    Row(
                        FANOUT_LABELS.get(s, s),
                        s,
                        pcts=pcts,
                        lo=lo / 1e3 if whisk else None,
                        hi=hi / 1e3 if whisk else None,
                    )
                )
            if g:
                rate = name[6:] if name.startswith("paced-") else ""
                what = f"paced {rate} msgs/s" if rate else name
                lat_groups.append(Group(f"{size_label(n)} · {what}", g))
    panels = [
        Panel(
            "Saturated fan-out: deliveries per second",
            "messages delivered to subscribers per second (higher is better)",
            sat_groups,
            unit="/s",
            log=False,
            note=MEDIAN_NOTE,
        ),
        Panel(
            "Server CPU per delivery (saturated)",
            "µs of server CPU per delivery (lower is better)",
            cpu_groups,
            unit="µs",
            log=False,
            note=MEDIAN_NOTE,
        ),
        Panel(
            "Latency at a paced rate: publish → receipt",
            "latency (lower is better)",
            lat_groups,
            unit="s",
            note="percentiles over all deliveries of a run, median over runs; "
            "whisker: min–max of the runs' p50",
        ),
        Panel(
            "RSS per idle connection",
            "KiB of server RSS per subscriber (lower is better)",
            rss_groups,
            unit="KiB",
            log=False,
            note=MEDIAN_NOTE,
        ),
    ]
    return [p for p in panels if p.groups]


SOAK_MODES = ["one-node", "three-nodes"]


def plot_soak(rows: list[dict], meta: dict) -> list[LinePanel]:
    """bench/soak: one line per mode (deliveries, latency) or per mode and process (RSS, CPU)
    over the run's seconds, from each run's per-second `series`."""
    runs = {r["mode"]: r for r in rows if r.get("mode") and r.get("series")}
    modes = ordered(list(runs), SOAK_MODES)

    def pts(r: dict, f) -> list[tuple[float, float]]:
        out = []
        for s in r["series"]:
            v = f(s)
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.append((float(s["t"]), float(v)))
        return out

    def label(m: str, r: dict) -> str:
        return f"{m} ({r.get('clients', 0):,} clients)" if r.get("clients") else m

    delivered, latency, rss, cpu = [], [], [], []
    for m in modes:
        r = runs[m]
        delivered.append(Series(label(m, r), m, thin(pts(r, lambda s: s.get("delivered")), False)))
        latency.append(Series(f"{m} p99", m, thin(pts(r, lambda s: s.get("p99_ms")), True)))
        latency.append(
            Series(f"{m} p50", m, thin(pts(r, lambda s: s.get("p50_ms")), False), dash=True)
        )
        for proc in r.get("procs") or []:
            key = f"{m}/{proc}"
            rss.append(
                Series(
                    f"{m} {proc}",
                    key,
                    thin(pts(r, lambda s, p=proc: (s.get("rss_kib") or {}).get(p)), False),
                )
            )
            rss[-1].points = [(x, y / 1024) for x, y in rss[-1].points]
            cpu.append(
                Series(
                    f"{m} {proc}",
                    key,
                    thin(pts(r, lambda s, p=proc: (s.get("cpu_pct") or {}).get(p)), False),
                )
            )
    warm = [r.get("warmup_s") for r in runs.values() if r.get("warmup_s")]
    marks = [(float(warm[0]), "end of warm-up")] if warm else []
    ts = [float(s["t"]) for r in runs.values() for s in r["series"]]
    xlim = (min(ts), max(ts)) if ts else None
    every = "one point per second" + (
        " (long runs: means of consecutive seconds)"
        if any(len(r["series"]) > MAX_POINTS for r in runs.values())
        else ""
    )
    return [
        LinePanel(
            "Deliveries per second",
            "deliveries/s",
            delivered,
            note=f"messages received by all clients in each second; {every}",
            marks=marks,
            xlim=xlim,
        ),
        LinePanel(
            "Latency, publish → receipt, per second",
            "ms",
            latency,
            note="solid: p99, dashed: p50 of the deliveries received in each second "
            "(long runs: the largest p99 of consecutive seconds)",
            marks=marks,
            xlim=xlim,
        ),
        LinePanel(
            "Server RSS",
            "MiB",
            rss,
            note="VmRSS of each tether node (and redis-server) from /proc, sampled every second",
            marks=marks,
            xlim=xlim,
        ),
        LinePanel(
            "Server CPU",
            "% of a core",
            cpu,
            note="utime + stime of each process per second, from /proc",
            marks=marks,
            xlim=xlim,
        ),
    ]


BENCHES = {
    "sync": ("bench/sync: sync engine, tether-sync vs ws-sync 0.6.9", plot_sync),
    "py-sync": ("bench/py-sync: Python sync, tether.sync vs ws-sync 0.6.9", plot_py_sync),
    "exec": ("bench/exec: process over WebSocket, tether exec vs websocketd", plot_exec),
    "relay": ("bench/relay: UI relay, tether vs a Node ws relay", plot_relay),
    "js": ("bench/js: JS engines from Python, tether.js vs jsrun vs mini-racer", plot_js),
    "fanout": ("bench/fanout: room fan-out, 1 publisher → N subscribers", plot_fanout),
    "soak": (
        "bench/soak: many WebSocket clients in many rooms, one node and three over Redis",
        plot_soak,
    ),
}


# ---------------------------------------------------------------------------------------------
# The run: commit, date, file, load (bench/lib.sh's meta keys or bench/fanout's BENCH_* keys)


def header_lines(meta: dict, source: str) -> list[str]:
    commit = meta.get("git") or meta.get("BENCH_GIT") or "not recorded"
    date = meta.get("date") or meta.get("BENCH_DATE") or "not recorded"
    kept = meta.get("run") or meta.get("BENCH_RUN")
    load_a, load_b = meta.get("load_start"), meta.get("load_end")
    if not load_a and meta.get("BENCH_LOAD"):
        m = re.search(r"load average ([\d. ]+?) at start, ([\d. ]+?) at end", meta["BENCH_LOAD"])
        if m:
            load_a, load_b = m.group(1), m.group(2)
    machine = meta.get("cpu") or meta.get("BENCH_CPU")
    nproc = meta.get("nproc") or meta.get("BENCH_NPROC")
    pinning = meta.get("pinning") or meta.get("BENCH_PINNING")
    lines = [
        f"commit {commit} · run {date} · raw results {kept or source}",
        f"1/5/15-min load average {load_a or '?'} at start, {load_b or '?'} at end"
        + (f" · {nproc} cores, {machine}" if machine else ""),
    ]
    if pinning:
        lines.append(f"pinning: {pinning}")
    return lines


def cite(path: Path) -> str:
    """The results file as the docs name it: relative to the repo when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def bench_name(path: Path) -> str:
    parts = path.resolve().parts
    if "results" in parts:
        i = len(parts) - 1 - parts[::-1].index("results")
        if i >= 1:
            return parts[i - 1]
    raise SystemExit(f"plot.py: cannot tell the bench from {path}; pass --bench NAME")


def chart(results: Path, meta: dict, bench: str) -> str:
    """The SVG text for one run."""
    if bench not in BENCHES:
        raise SystemExit(f"plot.py: unknown bench {bench!r} (one of {', '.join(BENCHES)})")
    title, fn = BENCHES[bench]
    panels = fn(read_jsonl(results), meta)
    if not any(p.groups for p in panels):
        raise SystemExit(f"plot.py: nothing to plot in {results}")
    return render(title, header_lines(meta, cite(results)), [p for p in panels if p.groups])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="SVG chart of a bench run's raw results")
    ap.add_argument("results", type=Path)
    ap.add_argument("--meta", type=Path)
    ap.add_argument("--bench")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    meta_path = a.meta or a.results.with_name(a.results.name.removesuffix(".jsonl") + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    svg = chart(a.results, meta, a.bench or bench_name(a.results))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(svg, encoding="utf-8")
    print(f"plot.py: wrote {cite(a.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
