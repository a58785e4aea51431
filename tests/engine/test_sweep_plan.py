"""Sweep planning: grid and random expansion, validation before anything is written, ASHA rungs."""

from __future__ import annotations

import math

import pytest

from rhea_engine import config as cfgmod
from rhea_engine.errors import ConfigError, SweepError
from rhea_engine.sweep import (
    Asha,
    asha_rungs,
    next_sweep_name,
    parse_range,
    parse_sweep_values,
    plan_sweep,
)

BASE = cfgmod.default_config().to_dict()


def test_grid_is_cartesian_product_over_shortcuts_and_set() -> None:
    axes, ranges, fixed = parse_sweep_values(
        {"lr": "1e-4,1e-5", "width": "32,64", "epochs": "3"},
        ["dropout_probability=0,0.1,0.2"],
        False,
    )
    assert not ranges
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
        parse_sweep_values({}, ["widht=1,2"], False)
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_sweep_values({"lr": "1e-4,fast"}, [], False)
    axes, _, _ = parse_sweep_values({"width": "32,0"}, [], False)
    with pytest.raises(ConfigError, match=r"Trial 2 of the sweep \(width=0\).*width_shared"):
        plan_sweep("s", BASE, axes)
    axes, _, _ = parse_sweep_values({}, ["activation=relu,sigmoid"], False)
    with pytest.raises(ConfigError, match="activation"):
        plan_sweep("s", BASE, axes)
    with pytest.raises(ConfigError, match="need --random"):
        parse_sweep_values({"lr": "1e-6:1e-3:log"}, [], False)
    with pytest.raises(ConfigError, match="both swept and set"):
        parse_sweep_values({"lr": "1e-3,1e-4"}, ["learning_rate=1e-5"], False)
    with pytest.raises(ConfigError, match="another flag already sweeps"):
        parse_sweep_values({"width": "8,16"}, ["width_flux=32,64"], False)
    with pytest.raises(ConfigError, match="Nothing to sweep"):
        plan_sweep("s", BASE, [])
    with pytest.raises(SweepError):
        plan_sweep("../evil", BASE, parse_sweep_values({"lr": "1e-3,1e-4"}, [], False)[0])


def test_random_search_is_reproducible_per_seed_and_respects_ranges() -> None:
    axes, ranges, _ = parse_sweep_values(
        {"lr": "1e-6:1e-3:log", "width": "16:128:int", "nhidden": "0,1,2"}, [], True
    )
    a = plan_sweep("r", BASE, axes, ranges, n_random=8, search_seed=7)
    b = plan_sweep("r", BASE, axes, ranges, n_random=8, search_seed=7)
    c = plan_sweep("r", BASE, axes, ranges, n_random=8, search_seed=8)
    assert a.configs == b.configs
    assert a.configs != c.configs
    for cfg in a.configs:
        assert 1e-6 <= cfg["learning_rate"] <= 1e-3
        assert isinstance(cfg["width_shared"], int) and 16 <= cfg["width_shared"] <= 128
        assert cfg["nhidden_flux"] in (0, 1, 2)
    # log sampling spreads over decades rather than piling up near the top
    lrs = [cfg["learning_rate"] for cfg in plan_sweep("r", BASE, axes, ranges, 200, 1).configs]
    assert sum(lr < 1e-4 for lr in lrs) > 50


def test_parse_range_rejects_nonsense() -> None:
    assert parse_range("width", "16:128").scale == "int"
    assert parse_range("lr", "1e-5:1e-3:log").scale == "log"
    for text in ("1e-3:1e-5", "0:1e-3:log", "1:2:cubic", "a:b", "16.5:20:int"):
        with pytest.raises(ConfigError):
            parse_range("lr" if "int" not in text else "width", text)
    with pytest.raises(ConfigError):
        parse_range("activation", "1:2")


def test_next_sweep_name() -> None:
    assert next_sweep_name([]) == "sweep1"
    assert next_sweep_name(["sweep1", "lr-scan", "sweep7"]) == "sweep8"


def test_asha_rungs() -> None:
    assert asha_rungs(1, 3, 30) == [1, 3, 9, 27]
    assert asha_rungs(2, 2, 16) == [2, 4, 8]
    assert asha_rungs(5, 3, 5) == []
    with pytest.raises(ConfigError):
        asha_rungs(1, 1, 10)


def test_asha_keeps_the_best_fraction_at_each_rung() -> None:
    asha = Asha(min_epochs=1, eta=2, max_epochs=8)  # rungs 1, 2, 4
    assert asha.rungs == [1, 2, 4]
    # the first trial at a rung always continues (nothing to compare with yet)
    assert asha.report("a", 1, 0.5) is False
    # a worse second trial is outside the best half -> pruned
    assert asha.report("b", 1, 0.9) is True
    # a better one is kept
    assert asha.report("c", 1, 0.1) is False
    # 4 at the rung: best 2 kept; d (0.3) ranks 2nd of {0.1, 0.3, 0.5, 0.9} -> kept
    assert asha.report("d", 1, 0.3) is False
    # a pruned trial stays pruned and has no pending rungs
    assert asha.pending_rungs("b", 8) == []
    assert asha.pending_rungs("a", 4) == [2, 4]
    # non-finite losses rank last
    assert asha.report("a", 2, 0.4) is False
    assert asha.report("c", 2, math.nan) is True
    assert asha.pruned == {"b": 1, "c": 2}
