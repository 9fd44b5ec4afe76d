#!/usr/bin/env python3
"""bench/js/bench.py VARIANT: one JS engine from Python, one JSON line per metric on stdout.

VARIANT: tether (tether.js, QuickJS-NG), jsrun (jsrun 0.3.0, V8 via deno_core), mini-racer
(mini-racer, V8), or tether-unpinned / jsrun-unpinned (the per-call metrics only, run without
pinning so each engine's threads can use every core: tether's runtime thread, and jsrun's
runtime thread, which busy-polls a core and so is slowed most by sharing the caller's). Run by
run.sh, each variant in its own process. Times are medians of REPS repetitions (each a batch
for the sub-millisecond metrics). Knobs: REPS=7 N_RT=100 BIG_N=1000.

`eval("1+1")` is measured three ways: the same source again (`eval_1p1`: for tether.js a hit
in its code cache; V8 has a compilation cache of its own), a new source every call
(`eval_1p1_miss`: `1+1//<n>`, compiled each time, and for tether.js added to the cache), and for
tether.js with its code cache off (`eval_1p1_nocache`, `RuntimeConfig(code_cache_entries=0)`).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata as md
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

VARIANT = sys.argv[1]
REPS = int(os.environ.get("REPS", "7"))
N_RT = int(os.environ.get("N_RT", "100"))
BIG_N = int(os.environ.get("BIG_N", "1000"))

FIB = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }"
# 8000 records, about 0.95 MB as JSON (the payload jsrun 0.3.0 was first measured with)
RECORDS_JS = (
    "globalThis.records = Array.from({length: 8000}, (_, i) => ({id: i, name: 'user' + i,"
    " email: 'user' + i + '@example.com', active: i % 2 === 0, score: i * 1.5,"
    " tags: ['a', 'b', 'c'], nested: {x: i, y: 'v' + i}}))"
)


def emit(metric: str, value: float | None, unit: str, note: str = "", **extra: Any) -> None:
    row = {"variant": VARIANT, "metric": metric, "value": value, "unit": unit, "reps": REPS}
    if note:
        row["note"] = note
    row.update(extra)
    print(json.dumps(row), flush=True)


def median_per_op(fn: Callable[[], Any], batch: int, reps: int = REPS) -> float:
    """Median over reps of (time of `batch` calls) / batch, in seconds."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter() - t) / batch)
    return statistics.median(times)


def cpu_seconds() -> float:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def idle_cpu_pct(seconds: float = 2.0) -> float:
    time.sleep(0.2)
    before = cpu_seconds()
    time.sleep(seconds)
    return 100 * (cpu_seconds() - before) / seconds


def records_py() -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"user{i}",
            "email": f"user{i}@example.com",
            "active": i % 2 == 0,
            "score": i * 1.5,
            "tags": ["a", "b", "c"],
            "nested": {"x": i, "y": f"v{i}"},
        }
        for i in range(8000)
    ]


# --- tether.js and jsrun (the same API) ---------------------------------------------------------


def bench_eval(js: Any, rt: Any, is_jsrun: bool) -> None:
    """eval("1+1"): repeated (a code cache hit), a new source each call (a miss), and for
    tether.js with the cache off."""
    emit("eval_1p1", median_per_op(lambda: rt.eval("1+1"), 2000) * 1e6, "us")
    sources = iter([f"1+1//{i}" for i in range(2000 * REPS + 1)])
    emit(
        "eval_1p1_miss",
        median_per_op(lambda: rt.eval(next(sources)), 2000) * 1e6,
        "us",
    )
    if not is_jsrun:
        plain = js.Runtime(js.RuntimeConfig(code_cache_entries=0))
        emit(
            "eval_1p1_nocache",
            median_per_op(lambda: plain.eval("1+1"), 2000) * 1e6,
            "us",
        )
        plain.close()


def bench_roundtrip(rt: Any, via: Any, is_jsrun: bool) -> None:
    if is_jsrun:
        # a sync call whose JS calls back into Python deadlocks in jsrun 0.3.0: use call_async
        async def roundtrips(n: int) -> float:
            await via.call_async(1)
            times = []
            for _ in range(REPS):
                t = time.perf_counter()
                for _ in range(n):
                    await via.call_async(1)
                times.append((time.perf_counter() - t) / n)
            return statistics.median(times)

        emit(
            "roundtrip",
            asyncio.run(roundtrips(200)) * 1e6,
            "us",
            "call_async: the sync call deadlocks",
        )
    else:
        emit("roundtrip", median_per_op(lambda: via(1), 2000) * 1e6, "us", "sync JsFunction call")


def bench_latency(js: Any, is_jsrun: bool) -> None:
    """The per-call metrics only (for the unpinned runs: the caller and the engine's threads
    on different cores)."""
    rt = js.Runtime()
    bench_eval(js, rt, is_jsrun)
    inc = rt.eval("(x) => x + 1")
    emit("call_js", median_per_op(lambda: inc(1), 2000) * 1e6, "us")
    rt.bind_function("pyinc", lambda x: x + 1)
    via = rt.eval("(x) => pyinc(x)")
    bench_roundtrip(rt, via, is_jsrun)
    loop_n = 10000
    code = f"for (let i = 0; i < {loop_n}; i++) pyinc(i)"
    emit("js_to_py_loop", median_per_op(lambda: rt.eval(code), 1) / loop_n * 1e6, "us")
    rt.close()
    n = 20 if is_jsrun else 200
    emit("create_close", median_per_op(lambda: js.Runtime().close(), n) * 1e3, "ms")


def bench_jsrun_api(js: Any, is_jsrun: bool) -> None:
    emit(
        "create_close",
        median_per_op(lambda: js.Runtime().close(), 20 if is_jsrun else 200) * 1e3,
        "ms",
    )

    rt = js.Runtime()
    bench_eval(js, rt, is_jsrun)

    inc = rt.eval("(x) => x + 1")
    emit("call_js", median_per_op(lambda: inc(1), 2000) * 1e6, "us")

    rt.bind_function("pyinc", lambda x: x + 1)
    via = rt.eval("(x) => pyinc(x)")
    bench_roundtrip(rt, via, is_jsrun)

    loop_n = 10000
    emit(
        "js_to_py_loop",
        median_per_op(lambda: rt.eval(f"for (let i = 0; i < {loop_n}; i++) pyinc(i)"), 1)
        / loop_n
        * 1e6,
        "us",
    )

    rt.eval(RECORDS_JS)
    emit("obj_1mb_js_to_py", median_per_op(lambda: rt.eval("records"), 1) * 1e3, "ms", "native")
    emit(
        "obj_1mb_js_to_py_json",
        median_per_op(lambda: json.loads(rt.eval("JSON.stringify(records)")), 1) * 1e3,
        "ms",
        "JSON.stringify + json.loads",
    )
    data = records_py()
    length = rt.eval("(r) => r.length")
    emit("obj_1mb_py_to_js", median_per_op(lambda: length(data), 1) * 1e3, "ms", "native")
    parse = rt.eval("(s) => JSON.parse(s).length")
    emit(
        "obj_1mb_py_to_js_json",
        median_per_op(lambda: parse(json.dumps(data)), 1) * 1e3,
        "ms",
        "json.dumps + JSON.parse",
    )

    rt.eval(FIB)
    emit("fib25", median_per_op(lambda: rt.eval("fib(25)"), 1) * 1e3, "ms")
    emit("fib30", median_per_op(lambda: rt.eval("fib(30)"), 1, reps=min(REPS, 5)) * 1e3, "ms")
    rt.close()
    gc.collect()

    one = js.Runtime()
    one.eval("1")
    emit("idle_cpu_1", idle_cpu_pct(), "%")
    one.close()

    gc.collect()
    before = rss_bytes()
    t = time.perf_counter()
    rts = []
    for _ in range(N_RT):
        r = js.Runtime()
        r.eval("1 + 1")
        rts.append(r)
    made = time.perf_counter() - t
    emit("rss_per_runtime", (rss_bytes() - before) / N_RT / 1e6, "MB", n=N_RT)
    emit("create_n_runtimes", made, "s", n=N_RT)
    emit("idle_cpu_n", idle_cpu_pct(), "%", n=N_RT)
    for r in rts:
        r.close()
    del rts
    gc.collect()

    if not is_jsrun:
        before = rss_bytes()
        t = time.perf_counter()
        big = [js.Runtime() for _ in range(BIG_N)]
        made = time.perf_counter() - t
        emit("create_big_n", made, "s", n=BIG_N)
        emit("rss_big_n", (rss_bytes() - before) / 1e6, "MB", n=BIG_N)
        emit("idle_cpu_big_n", idle_cpu_pct(), "%", n=BIG_N)
        for r in big:
            r.close()


# --- mini-racer -------------------------------------------------------------------------------


def bench_mini_racer() -> None:
    from py_mini_racer import MiniRacer

    emit("create_close", median_per_op(lambda: MiniRacer().close(), 20) * 1e3, "ms")
    mr = MiniRacer()
    emit("eval_1p1", median_per_op(lambda: mr.eval("1+1"), 200) * 1e6, "us")
    inc = mr.eval("(x) => x + 1")
    emit("call_js", median_per_op(lambda: inc(1), 200) * 1e6, "us", "JSFunction call")

    async def with_callback() -> tuple[float, float]:
        amr = MiniRacer()  # on the running loop: Python callbacks must be async

        async def pyinc(x: int) -> int:
            return x + 1

        async with amr.wrap_py_function(pyinc) as jsfn:
            amr.eval("(f) => { globalThis.pyinc = f }")(jsfn)
            via = amr.eval("(x) => pyinc(x)")
            await via(1)
            times = []
            for _ in range(REPS):
                t = time.perf_counter()
                for _ in range(100):
                    await via(1)
                times.append((time.perf_counter() - t) / 100)
            rt_us = statistics.median(times) * 1e6
            loop_n = 1000
            code = f"(async () => {{ for (let i = 0; i < {loop_n}; i++) await pyinc(i) }})()"
            times = []
            for _ in range(REPS):
                t = time.perf_counter()
                await amr.eval(code)
                times.append((time.perf_counter() - t) / loop_n)
            loop_us = statistics.median(times) * 1e6
        amr.close()
        return rt_us, loop_us

    try:
        rt_us, loop_us = asyncio.run(with_callback())
        emit("roundtrip", rt_us, "us", "async callback; mini-racer callbacks must be async")
        emit("js_to_py_loop", loop_us, "us", "await of an async callback per call")
    except Exception as exc:  # report, do not hide the other metrics
        emit("roundtrip", None, "us", f"failed: {exc!r}")
        emit("js_to_py_loop", None, "us", f"failed: {exc!r}")

    mr.eval(RECORDS_JS)
    emit(
        "obj_1mb_js_to_py",
        median_per_op(lambda: mr.eval("records"), 1) * 1e3,
        "ms",
        "lazy proxy object, no conversion",
    )
    emit(
        "obj_1mb_js_to_py_json",
        median_per_op(lambda: json.loads(mr.eval("JSON.stringify(records)")), 1) * 1e3,
        "ms",
        "JSON.stringify + json.loads",
    )
    data = records_py()
    mr.eval("globalThis.len = (r) => r.length")
    emit("obj_1mb_py_to_js", None, "ms", "no native conversion of objects")
    emit(
        "obj_1mb_py_to_js_json",
        median_per_op(lambda: mr.call("len", data), 1) * 1e3,
        "ms",
        "mr.call: json.dumps + JS parse",
    )
    mr.eval(FIB)
    emit("fib25", median_per_op(lambda: mr.eval("fib(25)"), 1) * 1e3, "ms")
    emit("fib30", median_per_op(lambda: mr.eval("fib(30)"), 1, reps=min(REPS, 5)) * 1e3, "ms")
    mr.close()

    one = MiniRacer()
    one.eval("1")
    emit("idle_cpu_1", idle_cpu_pct(), "%")
    one.close()

    gc.collect()
    before = rss_bytes()
    t = time.perf_counter()
    rts = []
    for _ in range(N_RT):
        r = MiniRacer()
        r.eval("1 + 1")
        rts.append(r)
    made = time.perf_counter() - t
    emit("rss_per_runtime", (rss_bytes() - before) / N_RT / 1e6, "MB", n=N_RT)
    emit("create_n_runtimes", made, "s", n=N_RT)
    emit("idle_cpu_n", idle_cpu_pct(), "%", n=N_RT)
    for r in rts:
        r.close()


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("tether", "jsrun", "mini-racer"):
        try:
            out[dist.replace("-", "_")] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def main() -> None:
    print(json.dumps({"variant": VARIANT, "meta": True, **versions()}), flush=True)
    if VARIANT == "tether":
        import tether.js

        bench_jsrun_api(tether.js, is_jsrun=False)
    elif VARIANT == "tether-unpinned":
        import tether.js

        bench_latency(tether.js, is_jsrun=False)
    elif VARIANT == "jsrun-unpinned":
        import jsrun

        bench_latency(jsrun, is_jsrun=True)
    elif VARIANT == "jsrun":
        import jsrun

        bench_jsrun_api(jsrun, is_jsrun=True)
    elif VARIANT == "mini-racer":
        bench_mini_racer()
    else:
        raise SystemExit(f"unknown variant {VARIANT!r}")


if __name__ == "__main__":
    main()
