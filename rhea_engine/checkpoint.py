"""Checkpoint files: plain dicts saved atomically, loaded with `weights_only=True`.

A run directory keeps `checkpoints/epoch_{N:05d}.pt` (every `output_every` epochs and at
the end), `checkpoints/best.pt` (lowest test loss so far) and `checkpoints/last.pt` (the
most recent state: periodic, final or stop). Each file is one dict with the keys
`format`, `model`, `optimizer`, `scheduler`, `task_weights`, `config`, `epoch`,
`best_test_loss`, `rng` (tensors only) and `kind`.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from rhea_engine.errors import RunError
from rhea_engine.runs.rundir import write_atomically

FORMAT = "rhea-checkpoint-1"
CHECKPOINT_DIR = "checkpoints"
_EPOCH_RE = re.compile(r"epoch_(\d+)\.pt")


def epoch_path(directory: str | Path, epoch: int) -> Path:
    return Path(directory) / f"epoch_{epoch:05d}.pt"


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write `ckpt` to `path` atomically (temporary file, then rename).

    A write that fails leaves no partial file behind; a full file system (or quota) is a
    DiskFullError that names where space ran out.
    """
    # through a Python file, so that a failed write is an OSError with its errno (a path
    # given to torch.save fails with a bare RuntimeError)
    return write_atomically(Path(path), lambda handle: torch.save(ckpt, handle), "checkpoint")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a Rhea checkpoint safely; anything else is a clear RunError."""
    file = Path(path)
    if not file.is_file():
        raise RunError(f"Checkpoint '{file}' does not exist.")
    try:
        ckpt = torch.load(file, map_location=map_location, weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        AttributeError,
        ValueError,
    ) as exc:
        raise RunError(
            f"'{file}' could not be read as a Rhea checkpoint ({_load_failure(exc)}). It may "
            "be damaged, truncated, or not a checkpoint written by Rhea."
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise RunError(
            f"'{file}' is not a Rhea checkpoint (expected a dict with format '{FORMAT}'). "
            "Upstream model files can be brought in with `rhea import`."
        )
    return ckpt


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _load_failure(exc: BaseException) -> str:
    """What went wrong, without torch's advice to retry with weights_only=False.

    A file that needs Python objects a safe load refuses is never loaded unsafely: such a
    file can run code, and Rhea's own checkpoints never hold one.
    """
    text = str(exc)
    if "Weights only load failed" in text or "weights_only" in text:
        found = _UNSUPPORTED_GLOBAL.search(text)
        what = f" ({found.group(1)})" if found else ""
        return (
            f"it holds Python objects{what} that a safe load refuses; Rhea never loads a "
            "checkpoint unsafely"
        )
    first = text.splitlines()[0] if text.strip() else "no detail"
    return f"{type(exc).__name__}: {first}"


def _peek_epoch(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["epoch"])
    except (RunError, KeyError, TypeError, ValueError):
        return -1


def scan_checkpoints(run_dir: str | Path) -> tuple[Path | None, list[Path]]:
    """(the readable checkpoint of `run_dir` with the highest epoch, the unreadable files met).

    last.pt and best.pt are read, then epoch files from the newest down to the first
    readable one; last.pt wins ties.
    """
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return None, []
    epochs = sorted(
        ((int(m.group(1)), p) for p in directory.iterdir() if (m := _EPOCH_RE.fullmatch(p.name))),
        reverse=True,
    )
    named = [directory / name for name in ("last.pt", "best.pt") if (directory / name).is_file()]
    best: tuple[int, int, Path] | None = None
    unreadable: list[Path] = []
    for rank, path in enumerate(named + [p for _, p in epochs]):
        is_epoch_file = rank >= len(named)
        if is_epoch_file and best is not None and best[0] >= epochs[rank - len(named)][0]:
            break  # older epoch files cannot beat what was found
        epoch = _peek_epoch(path)
        if epoch < 0:
            unreadable.append(path)
        elif best is None or (epoch, -rank) > best[:2]:
            best = (epoch, -rank, path)
    return (best[2] if best else None), unreadable


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The readable checkpoint of `run_dir` with the highest epoch (last.pt wins ties)."""
    return scan_checkpoints(run_dir)[0]
