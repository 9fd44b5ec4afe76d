"""Fixtures for the sync suite: every test runs on each backend in `harness.BACKENDS`.

* ``make_app``: ``app = await make_app(build)`` starts the app on the test's backend
  (``build(m, session)`` creates the synced objects); apps and clients close at teardown.
* ``@pytest.mark.tether_only(reason)``: skipped on ``ws_sync`` with `reason` (a behaviour
  ws-sync 0.6.9 gets wrong or lacks; see the ``R*`` reasons in harness.py).
* ``@pytest.mark.pydantic``: needs pydantic validation; skipped on ``ws_sync`` (reason 4).
  pydantic is a test extra: a missing one fails the import, it is never skipped.

``SYNC_TESTS_RUN_SKIPPED=1`` runs the tether-only tests on ws_sync too, to see them fail there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from .harness import BACKENDS, R4_PYDANTIC, App, Build, Endpoint, start_app


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tether_only(reason): skip on the ws_sync backend (0.6.9 bug or missing feature)"
    )
    config.addinivalue_line(
        "markers", "pydantic: needs pydantic validation (skipped on ws_sync, reason 4)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SYNC_TESTS_RUN_SKIPPED"):  # to see how ws-sync 0.6.9 fails them
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("backend") != "ws_sync":
            continue
        only = item.get_closest_marker("tether_only")
        if only is not None:
            item.add_marker(pytest.mark.skip(reason=only.args[0] if only.args else "tether only"))
        elif item.get_closest_marker("pydantic") is not None:
            item.add_marker(pytest.mark.skip(reason=R4_PYDANTIC))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


MakeApp = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(backend: str) -> AsyncIterator[MakeApp]:
    apps: list[App] = []

    async def factory(build: Build, endpoint: Endpoint | None = None) -> App:
        app = await start_app(backend, build, endpoint)
        apps.append(app)
        return app

    yield factory
    for app in reversed(apps):
        await app.aclose()


@pytest.fixture
def m(backend: str) -> Any:
    """The backend's sync module, for tests that need no server."""
    from .harness import load_backend

    return load_backend(backend)
