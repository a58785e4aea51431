"""Sweep budgets: a wall-clock limit (`--budget 2h`) and a total of trained epochs.

A sweep stops launching trials once either is spent; with `hard` it also stops the trials
still running. Time counts from the sweep's creation (its trials keep training while no
front end watches them); epochs are those trained by all of the sweep's trials together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rhea_engine.errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """`2h`, `90m`, `1h30m`, `45s`, `1d` or plain seconds, in seconds."""
    raw = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(raw)
    except ValueError:
        parts = _PART_RE.findall(raw)
        if not parts or "".join(a + b for a, b in parts) != raw:
            raise ConfigError(
                f"--budget '{text}' is not a duration; use for example 2h, 90m, 1h30m or 3600 "
                "(seconds)."
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--budget '{text}' must be a positive duration.")
    return seconds


def show_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass(frozen=True)
class Budget:
    """What a sweep may spend: wall-clock seconds and/or trained epochs (None: no limit)."""

    seconds: float | None = None
    epochs: int | None = None
    hard: bool = False  # stop running trials too once spent

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--max-epochs-total must be at least 1; got {self.epochs}.")

    @property
    def limited(self) -> bool:
        return self.seconds is not None or self.epochs is not None

    def spent(self, started: float, now: float, epochs_trained: Iterable[int | None]) -> str | None:
        """Why the budget is spent (a sentence), or None while some is left."""
        if self.seconds is not None and now - started >= self.seconds:
            return f"its time budget of {show_duration(self.seconds)} was spent"
        if self.epochs is not None:
            used = sum(e or 0 for e in epochs_trained)
            if used >= self.epochs:
                return f"its budget of {self.epochs} epochs in total was spent ({used} trained)"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "epochs": self.epochs, "hard": self.hard}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Budget:
        data = data or {}
        seconds = data.get("seconds")
        epochs = data.get("epochs")
        return cls(
            None if seconds is None else float(seconds),
            None if epochs is None else int(epochs),
            bool(data.get("hard", False)),
        )
