"""Sweep planning: grid and random expansion, validation before anything is written."""

from __future__ import annotations

import pytest

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, SweepError
from rhea_engine.sweep import next_sweep_name, parse_range, parse_values, plan_sweep
from rhea_engine.sweep.search import check_pruning

BASE = cfgmod.default_config().to_dict()


def test_grid_is_cartesian_product_over_shortcuts_and_set() -> None:
    axes, fixed = parse_values(
        {"lr": "1e-4,1e-5", "width": "32,64", "epochs": "3"},
        ["dropout_probability=0,0.1,0.2"],
    )
    assert all(a.is_choice for a in axes)
    assert fixed == {"epochs": 3}
    plan = plan_sweep("scan", {**BASE, **fixed}, axes)
    assert len(plan.trials) == 2 * 2 * 3
    assert plan.run_names()[:2] == ["scan-1", "scan-2"]
    combos = {(c["learning_rate"], c["width_flux"], c["dropout_probability"]) for c in plan.configs}
    assert len(combos) == 12
    # --width sets every head's width
    for c in plan.configs:
        assert c["width_shared"] == c["width_stability"] == c["width_density"] == c["width_flux"]
        assert c["epochs"] == 3
    assert plan.configs[0]["learning_rate"] == 1e-4 and plan.configs[-1]["learning_rate"] == 1e-5


def test_unknown_key_and_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="Unknown config key 'widht'"):
        parse_values({}, ["widht=1,2"])
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_values({"lr": "1e-4,fast"}, [])
    axes, _ = parse_values({"width": "32,0"}, [])
    with pytest.raises(ConfigError, match=r"Trial 2 of the sweep \(width=0\).*width_shared"):
        plan_sweep("s", BASE, axes)
    axes, _ = parse_values({}, ["activation=relu,sigmoid"])
    with pytest.raises(ConfigError, match="activation"):
        plan_sweep("s", BASE, axes)
    with pytest.raises(ConfigError, match="need --random"):
        plan_sweep("s", BASE, parse_values({"lr": "1e-6:1e-3:log"}, [])[0])
    with pytest.raises(ConfigError, match="both swept and set"):
        parse_values({"lr": "1e-3,1e-4"}, ["learning_rate=1e-5"])
    with pytest.raises(ConfigError, match="another flag already sweeps"):
        parse_values({"width": "8,16"}, ["width_flux=32,64"])
    with pytest.raises(ConfigError, match="Nothing to sweep"):
        plan_sweep("s", BASE, [])
    with pytest.raises(SweepError):
        plan_sweep("../evil", BASE, parse_values({"lr": "1e-3,1e-4"}, [])[0])


def test_random_search_is_reproducible_per_seed_and_respects_ranges() -> None:
    dims, _ = parse_values({"lr": "1e-6:1e-3:log", "width": "16:128:int", "nhidden": "0,1,2"}, [])
    a = plan_sweep("r", BASE, dims, n_random=8, search_seed=7)
    b = plan_sweep("r", BASE, dims, n_random=8, search_seed=7)
    c = plan_sweep("r", BASE, dims, n_random=8, search_seed=8)
    assert a.configs == b.configs
    assert a.configs != c.configs
    for cfg in a.configs:
        assert 1e-6 <= cfg["learning_rate"] <= 1e-3
        assert isinstance(cfg["width_shared"], int) and 16 <= cfg["width_shared"] <= 128
        assert cfg["nhidden_flux"] in (0, 1, 2)
    # log sampling spreads over decades rather than piling up near the top
    lrs = [cfg["learning_rate"] for cfg in plan_sweep("r", BASE, dims, 200, 1).configs]
    assert sum(lr < 1e-4 for lr in lrs) > 50


def test_parse_range_rejects_nonsense() -> None:
    assert parse_range("width", "16:128").type == "randint"
    assert parse_range("lr", "1e-5:1e-3:log").type == "loguniform"
    assert parse_range("width", "16:128:log").type == "lograndint"  # integers stay integers
    for text in ("1e-3:1e-5", "0:1e-3:log", "1:2:cubic", "a:b", "16.5:20:int"):
        with pytest.raises(ConfigError):
            parse_range("lr" if "int" not in text else "width", text)
    with pytest.raises(ConfigError):
        parse_range("activation", "1:2")


def test_next_sweep_name() -> None:
    assert next_sweep_name([]) == "sweep1"
    assert next_sweep_name(["sweep1", "lr-scan", "sweep7"]) == "sweep8"


def test_pruning_needs_a_rung_below_the_last_epoch() -> None:
    check_pruning(1, 3, 30)
    check_pruning(4, 2, 5)
    for args in ((5, 3, 5), (0, 3, 10), (1, 1, 10)):
        with pytest.raises(ConfigError):
            check_pruning(*args)
