"""Shared fixtures: every test gets its own Rhea home under tmp_path and one CPU thread."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep torch and BLAS to one thread; the test machine is shared."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


@pytest.fixture
def rhea_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Rhea home; RHEA_HOME points at it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RHEA_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(asymptotic.h5, stable.h5): a small synthetic data set made once per test session."""
    from rhea_engine.data.synth import synth_to_dir

    folder = tmp_path_factory.mktemp("tiny-data")
    synth_to_dir(folder, n=4096, seed=3)
    return folder / "asymptotic.h5", folder / "stable.h5"
