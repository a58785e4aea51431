"""GPU readiness: the benchmark model trained with each option, resume exactness, worker pinning.

On a machine with a GPU, one command trains the throughput benchmark's model (width 32,
nhidden 1, batch norm) with each option - eager and compiled, fp32 and bf16 autocast, batch
sizes 4096 to 65536 - and prints samples per second (steady epochs: the first, which
compiles, is left out), the compile time, peak GPU memory and the model FLOP utilisation
(linear-layer FLOPs per second over a large matmul's, measured here in the same precision).
It then checks that a resumed run ends bit-for-bit where an uninterrupted one does (eager
and compiled; the checkpoint carries the CUDA RNG state), and that a worker started by
Rhea's launcher with CUDA_VISIBLE_DEVICES (what `rhea sweep --gpus` does) trains on the GPU.

With `--device cpu` (or no GPU) the same path runs on the CPU as a dry run; bf16 autocast
is CUDA-only, so there those cases train in fp32.

    .venv/bin/python benchmarks/gpu.py [--device auto] [--batches 4096,16384,65536]
        [--modes eager,compile] [--precisions fp32,bf16] [--epochs 3] [--rows 200000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from train_throughput import config_for, linear_flops_per_sample, make_files  # noqa: E402

from rhea_engine.config import TrainConfig  # noqa: E402
from rhea_engine.model import build_model  # noqa: E402
from rhea_engine.train import Callbacks, resolve_device, train  # noqa: E402
from rhea_engine.train_data import TrainingData, load_training_data  # noqa: E402


class Epochs(Callbacks):
    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.metrics.append(metrics)


def peak_matmul_flops(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul on `device` in `dtype` (best of three)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    repeat = 20 if device.type == "cuda" else 3
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeat):
            torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * repeat / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS


def run_case(
    config: TrainConfig, data: TrainingData, folder: Path, device: torch.device
) -> dict[str, float]:
    """Train one option; its steady samples/s, compile seconds and peak memory."""
    _reset_memory(device)
    rec = Epochs()
    train(config, callbacks=rec, checkpoint_dir=folder, data=data, evaluate_at_end=False)
    steady = [m["samples_per_second"] for m in rec.metrics[1:]] or [
        rec.metrics[0]["samples_per_second"]
    ]
    return {
        "samples_per_second": statistics.median(steady),
        "compile_seconds": rec.metrics[0].get("compile_seconds", 0.0),
        "peak_gib": _peak_memory_gib(device),
        "test_loss": rec.metrics[-1]["test_loss"],
    }


def resume_is_exact(config: TrainConfig, data: TrainingData, folder: Path) -> tuple[bool, float]:
    """(bit-for-bit?, largest parameter difference) of 2 epochs straight vs 1 + resume 1."""
    config = config.replace(epochs=2)
    straight = train(config, checkpoint_dir=folder / "a", data=data, evaluate_at_end=False)
    train(config.replace(epochs=1), checkpoint_dir=folder / "b", data=data, evaluate_at_end=False)
    resumed = train(
        config,
        checkpoint_dir=folder / "b",
        data=data,
        evaluate_at_end=False,
        resume_from=folder / "b" / "last.pt",
    )
    assert straight.model is not None and resumed.model is not None
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())
    return all(torch.equal(a[k], b[k]) for k in a), diff


def launcher_pinning(data_dir: Path, device: torch.device) -> str:
    """Start one real worker through Rhea's launcher with CUDA_VISIBLE_DEVICES set."""
    from rhea_engine.runs import launch
    from rhea_engine.runs.rundir import read_events
    from rhea_engine.runs.store import Store

    visible = "0" if device.type == "cuda" else ""
    config = config_for(data_dir, device="auto", epochs=1, epoch_num_samples=8192, batch_size=4096)
    with tempfile.TemporaryDirectory(prefix="rhea-gpu-home-") as home, Store(home) as store:
        row = store.create_run(config.to_dict(), name="pinned", status="queued")
        process = launch.start_worker(store, row.name, env={"CUDA_VISIBLE_DEVICES": visible})
        code = process.wait(timeout=600)
        assert row.path is not None
        events = read_events(row.path).events
        start = next((e for e in events if e.get("type") == "start"), {})
        status = [e for e in events if e.get("type") == "status"][-1:]
        final = status[0].get("status") if status else "no status"
    return (
        f"worker with CUDA_VISIBLE_DEVICES={visible!r} trained on {start.get('device', '?')}, "
        f"ended {final} (exit {code})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--batches", default="4096,16384,65536")
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per case (first: warm-up)")
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic rows per kind")
    parser.add_argument(
        "--epoch-samples", type=int, default=0, help="samples per epoch (0: 16 x largest batch)"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    modes, precisions = args.modes.split(","), args.precisions.split(",")
    epoch_samples = args.epoch_samples or 16 * max(batches)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"device: {device} = {name}; torch {torch.__version__}")
    peaks = {"fp32": peak_matmul_flops(device, torch.float32)}
    if device.type == "cuda":
        peaks["bf16"] = peak_matmul_flops(device, torch.bfloat16)
    else:
        peaks["bf16"] = peaks["fp32"]  # autocast is CUDA-only: bf16 cases train in fp32 here
    print(", ".join(f"large matmul {p}: {f / 1e12:.2f} TFLOP/s" for p, f in peaks.items()))
    with tempfile.TemporaryDirectory(prefix="rhea-gpu-") as tmp:
        folder = Path(tmp)
        t0 = time.time()
        base = make_files(folder, args.rows).replace(
            device=str(device), epochs=args.epochs, epoch_num_samples=epoch_samples
        )
        data = load_training_data(base)
        flops = linear_flops_per_sample(build_model(base))
        print(
            f"data: {args.rows:,} synthetic rows per kind ({time.time() - t0:.0f} s); "
            f"{epoch_samples:,} samples per epoch; {flops:,.0f} linear FLOPs per sample"
        )
        print(
            f"{'mode':8s} {'precision':9s} {'batch':>6s} {'samples/s':>12s} {'compile s':>9s} "
            f"{'peak GiB':>8s} {'MFU':>6s} {'test loss':>9s}"
        )
        for mode in modes:
            for precision in precisions:
                for batch in batches:
                    config = base.replace(
                        batch_size=batch,
                        compile="true" if mode == "compile" else "false",
                        autocast_bf16=precision == "bf16",
                    )
                    case = run_case(config, data, folder / f"{mode}-{precision}-{batch}", device)
                    mfu = case["samples_per_second"] * flops / peaks[precision]
                    print(
                        f"{mode:8s} {precision:9s} {batch:6d} {case['samples_per_second']:12,.0f} "
                        f"{case['compile_seconds']:9.1f} {case['peak_gib']:8.2f} {mfu:6.1%} "
                        f"{case['test_loss']:9.3g}",
                        flush=True,
                    )
        for mode in modes:
            config = base.replace(batch_size=batches[0], compile=str(mode == "compile").lower())
            exact, diff = resume_is_exact(config, data, folder / f"resume-{mode}")
            verdict = "yes" if exact else f"NO (largest difference {diff:.3g})"
            print(f"resume bit-for-bit ({mode}, fp32, batch {batches[0]}): {verdict}")
        print(f"launcher: {launcher_pinning(folder, device)}")


if __name__ == "__main__":
    main()
