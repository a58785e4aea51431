"""Training throughput: Rhea's loop, compiled and eager, beside a DataLoader reference loop.

One command prints every figure. The three loops train the same model on the same data with
the same losses, each in its own thread, one epoch each in turn (so all see the same machine
load), one thread each, timed on their thread's CPU clock; the first epoch of each is
warm-up (and, compiled, compilation) and is not counted. Printed: samples per CPU-second of
each loop and Rhea's ratio to the reference (target >= 8x, goal 10x), the compile time,
FLOPs per sample, the fraction of a same-shape sgemm reached (target >= 30 %), peak memory
of a 2-million-row run, and then the parallel-runs figures of benchmarks/parallel_runs.py.
A "sample" is one asymptotic row plus one stability row.

    .venv/bin/python benchmarks/train_throughput.py [--epochs 4] [--rows 200000]
        [--skip-memory] [--skip-parallel]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":  # one thread in every loop thread: set before OpenMP starts
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset, WeightedRandomSampler  # noqa: E402

from rhea_engine import losses as L  # noqa: E402
from rhea_engine.config import TrainConfig  # noqa: E402
from rhea_engine.data import write_asymptotic, write_stable  # noqa: E402
from rhea_engine.data.synth import generate  # noqa: E402
from rhea_engine.model import FFIModel, build_model  # noqa: E402
from rhea_engine.train import Callbacks, train  # noqa: E402
from rhea_engine.train_data import TrainingData, load_training_data  # noqa: E402
from rhea_engine.vocabulary import TASKS  # noqa: E402

HEADS = ("shared", "stability", "growthrate", "density", "flux")


def make_files(directory: Path, rows: int, seed: int = 7) -> TrainConfig:
    """One asymptotic file of `rows` rows and two stability files of rows/2 each."""
    asym_parts, n_asym, stab = [], 0, None
    chunk_seed = seed
    while n_asym < rows:
        s = generate(max(rows, 20000), seed=chunk_seed)
        unstable = s.stable == 0
        asym_parts.append((s.F4_initial[unstable], s.F4_final[unstable], s.growth_rate[unstable]))
        n_asym += int(unstable.sum())
        stab = stab or s
        chunk_seed += 1
    F4i, F4f, rate = (np.concatenate([p[i] for p in asym_parts])[:rows] for i in range(3))
    write_asymptotic(directory / "asymptotic.h5", F4i, F4f, rate)
    assert stab is not None
    half = rows // 2
    write_stable(directory / "stable_a.h5", stab.F4_initial[:half], stab.stable[:half])
    write_stable(directory / "stable_b.h5", stab.F4_initial[half:rows], stab.stable[half:rows])
    return config_for(directory)


def config_for(directory: Path, **changes: object) -> TrainConfig:
    """The benchmark configuration: width 32, nhidden 1, batch norm, batch 4096, 200,000 samples."""
    base: dict[str, object] = {f"width_{h}": 32 for h in HEADS}
    base.update({f"nhidden_{h}": 1 for h in HEADS})
    base.update(
        database_list=(str(directory / "asymptotic.h5"),),
        stable_database_list=(str(directory / "stable_a.h5"), str(directory / "stable_b.h5")),
        do_batchnorm=True,
        batch_size=4096,
        epoch_num_samples=200_000,
        device="cpu",
        warmup_iters=0,
        learning_rate=1e-3,
        output_every=10_000,
        test_size=0.1,
        compile="false",
    )
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


def reference_epoch(
    model: FFIModel,
    optimizer: torch.optim.Optimizer,
    asym_sets: list[TensorDataset],
    stab_sets: list[TensorDataset],
    config: TrainConfig,
) -> float:
    """The usual pattern: ConcatDataset + WeightedRandomSampler + DataLoader, zip of two loaders."""

    def loader(sets: list[TensorDataset]) -> DataLoader:
        weights = torch.cat([torch.full((len(s),), 1.0 / len(s)) for s in sets])
        sampler = WeightedRandomSampler(weights, config.epoch_num_samples, replacement=True)
        return DataLoader(ConcatDataset(sets), batch_size=config.batch_size, sampler=sampler)

    model.train()
    mult = {t: config.loss_multiplier(t) for t in TASKS}
    total_loss = 0.0
    for (F4i, F4f, rate), (F4s, label) in zip(loader(asym_sets), loader(stab_sets), strict=False):
        ntot = F4i[:, 3].sum(dim=(1, 2))
        scale = ntot[:, None, None, None]
        logit_a, log_growth, y_dens, y_flux = model.heads_from_X(model.X_from_F4(F4i))
        logit_s = model.heads_from_X(model.X_from_F4(F4s))[0]
        F4_pred = model.F4_from_y(F4i / scale, y_dens, y_flux)
        F4_true = F4f / scale
        values = {
            "stability": L.stability_loss(logit_s, label)[0],
            "ndens": L.ndens_loss(F4_pred, F4_true)[0],
            "fluxmag": L.fluxmag_loss(F4_pred, F4_true)[0],
            "direction": L.direction_loss(F4_pred, F4_true)[0],
            "growthrate": L.growthrate_loss(log_growth, L.growthrate_target(rate, ntot))[0],
            "unphysical": L.unphysical_loss(F4_pred)[0],
        }
        loss = L.combine_fixed(values, mult)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    return total_loss


def reference_data(config: TrainConfig) -> tuple[list[TensorDataset], list[TensorDataset]]:
    from rhea_engine.data import load_asymptotic, load_stable

    asym, stab = [], []
    for path in config.database_list:
        s = load_asymptotic(path)
        arrays = (s.F4_initial, s.F4_final, s.growth_rate)
        asym.append(TensorDataset(*(torch.as_tensor(a, dtype=torch.float32) for a in arrays)))
    for path in config.stable_database_list:
        t = load_stable(path)
        stab.append(
            TensorDataset(
                torch.as_tensor(t.F4_initial, dtype=torch.float32),
                torch.as_tensor(t.stable, dtype=torch.float32),
            )
        )
    return asym, stab


def linear_flops_per_sample(model: FFIModel) -> float:
    """Forward + backward FLOPs of the linear layers for one asymptotic + one stability row."""

    def stack_flops(seq: torch.nn.Sequential) -> float:
        return sum(
            2.0 * m.in_features * m.out_features for m in seq if isinstance(m, torch.nn.Linear)
        )

    forward = 2 * stack_flops(model.shared) + stack_flops(model.stability_head)
    forward += (
        stack_flops(model.growthrate_head)
        + stack_flops(model.density_head)
        + stack_flops(model.flux_head)
    )
    return 3.0 * forward  # backward costs about twice the forward (input and weight gradients)


def sgemm_gflops(m: int, k: int, n: int, repeat: int = 20) -> float:
    """One-thread sgemm speed at m x k x n (best of three, CPU clock)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(repeat):
            torch.mm(a, b)
        best = min(best, time.process_time() - t0)
    return 2.0 * m * k * n * repeat / best / 1e9


class TakeTurns:
    """Loops in threads that each run one epoch in turn; each epoch timed on its thread's CPU
    clock, so every loop sees the same machine load and only its own work is counted."""

    def __init__(self, names: list[str]) -> None:
        self.active = list(names)
        self.current = names[0]
        self.cond = threading.Condition()
        self.cpu_seconds: dict[str, list[float]] = {n: [] for n in names}
        self._mark: dict[str, float] = {}

    def begin(self, name: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.current == name)
        self._mark[name] = time.thread_time()

    def end_epoch(self, name: str, last: bool = False) -> None:
        self.cpu_seconds[name].append(time.thread_time() - self._mark[name])
        if last:
            self.leave(name)
            return
        with self.cond:
            self._pass_turn()
        self.begin(name)

    def leave(self, name: str) -> None:
        with self.cond:
            if name in self.active:
                if self.current == name:
                    self._pass_turn()
                self.active.remove(name)
                self.cond.notify_all()

    def _pass_turn(self) -> None:
        index = self.active.index(self.current)
        self.current = self.active[(index + 1) % len(self.active)]
        self.cond.notify_all()

    def run(self, loops: dict[str, Callable[[], None]]) -> None:
        errors: list[BaseException] = []

        def guarded(name: str, loop: Callable[[], None]) -> None:
            try:
                loop()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)
            finally:
                self.leave(name)

        threads = [threading.Thread(target=guarded, args=item) for item in loops.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]


def rhea_loop(
    turns: TakeTurns, name: str, config: TrainConfig, data: TrainingData, folder: Path
) -> tuple[Callable[[], None], dict[str, float]]:
    """train() as it runs in a worker (sampling, steps, test split, checkpoints), in turns."""
    first_epoch: dict[str, float] = {}

    class InTurns(Callbacks):
        def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
            if epoch == 1:
                first_epoch.update(metrics)
            turns.end_epoch(name, last=epoch == config.epochs)

    def loop() -> None:
        turns.begin(name)
        train(
            config,
            callbacks=InTurns(),
            checkpoint_dir=folder / name,
            data=data,
            evaluate_at_end=False,
        )

    return loop, first_epoch


def reference_loop(turns: TakeTurns, config: TrainConfig) -> Callable[[], None]:
    asym_sets, stab_sets = reference_data(config)
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def loop() -> None:
        turns.begin("reference")
        for epoch in range(1, config.epochs + 1):
            reference_epoch(model, optimizer, asym_sets, stab_sets, config)
            turns.end_epoch("reference", last=epoch == config.epochs)

    return loop


def peak_memory_2m(directory: Path) -> dict[str, float]:
    """Peak RSS of a fresh process that loads 2M asymptotic + 2M stability rows and trains one epoch."""
    code = f"""
import json, resource, sys, time, numpy as np, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from train_throughput import config_for
from rhea_engine.data import load_asymptotic, load_stable, write_asymptotic, write_stable
torch.set_num_threads(1)
d = Path({str(directory)!r})
a = load_asymptotic(d / 'asymptotic.h5'); s = load_stable(d / 'stable_a.h5')
reps = 2_000_000 // len(a) + 1
write_asymptotic(d / 'big_asym.h5', np.tile(a.F4_initial, (reps, 1, 1, 1))[:2_000_000],
                 np.tile(a.F4_final, (reps, 1, 1, 1))[:2_000_000], np.tile(a.growth_rate, reps)[:2_000_000])
reps = 2_000_000 // len(s) + 1
write_stable(d / 'big_stab.h5', np.tile(s.F4_initial, (reps, 1, 1, 1))[:2_000_000], np.tile(s.stable, reps)[:2_000_000])
del a, s
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from rhea_engine.train import Callbacks, train
cfg = config_for(d, database_list=(str(d / 'big_asym.h5'),), stable_database_list=(str(d / 'big_stab.h5'),), epochs=1)
t0 = time.time()
train(cfg, checkpoint_dir=d / 'ckpt_big', evaluate_at_end=False)
print(json.dumps({{'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  'rss_before_gib': base / 2**20, 'seconds': time.time() - t0}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def throughput(directory: Path, config: TrainConfig, epochs: int) -> None:
    """Rhea compiled, Rhea eager and the reference loop, one epoch each in turn."""
    config = config.replace(epochs=epochs + 1)  # epoch 1 of each loop is warm-up
    data = load_training_data(config)
    names = ["rhea compiled", "rhea eager", "reference"]
    turns = TakeTurns(names)
    compiled, first = rhea_loop(turns, names[0], config.replace(compile="true"), data, directory)
    eager, _ = rhea_loop(turns, names[1], config.replace(compile="false"), data, directory)
    cpu_before = time.process_time()
    turns.run({names[0]: compiled, names[1]: eager, names[2]: reference_loop(turns, config)})
    process_cpu = time.process_time() - cpu_before
    threads_cpu = sum(sum(seconds) for seconds in turns.cpu_seconds.values())
    rate = {n: [config.epoch_num_samples / s for s in turns.cpu_seconds[n][1:]] for n in names}
    median = {n: statistics.median(r) for n, r in rate.items()}
    print(
        f"model: width 32, nhidden 1, batch norm; batch {config.batch_size}; "
        f"epoch_num_samples {config.epoch_num_samples:,}; 1 thread; {epochs} timed epochs each"
    )
    print("(Rhea's figures are whole epochs: sampling, steps, test split, checkpoints)")
    for n in names:
        runs = ", ".join(f"{r:,.0f}" for r in rate[n])
        print(f"{n + ':':15s} {median[n]:10,.0f} samples per CPU-second  (epochs: {runs})")
    print(
        f"(CPU check: the process used {process_cpu:.0f} s, the loops' threads {threads_cpu:.0f} s "
        "of it; the rest is compilation, data loading and helper threads)"
    )
    ref = median["reference"]
    print(
        f"ratio to the reference: compiled {median['rhea compiled'] / ref:.1f} x, eager "
        f"{median['rhea eager'] / ref:.1f} x  (target >= 8x, goal 10x)"
    )
    print(
        f"compile: {first.get('compile_seconds', float('nan')):.1f} s wall in epoch 1 "
        f"(that epoch: {first.get('epoch_seconds', float('nan')):.1f} s wall; warm-up excluded)"
    )
    flops = linear_flops_per_sample(build_model(config))
    same_shape = sgemm_gflops(2 * config.batch_size, 32, 32, repeat=200)
    large = sgemm_gflops(1024, 1024, 1024, repeat=5)
    print(f"model FLOPs per sample (linear layers, forward + backward): {flops:,.0f}")
    print(
        f"one-thread sgemm: {same_shape:.1f} GFLOP/s at {2 * config.batch_size}x32x32 "
        f"(the trunk's shape), {large:.1f} GFLOP/s at 1024^3"
    )
    for n in names[:2]:
        achieved = median[n] * flops / 1e9
        print(
            f"{n}: {achieved:.2f} GFLOP/s of linear-layer work = {achieved / same_shape:.0%} "
            f"of the same-shape sgemm (target >= 30 %), {achieved / large:.0%} of the large one"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs of each loop")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="rhea-bench-") as tmp:
        directory = Path(tmp)
        t0 = time.time()
        config = make_files(directory, args.rows)
        print(
            f"data: {args.rows} asymptotic rows (1 file), {args.rows} stability rows (2 files), "
            f"synthetic, written in {time.time() - t0:.1f} s"
        )
        throughput(directory, config, args.epochs)
        if not args.skip_memory:
            mem = peak_memory_2m(directory)
            print(
                f"2,000,000 asymptotic + 2,000,000 stability rows: peak RSS "
                f"{mem['peak_rss_gib']:.2f} GiB (of which writing the test files: "
                f"{mem['rss_before_gib']:.2f} GiB), one epoch incl. loading in {mem['seconds']:.0f} s"
            )
        if not args.skip_parallel:
            sys.path.insert(0, str(Path(__file__).parent))
            from parallel_runs import report_parallel_runs

            report_parallel_runs(directory)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
