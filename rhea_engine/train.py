"""The training loop: epochs of steps, the metrics of each epoch, checkpoints, the final evaluation.

The loop knows nothing about run directories: it reports through `Callbacks` and writes
checkpoints into `checkpoint_dir` (layout in `rhea_engine.checkpoint`). The state it trains
lives in `rhea_engine.trainer.Trainer`; per-batch statistics stay on the device and come to
the host once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rhea_engine.checkpoint import epoch_path, load_checkpoint, save_checkpoint
from rhea_engine.config import TrainConfig
from rhea_engine.errors import DeviceError, DivergedError
from rhea_engine.model import FFIModel, build_model
from rhea_engine.train_data import TrainingData, load_training_data
from rhea_engine.trainer import EpochStats, Trainer
from rhea_engine.vocabulary import LEARNED_TASKS, TASKS, task_metric

__all__ = ["Callbacks", "TrainResult", "train", "resolve_device", "load_training_data"]


class Callbacks:
    """Hooks the loop calls; subclass and override what you need (all default to no-ops)."""

    def on_start(self, info: dict[str, Any]) -> None: ...

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, epoch: int, path: Path, kind: str) -> None: ...

    def on_evaluation(self, results: dict[str, float]) -> None: ...


@dataclass
class TrainResult:
    epochs_completed: int
    best_test_loss: float
    stopped: bool
    last_metrics: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, float] = field(default_factory=dict)
    model: FFIModel | None = None


def resolve_device(name: str) -> torch.device:
    """auto -> CUDA when present, else CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device '{name}' was requested but CUDA is not available on this machine; "
                "use --device cpu or --device auto."
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device '{name}' does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return torch.device(name)


def epoch_metrics(trainer: Trainer, train: EpochStats, test: EpochStats) -> dict[str, float]:
    """The loss.dat columns of one epoch, the weighted totals, ELN violations, learning rate."""
    metrics: dict[str, float] = {}
    for split, stats in (("train", train), ("test", test)):
        for t in TASKS:
            metrics[task_metric(t, split)] = stats.loss[t]
            metrics[task_metric(t, split, "max")] = stats.max_error[t]
        metrics[f"{split}_loss"] = sum(trainer.multipliers[t] * stats.loss[t] for t in TASKS)
    metrics["ELN_violation"] = train.eln_violation
    metrics["ELN_violation_test"] = test.eln_violation
    metrics["learning_rate"] = float(trainer.optimizer.param_groups[0]["lr"])
    if trainer.config.task_weighting == "learned":
        for t in LEARNED_TASKS:
            metrics[f"weight_{t}"] = float(torch.exp(-trainer.weights.log_vars[t].detach()))
    return metrics


def timing_metrics(trainer: Trainer, seconds: float, warm_up: float | None) -> dict[str, float]:
    """Throughput of an epoch's training; in the epoch whose first step compiled the step
    (`warm_up`: that step's seconds), the compilation is `compile_seconds`, left out of it."""
    samples, batch = trainer.config.epoch_num_samples, trainer.config.batch_size
    if warm_up is None or not trainer.compiled or samples <= batch:
        return {"samples_per_second": samples / max(seconds, 1e-9)}
    steady = max(seconds - warm_up, 1e-9)
    later_steps = math.ceil(samples / batch) - 1
    return {
        "samples_per_second": (samples - batch) / steady,
        "compile_seconds": max(warm_up - steady / later_steps, 0.0),
    }


def train(
    config: TrainConfig,
    *,
    callbacks: Callbacks | None = None,
    checkpoint_dir: str | Path,
    resume_from: str | Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    data: TrainingData | None = None,
    evaluate_at_end: bool = True,
) -> TrainResult:
    """Train `config` to `config.epochs`; returns when done, stopped or raises DivergedError."""
    cb = callbacks or Callbacks()
    device = resolve_device(config.device)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    data = data if data is not None else load_training_data(config)
    trainer = Trainer(config, data, device)
    ckpt_dir = Path(checkpoint_dir)
    resumed_from = None
    if resume_from is not None:
        trainer.restore(load_checkpoint(resume_from, map_location=device), resume_from)
        resumed_from = trainer.epoch
    cb.on_start(
        {
            "device": str(device),
            "total_epochs": config.epochs,
            "resumed_from_epoch": resumed_from,
            "data": data.files,
            "n_parameters": sum(p.numel() for p in trainer.model.parameters()),
            "compiled": trainer.compiled,
        }
    )
    snapshot = trainer.state("stop")
    best_model_state: dict[str, Any] | None = None
    metrics: dict[str, float] = {}

    def write(kind: str, path: Path, state: dict[str, Any]) -> None:
        save_checkpoint({**state, "kind": kind}, path)
        cb.on_checkpoint(int(state["epoch"]), path, kind)

    while trainer.epoch < config.epochs:
        epoch = trainer.epoch + 1
        warmed_up = trainer.first_step_seconds is not None
        t0 = time.perf_counter()
        train_sums = trainer.train_epoch(should_stop)
        if train_sums is None:
            write("stop", ckpt_dir / "last.pt", snapshot)
            return TrainResult(
                trainer.epoch, trainer.best_test_loss, True, metrics, model=trainer.model
            )
        t_train = time.perf_counter() - t0
        train_stats, test_stats = train_sums.to_host(), trainer.test_epoch().to_host()
        task = train_stats.nonfinite_task or test_stats.nonfinite_task
        if task is not None:
            raise DivergedError(epoch, task)
        metrics = epoch_metrics(trainer, train_stats, test_stats)
        trainer.schedule(epoch, metrics["test_loss"])
        trainer.epoch = epoch
        improved = metrics["test_loss"] < trainer.best_test_loss
        if improved:
            trainer.best_test_loss = metrics["test_loss"]
        metrics["epoch_seconds"] = time.perf_counter() - t0
        metrics.update(
            timing_metrics(trainer, t_train, None if warmed_up else trainer.first_step_seconds)
        )
        cb.on_epoch(epoch, metrics)
        snapshot = trainer.state("last")
        if improved:
            best_model_state = snapshot["model"]
            write("best", ckpt_dir / "best.pt", snapshot)
        if epoch % config.output_every == 0 or epoch == config.epochs:
            kind = "final" if epoch == config.epochs else "periodic"
            write(kind, epoch_path(ckpt_dir, epoch), snapshot)
            save_checkpoint({**snapshot, "kind": kind}, ckpt_dir / "last.pt")
    result = TrainResult(trainer.epoch, trainer.best_test_loss, False, metrics, model=trainer.model)
    if evaluate_at_end:
        result.evaluation = _evaluate_best(trainer, best_model_state, ckpt_dir / "best.pt", data)
        cb.on_evaluation(result.evaluation)
    return result


def _evaluate_best(
    trainer: Trainer, best_state: dict[str, Any] | None, best_path: Path, data: TrainingData
) -> dict[str, float]:
    """Evaluate the model with the lowest test loss: the one a user exports and compares."""
    from rhea_engine.evaluate import evaluate

    best = build_model(trainer.config).to(trainer.device)
    if best_state is None and best_path.is_file():  # resumed past the best epoch
        best_state = load_checkpoint(best_path, map_location=trainer.device)["model"]
    best.load_state_dict(best_state if best_state is not None else trainer.model.state_dict())
    return evaluate(best.eval(), data)
