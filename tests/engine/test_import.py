"""`rhea import`: upstream run folders (parameters.txt, loss.dat, model*_*.pt) become runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rhea_engine.errors import ImportFormatError
from rhea_engine.importer import import_runs, parse_loss, parse_parameters
from rhea_engine.runs.rundir import read_config
from rhea_engine.runs.store import Store
from rhea_engine.vocabulary import TASKS


def loss_columns() -> list[str]:
    names = ["epoch", "learning_rate", "ELN_violation"]
    for task in TASKS:
        names += [
            f"{task}_train_loss",
            f"{task}_train_max",
            f"{task}_test_loss",
            f"{task}_test_max",
        ]
    return names


def write_upstream_run(
    folder: Path, lr: float, epochs: int = 6, checkpoints: tuple[int, ...] = (5,)
) -> None:
    """A run folder in the upstream layout, numbers made up to decay with the epoch."""
    folder.mkdir(parents=True)
    (folder / "parameters.txt").write_text(
        "\n".join(
            [
                "database_list = ['/data/asymptotic_M1-NuLib-old.h5']",
                "stable_database_list = ['/data/stable_M1-Nulib-7ms_rl2.h5', '/data/stable_M1-Nulib-7ms_rl3.h5']",
                "NF = 3",
                "test_size = 0.5",
                f"epochs = {epochs}",
                "batch_size = 10000",
                f"learning_rate = {lr}",
                "op = <class 'torch.optim.adamw.AdamW'>",
                "activation = <class 'torch.nn.modules.activation.LeakyReLU'>",
                "do_batchnorm = True",
                "width_shared = 128",
                "nhidden_shared = 2",
                "loss_multiplier_stable = 1.0",
                "loss_multiplier_unphysical = 10.0",
                "warmup_iters = 10",
                "do_learn_task_weights = False",
                "quickplot_every = 50",
                "",
            ]
        )
    )
    columns = loss_columns()
    lines = ["\t".join(f"{i}:{name}" for i, name in enumerate(columns, start=1))]
    for epoch in range(1, epochs + 1):
        row = [str(epoch), repr(lr), repr(0.1 / epoch)]
        for t, _ in enumerate(TASKS):
            loss = (t + 1) * lr * 1e3 / epoch
            row += [repr(loss), repr(3 * loss), repr(1.1 * loss), repr(3.3 * loss)]
        lines.append("\t".join(row))
    (folder / "loss.dat").write_text("\n".join(lines) + "\n")
    for epoch in checkpoints:
        (folder / f"model{epoch}_cuda.pt").write_bytes(b"not really a model " + bytes([epoch]))


def test_group_imports_as_sweep_with_metrics_and_checkpoints(tmp_path: Path) -> None:
    group = tmp_path / "lr_scan"
    write_upstream_run(group / "model_learning_rate_1e-05", 1e-5)
    write_upstream_run(group / "model_learning_rate_5e-06", 5e-6, checkpoints=(2, 4))
    (group / "notes").mkdir()  # not a run folder: ignored
    home = tmp_path / "home"
    with Store(home) as store:
        names = import_runs(store, group)
        assert names == ["lr_scan-1", "lr_scan-2"]
        rows = store.resolve_handles(["sweep:lr_scan"])
        assert [r.status for r in rows] == ["completed", "completed"]
        first = store.get_run("lr_scan-1")
        assert first.config["learning_rate"] == 1e-5
        assert first.config["optimizer"] == "adamw" and first.config["activation"] == "leaky_relu"
        assert first.config["database_list"] == ["/data/asymptotic_M1-NuLib-old.h5"]
        assert first.config["width_shared"] == 128 and first.config["test_size"] == 0.5
        assert first.last_epoch == 6
        series = store.metrics("lr_scan-1")
        assert [e for e, _ in series["ELN_violation"]] == [1, 2, 3, 4, 5, 6]
        assert series["growthrate_test_max"][0][1] == pytest.approx(3.3 * 5 * 1e-5 * 1e3)
        # the totals are derived from the task losses and multipliers (unphysical x10)
        expected = sum(
            (t + 1) * 1e-2 * (10.0 if task == "unphysical" else 1.0) for t, task in enumerate(TASKS)
        )
        assert series["train_loss"][0][1] == pytest.approx(expected)
        assert first.best_test_loss == pytest.approx(series["test_loss"][-1][1])
        meta = read_config(first.path)["meta"]
        assert meta["upstream_parameters"] == {"quickplot_every": "50"}
        assert meta["imported_from"].endswith("model_learning_rate_1e-05")
        second = store.get_run("lr_scan-2")
        assert [(c["epoch"], Path(c["path"]).name) for c in second.checkpoints] == [
            (2, "model2_cuda.pt"),
            (4, "model4_cuda.pt"),
        ]
        copied = second.path / second.checkpoints[0]["path"]
        assert (
            copied.read_bytes()
            == (group / "model_learning_rate_5e-06" / "model2_cuda.pt").read_bytes()
        )
        # importing the same folder again is refused, nothing changes
        with pytest.raises(ImportFormatError, match="already exists"):
            import_runs(store, group)
        assert len(store.list_runs()) == 2
        # a rebuild from the run directories keeps them
        store.rebuild()
        again = store.get_run("lr_scan-1")
        assert again.status == "completed" and again.sweep == "lr_scan" and again.last_epoch == 6


def test_single_folder_imports_as_one_run(tmp_path: Path) -> None:
    write_upstream_run(tmp_path / "model_lr", 1e-4, checkpoints=())
    with Store(tmp_path / "home") as store:
        assert import_runs(store, tmp_path / "model_lr", name="old-best") == ["old-best"]
        row = store.get_run("old-best")
        assert row.sweep is None and row.status == "completed"


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "loss.dat",
            "1:epoch\t2:train_loss\n1\t0.5\n2\n",
            r"loss.dat, line 3: 1 values, but the header names 2",
        ),
        (
            "loss.dat",
            "1:epoch\t2:train_loss\n1\tabc\n",
            r"loss.dat, line 2: column 'train_loss' holds 'abc'",
        ),
        ("loss.dat", "epoch\ttrain_loss\n1\t0.5\n", r"loss.dat, line 1: expected a header"),
        ("loss.dat", "1:epoch\t3:train_loss\n", r"loss.dat, line 1: .*column 2"),
        ("loss.dat", "", r"loss.dat is empty"),
        (
            "parameters.txt",
            "epochs = 5\nthis line is broken\n",
            r"parameters.txt, line 2: expected 'key = value'",
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
    write_upstream_run(group / "a", 1e-5)
    (group / "b").mkdir()
    (group / "b" / "loss.dat").write_text("1:epoch\t2:x\n1\t2\t3\n")
    with Store(tmp_path / "home") as store:
        with pytest.raises(ImportFormatError, match=r"b/loss.dat, line 2"):
            import_runs(store, group)
        assert store.list_runs() == [] and store.sweeps() == []


def test_parameter_values_are_never_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "parameters.txt"
    path.write_text("learning_rate = __import__('os').getpid()\nepochs = 1e3\n")
    params = parse_parameters(path)
    from rhea_engine.importer import map_parameters

    mapped, unmapped = map_parameters(params)
    assert mapped == {"epochs": 1000}
    assert "learning_rate" in unmapped


def test_parse_loss_reads_comment_header(tmp_path: Path) -> None:
    path = tmp_path / "loss.dat"
    path.write_text("# 1:epoch\t2:train_loss\t3:test_loss\n0\t1.0\tnan\n1\t0.5\t0.7\n")
    names, rows = parse_loss(path)
    assert names == ["epoch", "train_loss", "test_loss"]
    assert rows[1] == (1, {"train_loss": 0.5, "test_loss": 0.7})
    assert json.dumps(rows[0][0]) == "0"
