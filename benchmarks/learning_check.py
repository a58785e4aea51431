"""Learning check and head-to-head of architectures and symmetries on synthetic Box3D data.

Every model of --models (architecture/symmetry; default: transfer/none, transfer/box3d,
transfer/full, equivariant/box3d, equivariant/full) is trained on the same synthetic data
with the same settings and the same budget of samples seen (--epochs x --epoch-samples),
then its lowest-test-loss checkpoint is measured. One command prints everything:

1. accuracy on the asymptotic/stability test splits: mean |dN_e|/ntot against the Box3D
   target, stability accuracy, growth-rate log error, ELN violation (Box3D and the identity,
   no mixing, for reference), and the learning targets (identity/model >= 5x in mean |dN_e|,
   stability accuracy >= 95 %; reached with the full budget, not the quick one);
2. cost: parameters, training wall time and samples/s (side by side on one machine: compare
   the ratios), TorchScript inference latency at N = 1 and N = 100,000;
3. errors on symmetry-transformed test sets: mean |dN|/ntot (all species) and stability
   accuracy on g·F4 against g·target, for g = nu<->nubar, mu<->tau, e<->mu. Box3D data are
   exactly symmetric under the first two; the FFI itself under all three.

    .venv/bin/python benchmarks/learning_check.py                  # the head-to-head (minutes)
    .venv/bin/python benchmarks/learning_check.py --models transfer/none --n 200000 \\
        --epochs 40 --epoch-samples 200000                         # the full learning check
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rhea_engine.checkpoint import load_checkpoint
from rhea_engine.config import HEADS, TrainConfig
from rhea_engine.data.synth import synth_to_dir
from rhea_engine.evaluate import final_state_errors
from rhea_engine.export import quiet_torchscript, random_physical_F4, script_model
from rhea_engine.model import model_from_checkpoint
from rhea_engine.models.symmetry import FlavorSymmetry, transform_F4
from rhea_engine.physics import box3d
from rhea_engine.train import Callbacks, train

HEAD_TO_HEAD = (
    "transfer/none",
    "transfer/box3d",
    "transfer/full",
    "equivariant/box3d",
    "equivariant/full",
)
TRANSFORMS = {
    "nu<->nubar": FlavorSymmetry(True, (0, 1, 2)),
    "mu<->tau": FlavorSymmetry(False, (0, 2, 1)),
    "e<->mu": FlavorSymmetry(False, (1, 0, 2)),
}
LATENCY_CELLS = (1, 100_000)


@dataclass
class Outcome:
    """What one trained model measured."""

    name: str
    parameters: int
    train_seconds: float
    samples_per_second: float
    evaluation: dict[str, float]
    latency: dict[int, float]
    transformed: dict[str, dict[str, float]] = field(default_factory=dict)


class Printer(Callbacks):
    def __init__(self, name: str) -> None:
        self.name = name
        self.rates: list[float] = []

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.rates.append(metrics["samples_per_second"])
        print(
            f"  {self.name:18s} epoch {epoch:3d}  test_loss {metrics['test_loss']:.4e}"
            f"  ndens {metrics['ndens_test_loss']:.3e}  stability {metrics['stability_test_loss']:.3e}"
            f"  {metrics['samples_per_second']:8.0f} samples/s",
            flush=True,
        )


def config_for(name: str, data: tuple[str, str], args: argparse.Namespace) -> TrainConfig:
    """The shared settings, with this model's architecture and symmetry."""
    architecture, symmetry = name.split("/")
    settings: dict[str, Any] = {f"width_{h}": args.width for h in HEADS}
    settings.update({f"nhidden_{h}": args.nhidden for h in HEADS})
    settings.update(
        architecture=architecture,
        symmetry=symmetry,
        # `full` treats every flavor alike, so it cannot single out mu and tau
        average_heavies_in_final_state=symmetry != "full",
        database_list=(data[0],),
        stable_database_list=(data[1],),
        epochs=args.epochs,
        epoch_num_samples=args.epoch_samples,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        warmup_iters=min(3, args.epochs - 1),
        patience=4,
        cooldown=1,
        factor=0.5,
        weight_decay=1e-5,
        test_size=0.1,
        output_every=10_000,
        device="cpu",
        random_seed=7,
        do_batchnorm=False,
        activation="silu",
        do_eln_inputs=True,
    )
    return TrainConfig(**settings)


def latency(model: torch.nn.Module, threads: int) -> dict[int, float]:
    """Seconds per TorchScript predict_all call (median), at each of LATENCY_CELLS."""
    torch.set_num_threads(threads)
    with quiet_torchscript():
        scripted = script_model(model.eval())
    out = {}
    with torch.inference_mode():
        for n in LATENCY_CELLS:
            F4 = random_physical_F4(n, seed=5)
            repeats = 30 if n < 1000 else 2
            for _ in range(3 if n < 1000 else 1):  # the profiling executor's warm-up runs
                scripted.predict_all(F4)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                scripted.predict_all(F4)
                times.append(time.perf_counter() - start)
            out[n] = float(np.median(times))
    return out


def predict(model: torch.nn.Module, F4: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.inference_mode():
        outs = [
            model.predict_all(torch.as_tensor(c, dtype=torch.float32))
            for c in np.array_split(F4, max(1, len(F4) // 65536))
        ]
    return tuple(np.concatenate([o[i].double().numpy() for o in outs]) for i in range(3))


def transformed_errors(
    who: Any, test: dict[str, np.ndarray], transforms: dict[str, FlavorSymmetry | None]
) -> dict[str, dict[str, float]]:
    """Mean |dN|/ntot and stability accuracy of `who` (a model, or "box3d") on g·F4 vs g·target."""
    out = {}
    for label, g in transforms.items():
        F4, F4_final, F4_stable = test["F4_initial"], test["F4_final"], test["stable_F4"]
        if g is not None:
            F4, F4_final, F4_stable = (
                transform_F4(torch.as_tensor(a), g).numpy() for a in (F4, F4_final, F4_stable)
            )
        if who == "box3d":
            F4_pred = box3d(F4).F4_final
            stable_pred = ~box3d(F4_stable).unstable
        else:
            F4_pred = predict(who, F4)[0]
            stable_pred = predict(who, F4_stable)[2] > 0.5
        errors = final_state_errors(F4, F4_pred, F4_final)
        accuracy = float((stable_pred == (test["stable"] > 0.5)).mean())
        out[label] = {"ndens": errors["ndens_mean_err"], "stability": accuracy}
    return out


def run_one(
    name: str, data: tuple[str, str], tmp: Path, args: argparse.Namespace
) -> tuple[Outcome, dict[str, np.ndarray]]:
    config = config_for(name, data, args)
    printer = Printer(name)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    folder = tmp / name.replace("/", "_")
    result = train(config, callbacks=printer, checkpoint_dir=folder)
    seconds = time.perf_counter() - start
    best = model_from_checkpoint(load_checkpoint(folder / "best.pt"))
    from rhea_engine.train_data import load_training_data

    data_arrays = load_training_data(config)
    test = {
        "F4_initial": data_arrays.test_F4_initial,
        "F4_final": data_arrays.test_F4_final,
        "stable_F4": data_arrays.test_stable_F4_initial,
        "stable": data_arrays.test_stable,
    }
    outcome = Outcome(
        name=name,
        parameters=sum(p.numel() for p in best.parameters()),
        train_seconds=seconds,
        samples_per_second=float(np.median(printer.rates)),
        evaluation=result.evaluation,
        latency=latency(best, args.threads),
        transformed=transformed_errors(best, test, {"original": None, **TRANSFORMS}),
    )
    return outcome, test


def print_tables(outcomes: list[Outcome], test: dict[str, np.ndarray]) -> None:
    ev0 = outcomes[0].evaluation
    print("\n1. accuracy (test splits) and cost; latency is TorchScript predict_all")
    header = (
        f"{'model':19s}{'params':>8s}{'train s':>9s}{'samples/s':>10s}{'|dN_e|/ntot':>12s}"
        f"{'stab acc':>9s}{'log dgrowth':>12s}{'ELN viol':>10s}{'N=1 ms':>8s}{'N=100k s':>9s}"
    )
    print(header)
    for o in outcomes:
        ev = o.evaluation
        print(
            f"{o.name:19s}{o.parameters:8d}{o.train_seconds:9.0f}{o.samples_per_second:10.0f}"
            f"{ev['model_ndens_e_mean_err']:12.4g}{ev['model_stability_accuracy']:9.4f}"
            f"{ev['model_growthrate_log_err']:12.4g}{ev['model_eln_violation']:10.2g}"
            f"{o.latency[1] * 1e3:8.2f}{o.latency[100_000]:9.3f}"
        )
    for who in ("box3d", "identity"):
        print(
            f"{who:19s}{'':35s}{ev0[f'{who}_ndens_e_mean_err']:12.4g}"
            f"{ev0.get(f'{who}_stability_accuracy', float('nan')):9.4f}"
            f"{ev0.get(f'{who}_growthrate_log_err', float('nan')):12.4g}"
            f"{ev0[f'{who}_eln_violation']:10.2g}"
        )
    print("\n   targets: identity/model >= 5x in mean |dN_e|/ntot, stability accuracy >= 95 %")
    for o in outcomes:
        ev = o.evaluation
        ratio = ev["identity_ndens_e_mean_err"] / ev["model_ndens_e_mean_err"]
        acc = ev["model_stability_accuracy"]
        verdict = "PASS" if ratio >= 5 and acc >= 0.95 else "FAIL"
        print(f"   {o.name:19s} identity/model {ratio:5.1f}x, stability {acc:.2%} -> {verdict}")
    labels = ["original", *TRANSFORMS]
    print("\n2. symmetry-transformed test sets: mean |dN|/ntot | stability accuracy")
    print(
        f"{'model':19s}"
        + "".join(f"{label:>12s}" for label in labels)
        + " |"
        + "".join(f"{label:>12s}" for label in labels)
    )
    box = transformed_errors("box3d", test, {"original": None, **TRANSFORMS})
    for name, table in [(o.name, o.transformed) for o in outcomes] + [("box3d", box)]:
        print(
            f"{name:19s}"
            + "".join(f"{table[label]['ndens']:12.4g}" for label in labels)
            + " |"
            + "".join(f"{table[label]['stability']:12.4f}" for label in labels)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=",".join(HEAD_TO_HEAD), help="architecture/symmetry,..."
    )
    parser.add_argument("--n", type=int, default=60_000, help="synthetic samples")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--epoch-samples", type=int, default=50_000, help="samples per epoch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=32, help="every width_* key")
    parser.add_argument("--nhidden", type=int, default=1, help="every nhidden_* key")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    print(
        f"settings: {args.n} synthetic samples, budget {args.epochs} x {args.epoch_samples} samples "
        f"seen per model, width {args.width}, nhidden {args.nhidden}, batch {args.batch_size}, "
        f"lr {args.lr:g}, silu, no batch norm, do_eln_inputs (transfer), average_heavies except "
        f"with full, {args.threads} threads, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory(prefix="rhea-learn-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.time()
        synth = synth_to_dir(tmp / "data", args.n, seed=2024)
        print(
            f"synthetic data: {synth.n_unstable} unstable of {args.n}, in {time.time() - t0:.0f} s"
        )
        data = (str(synth.asymptotic_path), str(synth.stable_path))
        outcomes, test = [], {}
        for name in names:
            outcome, test = run_one(name, data, tmp, args)
            outcomes.append(outcome)
    print_tables(outcomes, test)


if __name__ == "__main__":
    main()
