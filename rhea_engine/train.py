"""The training loop: tensor-native sampling, per-batch steps, callbacks, checkpoints.

The loop knows nothing about run directories: it reports through `Callbacks` and writes
checkpoints into `checkpoint_dir` (layout in `rhea_engine.checkpoint`). Per-batch metrics
stay on the device and are read once per epoch, so there is no host synchronisation
inside an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rhea_engine import losses as L
from rhea_engine.checkpoint import FORMAT, epoch_path, load_checkpoint, save_checkpoint
from rhea_engine.config import TrainConfig
from rhea_engine.errors import DeviceError, DivergedError, RunError
from rhea_engine.model import FFIModel, build_model
from rhea_engine.train_data import TrainingData, epoch_indices, load_training_data
from rhea_engine.vocabulary import LEARNED_TASKS, TASKS

EVAL_CHUNK = 1 << 17

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


class TaskWeights(nn.Module):
    """Learned log-variances s_k (Kendall et al. 2018), one per prediction task."""

    def __init__(self) -> None:
        super().__init__()
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in LEARNED_TASKS})


def _split_rows(rows: torch.Tensor, nx: int, nf4: int) -> tuple[torch.Tensor, ...]:
    n = rows.shape[0]
    X = rows[:, :nx]
    F4i = rows[:, nx : nx + nf4].reshape(n, 4, 2, -1)
    F4f = rows[:, nx + nf4 : nx + 2 * nf4].reshape(n, 4, 2, -1)
    return X, F4i, F4f, rows[:, -1]


class _Trainer:
    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.device = config, device
        self.data = data.to(device)
        self.nx, self.nf4 = data.layout.nx, data.layout.nf4
        torch.manual_seed(config.random_seed)
        self.model = build_model(config).to(device)
        self.weights = TaskWeights().to(device)
        self.multipliers = {t: config.loss_multiplier(t) for t in TASKS}
        if not config.do_unphysical_check:
            self.multipliers["unphysical"] = 0.0
        params: list[dict[str, Any]] = [{"params": list(self.model.parameters())}]
        if config.task_weighting == "learned":
            params.append({"params": list(self.weights.parameters()), "weight_decay": 0.0})
        self.optimizer = _make_optimizer(config, params)
        warm = max(config.warmup_iters, 1)
        self.warmup = torch.optim.lr_scheduler.LinearLR(
            self.optimizer,
            start_factor=1.0 / warm if config.warmup_iters else 1.0,
            total_iters=warm,
        )
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            factor=config.factor,
            patience=config.patience,
            cooldown=config.cooldown,
            min_lr=config.min_lr,
        )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(config.random_seed)
        self.pcgrad_generator = torch.Generator()
        self.pcgrad_generator.manual_seed(config.random_seed + 1)
        self.epoch = 0
        self.best_test_loss = math.inf
        self.forward = self.model.forward_train
        if config.compile and device.type == "cuda":
            self.forward = torch.compile(self.model.forward_train)  # type: ignore[assignment]
        self.autocast = config.autocast_bf16 and device.type == "cuda"

    # ---- one forward pass and the six task losses -------------------------------------
    def task_losses(
        self, asym: torch.Tensor, stab: torch.Tensor
    ) -> tuple[dict[str, L.Loss], torch.Tensor]:
        X_a, F4i, F4f, target = _split_rows(asym, self.nx, self.nf4)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else nullcontext()
        with ctx:
            logit, log_growth, y_dens, y_flux = self.forward(X_a, stab[:, : self.nx])
        F4_pred = self.model.F4_from_y(F4i, y_dens.float(), y_flux.float())
        out = {
            "stability": L.stability_loss(logit.float(), stab[:, -1]),
            "growthrate": L.growthrate_loss(log_growth.float(), target),
            **L.final_state_losses(F4_pred, F4f),
        }
        return out, L.eln_violation(F4i, F4_pred)

    def total(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.task_weighting == "learned":
            return L.combine_learned(values, self.multipliers, dict(self.weights.log_vars.items()))
        return L.combine_fixed(values, self.multipliers)

    def _pcgrad_step(self, values: dict[str, torch.Tensor]) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        grads = []
        active = [t for t in TASKS if self.multipliers[t] > 0]
        for k, task in enumerate(active):
            g = torch.autograd.grad(
                self.multipliers[task] * values[task],
                params,
                retain_graph=k < len(active) - 1,
                allow_unused=True,
            )
            grads.append(
                torch.cat(
                    [
                        (gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                        for gi, p in zip(g, params, strict=True)
                    ]
                )
            )
        order = []
        for i in range(len(active)):
            others = [j for j in range(len(active)) if j != i]
            perm = torch.randperm(len(others), generator=self.pcgrad_generator).tolist()
            order.append([others[p] for p in perm])
        flat = L.pcgrad(grads, order)
        start = 0
        for p in params:
            p.grad = flat[start : start + p.numel()].view_as(p).clone()
            start += p.numel()

    # ---- epochs -------------------------------------------------------------------------
    def train_epoch(self, should_stop: Callable[[], bool]) -> tuple[torch.Tensor, bool]:
        cfg, dev = self.config, self.device
        self.model.train()
        n = cfg.epoch_num_samples
        idx_a = epoch_indices(self.data.asym_train, n, self.generator)
        idx_s = epoch_indices(self.data.stab_train, n, self.generator)
        ntask = len(TASKS)
        sums = torch.zeros(ntask, device=dev)
        maxes = torch.zeros(ntask, device=dev)
        first_bad = torch.full((ntask,), 2**62, dtype=torch.int64, device=dev)
        eln = torch.zeros((), device=dev)
        nbatches = 0
        for b, start in enumerate(range(0, n, cfg.batch_size)):
            if should_stop():
                return torch.empty(0), True
            stop = min(start + cfg.batch_size, n)
            if stop - start < 2 and b > 0:
                break  # batch norm needs two rows; the remainder is dropped
            asym = self.data.asym_train.rows.index_select(0, idx_a[start:stop])
            stab = self.data.stab_train.rows.index_select(0, idx_s[start:stop])
            out, eln_batch = self.task_losses(asym, stab)
            values = {t: out[t][0] for t in TASKS}
            self.optimizer.zero_grad(set_to_none=True)
            if cfg.task_weighting == "pcgrad":
                self._pcgrad_step(values)
            else:
                self.total(values).backward()
            self.optimizer.step()
            with torch.no_grad():
                stacked = torch.stack([values[t].detach() for t in TASKS])
                sums += stacked
                maxes = torch.maximum(maxes, torch.stack([out[t][1].detach() for t in TASKS]))
                bad = ~torch.isfinite(stacked)
                first_bad = torch.minimum(first_bad, torch.where(bad, b, first_bad))
                eln = torch.maximum(eln, eln_batch.detach())
            nbatches += 1
        return torch.cat(
            [sums / max(nbatches, 1), maxes, first_bad.to(sums.dtype), eln[None]]
        ), False

    @torch.no_grad()
    def test_metrics(self) -> torch.Tensor:
        self.model.eval()
        asym, stab = self.data.asym_test.rows, self.data.stab_test.rows
        nchunks = max(
            math.ceil(asym.shape[0] / EVAL_CHUNK), math.ceil(stab.shape[0] / EVAL_CHUNK), 1
        )
        sums = torch.zeros(len(TASKS), device=self.device)
        maxes = torch.zeros(len(TASKS), device=self.device)
        eln = torch.zeros((), device=self.device)
        weight = torch.zeros(len(TASKS), device=self.device)
        for c in range(nchunks):
            a = _chunk(asym, c, nchunks)
            s = _chunk(stab, c, nchunks)
            out, eln_chunk = self.task_losses(a, s)
            rows = torch.tensor(
                [s.shape[0]] + [a.shape[0]] * 5, device=self.device, dtype=sums.dtype
            )
            sums += torch.stack([out[t][0] for t in TASKS]) * rows
            weight += rows
            maxes = torch.maximum(maxes, torch.stack([out[t][1] for t in TASKS]))
            eln = torch.maximum(eln, eln_chunk)
        return torch.cat([sums / weight.clamp_min(1), maxes, eln[None]])

    # ---- checkpoint dicts -----------------------------------------------------------------
    def state(self, kind: str) -> dict[str, Any]:
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "sampler": self.generator.get_state(),
            "pcgrad": self.pcgrad_generator.get_state(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return _clone(
            {
                "format": FORMAT,
                "kind": kind,
                "epoch": self.epoch,
                "best_test_loss": self.best_test_loss,
                "config": self.config.to_dict(),
                "model": self.model.state_dict(),
                "task_weights": self.weights.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": {
                    "warmup": self.warmup.state_dict(),
                    "plateau": self.plateau.state_dict(),
                },
                "rng": rng,
            }
        )

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.weights.load_state_dict(ckpt["task_weights"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.warmup.load_state_dict(ckpt["scheduler"]["warmup"])
        self.plateau.load_state_dict(ckpt["scheduler"]["plateau"])
        self.epoch = int(ckpt["epoch"])
        self.best_test_loss = float(ckpt["best_test_loss"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.generator.set_state(
            ckpt["rng"]["sampler"].to("cpu")
            if self.device.type == "cpu"
            else ckpt["rng"]["sampler"]
        )
        self.pcgrad_generator.set_state(ckpt["rng"]["pcgrad"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])


def _chunk(rows: torch.Tensor, c: int, nchunks: int) -> torch.Tensor:
    size = math.ceil(rows.shape[0] / nchunks)
    return rows[c * size : (c + 1) * size]


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _make_optimizer(config: TrainConfig, params: list[dict[str, Any]]) -> torch.optim.Optimizer:
    lr, wd = config.learning_rate, config.weight_decay
    # fused kernels: one pass over all parameters per step instead of one per tensor
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, amsgrad=config.amsgrad, fused=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, amsgrad=config.amsgrad, fused=True)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=0.9)
    raise ValueError(config.optimizer)  # unreachable: TrainConfig validates the name


def _first_bad_task(first_bad: list[float]) -> str | None:
    bad = [(b, i) for i, b in enumerate(first_bad) if b < 2**61]
    return TASKS[min(bad)[1]] if bad else None


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
    if data is None:
        data = load_training_data(config)
    trainer = _Trainer(config, data, device)
    ckpt_dir = Path(checkpoint_dir)
    resumed_from = None
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, map_location=device)
        try:
            trainer.restore(ckpt)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RunError(
                f"The checkpoint {resume_from} does not fit this run's configuration (the network "
                f"or optimizer settings changed since it was written): {str(exc).splitlines()[0]}"
            ) from exc
        resumed_from = trainer.epoch
    cb.on_start(
        {
            "device": str(device),
            "total_epochs": config.epochs,
            "resumed_from_epoch": resumed_from,
            "data": data.files,
            "n_parameters": sum(p.numel() for p in trainer.model.parameters()),
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
        t0 = time.perf_counter()
        train_stats, stopped = trainer.train_epoch(should_stop)
        if stopped:
            write("stop", ckpt_dir / "last.pt", snapshot)
            return TrainResult(
                trainer.epoch, trainer.best_test_loss, True, metrics, model=trainer.model
            )
        t_train = time.perf_counter() - t0
        test_stats = trainer.test_metrics()
        host = torch.cat([train_stats, test_stats]).tolist()  # the one synchronisation per epoch
        k = len(TASKS)
        train_mean, train_max, first_bad, eln_train = (
            host[:k],
            host[k : 2 * k],
            host[2 * k : 3 * k],
            host[3 * k],
        )
        test_mean, test_max, eln_test = (
            host[3 * k + 1 : 4 * k + 1],
            host[4 * k + 1 : 5 * k + 1],
            host[5 * k + 1],
        )
        task = _first_bad_task(first_bad)
        if task is not None:
            raise DivergedError(epoch, task)
        bad_test = [t for t, v in zip(TASKS, test_mean, strict=True) if not math.isfinite(v)]
        if bad_test:
            raise DivergedError(epoch, bad_test[0])
        metrics = {}
        for i, t in enumerate(TASKS):
            metrics.update(
                {
                    f"{t}_train_loss": train_mean[i],
                    f"{t}_test_loss": test_mean[i],
                    f"{t}_train_max": train_max[i],
                    f"{t}_test_max": test_max[i],
                }
            )
        metrics["train_loss"] = sum(
            trainer.multipliers[t] * train_mean[i] for i, t in enumerate(TASKS)
        )
        metrics["test_loss"] = sum(
            trainer.multipliers[t] * test_mean[i] for i, t in enumerate(TASKS)
        )
        metrics["ELN_violation"] = eln_train
        metrics["ELN_violation_test"] = eln_test
        metrics["learning_rate"] = float(trainer.optimizer.param_groups[0]["lr"])
        if config.task_weighting == "learned":
            for t in LEARNED_TASKS:
                metrics[f"weight_{t}"] = math.exp(-float(trainer.weights.log_vars[t].detach()))
        if epoch <= config.warmup_iters:
            trainer.warmup.step()
        else:
            trainer.plateau.step(metrics["test_loss"])
        trainer.epoch = epoch
        improved = metrics["test_loss"] < trainer.best_test_loss
        if improved:
            trainer.best_test_loss = metrics["test_loss"]
        metrics["epoch_seconds"] = time.perf_counter() - t0
        metrics["samples_per_second"] = config.epoch_num_samples / max(t_train, 1e-9)
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
        from rhea_engine.evaluate import evaluate

        # the model with the lowest test loss is the one a user exports and compares
        best = build_model(config).to(device)
        best_path = ckpt_dir / "best.pt"
        if best_model_state is None and best_path.is_file():  # resumed past the best epoch
            best_model_state = load_checkpoint(best_path, map_location=device)["model"]
        best.load_state_dict(
            best_model_state if best_model_state is not None else trainer.model.state_dict()
        )
        result.evaluation = evaluate(best.eval(), data)
        cb.on_evaluation(result.evaluation)
    return result
