"""The run directory: config.json, events.jsonl (append-only), stdout.log, checkpoints/.

A training process writes only its own run directory and never opens runs.db; front ends
ingest events.jsonl into SQLite. One JSON object per line, always with "type" and "t"
(unix seconds). Event types and their fields:

    start       pid, host, device, total_epochs, git_commit, git_dirty, data (list of
                {"path", "sha256", "kind"}), slurm_job_id (or null), resumed_from_epoch
    epoch       epoch (1-based), metrics {name: float}   (names as in docs/design.md §3)
    heartbeat   epoch (last finished, 0 before the first)
    checkpoint  epoch, path (relative to the run directory), kind ("periodic"|"best"|"final"|"stop")
    evaluation  results {name: float}  (final evaluation: model vs Box3D vs identity;
                its per-sample distributions, when kept, are in evaluation.json)
    status      status ("running"|"completed"|"failed"|"diverged"|"stopped"|"lost"|...),
                plus, where they apply: error (one paragraph), traceback, epoch, task
    reset       reason, discarded_checkpoints (the folder its checkpoint files moved to, or
                null): the run starts again from scratch (`rhea resume RUN --from-scratch`);
                everything recorded before it (metrics, checkpoints, evaluation) is void
    log         message
    gpu         devices (list of {"index", "name", "utilization" (%), "memory_used",
                "memory_total" (bytes)}): the worker's GPU, sampled every heartbeat

The writer is `RunWriter`, used through `rhea_engine.tracking` (Rhea's worker and users'
scripts alike). A line is written whole with one write() of bytes ending in "\\n" on a file
opened with O_APPEND, then flushed, so a reader never sees half an object except a torn last line,
which it leaves for the next read (see `read_events`).

Beside the run directories, a home holds sweeps/<name>.json (a sweep's spec) and, in a run
directory, status.json: the last status a front end set, and tags.json: the run's tags
(`rhea tag`), so that a rebuild keeps both.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rhea_engine.errors import DiskFullError, RunError

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
STDOUT_FILE = "stdout.log"
CHECKPOINT_DIR = "checkpoints"
STATUS_FILE = "status.json"
EVALUATION_FILE = "evaluation.json"  # the final evaluation's distributions (rhea plot)
EVALUATION_FORMAT = "rhea-evaluation-distributions-1"  # its "format" field
TAGS_FILE = "tags.json"
RUNS_DIR = "runs"
SWEEPS_DIR = "sweeps"
# the line a launcher writes to stdout.log before each worker it starts: the output of the
# latest launch is what follows the last one
LAUNCH_MARK = "=== rhea: worker launched"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_run_name(name: str) -> str:
    """A run name is a short typeable handle that can never escape the runs folder."""
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise RunError(
            f"'{name}' is not a valid run name: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (for example 'lr-sweep-3')."
        )
    return name


def run_dir(home: str | Path, name: str) -> Path:
    """The directory of run `name` under `home`/runs, refusing names that escape it."""
    check_run_name(name)
    root = (Path(home) / RUNS_DIR).resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise RunError(f"Run name '{name}' would leave the runs folder {root}.")
    return path


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: non-finite floats become strings ('nan', 'inf', '-inf')."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunWriter:
    """Appends event lines to one run directory; `rhea_engine.tracking.Run` is its public face."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        (self.path / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._torn = False

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, "t": time.time(), **_clean(fields)}
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        if self._torn:  # an earlier line was cut short (a full disk): end it, alone on its line
            line = b"\n" + line
        try:
            written = os.write(self._fd, line)
        except OSError:
            self._torn = True  # part of the line may be on disk
            raise
        if written < len(line):
            self._torn = True
            raise OSError(errno.ENOSPC, f"No space left: {EVENTS_FILE} line cut short")
        self._torn = False
        return event

    def start(self, **fields: Any) -> None:
        fields.setdefault("pid", os.getpid())
        fields.setdefault("host", socket.gethostname())
        fields.setdefault("slurm_job_id", os.environ.get("SLURM_JOB_ID"))
        self.emit("start", **fields)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.emit("epoch", epoch=epoch, metrics=metrics)

    def heartbeat(self, epoch: int) -> None:
        self.emit("heartbeat", epoch=epoch)

    def gpu(self, devices: list[dict[str, Any]]) -> None:
        self.emit("gpu", devices=devices)

    def checkpoint(self, epoch: int, path: str | Path, kind: str) -> None:
        rel = os.path.relpath(Path(path).resolve(), self.path.resolve())
        self.emit("checkpoint", epoch=epoch, path=rel, kind=kind)

    def evaluation(self, results: dict[str, float]) -> None:
        self.emit("evaluation", results=results)

    def status(self, status: str, **fields: Any) -> None:
        self.emit("status", status=status, **fields)

    def log(self, message: str) -> None:
        self.emit("log", message=message)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EventChunk:
    events: list[dict[str, Any]]
    end_offset: int  # byte offset just past the last complete line read


def read_events(path: str | Path, offset: int = 0) -> EventChunk:
    """Read complete event lines from byte `offset`; a torn last line is left for later.

    A line that is complete but not valid JSON (a crash mid-write cannot make one, but a
    hand edit can; so can an integer of thousands of digits, or nesting deeper than Python
    parses) is skipped, so one bad line never blocks a run's later events.
    """
    file = Path(path) / EVENTS_FILE if Path(path).is_dir() else Path(path)
    try:
        with open(file, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return EventChunk([], offset)
    end = data.rfind(b"\n")
    if end < 0:
        return EventChunk([], offset)
    events = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, int digits
            continue
        if isinstance(event, dict) and "type" in event:
            events.append(event)
    return EventChunk(events, offset + end + 1)


def open_output(directory: Path) -> BinaryIO:
    """stdout.log of a run, opened to append the output of a worker about to be launched."""
    log = open(directory / STDOUT_FILE, "ab")  # noqa: SIM115 (the caller closes it)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    log.write(f"{LAUNCH_MARK} at {stamp} ===\n".encode())
    log.flush()
    return log


def write_config(
    path: str | Path, config: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """Write config.json atomically (temp file + rename): {"config": {...}, "meta": {...}}."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps({"config": config, "meta": meta or {}}, indent=2, sort_keys=True))
    os.replace(tmp, directory / CONFIG_FILE)


def read_config(path: str | Path) -> dict[str, Any]:
    """Return {"config": {...}, "meta": {...}} of a run directory."""
    file = Path(path) / CONFIG_FILE
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise RunError(f"The run directory {path} has no {CONFIG_FILE}.") from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise RunError(f"{file} cannot be read ({exc}); the run directory is damaged.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise RunError(f"{file} is not a Rhea run configuration; the run directory is damaged.")
    return data


def create_run_dir(
    home: str | Path, name: str, config: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Make runs/<name>/ with its config.json; RunError if the directory exists already."""
    directory = run_dir(home, name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir()
    except FileExistsError as exc:
        raise RunError(
            f"The directory {directory} already exists but is not in runs.db; choose another "
            "--name, or run `rhea db rebuild` to bring it back."
        ) from exc
    write_config(directory, config, meta)
    return directory


def remove_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def removing(directory: Path) -> Iterator[None]:
    """Move `directory` aside while the body runs; delete it after, or put it back on error.

    The body removes the rows of the run; a failure there leaves the directory in place, so
    that nothing is lost and the deletion can be tried again.
    """
    trash = directory.parent / f".deleting-{directory.name}-{os.getpid()}"
    moved = directory.exists()
    if moved:
        os.replace(directory, trash)
    try:
        yield
    except BaseException:
        if moved and not directory.exists():
            os.replace(trash, directory)
        raise
    if moved:
        shutil.rmtree(trash, ignore_errors=True)


def write_atomically(target: Path, write: Callable[[BinaryIO], None], what: str = "file") -> Path:
    """Write `target` through `write(handle)` into a temporary file, then rename it into place.

    A failed write leaves no partial file behind; a full file system (or quota) is a
    DiskFullError naming the folder and its mount point.
    """
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(_no_space_message(target, what, exc)) from exc
        raise
    return target


def _no_space_message(target: Path, what: str, exc: OSError) -> str:
    folder = target.parent.resolve()
    mount = folder
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    where = str(folder) if mount == folder else f"{folder} (the file system mounted at {mount})"
    reason = "the disk quota is used up" if exc.errno == errno.EDQUOT else "the disk is full"
    return (
        f"No space left on {where}: {reason}, so the {what} {target.name} could not be "
        "written; its partial file was removed and earlier checkpoints are intact. Free "
        "space there (or move the Rhea home to a larger file system), then `rhea resume` "
        "continues from the last checkpoint."
    )


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write a small JSON file atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None if it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def write_status(directory: Path, status: str, error: str | None, traceback: str | None) -> None:
    """Record in status.json the status a front end set (a rebuild keeps it); no-op if gone."""
    if directory.is_dir():
        record = {"status": status, "t": time.time(), "error": error, "traceback": traceback}
        write_json(directory / STATUS_FILE, record)


def write_tags(directory: Path, tags: list[str]) -> None:
    """Record a run's tags in tags.json (a rebuild keeps them); no-op if the run is gone."""
    if directory.is_dir():
        write_json(directory / TAGS_FILE, {"tags": sorted(tags)})


def read_tags(directory: Path) -> list[str]:
    """The tags in tags.json that are valid tag names (a hand edit loses only its own)."""
    stored = (read_json(directory / TAGS_FILE) or {}).get("tags")
    if not isinstance(stored, list):
        return []
    return sorted({t for t in stored if isinstance(t, str) and _NAME_RE.fullmatch(t)})


def check_tag(tag: str) -> str:
    """A tag is a short word a filter can name unquoted: `tag = best-of-sweep`."""
    if not _NAME_RE.fullmatch(tag):
        raise RunError(
            f"'{tag}' is not a valid tag: use 1-64 letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (for example 'baseline' or 'paper-fig3')."
        )
    return tag


def write_sweep(home: str | Path, name: str, created: float, spec: dict[str, Any]) -> None:
    folder = Path(home) / SWEEPS_DIR
    folder.mkdir(exist_ok=True)
    write_json(
        folder / f"{check_run_name(name)}.json", {"name": name, "created": created, "spec": spec}
    )


def remove_sweep(home: str | Path, name: str) -> None:
    (Path(home) / SWEEPS_DIR / f"{check_run_name(name)}.json").unlink(missing_ok=True)


def start_afresh(directory: Path, reason: str) -> Path | None:
    """Void a run's history before it restarts from scratch; returns where its checkpoints went.

    The checkpoint files move into checkpoints/discarded-<time>/ (kept, never mixed with the
    new ones), and a `reset` event tells every reader of events.jsonl, a rebuild included,
    to drop what came before it.
    """
    folder = directory / CHECKPOINT_DIR
    files = sorted(folder.glob("*.pt*")) if folder.is_dir() else []
    aside = None
    if files:
        aside = folder / time.strftime("discarded-%Y%m%d-%H%M%S")
        aside.mkdir(exist_ok=True)
        for file in files:
            os.replace(file, aside / file.name)
    with RunWriter(directory) as writer:
        moved = None if aside is None else os.path.relpath(aside, directory)
        writer.emit("reset", reason=reason, discarded_checkpoints=moved)
    return aside
