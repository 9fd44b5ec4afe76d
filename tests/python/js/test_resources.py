"""Resource behaviour: many runtimes at once, and idle runtimes costing no CPU.

Figures (RSS growth per runtime, timings) belong in bench/js; these tests only assert bounds
that a busy-polling or leaking runtime would break. jsrun 0.3.0 is skipped: its idle runtimes
busy-poll a core each (creating 100 took 65 s with jsrun 0.3.0).
"""

from __future__ import annotations

import gc
import os
import time
from types import ModuleType

import pytest

BUSY_POLL = "jsrun 0.3.0: idle runtimes busy-poll a core each"


def _cpu_seconds() -> float:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.tether_only(BUSY_POLL)
def test_thousand_runtimes_open_at_once(js: ModuleType) -> None:
    gc.collect()
    rss_before = _rss_bytes()
    start = time.monotonic()
    runtimes = [js.Runtime() for _ in range(1000)]
    try:
        for i, rt in enumerate(runtimes):
            if i % 100 == 0:
                assert rt.eval(f"{i} + 1") == i + 1
        created = time.monotonic() - start
        growth = _rss_bytes() - rss_before
        # bounds well above the targets (0.3 MB, 0.5 ms each); bench/js measures the real figures
        assert growth / 1000 < 2 * 1024 * 1024, f"RSS grew {growth / 1e6:.0f} MB for 1000 runtimes"
        assert created < 30, f"creating 1000 runtimes took {created:.1f} s"
        print(f"\n1000 runtimes: {created * 1000:.0f} ms, RSS +{growth / 1e6:.1f} MB")
    finally:
        for rt in runtimes:
            rt.close()
    assert all(rt.is_closed() for rt in runtimes)


@pytest.mark.tether_only(BUSY_POLL)
def test_hundred_idle_runtimes_use_no_cpu(js: ModuleType) -> None:
    runtimes = [js.Runtime() for _ in range(100)]
    try:
        for rt in runtimes:
            rt.eval("globalThis.x = 1")
        time.sleep(0.2)
        before = _cpu_seconds()
        time.sleep(2.0)
        used = _cpu_seconds() - before
    finally:
        for rt in runtimes:
            rt.close()
    assert used / 2.0 < 0.05, f"100 idle runtimes used {100 * used / 2.0:.1f}% of a core"


@pytest.mark.tether_only(BUSY_POLL)
def test_runtime_with_pending_timer_is_idle(js: ModuleType) -> None:
    with js.Runtime() as rt:
        rt.eval("setTimeout(() => {}, 60000); setInterval(() => {}, 30000)")
        before = _cpu_seconds()
        time.sleep(1.0)
        used = _cpu_seconds() - before
    assert used < 0.05, f"a runtime waiting on a timer used {used * 100:.1f}% of a core"


def test_create_close_churn_does_not_leak(js: ModuleType) -> None:
    def churn(n: int) -> None:
        for _ in range(n):
            with js.Runtime() as rt:
                rt.eval("[1, 2, 3].map(x => x * 2)")

    churn(20)
    gc.collect()
    before = _rss_bytes()
    churn(100)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 64 * 1024 * 1024, f"100 create/close cycles grew RSS by {growth / 1e6:.0f} MB"


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_closed_runtimes_release_their_threads(js: ModuleType) -> None:
    with js.Runtime() as warm:  # engine-wide threads (V8's platform workers) start once
        warm.eval("1")
    gc.collect()
    base = _threads()
    runtimes = [js.Runtime() for _ in range(20)]
    for rt in runtimes:
        rt.eval("1")
    assert _threads() >= base + 20  # one thread per runtime
    for rt in runtimes:
        rt.close()
    del runtimes
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _threads() > base:
        time.sleep(0.05)
    assert _threads() <= base, f"{_threads() - base} threads left after closing 20 runtimes"
