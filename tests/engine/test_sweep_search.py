"""The sweep's Optuna study on its own: every sampler asks within the space and hears results;
and a trial's objectives (latency, parameters, ELN violation) read from a real trained run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rhea_engine.config import default_config
from rhea_engine.runs import launch
from rhea_engine.runs.store import Store
from rhea_engine.sweep.objectives import LATENCY_FILE, check_objectives, objective_values
from rhea_engine.sweep.search import TrialSearch
from rhea_engine.sweep.space import parse_values

SPACE = {"lr": "1e-5:1e-1:log", "width": "4:64:logint", "nhidden": "0,1,2"}


def _spec(search: str, objectives: int = 1) -> dict:
    names = ["test_loss", "params"][:objectives]
    return {
        "search": search,
        "search_seed": 3,
        "trials": 8,
        "objectives": [{"name": n, "direction": "minimize"} for n in names],
        "pruning": None,
        "max_epochs": 4,
    }


@pytest.mark.parametrize(
    ("search", "objectives"), [("tpe", 1), ("gp", 1), ("cmaes", 1), ("tpe", 2), ("gp", 2)]
)
def test_each_sampler_asks_inside_the_space_and_is_told(search: str, objectives: int) -> None:
    dims, _ = parse_values(SPACE, [])
    study = TrialSearch.open(None, f"s-{search}", _spec(search, objectives), dims)
    for k in range(8):
        params = study.ask(f"s-{k}")
        assert 1e-5 <= params["lr"] <= 1e-1 and 4 <= params["width"] <= 64
        assert isinstance(params["width"], int) and params["nhidden"] in (0, 1, 2)
        # a bowl in log(lr) around 1e-3; the second objective prefers small widths
        loss = (math.log10(params["lr"]) + 3) ** 2 + 0.01 * params["nhidden"]
        values = [loss, float(params["width"])][:objectives]
        assert study.tell(f"s-{k}", "completed", values) == "COMPLETE"
    trials = study.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8
    assert [t.user_attrs["run"] for t in trials] == [f"s-{k}" for k in range(8)]


def test_pruned_failed_and_stopped_trials_are_told_as_such() -> None:
    dims, _ = parse_values(SPACE, [])
    spec = {**_spec("tpe"), "pruning": {"kind": "asha", "min_epochs": 1, "eta": 2}}
    search = TrialSearch.open(None, "told", spec, dims)
    for name in ("good", "bad", "broken", "cut"):
        search.ask(name)
    assert search.report("good", [(1, 0.5), (2, 0.4)]) is None
    # the second trial at epoch 1 is worse than the best half: pruned there, not later
    assert search.report("bad", [(1, 0.9), (2, 0.8)]) == (1, 0.9)
    assert search.report("cut", [(1, 0.1)]) is None
    assert search.tell("good", "completed", [0.4]) == "COMPLETE"
    assert search.tell("bad", "pruned", None) == "PRUNED"
    assert search.tell("broken", "diverged", None) == "FAIL"
    assert search.tell("cut", "stopped", None) == "PRUNED"  # the budget cut it: its curve counts
    assert search.tell("good", "completed", [0.4]) == "unknown"  # told once only
    assert "Pruned by ASHA at epoch 1" in search.why_pruned("bad", 1, 0.9)


def test_objectives_of_a_real_trained_run(rhea_home: Path, tiny_data: tuple[Path, Path]) -> None:
    assert check_objectives(["validation_score", "params"]) == ["test_loss", "params"]
    config = default_config().replace(
        epochs=2,
        epoch_num_samples=1000,
        batch_size=250,
        device="cpu",
        heartbeat_seconds=1.0,
        database_list=[str(tiny_data[0])],
        stable_database_list=[str(tiny_data[1])],
    )
    with Store(rhea_home) as store:
        row = store.create_run(config, name="obj")
        launch.start_worker(store, "obj").wait(timeout=300)
        row = launch.wait_final(store, "obj", 60)
        assert row.status == "completed", row.error
        names = ["test_loss", "eln_violation", "params", "latency", "model_eln_violation"]
        values = objective_values(store, store.get_run("obj"), names)
        series = store.metrics("obj", ["test_loss", "ELN_violation_test"])
        best = min(series["test_loss"], key=lambda p: p[1])
        assert values[0] == pytest.approx(best[1])
        assert values[1] == pytest.approx(dict(series["ELN_violation_test"])[best[0]])
        from rhea_engine.model import build_model

        assert values[2] == sum(p.numel() for p in build_model(config).parameters())
        assert values[3] is not None and 0 < values[3] < 10_000  # ms for 1024 cells
        assert (row.path / LATENCY_FILE).is_file()  # measured once, kept with the run
        assert objective_values(store, row, ["latency"], measure=False) == [values[3]]
        assert values[4] == pytest.approx(store.get_run("obj").evaluation["model_eln_violation"])
