"""Actions (serialized per session, plain defs in a thread) and tasks (concurrent, one instance per
name, cancellable, exposed as running_tasks)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from .harness import R6_CANCEL_BEFORE_START, R9_SYNC_HANDLER, TIMEOUT

# ---------------------------------------------------------------------------------------------
# actions


async def test_actions_are_serialized_per_session(make_app) -> None:
    log: list[str] = []

    def build(m, session):
        class Seq:
            @m.sync_only("SEQ", done=...)
            def __init__(self) -> None:
                self.done: list[str] = []

            @m.remote_action("SLOW")
            async def slow(self):
                log.append("slow start")
                slow_started.set()
                await gate.wait()
                log.append("slow end")
                self.done.append("slow")
                await self.sync()

            @m.remote_action("FAST")
            async def fast(self):
                log.append("fast")
                self.done.append("fast")
                await self.sync()

        return Seq()

    app = await make_app(build)
    slow_started, gate = app.event(), app.event()
    c = await app.connect("s1")
    await c.expect("_SET:SEQ")
    other = await app.connect("s2")
    await other.expect("_SET:SEQ")
    await c.action("SEQ", "SLOW")
    await c.action("SEQ", "FAST")
    await app.wait_event(slow_started, "SLOW to start")
    # The marker: a _GET on another session, sent after FAST and answered by the same event loop.
    # A server that read FAST while SLOW runs and ran it beside SLOW would have started it by then
    # (both backends read nothing more on a socket while its action runs).
    await other.get("SEQ")
    assert log == ["slow start"]
    gate.set()
    await c.wait_state("SEQ", lambda s: s["done"] == ["slow", "fast"], "both actions done")
    assert log == ["slow start", "slow end", "fast"]


@pytest.mark.tether_only(R9_SYNC_HANDLER)
async def test_plain_def_action_runs_in_a_thread_and_blocks_no_other_session(make_app) -> None:
    started = threading.Event()
    seen: dict[str, object] = {}

    def build(m, session):
        class Blocking:
            @m.sync_only("BLK", n=...)
            def __init__(self) -> None:
                self.n = 0

            @m.remote_action("BLOCK")
            def block(self):  # a plain def: must not run on the event loop
                seen["thread"] = threading.get_ident()
                seen["context"] = m.session_context.get() is session
                started.set()
                release.wait(TIMEOUT * 2)
                self.n = 1

            @m.remote_action("ADD")
            async def add(self):
                self.n += 10
                await self.sync()

        return Blocking()

    app = await make_app(build)
    release = app.thread_event()
    a = await app.connect("a")
    await a.expect("_SET:BLK")
    await a.action("BLK", "BLOCK")
    await a.action("BLK", "ADD")  # same session: must wait for BLOCK
    await app.until(started.is_set, "BLOCK to start in its thread")
    assert seen["thread"] != threading.get_ident()
    assert seen["context"] is True, "session_context is not set inside the threaded handler"

    # another session is served while BLOCK holds its thread
    b = await app.connect("b")
    assert await b.expect("_SET:BLK") == {"n": 0}
    await b.action("BLK", "ADD")
    assert await b.expect("_PATCH:BLK") == [{"op": "replace", "path": "/n", "value": 10}]
    assert not release.is_set()

    release.set()
    await a.wait_state("BLK", lambda s: s["n"] == 11, "BLOCK then ADD, in order")
    assert app.obj("a").n == 11


# ---------------------------------------------------------------------------------------------
# tasks


def jobs_builder(app_ref: list, **sync_options):
    """JOBS: tasks A and B wait on their gates, LONG waits forever (cancel handler logs)."""

    def build(m, session):
        ctl = app_ref[0].ctl

        class Jobs:
            @m.sync_all("JOBS", expose_running_tasks=True, **sync_options)
            def __init__(self) -> None:
                self.results: list[str] = []
                self._log: list[str] = []

            async def _gated(self, name, tag):
                self._log.append(f"{name} start {tag}")
                ctl[f"{name} started"].set()
                await ctl[f"{name} gate"].wait()
                self.results.append(tag)
                await self.sync()

            @m.remote_task("A")
            async def task_a(self, tag="a"):
                await self._gated("A", tag)

            @m.remote_task("B")
            async def task_b(self, tag="b"):
                await self._gated("B", tag)

            @m.remote_task("LONG")
            async def long(self):
                self._log.append("long start")
                ctl["LONG started"].set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self._log.append("long cancelled")
                    raise

            @long.cancel
            async def stop_long(self):
                self._log.append("cancel handler")

            @m.remote_task_cancel("B")  # the standalone form of `@task_b.cancel`
            async def stop_b(self):
                self._log.append("B cancel handler")

            @m.remote_action("ADD")
            async def add(self, x):
                self.results.append(x)
                await self.sync()

        return Jobs()

    return build


async def jobs_app(make_app, **sync_options):
    ref: list = []
    app = await make_app(jobs_builder(ref, **sync_options))
    ref.append(app)
    app.ctl = {
        f"{n} {what}": app.event() for n in ("A", "B", "LONG") for what in ("started", "gate")
    }
    return app


async def test_tasks_run_concurrently_and_alongside_actions(make_app) -> None:
    app = await jobs_app(make_app)
    c = await app.connect("s1")
    assert await c.expect("_SET:JOBS") == {"results": [], "running_tasks": []}
    await c.start_task("JOBS", "A")
    await c.start_task("JOBS", "B")
    await app.wait_event(app.ctl["A started"], "task A to start")
    await app.wait_event(app.ctl["B started"], "task B to start while A runs")
    await c.wait_state(
        "JOBS", lambda s: sorted(s["running_tasks"]) == ["A", "B"], "A and B exposed as running"
    )

    # actions are still handled while both tasks run
    await c.action("JOBS", "ADD", x="x")
    await c.wait_state("JOBS", lambda s: s["results"] == ["x"], "ADD handled during the tasks")

    app.ctl["B gate"].set()
    await c.wait_state(
        "JOBS",
        lambda s: s["results"] == ["x", "b"] and s["running_tasks"] == ["A"],
        "B finished, A still running",
    )
    app.ctl["A gate"].set()
    await c.wait_state(
        "JOBS",
        lambda s: s["results"] == ["x", "b", "a"] and s["running_tasks"] == [],
        "A finished",
    )


async def test_second_start_of_a_running_task_is_ignored(make_app) -> None:
    app = await jobs_app(make_app)
    c = await app.connect("s1")
    await c.expect("_SET:JOBS")
    obj = app.obj("s1")
    await c.start_task("JOBS", "A", tag="first")
    await app.wait_event(app.ctl["A started"], "task A to start")
    await c.start_task("JOBS", "A", tag="second")
    await c.get("JOBS")  # the second start has been handled
    assert obj._log == ["A start first"]

    app.ctl["A gate"].set()
    await c.wait_state(
        "JOBS", lambda s: s["results"] == ["first"] and s["running_tasks"] == [], "A finished"
    )
    # finished: the same task starts again
    await c.start_task("JOBS", "A", tag="again")
    await c.wait_state(
        "JOBS",
        lambda s: s["results"] == ["first", "again"] and s["running_tasks"] == [],
        "A ran again",
    )
    assert obj._log == ["A start first", "A start again"]


async def test_cancel_a_running_task(make_app) -> None:
    app = await jobs_app(make_app)
    c = await app.connect("s1")
    await c.expect("_SET:JOBS")
    obj = app.obj("s1")
    await c.start_task("JOBS", "LONG")
    await app.wait_event(app.ctl["LONG started"], "LONG to start")
    await c.wait_state("JOBS", lambda s: s["running_tasks"] == ["LONG"], "LONG exposed")

    await c.cancel_task("JOBS", "LONG")
    await c.wait_state("JOBS", lambda s: s["running_tasks"] == [], "LONG gone after cancel")
    await app.until(lambda: len(obj._log) == 3, "the cancel handler to have run")
    assert obj._log[0] == "long start"
    assert sorted(obj._log[1:]) == ["cancel handler", "long cancelled"]

    # it can be started (and cancelled) again
    app.ctl["LONG started"].clear()
    await c.start_task("JOBS", "LONG")
    await app.wait_event(app.ctl["LONG started"], "LONG to start again")
    await c.wait_state("JOBS", lambda s: s["running_tasks"] == ["LONG"], "LONG exposed again")
    await c.cancel_task("JOBS", "LONG")
    await c.wait_state("JOBS", lambda s: s["running_tasks"] == [], "LONG gone again")
    await app.until(lambda: obj._log.count("cancel handler") == 2, "the second cancel handler")


async def test_cancel_handler_from_remote_task_cancel(make_app) -> None:
    app = await jobs_app(make_app)
    c = await app.connect("s1")
    await c.expect("_SET:JOBS")
    obj = app.obj("s1")
    await c.start_task("JOBS", "B", tag="never")
    await app.wait_event(app.ctl["B started"], "task B to start")
    await c.cancel_task("JOBS", "B")
    await c.wait_state("JOBS", lambda s: s["running_tasks"] == [], "B gone after cancel")
    await app.until(lambda: "B cancel handler" in obj._log, "B's cancel handler to run")
    assert obj.results == []


async def test_cancel_a_task_that_is_not_running_is_ignored(make_app) -> None:
    app = await jobs_app(make_app)
    c = await app.connect("s1")
    await c.expect("_SET:JOBS")
    await c.cancel_task("JOBS", "LONG")
    await c.cancel_task("JOBS", "A")
    assert await c.get_strict("JOBS") == {"results": [], "running_tasks": []}
    assert app.obj("s1")._log == []


async def test_expose_running_tasks_camel_case(make_app) -> None:
    app = await jobs_app(make_app, toCamelCase=True)
    c = await app.connect("s1")
    assert await c.expect("_SET:JOBS") == {"results": [], "runningTasks": []}
    await c.start_task("JOBS", "A")
    await c.wait_state("JOBS", lambda s: s["runningTasks"] == ["A"], "A exposed")
    app.ctl["A gate"].set()
    await c.wait_state("JOBS", lambda s: s["runningTasks"] == [], "A finished")
    assert c.state["JOBS"]["results"] == ["a"]


@pytest.mark.tether_only(R6_CANCEL_BEFORE_START)
@pytest.mark.parametrize("expose", [False, True], ids=["hidden", "exposed"])
async def test_cancel_before_the_task_started(make_app, expose: bool) -> None:
    runs: list[str] = []
    cancels: list[str] = []

    def build(m, session):
        class Quick:
            @m.sync_only("QUICK", n=..., _expose_running_tasks=expose)
            def __init__(self) -> None:
                self.n = 0

            @m.remote_task("Q")
            async def q(self, tag):
                runs.append(tag)
                await gate.wait()
                self.n += 1
                await self.sync()

            @q.cancel
            async def stop_q(self):
                cancels.append("cancel handler")

        return Quick()

    app = await make_app(build)
    gate = app.event()
    c = await app.connect("s1")
    await c.expect("_SET:QUICK")
    # back to back, so the cancel is read before the new task gets its first step
    await c.start_task("QUICK", "Q", tag="first")
    await c.cancel_task("QUICK", "Q")
    await app.until(lambda: cancels == ["cancel handler"], "the cancel handler to be awaited")
    if expose:
        await c.wait_state("QUICK", lambda s: s["running_tasks"] == [], "Q not running")
    await c.get("QUICK")

    # the name is free again: a new start runs
    gate.set()
    await c.start_task("QUICK", "Q", tag="second")
    await c.wait_state("QUICK", lambda s: s["n"] == 1, "the restarted task to finish")
    assert runs[-1] == "second"
    assert runs in (["second"], ["first", "second"])
    if expose:
        await c.wait_state("QUICK", lambda s: s["running_tasks"] == [], "Q finished")
