"""What figures show, computed without matplotlib; the Pareto figure through its own API."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from rhea_engine.errors import PlotError
from rhea_engine.figures.data import (
    RunData,
    default_panels,
    elapsed_seconds,
    objective_values,
    pareto_front,
    parse_objective,
    smooth,
    sweep_objectives,
)
from rhea_engine.vocabulary import TASKS


def test_pareto_front_minimises_unless_told_to_maximise() -> None:
    points = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0), (5.0, 1.0), (2.0, 2.0), (6.0, 6.0)]
    assert pareto_front(points, [False, False]) == [0, 1, 3, 4]  # ties are both kept
    assert pareto_front(points, [True, True]) == [5]
    assert pareto_front(points, [False, True]) == [0, 5]
    three = [(1, 1, 9), (2, 2, 1), (3, 3, 3)]
    assert pareto_front(three, [False] * 3) == [0, 1]
    assert parse_objective("max:model_stability_accuracy") == ("model_stability_accuracy", True)
    assert parse_objective("test_loss") == ("test_loss", False)
    assert parse_objective("min:a:b") == ("a:b", False)


def test_smoothing_and_training_time() -> None:
    assert smooth([1.0, 3.0, 5.0, math.nan, 7.0], 2) == [1.0, 2.0, 4.0, 5.0, 7.0]
    assert smooth([2.0, 4.0], 1) == [2.0, 4.0]
    events = [
        {"type": "start", "t": 100.0},
        {"type": "epoch", "epoch": 1, "t": 110.0},
        {"type": "heartbeat", "t": 112.0},
        {"type": "epoch", "epoch": 2, "t": 115.0},
        {"type": "status", "status": "stopped", "t": 116.0},
        {"type": "start", "t": 500.0},  # resumed much later: the pause does not count
        {"type": "epoch", "epoch": 3, "t": 504.0},
    ]
    assert elapsed_seconds(events) == {1: 10.0, 2: 15.0, 3: 19.0}


def _run(name: str, metrics: list[str], **config: object) -> RunData:
    return RunData(name, dict(config), {m: [(1, 1.0), (2, 0.5)] for m in metrics})


def test_default_panels_follow_the_runs_metrics() -> None:
    rhea = ["train_loss", "test_loss", "ELN_violation", "learning_rate"]
    rhea += [f"{t}_test_loss" for t in TASKS]
    one = default_panels([_run("a", rhea)])
    assert [p.title for p in one] == [
        "total loss",
        "test loss per task",
        "ELN violation",
        "learning rate",
    ]
    assert [m for m, _ in one[1].lines] == [f"{t}_test_loss" for t in TASKS]
    two = default_panels([_run("a", rhea), _run("b", ["test_loss", "ndens_test_loss"])])
    assert len(two) == 1 + len(TASKS) + 2  # a panel per task once the runs are the colours
    own = default_panels([_run("s", ["my_loss", "accuracy_on_holdout"])])
    assert [p.title for p in own] == ["accuracy on holdout", "my loss"]


def test_objectives_from_metrics_evaluations_and_sweep_specs() -> None:
    a = _run("a", ["test_loss"])
    a.evaluation = {"model_ndens_e_mean_err": 0.1}
    b = _run("b", ["test_loss"])  # no evaluation: left out
    assert objective_values([a, b], ["test_loss", "model_ndens_e_mean_err"], "best") == {
        "a": [0.5, 0.1]
    }
    assert objective_values([a], ["test_loss"], "last") == {"a": [0.5]}
    spec = {"objectives": ["test_loss", {"metric": "model_stability_accuracy", "mode": "max"}]}
    assert sweep_objectives(spec) == ["test_loss", "max:model_stability_accuracy"]
    assert sweep_objectives({"objective": "test_loss"}) == ["test_loss"]
    assert sweep_objectives({}) == []


def test_pareto_figure_api_for_three_objectives(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from rhea_engine.figures.style import save, styled
    from rhea_engine.figures.sweeps import pareto_figure

    values = {"t1": [1.0, 1.0, 9.0], "t2": [2.0, 2.0, 1.0], "t3": [3.0, 3.0, 3.0]}
    with styled("paper"):
        figure = pareto_figure(["loss", "eln", "ms"], values, [False, False, False])
        save(figure, tmp_path / "p.svg", "svg")
    text = (tmp_path / "p.svg").read_text()
    assert len(re.findall(r'<g id="axes_\d+"', text)) == 3  # one panel per pair
    assert text.count('id="rhea--pareto--front"') == 3
    assert "t3" not in text  # only the front is named
    with pytest.raises(PlotError, match="at least two objectives"):
        pareto_figure(["loss"], {"t1": [1.0], "t2": [2.0]})
    with pytest.raises(PlotError, match="at least two runs"):
        pareto_figure(["loss", "eln"], {"t1": [1.0, 2.0]})


def test_many_values_of_a_parameter_get_a_colour_bar() -> None:
    pytest.importorskip("matplotlib")
    from rhea_engine.figures.curves import run_colors

    runs = [_run(f"r{i}", ["test_loss"], learning_rate=10 ** (-i / 2)) for i in range(10)]
    coloring = run_colors(runs, "learning_rate")
    assert coloring.mappable is not None and coloring.label == "learning_rate"
    assert len(set(coloring.colors.values())) == 10
    few = run_colors(runs[:3], "learning_rate")
    assert few.mappable is None and [e[0] for e in few.entries] == [
        "learning_rate = 0.1",  # in the order of the values, not of the runs
        "learning_rate = 0.316",
        "learning_rate = 1",
    ]
    with pytest.raises(PlotError, match="Parameters they have: learning_rate"):
        run_colors(runs, "width")
