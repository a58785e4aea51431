"""Search quality: TPE with ASHA pruning against random search, same data, same epoch budget.

A fixed synthetic problem (Rhea's generator, n rows, seed 1) and a fixed space (learning
rate 1e-5..3e-2 log, width 4..64 log-int, nhidden 0..2). Each method may train `--budget`
epochs in total, trials of up to `--epochs` epochs, one at a time:

- random: `--budget / --epochs` trials drawn as `rhea sweep --search random` draws them
  (`rhea_engine.sweep.plan.sample_random`), each trained to the end;
- tpe+asha: trials asked from the same `TrialSearch` as `rhea sweep --search tpe --asha`
  (Optuna's TPE, successive halving at epochs 1, 3, 9 with eta 3), each epoch's test loss
  reported, pruned trials stopped, until the budget is spent (the last trial is cut there).

Trials train in this process (`rhea_engine.train.train` on data loaded once) rather than as
worker processes, so the figures measure the search, not process start-up. For each search
seed the best test loss reached by any trial at any epoch is printed, then mean, standard
deviation and range over the seeds, the number of trials, and CPU and wall time per method.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search.py [--seeds 5] [--budget 90] [--epochs 9]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rhea_engine.config import default_config
from rhea_engine.data.synth import synth_to_dir
from rhea_engine.sweep.plan import override_of, sample_random, validate_trial
from rhea_engine.sweep.search import TrialSearch
from rhea_engine.sweep.space import parse_values
from rhea_engine.train import Callbacks, train
from rhea_engine.train_data import load_training_data

SPACE = {"lr": "1e-5:3e-2:log", "width": "4:64:logint", "nhidden": "0,1,2"}


class Trial(Callbacks):
    """Counts epochs against the budget, keeps the best test loss, asks the pruner."""

    def __init__(self, budget: list[int], report: Any = None) -> None:
        self.budget, self.report = budget, report
        self.best = math.inf
        self.stop = False

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.budget[0] -= 1
        loss = metrics["test_loss"]
        if math.isfinite(loss):
            self.best = min(self.best, loss)
        if self.budget[0] <= 0:
            self.stop = True
        elif self.report is not None and self.report(epoch, loss):
            self.stop = True


def run_trial(base: dict[str, Any], override: dict[str, Any], data: Any, trial: Trial) -> str:
    config = validate_trial(base, override, [], 0)
    from rhea_engine.config import from_dict

    with tempfile.TemporaryDirectory(prefix="search-bench-") as ckpt:
        try:
            result = train(
                from_dict(config),
                callbacks=trial,
                checkpoint_dir=ckpt,
                should_stop=lambda: trial.stop,
                data=data,
                evaluate_at_end=False,
            )
        except Exception as exc:  # a diverged trial counts with what it reached
            return f"failed ({type(exc).__name__})"
    return "stopped" if result.stopped else "completed"


def random_search(base: dict[str, Any], dims: list, data: Any, seed: int, args: Any) -> dict:
    budget = [args.budget]
    best, count = math.inf, 0
    for override in sample_random(dims, args.budget // args.epochs, seed):
        trial = Trial(budget)
        run_trial(base, override, data, trial)
        best, count = min(best, trial.best), count + 1
    return {"best": best, "trials": count, "pruned": 0}


def tpe_asha(base: dict[str, Any], dims: list, data: Any, seed: int, args: Any) -> dict:
    spec = {
        "search": "tpe",
        "search_seed": seed,
        "trials": None,
        "objectives": [{"name": "test_loss", "direction": "minimize"}],
        "pruning": {"kind": "asha", "min_epochs": 1, "eta": 3},
        "max_epochs": args.epochs,
    }
    search = TrialSearch.open(None, f"bench-{seed}", spec, dims)
    budget = [args.budget]
    best, count, pruned = math.inf, 0, 0
    while budget[0] > 0:
        count += 1
        name = f"t{count}"
        params = search.ask(name)
        override: dict[str, Any] = {}
        for dim in dims:
            override.update(override_of(dim, params[dim.label]))
        verdict: list[Any] = []

        def report(epoch: int, loss: float, name: str = name, verdict: list = verdict) -> bool:
            found = search.report(name, [(epoch, loss)])
            verdict.extend([found] if found else [])
            return found is not None

        trial = Trial(budget, report)
        status = run_trial(base, override, data, trial)
        best = min(best, trial.best)
        if verdict:
            pruned += 1
            search.tell(name, "pruned", None)
        elif status == "completed":
            search.tell(name, "completed", [trial.best])
        else:
            search.tell(name, "stopped" if status == "stopped" else "failed", None)
    return {"best": best, "trials": count, "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=90, help="epochs per method and seed")
    parser.add_argument("--epochs", type=int, default=9, help="epochs of a full trial")
    parser.add_argument("--n", type=int, default=4000, help="synthetic rows")
    parser.add_argument("--samples", type=int, default=2000, help="epoch_num_samples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="search-bench-data-") as folder:
        synth_to_dir(Path(folder), n=args.n, seed=1, workers=1)
        base = default_config().replace(
            database_list=[f"{folder}/asymptotic.h5"],
            stable_database_list=[f"{folder}/stable.h5"],
            epochs=args.epochs,
            epoch_num_samples=args.samples,
            batch_size=250,
            warmup_iters=0,
            output_every=10**6,
            device="cpu",
            num_threads=1,
        )
        data = load_training_data(base)
        dims, _ = parse_values(SPACE, [])
        base_dict = base.to_dict()
        methods = {"random": random_search, "tpe+asha": tpe_asha}
        results: dict[str, list[dict]] = {m: [] for m in methods}
        for seed in range(args.seeds):
            for method, run in methods.items():
                t0, c0 = time.perf_counter(), time.process_time()
                outcome = run(base_dict, dims, data, seed, args)
                outcome.update(wall=time.perf_counter() - t0, cpu=time.process_time() - c0)
                results[method].append(outcome)
                print(
                    f"seed {seed}  {method:9s} best test loss {outcome['best']:.4f}  "
                    f"{outcome['trials']:2d} trials ({outcome['pruned']} pruned)  "
                    f"cpu {outcome['cpu']:.1f}s",
                    flush=True,
                )
    print()
    print(f"budget {args.budget} epochs per method and seed, trials of up to {args.epochs} epochs,")
    print(f"{args.n} synthetic rows, epoch_num_samples {args.samples}, {args.seeds} seeds")
    print(
        f"{'method':10s} {'mean best':>10s} {'std':>8s} {'min':>8s} {'max':>8s} "
        f"{'trials':>7s} {'cpu s':>7s} {'wall s':>7s}"
    )
    for method, outcomes in results.items():
        best = [o["best"] for o in outcomes]
        spread = statistics.stdev(best) if len(best) > 1 else 0.0
        print(
            f"{method:10s} {statistics.mean(best):10.4f} {spread:8.4f} {min(best):8.4f} "
            f"{max(best):8.4f} {statistics.mean(o['trials'] for o in outcomes):7.1f} "
            f"{sum(o['cpu'] for o in outcomes):7.1f} {sum(o['wall'] for o in outcomes):7.1f}"
        )
    diffs = [
        t["best"] - r["best"] for t, r in zip(results["tpe+asha"], results["random"], strict=True)
    ]
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    ratio = statistics.mean(o["best"] for o in results["tpe+asha"]) / statistics.mean(
        o["best"] for o in results["random"]
    )
    print(f"paired difference tpe+asha - random, per seed: {', '.join(f'{d:+.4f}' for d in diffs)}")
    print(
        f"  mean {statistics.mean(diffs):+.4f}, std {spread:.4f}; tpe+asha lower on "
        f"{sum(d < 0 for d in diffs)} of {len(diffs)} seeds; ratio of means {ratio:.3f}"
    )


if __name__ == "__main__":
    main()
