"""`rhea import`: upstream run folders of both branches become runs, nothing is refused for a key.

The folders follow the upstream writers byte for byte (tests/upstream_format.py).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from rhea_engine.errors import ImportFormatError
from rhea_engine.importer import import_runs, imported_metadata, parse_loss, parse_parameters
from rhea_engine.runs.rundir import read_config
from rhea_engine.runs.store import Store
from rhea_engine.upstream_runs import map_parameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from upstream_format import (  # noqa: E402
    MAIN_COLUMNS,
    MAIN_PARAMETERS,
    NOT_MAIN_COLUMNS,
    loss_text,
    write_run,
)


def last_row_of(loss_dat: Path) -> tuple[int, dict[str, float]]:
    """The last row of a loss.dat, read independently of Rhea (split on white space)."""
    lines = [line for line in loss_dat.read_text().splitlines() if line.strip()]
    names = [field.split(":", 1)[1] for field in lines[0].split()]
    values = dict(zip(names, (float(v) for v in lines[-1].split()), strict=True))
    return int(values.pop("epoch")), values


def db_metrics(home: Path, run: str, epoch: int) -> dict[str, float]:
    with sqlite3.connect(home / "runs.db") as conn:
        rows = conn.execute(
            "SELECT m.name, m.value FROM metrics m JOIN runs r ON r.id = m.run "
            "WHERE r.name = ? AND m.epoch = ?",
            (run, epoch),
        ).fetchall()
    return dict(rows)


@pytest.mark.parametrize("branch", ["main", "not-main"])
def test_folder_of_runs_every_last_row_value_is_in_the_database(
    tmp_path: Path, branch: str
) -> None:
    group = tmp_path / f"{branch}_sweep"
    for lr in (1e-3, 3e-4, 1e-4):
        write_run(group / f"lr_{lr:g}", branch, lr)
    (group / "notes").mkdir()  # not a run folder: ignored
    home = tmp_path / "home"
    with Store(home) as store:
        names = import_runs(store, group)
        sweep = group.name
        assert names == [f"{sweep}-1", f"{sweep}-2", f"{sweep}-3"]
        for name, folder in zip(names, sorted(group.glob("lr_*")), strict=True):
            epoch, expected = last_row_of(folder / "loss.dat")
            assert db_metrics(home, name, epoch) == expected
            row = store.get_run(name)
            assert row.status == "completed" and row.last_epoch == epoch == 3
    columns = set(MAIN_COLUMNS if branch == "main" else NOT_MAIN_COLUMNS) - {"epoch"}
    assert set(db_metrics(home, names[0], 1)) == columns


def test_main_parameters_are_mapped_or_kept_verbatim(tmp_path: Path) -> None:
    write_run(tmp_path / "trial", "main", 2e-4)
    home = tmp_path / "home"
    with Store(home) as store:
        assert import_runs(store, tmp_path / "trial", name="main-trial") == ["main-trial"]
        row = store.get_run("main-trial")
    config = row.config
    assert config["batch_size"] == 10 and config["epoch_num_samples"] == 10
    assert config["optimizer"] == "adamw" and config["activation"] == "leaky_relu"
    assert config["weight_decay"] == 0.0 and config["amsgrad"] is False
    assert config["conserve_lepton_number"] == "direct" and config["task_weighting"] == "fixed"
    assert config["stable_database_list"] == [
        "data/stable_oneflavor_database.h5",
        "data/stable_random_database.h5",
        "data/stable_zerofluxfac_database.h5",
    ]
    assert [d["kind"] for d in row.data] == ["asymptotic"] * 2 + ["stable"] * 3
    meta = imported_metadata(row.path)
    kept = meta["upstream_parameters"]
    for key in (
        "irreps_hidden",
        "tensor_product_class",
        "scalar_activation",
        "nonscalar_activation",
        "sampler",
        "adamw.fused",
        "loader.num_workers",
        "nhidden_F4",
        "task_weight_F4",
        "syne_tune",
    ):
        assert kept[key] == MAIN_PARAMETERS[key], key  # verbatim, as parameters.txt has it
    assert meta["upstream_renamed"]["weightedrandomsampler.epoch_num_samples"] == (
        "epoch_num_samples"
    )
    assert meta["upstream_renamed"]["op"] == "optimizer"
    assert meta["upstream_branch"] == "main"
    # run_trial.py's summary is cut short at its first tensor: noted, not fatal
    assert any("trial_summary.json was left out" in note for note in meta["import_notes"])


def test_whole_trial_summary_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "trial"
    write_run(folder, "main", 1e-3)
    summary = {"status": "failed", "error_type": "AssertionError", "error": "Negative densities"}
    (folder / "trial_summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    with Store(tmp_path / "home") as store:
        import_runs(store, folder, name="t")
        row = store.get_run("t")
    assert row.status == "failed" and "Negative densities" in (row.error or "")
    assert imported_metadata(row.path)["upstream_trial_summary"] == summary


def test_parameters_only_in_the_json_file(tmp_path: Path) -> None:
    folder = tmp_path / "trial"
    write_run(folder, "main", 1e-3)
    (folder / "parameters.txt").unlink()
    with Store(tmp_path / "home") as store:
        import_runs(store, folder, name="t")
        row = store.get_run("t")
    assert row.config["batch_size"] == 10 and row.config["optimizer"] == "adamw"
    kept = imported_metadata(row.path)["upstream_parameters"]
    assert kept["irreps_hidden"] == "4x0e+4x1o" and kept["adamw.fused"] is True


def test_checkpoints_are_copied_and_a_rebuild_keeps_the_runs(tmp_path: Path) -> None:
    group = tmp_path / "lr_scan"
    write_run(group / "a", "not-main", 1e-5, checkpoints=(1, 3))
    write_run(group / "b", "not-main", 5e-6, checkpoints=())
    with Store(tmp_path / "home") as store:
        import_runs(store, group)
        first = store.get_run("lr_scan-1")
        assert [(c["epoch"], Path(c["path"]).name, c["kind"]) for c in first.checkpoints] == [
            (1, "model1_cpu.pt", "upstream"),
            (3, "model3_cpu.pt", "upstream"),
        ]
        copied = first.path / first.checkpoints[0]["path"]
        assert copied.read_bytes() == (group / "a" / "model1_cpu.pt").read_bytes()
        with pytest.raises(ImportFormatError, match="already exists"):
            import_runs(store, group)
        assert len(store.list_runs()) == 2
        store.rebuild()
        again = store.get_run("lr_scan-1")
        assert again.status == "completed" and again.sweep == "lr_scan" and again.last_epoch == 3


def test_no_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "parameters.txt"
    path.write_text(
        "weird key with spaces = 1\n"
        "a.b.c-d = x\n"
        "tensor = tensor([1.0,\n"
        "        2.0])\n"
        "epochs=7\n"
        "learning_rate = __import__('os').getpid()\n"
    )
    params = parse_parameters(path)
    assert params["tensor"] == "tensor([1.0,\n        2.0])"
    mapped, kept, _ = map_parameters(params)
    assert mapped == {"epochs": 7}
    assert set(kept) == {"weird key with spaces", "a.b.c-d", "tensor", "learning_rate"}


def test_loss_dat_as_upstream_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "loss.dat"
    columns = ["epoch", "train_loss", "test_loss", "learning_rate"]
    rows = [
        {"epoch": e, "train_loss": -1.5 / e, "test_loss": float("nan"), "learning_rate": 1e-4}
        for e in (1, 2, 10, 123)
    ]
    text = loss_text(columns, rows)
    assert text.splitlines()[1].startswith("1           -1.500e+00  \tnan         \t")
    path.write_text(text)
    names, parsed, partial = parse_loss(path)
    assert names == columns and not partial
    assert [e for e, _ in parsed] == [1, 2, 10, 123]
    assert parsed[-1][1]["train_loss"] == pytest.approx(-1.5 / 123, rel=1e-3)
    # a writer stopped in the middle of its last line: that line is left out
    path.write_text(text + "124         1.000e+00   \t")
    assert len(parse_loss(path)[1]) == 4 and parse_loss(path)[2]


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "loss.dat",
            "1:epoch\t2:train_loss\t\n1           5.000e-01   \t\n2           \n3           \n",
            r"loss.dat, line 3: 1 values, but the header names 2",
        ),
        (
            "loss.dat",
            "1:epoch\t2:train_loss\t\n1           abc         \t\n",
            r"loss.dat, line 2: column 'train_loss' holds 'abc'",
        ),
        ("loss.dat", "epoch\ttrain_loss\n1\t0.5\n", r"loss.dat, line 1: expected a header"),
        ("loss.dat", "1:epoch\t3:train_loss\n", r"loss.dat, line 1: .*column 2"),
        ("loss.dat", "", r"loss.dat is empty"),
        (
            "parameters.txt",
            "this line is broken\nepochs = 5\n",
            r"parameters.txt, line 1: expected 'key = value'",
        ),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, file: str, text: str, message: str
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / file).write_text(text)
    home = tmp_path / "home"
    with Store(home) as store:
        with pytest.raises(ImportFormatError, match=message):
            import_runs(store, folder)
        assert store.list_runs() == []
    assert list((home / "runs").iterdir()) == []


def test_bad_run_in_group_writes_nothing(tmp_path: Path) -> None:
    group = tmp_path / "grp"
    write_run(group / "a", "not-main", 1e-5)
    (group / "b").mkdir()
    (group / "b" / "loss.dat").write_text("1:epoch\t2:x\t\n1           2           \t3\t\n")
    with Store(tmp_path / "home") as store:
        with pytest.raises(ImportFormatError, match=r"b/loss.dat, line 2"):
            import_runs(store, group)
        assert store.list_runs() == [] and store.sweeps() == []


def test_meta_of_a_rhea_run_is_not_imported(tmp_path: Path) -> None:
    with Store(tmp_path / "home") as store:
        row = store.create_run({}, name="own")
    assert imported_metadata(row.path) == {}
    assert "meta" in read_config(row.path)
