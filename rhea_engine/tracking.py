"""Log a training run into a Rhea home from any script; the one writer of run directories.

    from rhea_engine.tracking import start_run

    with start_run(name="my-try", config={"learning_rate": 1e-4}, home="~/ffi-runs") as run:
        for epoch in range(1, n + 1):
            ...
            run.log(epoch, {"test_loss": t, "ELN_violation_test": e})
            run.checkpoint(epoch, "model.pt")  # optional: copied into the run directory

The run directory is the one Rhea's own worker writes (see `rhea_engine.runs.rundir`):
config.json, events.jsonl with a start event (pid, host), per-epoch metrics, heartbeats
from a background thread, checkpoints/ and a final status; stdout.log gets what the script
prints. runs.db is never opened: `rhea ls`, `rhea tui`, `rhea compare` and `rhea plot` pick
the run up. The `with` block ends the run `completed`; an exception ends it `failed` (with
its traceback, except for a RheaError, whose message says it all) or `diverged` (DivergedError), Ctrl-C or `rhea stop` (SIGTERM) end it
`stopped`, and a killed script is shown `lost` once its process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

from rhea_engine.errors import DivergedError, RheaError, RunError
from rhea_engine.runs.rundir import (
    CHECKPOINT_DIR,
    EVALUATION_FILE,
    RUNS_DIR,
    STDOUT_FILE,
    RunWriter,
    check_run_name,
    read_config,
    run_dir,
    write_atomically,
    write_config,
    write_json,
)
from rhea_engine.runs.scripting import Tee, git_state, json_config, metric_value
from rhea_engine.vocabulary import CHECKPOINT_KINDS

# Matches the front ends' default for runs whose config has no heartbeat_seconds.
HEARTBEAT_SECONDS = 5.0
SCRIPT_SOURCE = "script"  # config.json meta "source" of runs logged by start_run
_AUTO_NAME = re.compile(r"^run(\d+)$")


class StopRun(KeyboardInterrupt):
    """Raised in a script's main thread when `rhea stop` sends SIGTERM; ends the run `stopped`."""


class _Heartbeat(threading.Thread):
    """Writes a heartbeat event every `run.heartbeat_seconds` until the run ends."""

    def __init__(self, run: Run) -> None:
        super().__init__(daemon=True, name="rhea-heartbeat")
        self.run_ = run
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.run_.heartbeat_seconds):
            try:
                self.run_._writer.heartbeat(self.run_.epoch)
            except OSError:
                pass  # a transient file-system error must not kill the training


class Run:
    """One run directory being written: metrics, heartbeats, checkpoints and the final status.

    Made by `start_run` (a script's run) or `attach_run` (a run the store created, which
    Rhea's worker trains). Use it as a context manager; `finish` ends it explicitly.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        capture_output: bool = False,
        handle_sigterm: bool = False,
    ) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.heartbeat_seconds = heartbeat_seconds
        self.epoch = 0  # the last epoch logged (heartbeats carry it)
        self.status: str | None = None  # the final status, once written
        self._writer = RunWriter(self.path)
        self._heartbeat = _Heartbeat(self)
        self._heartbeat.start()
        self._streams: tuple[TextIO, TextIO] | None = None
        self._log_file: TextIO | None = None
        if capture_output:
            self._capture_output()
        self._previous_sigterm: Any = None
        if handle_sigterm:
            self._handle_sigterm()

    # -- what a training loop calls -------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        """checkpoints/ of the run: files written here are recorded without a copy."""
        return self.path / CHECKPOINT_DIR

    @property
    def config(self) -> dict[str, Any]:
        """The config stored in config.json."""
        return dict(read_config(self.path).get("config") or {})

    def log(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Record the metrics of one epoch (names are free; Rhea's own names get their plots)."""
        self._check_open()
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise RunError(f"The epoch must be a whole number >= 0, not {epoch!r}.")
        if not isinstance(metrics, Mapping):
            raise RunError(
                f"Metrics are a dict {{name: value}}, not {type(metrics).__name__}; "
                "for example run.log(3, {'test_loss': 0.12})."
            )
        values = {}
        for name, value in metrics.items():
            if not isinstance(name, str) or not name:
                raise RunError(f"A metric name must be a non-empty string, not {name!r}.")
            values[name] = metric_value(name, value)
        self._writer.epoch(epoch, values)
        self.epoch = max(self.epoch, epoch)

    def checkpoint(self, epoch: int, path: str | Path, kind: str = "periodic") -> Path:
        """Record a checkpoint file; one outside the run directory is copied into checkpoints/."""
        self._check_open()
        if kind not in CHECKPOINT_KINDS:
            raise RunError(
                f"Unknown checkpoint kind '{kind}'; use one of {', '.join(CHECKPOINT_KINDS)}."
            )
        source = Path(path).expanduser()
        if not source.is_file():
            raise RunError(f"The checkpoint file '{source}' does not exist or is not a file.")
        target = source.resolve()
        if not target.is_relative_to(self.path.resolve()):
            target = self.checkpoint_dir / source.name
            with open(source, "rb") as original:  # a reader never sees half a file
                write_atomically(target, lambda copy: shutil.copyfileobj(original, copy))
        self._writer.checkpoint(epoch, target, kind)
        return target

    def evaluation(
        self, results: Mapping[str, float], distributions: Mapping[str, Any] | None = None
    ) -> None:
        """Record the final evaluation; `distributions` (per-sample summaries) go to a file."""
        self._check_open()
        if distributions is not None:
            write_json(self.path / EVALUATION_FILE, dict(distributions))
        self._writer.evaluation({k: float(v) for k, v in results.items()})

    def reset(self, reason: str) -> None:
        """Everything recorded before is void: the run starts again from scratch."""
        self._check_open()
        self._writer.emit("reset", reason=reason, discarded_checkpoints=None)

    def gpu(self, devices: list[dict[str, Any]]) -> None:
        """Record the GPU figures of this process (rhea_engine.runs.gpu samples them)."""
        self._check_open()
        self._writer.gpu(devices)

    def message(self, text: str) -> None:
        """A line for the run's log (shown by `rhea show` and the TUI)."""
        self._check_open()
        self._writer.log(text)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, **fields: Any) -> None:
        """The start event: pid, host and Slurm job id are filled in; resumes set `epoch`."""
        self._check_open()
        self._writer.start(**fields)
        resumed = fields.get("resumed_from_epoch")
        if isinstance(resumed, int):
            self.epoch = resumed

    def running(self) -> None:
        self._check_open()
        self._writer.status("running")

    def finish(self, status: str = "completed", **fields: Any) -> None:
        """Write the final status and close the run (idempotent: the first call wins)."""
        if self.status is not None:
            return
        self.status = status
        self._heartbeat.done.set()
        if self._heartbeat.is_alive() and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5.0)
        fields.setdefault("epoch", self.epoch)
        try:
            self._writer.status(status, **fields)
        finally:
            self._release()

    def fail(self, exc: BaseException) -> None:
        """End the run for an exception: diverged, stopped, completed (exit 0) or failed."""
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, DivergedError):
            self.finish(
                "diverged", error=exc.message, epoch=exc.epoch, task=exc.task, traceback=trace
            )
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("stopped")
        elif isinstance(exc, SystemExit) and exc.code in (0, None):
            self.finish("completed")
        elif isinstance(exc, RheaError):  # a user's error: its message says it all
            self.finish("failed", error=exc.message)
        else:
            if self._log_file is not None:
                self._log_file.write(trace)
            self.finish("failed", error=f"{type(exc).__name__}: {exc}", traceback=trace)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.finish("completed")
            return False
        self.fail(exc)
        return isinstance(exc, StopRun)  # `rhea stop` ends the block, not the script

    # -- internals ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.status is not None:
            raise RunError(f"Run '{self.name}' has ended ({self.status}); start a new run.")

    def _capture_output(self) -> None:
        self._log_file = open(self.path / STDOUT_FILE, "a", buffering=1)  # noqa: SIM115
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = Tee(sys.stdout, self._log_file)  # type: ignore[assignment]
        sys.stderr = Tee(sys.stderr, self._log_file)  # type: ignore[assignment]

    def _handle_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the script handles SIGTERM itself

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise StopRun(f"run '{self.name}' stopped by SIGTERM")

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _release(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self._streams is not None:
            stdout, stderr = self._streams
            if isinstance(sys.stdout, Tee):
                sys.stdout = stdout
            if isinstance(sys.stderr, Tee):
                sys.stderr = stderr
            self._streams = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._writer.close()


def resolve_home(home: str | Path | None) -> Path:
    """`home`, else $RHEA_HOME, else the current directory (as the CLI resolves --home)."""
    chosen = home if home is not None else os.environ.get("RHEA_HOME") or Path.cwd()
    return Path(chosen).expanduser().resolve()


def _new_run_dir(home: Path, name: str | None) -> Path:
    """Create runs/<name>/ (or the next free runN/) without ever opening runs.db."""
    root = home / RUNS_DIR
    root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        path = run_dir(home, name)
        try:
            path.mkdir()
        except FileExistsError:
            raise RunError(
                f"A run named '{name}' already exists in {home}; choose another name."
            ) from None
        return path
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _AUTO_NAME.match(p.name))]
    number = max(numbers, default=0) + 1
    while True:  # mkdir is atomic: a front end allocating runN at the same moment skips it
        path = root / f"run{number}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def start_run(
    name: str | None = None,
    config: Any = None,
    home: str | Path | None = None,
    *,
    epochs: int | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    capture_output: bool = True,
) -> Run:
    """Start a new run in the Rhea home `home` ($RHEA_HOME, else the current directory).

    `name` defaults to the next free run1, run2, ...; `config` (a dict, dataclass or
    argparse namespace) is stored as the run's parameters; `epochs` (else config["epochs"])
    is the planned total shown as epoch/total. What the script prints is copied to
    stdout.log unless `capture_output` is False.
    """
    if name is not None:
        check_run_name(name)
    values = json_config(config)
    if epochs is None and isinstance(values.get("epochs"), int):
        epochs = values["epochs"]
    root = resolve_home(home)
    path = _new_run_dir(root, name)
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    meta = {
        "name": path.name,
        "created": time.time(),
        "status": "running",
        "home": str(root),
        "source": SCRIPT_SOURCE,
        "script": str(script) if script else None,
    }
    try:
        write_config(path, values, meta)
        run = Run(
            path,
            heartbeat_seconds=heartbeat_seconds,
            capture_output=capture_output,
            handle_sigterm=True,
        )
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-made run directory is left behind
        raise
    commit, dirty = git_state(script.parent if script and script.is_file() else Path.cwd())
    run.start(
        host=socket.gethostname(),
        device=None,
        total_epochs=epochs,
        git_commit=commit,
        git_dirty=dirty,
        data=[],
        resumed_from_epoch=None,
    )
    return run


def attach_run(path: str | Path) -> Run:
    """Open a run directory the store created (config.json present) and mark it running.

    Heartbeats follow the config's `heartbeat_seconds` from the first one on.
    """
    beat = HEARTBEAT_SECONDS
    try:
        configured = read_config(path).get("config", {}).get("heartbeat_seconds")
        if isinstance(configured, (int, float)) and configured > 0:
            beat = float(configured)
    except RheaError:
        pass  # the worker reports a missing or damaged config.json as the run's failure
    run = Run(path, heartbeat_seconds=beat)
    run.running()
    return run


def is_script_run(path: str | Path) -> bool:
    """True for a run logged by a script through `start_run` (Rhea cannot resume it)."""
    try:
        return read_config(path).get("meta", {}).get("source") == SCRIPT_SOURCE
    except RheaError:
        return False
