"""The training state and its options: compiled steps, epoch statistics, the compile policy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from train_fixtures import tiny_config, tiny_data

from rhea_engine import losses as L
from rhea_engine.config import from_dict
from rhea_engine.errors import ConfigError, RunError
from rhea_engine.train import Callbacks, train
from rhea_engine.trainer import (
    COMPILE_MIN_BATCH,
    COMPILE_MIN_SAMPLES,
    BatchLosses,
    StatsAccumulator,
    Trainer,
    compiles,
)
from rhea_engine.vocabulary import TASKS

CPU = torch.device("cpu")


class Epochs(Callbacks):
    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.metrics.append(metrics)


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """The comparisons below are of kernels, not of threads: with two threads the reductions
    split differently and two epochs amplify that float32 noise past the tolerances."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return tiny_data(tiny_config())


def test_compiled_step_trains_the_same_model(tmp_path: Path, data: Any) -> None:
    """compile = true: the same losses and gradients as eager for a batch, the same training
    curve, the compilation reported in epoch 1 only, and resume still bit-for-bit."""
    config = tiny_config(epochs=2, compile="true")
    eager = Trainer(config.replace(compile="false"), data, CPU)
    compiled = Trainer(config, data, CPU)
    assert compiled.compiled and not eager.compiled
    asym, stab = data.asym_train.rows[:256], data.stab_train.rows[:256]
    results = []
    for trainer in (eager, compiled):
        total, batch = trainer.step_losses(asym, stab)
        total.backward()
        grads = torch.cat([p.grad.reshape(-1) for p in trainer.model.parameters()])
        results.append((total.detach(), batch.values.detach(), grads))
    (total_e, values_e, grads_e), (total_c, values_c, grads_c) = results
    assert torch.allclose(total_c, total_e, rtol=1e-5)
    assert torch.allclose(values_c, values_e, rtol=1e-5, atol=1e-7)
    assert torch.allclose(grads_c, grads_e, rtol=1e-4, atol=1e-6 * grads_e.abs().max())

    curves = {}
    for mode in ("false", "true"):
        torch.compiler.reset()  # epoch 1 compiles afresh (not from the graph compiled above)
        rec = Epochs()
        train(
            config.replace(compile=mode),
            callbacks=rec,
            checkpoint_dir=tmp_path / mode,
            data=data,
            evaluate_at_end=False,
        )
        curves[mode] = rec.metrics
    for eager_epoch, compiled_epoch in zip(curves["false"], curves["true"], strict=True):
        assert compiled_epoch["train_loss"] == pytest.approx(eager_epoch["train_loss"], rel=1e-4)
        # eval-mode batch norm reads running means that trail the (gradient-free) biases before
        # it, which Adam moves by rounding noise: the test losses agree less closely
        assert compiled_epoch["test_loss"] == pytest.approx(eager_epoch["test_loss"], rel=1e-2)
    assert curves["true"][0]["compile_seconds"] > 0
    assert (
        "compile_seconds" not in curves["true"][1] and "compile_seconds" not in curves["false"][0]
    )

    straight = train(config, checkpoint_dir=tmp_path / "a", data=data, evaluate_at_end=False)
    train(config.replace(epochs=1), checkpoint_dir=tmp_path / "b", data=data, evaluate_at_end=False)
    resumed = train(
        config,
        checkpoint_dir=tmp_path / "b",
        data=data,
        evaluate_at_end=False,
        resume_from=tmp_path / "b" / "last.pt",
    )
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compile_policy() -> None:
    long_run = {
        "epochs": 100,
        "epoch_num_samples": COMPILE_MIN_SAMPLES // 100,
        "batch_size": COMPILE_MIN_BATCH,
    }
    assert not compiles(tiny_config(), CPU)  # auto, a short run
    assert compiles(tiny_config(compile="true"), CPU)
    assert not compiles(tiny_config(compile="false", **long_run), CPU)
    assert compiles(tiny_config(**long_run), CPU)  # auto: long enough to repay compiling
    assert not compiles(tiny_config(**{**long_run, "batch_size": 256}), CPU)  # small batches
    assert compiles(tiny_config(), torch.device("cuda"))
    # an epoch shorter than one batch never runs a full (compiled) batch
    assert not compiles(tiny_config(compile="true", epoch_num_samples=100), CPU)


def test_compile_key_accepts_booleans_of_older_configs() -> None:
    assert from_dict({"compile": False}).compile == "false"
    assert from_dict({"compile": True}).compile == "true"
    assert from_dict({}).compile == "auto"
    with pytest.raises(ConfigError, match="compile"):
        from_dict({"compile": "sometimes"})


def _batch(values: list[float], maxes: float = 1.0, eln: float = 0.0) -> BatchLosses:
    return BatchLosses(torch.tensor(values), torch.full((len(TASKS),), maxes), torch.tensor(eln))


def test_epoch_stats_name_the_task_that_went_non_finite_first() -> None:
    stats = StatsAccumulator(CPU)
    finite = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    stats.add(_batch(finite, maxes=2.0, eln=1e-7))
    ndens_bad = list(finite)
    ndens_bad[TASKS.index("ndens")] = math.inf
    stats.add(_batch(ndens_bad, eln=3e-7))
    all_bad = [math.nan] * len(TASKS)  # by then everything is NaN: ndens still went first
    stats.add(_batch(all_bad))
    host = stats.to_host()
    assert host.nonfinite_task == "ndens"
    assert host.eln_violation == pytest.approx(3e-7)
    assert host.max_error["stability"] == 2.0

    clean = StatsAccumulator(CPU)
    clean.add(_batch(finite))
    clean.add(_batch([v * 3 for v in finite]))
    host = clean.to_host()
    assert host.nonfinite_task is None
    assert host.loss == {t: pytest.approx(2 * v) for t, v in zip(TASKS, finite, strict=True)}


def test_test_split_losses_are_weighted_by_each_tasks_own_rows() -> None:
    """Each task's mean is over the rows of its own data: stability over stability rows."""
    stats = StatsAccumulator(CPU)
    rows = [({"asymptotic": 10, "stable": 30}, 1.0), ({"asymptotic": 30, "stable": 10}, 3.0)]
    for count, value in rows:
        weight = torch.tensor([float(count[L.TASK_DATA[t]]) for t in TASKS])
        stats.add(_batch([value] * len(TASKS)), weight)
    host = stats.to_host()
    assert host.loss["stability"] == pytest.approx((30 * 1 + 10 * 3) / 40)
    assert host.loss["ndens"] == pytest.approx((10 * 1 + 30 * 3) / 40)
    assert set(L.TASK_DATA) == set(TASKS)
    assert set(L.TASK_DATA.values()) == {"asymptotic", "stable"}


def test_a_compiler_failure_trains_eagerly_under_auto_and_is_an_error_when_asked_for(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rhea_engine import trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "COMPILE_MIN_BATCH", 256)  # auto compiles this tiny run

    def no_compiler(asym: torch.Tensor, stab: torch.Tensor) -> Any:
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    asym, stab = data.asym_train.rows[:256], data.stab_train.rows[:256]
    long_run = {"epochs": COMPILE_MIN_SAMPLES // 2048 + 1, "epoch_num_samples": 2048}
    trainer = Trainer(tiny_config(**long_run), data, CPU)
    assert trainer.compiled  # auto, and long enough
    trainer.step_losses = no_compiler
    batch = trainer.step(asym, stab)
    assert not trainer.compiled and torch.isfinite(batch.values).all()
    assert trainer.step_losses == trainer.batch_losses

    trainer = Trainer(tiny_config(compile="true"), data, CPU)
    trainer.step_losses = no_compiler
    with pytest.raises(RunError, match="compile = auto or false"):
        trainer.step(asym, stab)


def test_fused_optimizer_trains_the_same_model(
    tmp_path: Path, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AdamW's fused CPU kernel (the default on the CPU) against torch's per-tensor one."""
    from rhea_engine import trainer as trainer_mod

    config = tiny_config(epochs=2, compile="false")
    assert Trainer(config, data, CPU).optimizer.defaults["fused"]
    curves = {}
    for kind in ("fused", "per-tensor"):
        if kind == "per-tensor":
            monkeypatch.setattr(trainer_mod, "FUSED_OPTIMIZER_DEVICES", ())
            assert not Trainer(config, data, CPU).optimizer.defaults["fused"]
        rec = Epochs()
        train(
            config, callbacks=rec, checkpoint_dir=tmp_path / kind, data=data, evaluate_at_end=False
        )
        curves[kind] = rec.metrics
    for a, b in zip(curves["fused"], curves["per-tensor"], strict=True):
        for task in TASKS:  # (the biases before batch norm drift apart: see the compile test)
            loss = f"{task}_train_loss"
            assert a[loss] == pytest.approx(b[loss], rel=1e-4, abs=1e-7), loss
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-2)
