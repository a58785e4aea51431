"""Budgets (durations, epochs) and parameter importance over a sweep read from a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.errors import ConfigError, SweepError
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_engine.sweep.budget import Budget, parse_duration
from rhea_engine.sweep.importance import param_importance
from rhea_tui.cli import app


def test_durations() -> None:
    assert parse_duration("2h") == 7200
    assert parse_duration("90m") == 5400
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45s") == 45
    assert parse_duration("1d") == 86400
    assert parse_duration("3600") == 3600
    for bad in ("soon", "2x", "-5", "0", "h", "1h 2"):
        with pytest.raises(ConfigError):
            parse_duration(bad)


def test_budget_is_spent_by_time_or_epochs() -> None:
    assert Budget().spent(0.0, 1e9, [1000]) is None
    timed = Budget(seconds=60)
    assert timed.spent(100.0, 159.0, []) is None
    assert "1m00s" in (timed.spent(100.0, 160.0, []) or "")
    counted = Budget(epochs=10)
    assert counted.spent(0.0, 0.0, [4, None, 5]) is None
    assert "10 epochs" in (counted.spent(0.0, 0.0, [4, 6]) or "")
    with pytest.raises(ConfigError):
        Budget(epochs=0)
    assert Budget.from_dict(Budget(7.0, 3, True).to_dict()) == Budget(7.0, 3, True)


def test_importance_finds_the_parameter_that_matters(rhea_home: Path) -> None:
    space = {
        "lr": {"type": "loguniform", "lower": 1e-4, "upper": 1e-1, "keys": ["learning_rate"]},
        "width": {"type": "choice", "values": [8, 16], "keys": ["width_shared"]},
    }
    with Store(rhea_home) as store:
        store.create_sweep("imp", {"search": "tpe", "space": space})
        lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
        for i, lr in enumerate(lrs * 2):
            width = 8 if i < len(lrs) else 16
            row = store.create_run(
                {"learning_rate": lr, "width_shared": width}, name=f"imp-{i + 1}", sweep="imp"
            )
            with RunWriter(row.path) as writer:
                # the loss depends on the learning rate only, the width does nothing
                writer.epoch(1, {"test_loss": (lr - 3e-3) ** 2 + 1.0 + 1e-9 * width})
                writer.status("completed")
        result = param_importance(store, "imp")
        shares = result["importance"]["test_loss"]
        assert result["trials"] == 12
        assert shares["lr"] > 0.9 > shares["width"]
        assert sum(shares.values()) == pytest.approx(1.0)
        store.create_sweep("few", {})
        store.create_run({"learning_rate": 1e-3}, name="few-1", sweep="few")
        with pytest.raises(SweepError):
            param_importance(store, "few")
    out = CliRunner().invoke(app, ["compare", "sweep:imp", "--importance"])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if "lr" in line or "width" in line]
    assert "lr" in lines[0]  # the most important first
