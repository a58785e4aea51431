"""Search spaces: CLI ranges and `--space` files in upstream main's Syne Tune shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rhea_engine.errors import ConfigError
from rhea_engine.sweep.space import load_space_file, parse_values

# the shape of upstream main's parms["syne_tune"] (ml_pytorch.build_default_parms), own values
SYNE_TUNE = {
    "report": False,
    "metric": "validation_score",
    "mode": "min",
    "resource_attr": "epoch",
    "max_resource_attr": "epochs",
    "config_space": {
        "epochs": 6,
        "learning_rate": {"type": "loguniform", "lower": 2e-5, "upper": 5e-3},
        "loader.batch_size": {"type": "randint", "lower": 16, "upper": 128},
        "adamw.weight_decay": {"type": "loguniform", "lower": 1e-7, "upper": 1e-3},
        "nhidden_shared": {"type": "choice", "values": [0, 1, 2]},
        "width_shared": {"type": "lograndint", "lower": 8, "upper": 64},
        "dropout_probability": {"type": "uniform", "lower": 0.0, "upper": 0.2},
    },
    "backend": {"pass_args_as_json": True, "rotate_gpus": True, "num_gpus_per_trial": 1},
    "scheduler": {
        "name": "hyperband",
        "searcher": "random",
        "type": "stopping",
        "grace_period": 2,
        "reduction_factor": 2,
    },
    "tuner": {"n_workers": 2},
    "stop": {"max_wallclock_time": 900},
}

TOML = """
metric = "validation_score"
mode = "min"
resource_attr = "epoch"
max_resource_attr = "epochs"

[config_space]
epochs = 6
"loader.batch_size" = { type = "randint", lower = 16, upper = 128 }
nhidden_shared = { type = "choice", values = [0, 1, 2] }

[config_space.learning_rate]
type = "loguniform"
lower = 2e-5
upper = 5e-3
"""


def _check_upstream_space(space) -> None:  # type: ignore[no-untyped-def]
    dims = {d.label: d for d in space.dimensions}
    assert dims["learning_rate"].type == "loguniform"
    assert (dims["learning_rate"].lower, dims["learning_rate"].upper) == (2e-5, 5e-3)
    # upstream's dotted names become Rhea keys
    assert dims["loader.batch_size"].keys == ("batch_size",)
    assert dims["loader.batch_size"].type == "randint"
    assert dims["nhidden_shared"].values == (0, 1, 2)
    assert space.fixed == {"epochs": 6}
    assert space.metric == "validation_score" and space.mode == "min"
    assert space.max_resource_attr == "epochs"


def test_upstream_syne_tune_table_as_json_parms_and_toml(tmp_path: Path) -> None:
    plain = tmp_path / "space.json"
    plain.write_text(json.dumps(SYNE_TUNE))
    space = load_space_file(plain)
    _check_upstream_space(space)
    assert space.dimensions[2].keys == ("weight_decay",)
    assert {d.label: d.type for d in space.dimensions}["width_shared"] == "lograndint"
    # Syne Tune's hyperband (stopping) is asynchronous successive halving; its settings map
    assert space.defaults == {
        "pruner": "asha",
        "min_epochs": 2,
        "eta": 2,
        "search": "random",
        "budget_seconds": 900.0,
        "parallel": 2,
    }
    assert space.ignored == ["backend"]
    parms = tmp_path / "parms.json"
    parms.write_text(json.dumps({"epochs": 10, "syne_tune": SYNE_TUNE}))
    assert load_space_file(parms).dimensions == space.dimensions
    toml = tmp_path / "space.toml"
    toml.write_text(TOML)
    _check_upstream_space(load_space_file(toml))


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_rate": {"type": "normal", "lower": 1, "upper": 2}}, "type 'normal'"),
        ({"learning_rate": {"type": "loguniform", "lower": 0, "upper": 1}}, "positive"),
        ({"learning_rate": {"type": "uniform", "lower": 2, "upper": 1}}, "low <= high"),
        ({"learning_rate": {"type": "uniform"}}, "needs 'lower' and 'upper'"),
        ({"learning_rate": {"type": "randint", "lower": 1, "upper": 3}}, "real values"),
        ({"irreps_hidden": {"type": "choice", "values": ["4x0e"]}}, "Unknown config key"),
        ({"activation": {"type": "uniform", "lower": 0, "upper": 1}}, "not numeric"),
        ({"nhidden_shared": {"type": "choice", "values": []}}, "non-empty list"),
        ({"epochs": 3}, "no dimension"),
    ],
)
def test_bad_space_files_are_config_errors(tmp_path: Path, space: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"config_space": space, "max_resource_attr": "epochs"}))
    with pytest.raises(ConfigError, match=message):
        load_space_file(path)


def test_unreadable_and_odd_space_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_space_file(tmp_path / "none.json")
    broken = tmp_path / "broken.toml"
    broken.write_text("config_space = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_space_file(broken)
    for section, message in (
        ({"mode": "sideways"}, "min or max"),
        ({"max_resource_attr": "steps"}, "must be 'epochs'"),
        ({"resource_attr": "step"}, "must be 'epoch'"),
    ):
        path = tmp_path / "odd.json"
        space = {"learning_rate": {"type": "loguniform", "lower": 1e-5, "upper": 1e-3}}
        path.write_text(json.dumps({"config_space": space, **section}))
        with pytest.raises(ConfigError, match=message):
            load_space_file(path)


def test_cli_ranges_are_the_same_structure_as_a_space_file(tmp_path: Path) -> None:
    dims, fixed = parse_values(
        {"lr": "2e-5:5e-3:log", "epochs": "6"}, ["batch_size=16:128", "nhidden_shared=0,1,2"]
    )
    path = tmp_path / "space.toml"
    path.write_text(TOML)
    from_file = {d.keys: d.to_dict() for d in load_space_file(path).dimensions}
    from_cli = {d.keys: d.to_dict() for d in dims}
    assert from_cli == from_file
    assert fixed == {"epochs": 6}
