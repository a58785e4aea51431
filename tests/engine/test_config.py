"""TrainConfig: typed --set parsing, sources in order, and clear errors for bad input."""

from __future__ import annotations

import pytest

from rhea_engine import config
from rhea_engine.errors import ConfigError
from rhea_engine.vocabulary import TASKS


def test_defaults_include_loss_multipliers() -> None:
    cfg = config.default_config()
    assert [cfg.loss_multiplier(t) for t in TASKS] == [1, 1, 1, 1, 1, 10]


def test_set_parses_types_against_keys() -> None:
    values = config.parse_set(
        [
            "do_batchnorm=false",
            "epochs=12",
            "learning_rate=1e-5",
            "activation=gelu",
            "database_list=a.h5,b.h5",
            "batch_size=1_024",
        ]
    )
    assert values == {
        "do_batchnorm": False,
        "epochs": 12,
        "learning_rate": 1e-5,
        "activation": "gelu",
        "database_list": ("a.h5", "b.h5"),
        "batch_size": 1024,
    }


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("no_such_key=1", "Unknown config key 'no_such_key'"),
        ("epochs=ten", "'epochs' expects an int"),
        ("epochs=1.5", "'epochs' expects an int"),
        ("do_batchnorm=maybe", "'do_batchnorm' expects true or false"),
        ("learning_rate=nan", "'learning_rate' expects a float"),
        ("noequals", "key=value"),
    ],
)
def test_bad_set_items_name_the_key(item: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        config.resolve(sets=[item])


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("activation", "os.system", "must be one of leaky_relu"),
        ("optimizer", "lbfgs", "must be one of adamw"),
        ("conserve_lepton_number", "maybe", "none, direct, ymatrix"),
        ("device", "tpu", "auto, cpu, cuda"),
        ("test_size", "1.5", "strictly between 0 and 1"),
        ("width_shared", "0", "at least 1"),
    ],
)
def test_whitelists_and_ranges(key: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config.resolve(sets=[f"{key}={value}"])


def test_sources_later_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "c.toml"
    toml.write_text("learning_rate = 0.01\nepochs = 7\nwidth_shared = 16\n")
    cfg = config.resolve(toml, {"lr": 1e-4, "width": 48}, ["epochs=9"])
    assert cfg.learning_rate == 1e-4  # shortcut beats file
    assert cfg.epochs == 9  # --set beats file
    assert cfg.width_shared == 48 and cfg.width_flux == 48  # --width sets all widths


def test_toml_unknown_key_and_bad_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad_key = tmp_path / "a.toml"
    bad_key.write_text("learning_rat = 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        config.resolve(bad_key)
    broken = tmp_path / "b.toml"
    broken.write_text("learning_rate = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.resolve(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        config.resolve(tmp_path / "missing.toml")


def test_round_trip_through_dict() -> None:
    cfg = config.resolve(sets=["database_list=x.h5", "NF=3"])
    assert config.from_dict(cfg.to_dict()) == cfg
