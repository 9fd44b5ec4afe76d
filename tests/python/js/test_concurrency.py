"""Concurrent use: many awaits on one runtime, and one runtime per thread in parallel."""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType
from typing import Any

import pytest


async def test_concurrent_eval_async_on_one_runtime(rt: Any) -> None:
    rt.eval("globalThis.delayed = (v, ms) => new Promise(r => setTimeout(() => r(v), ms))")
    results = await asyncio.gather(
        *(rt.eval_async(f"delayed({i}, {(7 * i) % 20})") for i in range(30))
    )
    assert results == list(range(30))


async def test_concurrent_call_async(rt: Any) -> None:
    fn = rt.eval("(v) => new Promise(r => setTimeout(() => r(v * 2), v % 5))")
    results = await asyncio.gather(*(fn.call_async(i) for i in range(25)))
    assert results == [i * 2 for i in range(25)]


async def test_async_python_callbacks_interleave(rt: Any) -> None:
    order: list[str] = []

    async def step(name: str, delay: float) -> str:
        order.append(f"start {name}")
        await asyncio.sleep(delay)
        order.append(f"end {name}")
        return name

    await rt.eval_async("1")
    rt.bind_function("step", step)
    got = await rt.eval_async("Promise.all([step('a', 0.05), step('b', 0.01)])")
    assert got == ["a", "b"]
    assert order.index("end b") < order.index("end a")


def test_runtime_per_thread_in_parallel(js: ModuleType) -> None:
    errors: list[BaseException] = []
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        try:
            with js.Runtime() as rt:
                rt.bind_function("tag", lambda: i)
                results[i] = rt.eval(
                    "let s = 0; for (let k = 0; k < 20000; k++) s += k; [tag(), s]"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results == {i: [i, 199990000] for i in range(8)}


@pytest.mark.tether_only("jsrun 0.3.0: Runtime is unsendable (thread-bound)")
def test_runtime_shared_between_threads(js: ModuleType) -> None:
    rt = js.Runtime()
    rt.eval("globalThis.n = 0")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(200):
                rt.eval("n++")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert rt.eval("n") == 800  # requests are serialized on the runtime's thread
    finally:
        rt.close()
