"""The training process of one run: `python -m rhea_engine.runs.worker RUN_DIR [--resume]`.

Reads RUN_DIR/config.json, trains, and writes only RUN_DIR through `rhea_engine.tracking`
(the one writer of run directories): events.jsonl, checkpoints/ and evaluation.json. It
never opens runs.db. stdout (one line per epoch) is redirected to RUN_DIR/stdout.log by the
launcher.

Events, in order: status "running"; start (pid, host, device, total_epochs, git commit and
dirty flag, data files with sha256, resumed_from_epoch); epoch per epoch; heartbeat every
`heartbeat_seconds` from a background thread (from the first moment, so loading data
never looks like a hang); GPU figures as often where NVIDIA's management library is
installed (`gpu`: rhea_engine.runs.gpu); checkpoint per file written; evaluation at the
normal end; and one final status:
    completed  all epochs done and the final evaluation written            (exit 0)
    stopped    SIGTERM/SIGINT: the epoch in progress is abandoned, the state at
               the end of the last finished epoch goes to checkpoints/last.pt  (exit 0)
    diverged   a non-finite loss; carries epoch, task and error             (exit 2)
    failed     any other exception; carries error and the full traceback    (exit 2 for
               errors a user can cause, 1 otherwise)

Checkpoints (see rhea_engine.checkpoint): checkpoints/epoch_{N:05d}.pt every
`output_every` epochs and at the end, checkpoints/best.pt at each new lowest test loss,
checkpoints/last.pt the latest state. `--resume` continues from the checkpoint with the
highest epoch; with none, the run starts from scratch (and says so in a log event and a
reset event); when every checkpoint is unreadable it fails, naming them. The final
evaluation uses the model of best.pt (the one a user exports and compares).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rhea_engine import tracking
from rhea_engine.errors import RheaError
from rhea_engine.runs.scripting import git_state as checkout_state

if TYPE_CHECKING:
    import torch

    from rhea_engine.config import TrainConfig
    from rhea_engine.model import FFIModel

RHEA_CHECKOUT = Path(__file__).resolve().parents[2]


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout Rhea runs from, or (None, None) outside git."""
    return checkout_state(RHEA_CHECKOUT)


def _make_callbacks(run: tracking.Run, total_epochs: int) -> Any:
    from rhea_engine.train import Callbacks

    class WorkerCallbacks(Callbacks):
        def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
            run.log(epoch, metrics)
            print(
                f"epoch {epoch}/{total_epochs}  train_loss {metrics['train_loss']:.4e}  "
                f"test_loss {metrics['test_loss']:.4e}  "
                f"ELN_test {metrics.get('ELN_violation_test', math.nan):.2e}  "
                f"lr {metrics['learning_rate']:.2e}  {metrics['epoch_seconds']:.1f}s",
                flush=True,
            )

        def on_checkpoint(self, epoch: int, path: Path, kind: str) -> None:
            run.checkpoint(epoch, path, kind)

    return WorkerCallbacks()


def _best_model(
    config: TrainConfig, run: tracking.Run, last: FFIModel | None, device: torch.device
) -> FFIModel:
    """The model of checkpoints/best.pt (lowest test loss), else the last state trained."""
    from rhea_engine.checkpoint import load_checkpoint
    from rhea_engine.model import build_model

    best_path = run.checkpoint_dir / "best.pt"
    if not best_path.is_file() and last is not None:
        return last.eval()
    model = build_model(config).to(device)
    model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
    return model.eval()


def _train(run: tracking.Run, resume: bool, stop: threading.Event) -> None:
    """Everything between the run's first event and its final status."""
    from rhea_engine.config import from_dict

    config = from_dict(run.config)
    run.heartbeat_seconds = config.heartbeat_seconds
    from rhea_engine.runs.gpu import start_monitor
    from rhea_engine.train import resolve_device

    device = resolve_device(config.device)
    gpu = start_monitor(str(device), run.gpu, config.heartbeat_seconds)
    try:
        _fit(run, config, device, resume, stop)
    finally:
        if gpu is not None:
            gpu.stop()


def _fit(
    run: tracking.Run,
    config: TrainConfig,
    device: torch.device,
    resume: bool,
    stop: threading.Event,
) -> None:
    """Train from scratch or from the latest checkpoint, then evaluate the best model."""
    from rhea_engine.checkpoint import load_checkpoint, scan_checkpoints
    from rhea_engine.evaluate import evaluate_with_distributions
    from rhea_engine.train import train
    from rhea_engine.train_data import data_manifest, load_training_data

    resume_from, unreadable = scan_checkpoints(run.path) if resume else (None, [])
    if resume_from is None and unreadable:  # never start over silently
        from rhea_engine.runs.restart import check_resumable

        check_resumable(run.path.name, run.path)
    resumed_epoch = int(load_checkpoint(resume_from)["epoch"]) if resume_from else None
    if resume and resume_from is None:  # e.g. a Slurm job requeued before its first one
        run.message("No checkpoint to resume from; starting from scratch.")
        run.reset("no checkpoint to resume from")
    commit, dirty = git_state()
    manifest = data_manifest(config)
    run.start(
        device=str(device),
        total_epochs=config.epochs,
        git_commit=commit,
        git_dirty=dirty,
        data=manifest,
        resumed_from_epoch=resumed_epoch,
    )
    data = load_training_data(config, manifest=manifest)
    result = train(
        config,
        callbacks=_make_callbacks(run, config.epochs),
        checkpoint_dir=run.checkpoint_dir,
        resume_from=resume_from,
        should_stop=stop.is_set,
        data=data,
        evaluate_at_end=False,
    )
    if result.stopped:
        run.finish("stopped", epoch=result.epochs_completed)
        print(f"stopped after epoch {result.epochs_completed}; checkpoint written", flush=True)
        return
    model = _best_model(config, run, result.model, device)
    run.evaluation(*evaluate_with_distributions(model, data))
    run.finish("completed", epoch=result.epochs_completed)
    print(f"completed {result.epochs_completed} epochs", flush=True)


def run_worker(run_dir: str | Path, resume: bool = False) -> int:
    """Train the run in `run_dir`; returns the process exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with tracking.attach_run(run_dir) as run:  # an exception ends it failed or diverged
            _train(run, resume, stop)
        return 0
    except RheaError as exc:  # DivergedError included
        print(exc.message, file=sys.stderr, flush=True)
        return exc.exit_code
    except BaseException:  # noqa: BLE001 - recorded in events.jsonl by the run already
        traceback.print_exc()
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rhea_engine.runs.worker",
        description="Train one Rhea run in its run directory.",
    )
    parser.add_argument("run_dir", help="the run directory (holds config.json)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    return run_worker(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
