"""One run's training state and its steps: model, optimizer, schedules, sampling, epoch statistics.

`Trainer` owns everything a checkpoint holds. A batch's forward pass and its six task losses
are one function, `batch_losses`; with `compile` it is one compiled graph (torch.compile),
so the compiler fuses the batch norms, activations, transfer-matrix contraction and losses.
Per-batch statistics accumulate on the device (`StatsAccumulator`) and reach the host once
per epoch as an `EpochStats`.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from rhea_engine import losses as L
from rhea_engine.checkpoint import FORMAT
from rhea_engine.config import TrainConfig
from rhea_engine.errors import RunError
from rhea_engine.model import build_model
from rhea_engine.runs.cores import AffinityThreads
from rhea_engine.train_data import TrainingData, epoch_indices
from rhea_engine.vocabulary import LEARNED_TASKS, TASKS

EVAL_CHUNK = 1 << 17  # test rows per forward pass
# On the CPU a run shorter than this (epochs x epoch_num_samples) spends more time compiling
# than compiling saves; `compile = auto` trains it eagerly (benchmarks/train_throughput.py).
COMPILE_MIN_SAMPLES = 20_000_000
# ... and batches this large are where the benchmark measures its gain; a run of small batches
# (a quick look, a test) stays eager instead of waiting tens of seconds for its first epoch
COMPILE_MIN_BATCH = 4096


class BatchLosses(NamedTuple):
    """One batch: per-task loss and max error ([len(TASKS)], in TASKS order), ELN violation."""

    values: torch.Tensor
    max_errors: torch.Tensor
    eln_violation: torch.Tensor


@dataclass
class EpochStats:
    """One pass over a split, on the host: per-task mean loss and max error, ELN violation."""

    loss: dict[str, float]
    max_error: dict[str, float]
    eln_violation: float
    nonfinite_task: str | None  # the task whose loss first became non-finite, if any


class StatsAccumulator:
    """Per-task sums on the device, batch by batch; `to_host` copies them to the host once."""

    def __init__(self, device: torch.device) -> None:
        n = len(TASKS)
        self.loss_sum = torch.zeros(n, device=device)
        self.weight = torch.zeros(n, device=device)
        self.max_error = torch.zeros(n, device=device)
        self.eln_violation = torch.zeros((), device=device)
        # the batch at which each task's loss was first non-finite; -1 while it is finite
        self.nonfinite_batch = torch.full((n,), -1.0, device=device)
        self.batches = 0

    @torch.no_grad()
    def add(self, batch: BatchLosses, weight: torch.Tensor | None = None) -> None:
        """Add one batch; `weight` [len(TASKS)] weighs each task's loss (default 1 per batch)."""
        values = batch.values.detach().float()
        self.loss_sum += values if weight is None else values * weight
        self.weight += 1.0 if weight is None else weight
        self.max_error = torch.maximum(self.max_error, batch.max_errors.detach().float())
        self.eln_violation = torch.maximum(self.eln_violation, batch.eln_violation.float())
        first = (self.nonfinite_batch < 0) & ~torch.isfinite(values)
        self.nonfinite_batch = torch.where(first, float(self.batches), self.nonfinite_batch)
        self.batches += 1

    def to_host(self) -> EpochStats:
        mean = self.loss_sum / self.weight.clamp_min(1.0)
        eln = self.eln_violation.expand_as(mean)
        loss, max_error, eln_row, nonfinite_batch = torch.stack(
            [mean, self.max_error, eln, self.nonfinite_batch]
        ).tolist()
        went_bad = [(b, i) for i, b in enumerate(nonfinite_batch) if b >= 0]
        went_bad += [(math.inf, i) for i, v in enumerate(loss) if not math.isfinite(v)]
        return EpochStats(
            loss=dict(zip(TASKS, loss, strict=True)),
            max_error=dict(zip(TASKS, max_error, strict=True)),
            eln_violation=eln_row[0],
            nonfinite_task=TASKS[min(went_bad)[1]] if went_bad else None,
        )


class TaskWeights(nn.Module):
    """Learned log-variances s_k (Kendall et al. 2018), one per prediction task."""

    def __init__(self) -> None:
        super().__init__()
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in LEARNED_TASKS})


def split_rows(rows: torch.Tensor, nx: int, nf4: int) -> tuple[torch.Tensor, ...]:
    """Asymptotic rows -> (X, F4_initial/ntot, F4_final/ntot [N, 4, 2, NF], log growth target)."""
    n = rows.shape[0]
    X = rows[:, :nx]
    F4i = rows[:, nx : nx + nf4].reshape(n, 4, 2, -1)
    F4f = rows[:, nx + nf4 : nx + 2 * nf4].reshape(n, 4, 2, -1)
    return X, F4i, F4f, rows[:, -1]


def compiles(config: TrainConfig, device: torch.device) -> bool:
    """Whether the batch step is compiled: `compile` true/false, or auto (CUDA; on the CPU,
    long runs of large batches).

    Only full batches run compiled, so an epoch shorter than one batch is never compiled."""
    if config.epoch_num_samples < config.batch_size:
        return False
    if config.compile != "auto":
        return config.compile == "true"
    if device.type == "cuda":
        return True
    has_compiler = any(shutil.which(c) for c in ("g++", "c++", "clang++"))
    long_run = config.epochs * config.epoch_num_samples >= COMPILE_MIN_SAMPLES
    return has_compiler and long_run and config.batch_size >= COMPILE_MIN_BATCH


def _activations_out_of_place(model: nn.Module) -> None:
    """Compiled graphs gain nothing from in-place activations (they are functionalised), and an
    in-place LeakyReLU makes the CPU backend save a boolean mask per layer, which is slow."""
    for module in model.modules():
        if hasattr(module, "inplace"):
            setattr(module, "inplace", False)  # noqa: B010 (a plain bool attribute of the module)


# devices with torch's fused Adam/AdamW kernels: one pass over all parameters per step
# instead of one kernel per tensor and operation
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def make_optimizer(
    config: TrainConfig, params: list[dict[str, Any]], device: torch.device
) -> torch.optim.Optimizer:
    lr, wd = config.learning_rate, config.weight_decay
    fused = True if device.type in FUSED_OPTIMIZER_DEVICES else None  # None: torch chooses
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, weight_decay=wd, amsgrad=config.amsgrad, fused=fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, amsgrad=config.amsgrad, fused=fused)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=0.9)
    raise ValueError(config.optimizer)  # unreachable: TrainConfig validates the name


class Trainer:
    """Model, task weights, optimizer, schedules and random generators of one run."""

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
        self.optimizer = make_optimizer(config, params, device)
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
        self.autocast = config.autocast_bf16 and device.type == "cuda"
        self.compiled = compiles(config, device)
        self.step_losses: Callable[[torch.Tensor, torch.Tensor], Any] = self.batch_losses
        if self.compiled:
            _activations_out_of_place(self.model)
            # the guards on the modules stay (skipping them saves a tenth of a small step, but
            # lets a graph compiled for one model run on another of the process)
            self.step_losses = torch.compile(self.batch_losses, dynamic=False)
        self.compile_checked = False  # the first compiled step ran (compiling succeeded)
        self.first_step_seconds: float | None = None  # includes compiling, when compiled
        # a worker whose share of the cores the launcher may change follows it
        self.threads = AffinityThreads.if_managed() if config.num_threads == 0 else None

    # ---- one batch ------------------------------------------------------------------------
    def batch_losses(
        self, asym: torch.Tensor, stab: torch.Tensor
    ) -> tuple[torch.Tensor, BatchLosses]:
        """(weighted total, per-task losses) of one asymptotic and one stability batch."""
        X_a, F4i, F4f, target = split_rows(asym, self.nx, self.nf4)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else nullcontext()
        with ctx:
            logit, log_growth, y_dens, y_flux = self.model.forward_train(X_a, stab[:, : self.nx])
        F4_pred = self.model.F4_from_y(F4i, y_dens.float(), y_flux.float())
        per_task = {
            "stability": L.stability_loss(logit.float(), stab[:, -1]),
            "growthrate": L.growthrate_loss(log_growth.float(), target),
            **L.final_state_losses(F4_pred, F4f),
        }
        values = torch.stack([per_task[t][0] for t in TASKS])
        # only what the optimizer differentiates keeps its graph: a compiled backward would
        # otherwise compute the (unused) gradients of the max errors too
        batch = BatchLosses(
            values if self.config.task_weighting == "pcgrad" else values.detach(),
            torch.stack([per_task[t][1] for t in TASKS]).detach(),
            L.eln_violation(F4i, F4_pred).detach(),
        )
        return self.total(dict(zip(TASKS, values.unbind(), strict=True))), batch

    def total(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.task_weighting == "learned":
            return L.combine_learned(values, self.multipliers, dict(self.weights.log_vars.items()))
        return L.combine_fixed(values, self.multipliers)

    def pcgrad_backward(self, values: torch.Tensor) -> None:
        active = [k for k, t in enumerate(TASKS) if self.multipliers[t] > 0]
        task_losses = [self.multipliers[TASKS[k]] * values[k] for k in active]
        order = []
        for i in range(len(active)):
            others = [j for j in range(len(active)) if j != i]
            perm = torch.randperm(len(others), generator=self.pcgrad_generator).tolist()
            order.append([others[p] for p in perm])
        params = [p for p in self.model.parameters() if p.requires_grad]
        L.pcgrad_backward(task_losses, params, order)

    def step(self, asym: torch.Tensor, stab: torch.Tensor) -> BatchLosses:
        """One optimizer step; a short last batch runs eagerly (no second compilation)."""
        full = asym.shape[0] == self.config.batch_size
        if full and self.compiled and not self.compile_checked:
            return self._first_compiled_step(asym, stab)
        total, batch = (self.step_losses if full else self.batch_losses)(asym, stab)
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.task_weighting == "pcgrad":
            self.pcgrad_backward(batch.values)
        else:
            total.backward()
        self.optimizer.step()
        return batch

    def _first_compiled_step(self, asym: torch.Tensor, stab: torch.Tensor) -> BatchLosses:
        """The step that compiles. If compiling fails, `auto` trains eagerly from here on,
        an explicit `compile = true` is a RunError."""
        self.compile_checked = True
        try:
            return self.step(asym, stab)
        except Exception as exc:  # the compiler's failures come in many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.config.compile == "true":
                raise RunError(
                    f"torch.compile could not compile the training step on this machine "
                    f"({first}). Set compile = auto or false to train without it."
                ) from exc
            print(f"torch.compile failed ({first}); training eagerly.", file=sys.stderr)
            self.compiled, self.step_losses = False, self.batch_losses
            return self.step(asym, stab)

    # ---- epochs -------------------------------------------------------------------------
    def train_epoch(self, should_stop: Callable[[], bool]) -> StatsAccumulator | None:
        """One epoch of `epoch_num_samples` draws of each kind; None if stopped part-way."""
        cfg = self.config
        self.model.train()
        n = cfg.epoch_num_samples
        idx_a = epoch_indices(self.data.asym_train, n, self.generator)
        idx_s = epoch_indices(self.data.stab_train, n, self.generator)
        stats = StatsAccumulator(self.device)
        for start in range(0, n, cfg.batch_size):
            if should_stop():
                return None
            stop = min(start + cfg.batch_size, n)
            if stop - start < 2 and start > 0:
                break  # batch norm needs two rows; the remainder is dropped
            asym = self.data.asym_train.rows.index_select(0, idx_a[start:stop])
            stab = self.data.stab_train.rows.index_select(0, idx_s[start:stop])
            if self.threads is not None:
                self.threads.update()
            if self.first_step_seconds is None:
                self.first_step_seconds = self._timed_first_step(asym, stab, stats)
            else:
                stats.add(self.step(asym, stab))
        return stats

    def _timed_first_step(
        self, asym: torch.Tensor, stab: torch.Tensor, stats: StatsAccumulator
    ) -> float:
        t0 = time.perf_counter()
        stats.add(self.step(asym, stab))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    @torch.no_grad()
    def test_epoch(self) -> StatsAccumulator:
        """Losses over the whole test split (eagerly, in chunks), each task over its own rows."""
        self.model.eval()
        asym, stab = self.data.asym_test.rows, self.data.stab_test.rows
        nchunks = max(
            math.ceil(asym.shape[0] / EVAL_CHUNK), math.ceil(stab.shape[0] / EVAL_CHUNK), 1
        )
        stats = StatsAccumulator(self.device)
        for c in range(nchunks):
            a, s = _chunk(asym, c, nchunks), _chunk(stab, c, nchunks)
            rows = {"asymptotic": a.shape[0], "stable": s.shape[0]}
            weight = torch.tensor([float(rows[L.TASK_DATA[t]]) for t in TASKS], device=self.device)
            stats.add(self.batch_losses(a, s)[1], weight)
        return stats

    def schedule(self, epoch: int, test_loss: float) -> None:
        """Linear warm-up for `warmup_iters` epochs, then reduce-on-plateau of the test loss."""
        if epoch <= self.config.warmup_iters:
            self.warmup.step()
        else:
            self.plateau.step(test_loss)

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

    def restore(self, ckpt: dict[str, Any], source: object) -> None:
        """Load a checkpoint dict; a RunError if it does not fit this configuration."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.weights.load_state_dict(ckpt["task_weights"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.warmup.load_state_dict(ckpt["scheduler"]["warmup"])
            self.plateau.load_state_dict(ckpt["scheduler"]["plateau"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RunError(
                f"The checkpoint {source} does not fit this run's configuration (the network "
                f"or optimizer settings changed since it was written): {str(exc).splitlines()[0]}"
            ) from exc
        self.epoch = int(ckpt["epoch"])
        self.best_test_loss = float(ckpt["best_test_loss"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        sampler = rng["sampler"]
        self.generator.set_state(sampler.to("cpu") if self.device.type == "cpu" else sampler)
        self.pcgrad_generator.set_state(rng["pcgrad"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


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
