"""What logging from a user's script needs beside the run writer.

Its printed output copied to stdout.log, its config and metric values made JSON-safe (with
a clear RunError for what cannot be), and the git state of the checkout it runs from.
"""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from rhea_engine.errors import RunError


def git_state(directory: str | Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding `directory`, or (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


class Tee(io.TextIOBase):
    """A text stream that writes to the script's own stream and to the run's stdout.log."""

    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        try:
            self.log.write(text)
        except (OSError, ValueError):
            pass  # the log is a copy: never let it break the script's own output
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        try:
            self.log.flush()
        except (OSError, ValueError):
            pass

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def metric_value(name: str, value: Any) -> float:
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError("not a number")
        return float(value)  # int, float, numpy scalars and one-element tensors
    except (TypeError, ValueError, RuntimeError) as exc:
        raise RunError(
            f"Metric '{name}' has the value {value!r} ({type(value).__name__}); a metric is "
            "one number per epoch (a float, an int, a numpy scalar or a one-element tensor)."
        ) from exc


def json_config(config: Any) -> dict[str, Any]:
    """A script's config as a JSON-safe dict: mappings, dataclasses and argparse namespaces."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif not isinstance(config, Mapping) and hasattr(config, "__dict__"):
        config = vars(config)
    if not isinstance(config, Mapping):
        raise RunError(
            f"The run's config must be a dict (or a dataclass or argparse namespace), not "
            f"{type(config).__name__}."
        )

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [plain(v) for v in value]
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return plain(value.item())  # numpy and torch scalars
        return str(value)  # paths, devices, dtypes: kept readable

    return {str(key): plain(value) for key, value in config.items()}
