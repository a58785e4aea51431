"""The Pareto front: a hand-made case, directions, ties, and a sweep read from a real store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.errors import SweepError
from rhea_engine.pareto import dominates, pareto_front, sweep_tradeoffs
from rhea_engine.runs.refresh import refresh
from rhea_engine.runs.rundir import RunWriter
from rhea_engine.runs.store import Store
from rhea_tui.cli import app

#: (test loss, parameters): a, c, e and f trade off; b is beaten by a, d by c, g by e
POINTS = {
    "a": (0.10, 9000.0),
    "b": (0.12, 9500.0),
    "c": (0.20, 3000.0),
    "d": (0.25, 3000.0),
    "e": (0.40, 800.0),
    "f": (0.90, 100.0),
    "g": (0.95, 800.0),
}
FRONT = ["a", "c", "e", "f"]


def test_front_of_a_hand_made_case() -> None:
    names = list(POINTS)
    front = pareto_front([POINTS[n] for n in names])
    assert [names[i] for i in front] == FRONT
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (2, 1))
    assert not dominates((1, 1), (1, 1))
    # equal points do not dominate each other: both stay
    assert pareto_front([(1.0, 1.0), (1.0, 1.0), (2.0, 2.0)]) == [0, 1]
    # maximising the second objective turns the front around
    assert pareto_front([(1.0, 1.0), (2.0, 5.0), (3.0, 4.0)], ["minimize", "maximize"]) == [0, 1]


def _trial(store: Store, name: str, loss: float, params: float, status: str = "completed") -> None:
    row = store.create_run({"epochs": 2, "learning_rate": loss / 100}, name=name, sweep="mo")
    with RunWriter(row.path) as writer:
        writer.start(n_parameters=int(params), total_epochs=2)
        # the best epoch is the second; its ELN violation is what eln_violation reads
        writer.epoch(1, {"test_loss": loss * 2, "ELN_violation_test": 9.0})
        writer.epoch(2, {"test_loss": loss, "ELN_violation_test": params / 1e4})
        writer.status(status)


def test_sweep_tradeoffs_from_a_real_store_and_compare_pareto(rhea_home: Path) -> None:
    objectives = [
        {"name": "test_loss", "direction": "minimize"},
        {"name": "params", "direction": "minimize"},
    ]
    with Store(rhea_home) as store:
        store.create_sweep("mo", {"search": "tpe", "objectives": objectives})
        for name, (loss, params) in POINTS.items():
            _trial(store, name, loss, params)
        # a failed trial with the best loss of all is not a trade-off
        _trial(store, "broken", 0.01, 10.0, status="failed")
        refresh(store)
        result = sweep_tradeoffs(store, "mo")
        assert result["objectives"] == ["test_loss", "params"]
        assert sorted(t["run"] for t in result["trials"] if t["front"]) == FRONT
        assert result["front"] == FRONT  # ordered along the first objective
        assert {t["run"]: t["values"] for t in result["trials"]}["b"] == [0.12, 9500.0]
        assert result["left_out"] == [{"run": "broken", "status": "failed", "missing": []}]
        # other objectives on demand: eln_violation is read at the best epoch (params/1e4 here)
        again = sweep_tradeoffs(store, "mo", ["test_loss", "eln_violation"])
        assert again["front"] == FRONT
        with pytest.raises(SweepError, match="at least two objectives"):
            sweep_tradeoffs(store, "mo", ["test_loss"])
    result = CliRunner().invoke(app, ["compare", "sweep:mo", "--pareto", "--no-plots"])
    assert result.exit_code == 0, result.output
    marked = re.findall(r"│ ★ │ (\S+)", result.output)
    assert sorted(marked) == FRONT
    assert "broken (failed)" in result.output
    plotted = CliRunner().invoke(app, ["compare", "sweep:mo", "--pareto"], env={"COLUMNS": "100"})
    assert plotted.exit_code == 0 and "Pareto front" in plotted.output
