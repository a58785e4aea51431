"""Fixtures of the TUI tests: a real home with real run directories, and deadline waits."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rundata import T0, make_home  # noqa: E402

from rhea_engine.runs.store import Store  # noqa: E402

NOW = T0 + 7200.0  # the injected clock: two hours after the first event


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests of this folder in a fresh event loop (Textual's Pilot is async)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Rhea home with six runs (done, sweep lr, diverged, failed, running here)."""
    path = tmp_path / "home"
    monkeypatch.setenv("RHEA_HOME", str(path))
    store: Store = make_home(path)
    store.close()
    return path


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    """Let the app run until `predicate()` is true; fail after `timeout` seconds."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)
    return time.monotonic() - start
