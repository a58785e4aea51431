"""Fixtures of the TUI tests: a real home with real run directories; async tests run here."""

from __future__ import annotations

import asyncio
import inspect
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tui_rundata import make_home  # noqa: E402

from rhea_engine.runs.store import Store  # noqa: E402


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
