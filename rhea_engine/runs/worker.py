"""The training process of one run: `python -m rhea_engine.runs.worker RUN_DIR [--resume]`.

Reads RUN_DIR/config.json, trains, and writes only RUN_DIR: events.jsonl (through
RunWriter) and checkpoints/. It never opens runs.db. stdout (one line per epoch) is
redirected to RUN_DIR/stdout.log by the launcher.

Events, in order: status "running"; start (pid, host, device, total_epochs, git commit and
dirty flag, data files with sha256, resumed_from_epoch); epoch per epoch; heartbeat every
`heartbeat_seconds` from a background thread (from the first moment, so loading data
never looks like a hang); checkpoint per file written; evaluation at the normal end; and
one final status:
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
reset event); when every checkpoint is unreadable it fails, naming them.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from rhea_engine.errors import DivergedError, RheaError
from rhea_engine.runs.rundir import CHECKPOINT_DIR, RunWriter, read_config


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout Rhea runs from, or (None, None) outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


class _Heartbeat(threading.Thread):
    def __init__(self, writer: RunWriter, seconds: float) -> None:
        super().__init__(daemon=True, name="rhea-heartbeat")
        self.writer, self.seconds = writer, seconds
        self.epoch = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.seconds):
            try:
                self.writer.heartbeat(self.epoch)
            except OSError:
                pass  # a transient file-system error must not kill the run


def _make_callbacks(writer: RunWriter, heartbeat: _Heartbeat, total_epochs: int) -> Any:
    from rhea_engine.train import Callbacks

    class WorkerCallbacks(Callbacks):
        def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
            writer.epoch(epoch, metrics)
            heartbeat.epoch = epoch
            print(
                f"epoch {epoch}/{total_epochs}  train_loss {metrics['train_loss']:.4e}  "
                f"test_loss {metrics['test_loss']:.4e}  ELN {metrics['ELN_violation']:.2e}  "
                f"lr {metrics['learning_rate']:.2e}  {metrics['epoch_seconds']:.1f}s",
                flush=True,
            )

        def on_checkpoint(self, epoch: int, path: Path, kind: str) -> None:
            writer.checkpoint(epoch, path, kind)

        def on_evaluation(self, results: dict[str, float]) -> None:
            writer.evaluation(results)

    return WorkerCallbacks()


def run_worker(run_dir: str | Path, resume: bool = False) -> int:
    """Train the run in `run_dir`; returns the process exit status."""
    run_path = Path(run_dir)
    writer = RunWriter(run_path)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    heartbeat: _Heartbeat | None = None
    epoch_reached = 0
    try:
        writer.status("running")
        from rhea_engine.config import from_dict

        config = from_dict(read_config(run_path)["config"])
        heartbeat = _Heartbeat(writer, config.heartbeat_seconds)
        heartbeat.start()
        from rhea_engine.checkpoint import load_checkpoint, scan_checkpoints
        from rhea_engine.train import resolve_device, train
        from rhea_engine.train_data import data_manifest, load_training_data

        device = resolve_device(config.device)
        resume_from, unreadable = scan_checkpoints(run_path) if resume else (None, [])
        if resume_from is None and unreadable:  # never start over silently
            from rhea_engine.runs.restart import check_resumable

            check_resumable(run_path.name, run_path)
        resumed_epoch = int(load_checkpoint(resume_from)["epoch"]) if resume_from else None
        if resume and resume_from is None:  # e.g. a Slurm job requeued before its first one
            writer.log("No checkpoint to resume from; starting from scratch.")
            writer.emit("reset", reason="no checkpoint to resume from")
        commit, dirty = git_state()
        manifest = data_manifest(config)
        writer.start(
            device=str(device),
            total_epochs=config.epochs,
            git_commit=commit,
            git_dirty=dirty,
            data=manifest,
            resumed_from_epoch=resumed_epoch,
        )
        heartbeat.epoch = epoch_reached = resumed_epoch or 0
        data = load_training_data(config, manifest=manifest)
        result = train(
            config,
            callbacks=_make_callbacks(writer, heartbeat, config.epochs),
            checkpoint_dir=run_path / CHECKPOINT_DIR,
            resume_from=resume_from,
            should_stop=stop.is_set,
            data=data,
        )
        epoch_reached = result.epochs_completed
        if result.stopped:
            writer.status("stopped", epoch=epoch_reached)
            print(f"stopped after epoch {epoch_reached}; checkpoint written", flush=True)
        else:
            writer.status("completed", epoch=epoch_reached)
            print(f"completed {epoch_reached} epochs", flush=True)
        return 0
    except DivergedError as exc:
        writer.status(
            "diverged",
            error=exc.message,
            epoch=exc.epoch,
            task=exc.task,
            traceback=traceback.format_exc(),
        )
        print(exc.message, file=sys.stderr, flush=True)
        return 2
    except RheaError as exc:
        writer.status(
            "failed", error=exc.message, traceback=traceback.format_exc(), epoch=epoch_reached
        )
        print(exc.message, file=sys.stderr, flush=True)
        return 2
    except BaseException as exc:  # noqa: BLE001 - every failure must reach events.jsonl
        writer.status(
            "failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            epoch=epoch_reached,
        )
        traceback.print_exc()
        return 1
    finally:
        if heartbeat is not None:
            heartbeat.done.set()
        writer.close()
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
