"""jsrun 0.3.0 bugs (docs/js.md lists them) that tether.js fixes; each is skipped on jsrun with the bug.

Each test was run against jsrun 0.3.0 with JS_TESTS_RUN_SKIPPED=1 and fails there (see the
report in FINDINGS.md history / docs/js.md). Calls that deadlock on jsrun run in a thread with
a timeout so the suite cannot hang.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from .conftest import run_guarded, run_script


@pytest.mark.tether_only("jsrun 0.3.0: a sync JsFunction call whose JS calls Python deadlocks")
def test_sync_call_reaching_back_into_python(js: ModuleType) -> None:
    done, out = run_script(
        js.__name__,
        """
        rt = js.Runtime()
        rt.bind_function("pyinc", lambda x: x + 1)
        fn = rt.eval("(x) => pyinc(x) * 10")
        print("result", fn(1))
        rt.close()
        """,
        20,
    )
    assert done, "deadlock: sync JsFunction call with a Python callback did not return"
    assert "result 20" in out, out


@pytest.mark.tether_only("jsrun 0.3.0: after a pending-promise timeout eval_async fails")
async def test_usable_after_pending_promise_timeout(js: ModuleType, rt: Any) -> None:
    with pytest.raises(RuntimeError, match="pending"):
        await rt.eval_async("new Promise(() => {})", timeout=0.2)
    assert await rt.eval_async("Promise.resolve(42)") == 42
    assert await rt.eval_async("new Promise(r => setTimeout(() => r('timers ok'), 5))") == (
        "timers ok"
    )
    assert rt.eval("1 + 1") == 2


@pytest.mark.tether_only("jsrun 0.3.0: deno internals are reachable as globalThis.__bootstrap")
def test_no_internals_reachable(rt: Any) -> None:
    assert rt.eval("typeof __bootstrap") == "undefined"
    assert rt.eval("typeof Deno") == "undefined"
    names = rt.eval(
        "Object.getOwnPropertyNames(globalThis).filter(n => n.startsWith('__') ||"
        " /jsrun|tether/i.test(n))"
    )
    assert sorted(names) == ["__host_op_async__", "__host_op_sync__"]
    symbols = rt.eval("Object.getOwnPropertySymbols(globalThis).length")
    assert symbols == 0 or rt.eval(
        "Object.getOwnPropertySymbols(globalThis).every(s => typeof globalThis[s] !== 'object')"
    )


@pytest.mark.tether_only("jsrun 0.3.0: a Python int in (2^53, 2^63) becomes a lossy JS number")
def test_large_ints_become_bigint(rt: Any) -> None:
    kind = rt.eval("(v) => [typeof v, String(v)]")
    for value in [2**53 + 1, 2**62 + 1, 2**63 - 1, -(2**53) - 1, -(2**63)]:
        assert kind(value) == ["bigint", str(value)], value
    for value in [2**53, -(2**53), 0, 12345]:
        assert kind(value) == ["number", str(value)], value
    echo = rt.eval("(v) => v")
    assert echo(2**62 + 1) == 2**62 + 1


@pytest.mark.tether_only("jsrun 0.3.0: an idle runtime busy-polls about one CPU core")
def test_idle_runtime_uses_no_cpu(js: ModuleType) -> None:
    with js.Runtime() as rt:
        rt.eval("1")
        before = _cpu_seconds()
        time.sleep(1.0)
        used = _cpu_seconds() - before
    assert used < 0.05, f"idle runtime used {used:.3f} s CPU in 1 s"


def test_gil_released_while_js_runs(js: ModuleType) -> None:
    """Another Python thread makes progress during a 300 ms JS loop (jsrun 0.3.0 passes too)."""
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    def scenario() -> int:
        with js.Runtime() as rt:
            rt.eval("1")
            before = ticks
            rt.eval("const t0 = Date.now(); while (Date.now() - t0 < 300) {}")
            return ticks - before

    counter = threading.Thread(target=count)
    counter.start()
    try:
        done, result = run_guarded(scenario, 10)
    finally:
        stop.set()
        counter.join()
    assert done
    assert not isinstance(result, BaseException), result
    assert result > 50, f"the other thread ticked {result} times during a 300 ms JS loop"


@pytest.mark.tether_only("jsrun 0.3.0: an async-bound function in sync eval leaks a coroutine")
async def test_async_function_in_sync_eval(js: ModuleType, rt: Any) -> None:
    async def later() -> int:
        await asyncio.sleep(0)
        return 1

    await rt.eval_async("1")
    rt.bind_function("later", later)
    # tether: calling it from sync eval gives a promise; awaiting it later resolves it
    assert rt.eval("globalThis.p = later(); p instanceof Promise") is True
    assert await rt.eval_async("p") == 1


@pytest.mark.tether_only("jsrun 0.3.0: a CPU loop after a top-level await ignores the timeout")
def test_module_cpu_loop_after_await_times_out(js: ModuleType) -> None:
    done, out = run_script(
        js.__name__,
        """
        import asyncio

        async def main():
            rt = js.Runtime()
            rt.add_static_module("spin", "await null; while (true) {}; export const x = 1")
            try:
                await rt.eval_module_async("spin", timeout=0.2)
            except RuntimeError as exc:
                print("raised", exc)
            finally:
                rt.close()

        asyncio.run(main())
        """,
        20,
    )
    assert done, "eval_module_async(timeout=0.2) did not return in 20 s"
    assert "raised" in out and "timed out" in out, out


def _cpu_seconds() -> float:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.tether_only("jsrun 0.3.0: a bound Python function calling into the runtime aborts")
def test_host_callback_reenters_runtime(js: ModuleType) -> None:
    done, out = run_script(
        js.__name__,
        """
        rt = js.Runtime()
        rt.bind_function("outer", lambda x: rt.eval(f"{x} * 2") + 1)
        double = rt.eval("(x) => x * 2")
        rt.bind_function("viaFn", lambda x: double(x) + 1)
        print("results", rt.eval("outer(20)"), rt.eval("viaFn(20)"), rt.eval("[viaFn(1)]"))
        rt.close()
        """,
        20,
    )
    assert done, "re-entering the runtime from a host callback hung"
    assert "results 41 41 [3]" in out, out
