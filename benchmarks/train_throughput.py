"""Training throughput: Rhea's loop beside a DataLoader reference loop, same data, model, losses.

Prints samples per CPU-second of both loops (one thread), their ratio (target >= 6x), Rhea's
fraction of the one-thread sgemm roofline, and the peak memory of loading 2 million rows.
A "sample" is one asymptotic row plus one stability row (each loop draws
`epoch_num_samples` of each per epoch, every file weighted equally).

    .venv/bin/python benchmarks/train_throughput.py [--epochs 3] [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset, WeightedRandomSampler

from rhea_engine import losses as L
from rhea_engine.config import TrainConfig
from rhea_engine.data import write_asymptotic, write_stable
from rhea_engine.data.synth import generate
from rhea_engine.model import FFIModel, build_model
from rhea_engine.train import Callbacks, train
from rhea_engine.train_data import load_training_data
from rhea_engine.vocabulary import TASKS

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
        asym.append(
            TensorDataset(
                *(
                    torch.as_tensor(a, dtype=torch.float32)
                    for a in (s.F4_initial, s.F4_final, s.growth_rate)
                )
            )
        )
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
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    t0 = time.process_time()
    for _ in range(repeat):
        torch.mm(a, b)
    return 2.0 * m * k * n * repeat / (time.process_time() - t0) / 1e9


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each loop")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rhea-bench-") as tmp:
        directory = Path(tmp)
        t0 = time.time()
        config = make_files(directory, args.rows)
        print(
            f"data: {args.rows} asymptotic rows (1 file), {args.rows} stability rows (2 files), "
            f"synthetic, written in {time.time() - t0:.1f} s"
        )
        data = load_training_data(config)
        asym_sets, stab_sets = reference_data(config)
        torch.manual_seed(0)
        ref_model = build_model(config)
        ref_opt = torch.optim.AdamW(
            ref_model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        rhea_rates, ref_rates = [], []

        class SideBySide(Callbacks):
            """After each Rhea epoch, run one reference epoch; time each on the process clock."""

            def __init__(self) -> None:
                self.mark = time.process_time()

            def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
                rhea_cpu = time.process_time() - self.mark
                t_cpu = time.process_time()
                reference_epoch(ref_model, ref_opt, asym_sets, stab_sets, config)
                ref_cpu = time.process_time() - t_cpu
                if epoch > 1:  # epoch 1 warms both up and is not counted
                    rhea_rates.append(config.epoch_num_samples / rhea_cpu)
                    ref_rates.append(config.epoch_num_samples / ref_cpu)
                self.mark = time.process_time()

        train(
            config.replace(epochs=args.epochs + 1),
            callbacks=SideBySide(),
            checkpoint_dir=directory / "ckpt",
            data=data,
            evaluate_at_end=False,
        )
        rhea, ref = statistics.median(rhea_rates), statistics.median(ref_rates)
        print(
            "model: width 32, nhidden 1, batchnorm; batch 4096; epoch_num_samples 200000; 1 thread"
        )
        print(
            "(Rhea's figure is whole epochs: sampling, training, full test-split evaluation, checkpoints)"
        )
        print(
            f"Rhea loop:      {rhea:12,.0f} samples per CPU-second  (epochs: "
            f"{', '.join(f'{r:,.0f}' for r in rhea_rates)})"
        )
        print(
            f"reference loop: {ref:12,.0f} samples per CPU-second  (epochs: "
            f"{', '.join(f'{r:,.0f}' for r in ref_rates)})"
        )
        print(f"ratio:          {rhea / ref:12.1f} x   (target >= 6x)")
        flops = linear_flops_per_sample(build_model(config))
        peak_rep = sgemm_gflops(8192, 32, 32, repeat=200)
        peak_big = sgemm_gflops(1024, 1024, 1024, repeat=5)
        print(f"model FLOPs per sample (linear layers, forward + backward): {flops:,.0f}")
        print(
            f"one-thread sgemm: {peak_rep:.1f} GFLOP/s at 8192x32x32 (the model's shape), "
            f"{peak_big:.1f} GFLOP/s at 1024^3"
        )
        achieved = rhea * flops / 1e9
        print(
            f"Rhea achieves {achieved:.2f} GFLOP/s of linear-layer work: {achieved / peak_rep:.0%} of the "
            f"same-shape sgemm roofline, {achieved / peak_big:.0%} of the large-sgemm peak"
        )
        if not args.skip_memory:
            mem = peak_memory_2m(directory)
            print(
                f"2,000,000 asymptotic + 2,000,000 stability rows: peak RSS {mem['peak_rss_gib']:.2f} GiB "
                f"(of which writing the test files: {mem['rss_before_gib']:.2f} GiB), one epoch incl. "
                f"loading in {mem['seconds']:.0f} s"
            )


if __name__ == "__main__":
    main()
