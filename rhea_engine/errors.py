"""One error family for everything a user can cause; each carries a user-facing message."""

from __future__ import annotations


class RheaError(Exception):
    """An error a user can cause and fix; `message` is one paragraph, shown as is."""

    title = "Error"
    exit_code = 2

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(RheaError):
    title = "Configuration error"


class DataError(RheaError):
    title = "Data error"


class PhysicsError(RheaError):
    title = "Physics error"


class RunError(RheaError):
    title = "Run error"


class UnknownRunError(RunError):
    title = "Unknown run"


class DiskFullError(RunError):
    """A file system ran out of space (or quota) while Rhea wrote to it."""

    title = "No space left"


class StoreError(RheaError):
    title = "Run store error"


class DeviceError(RheaError):
    title = "Device error"


class SweepError(RheaError):
    title = "Sweep error"


class SlurmError(RheaError):
    title = "Slurm error"


class ImportFormatError(RheaError):
    title = "Import error"


class ExportError(RheaError):
    title = "Export error"


class PlotError(RheaError):
    title = "Plot error"


class DivergedError(RheaError):
    """Training produced a non-finite loss; names the epoch and the task that went first."""

    title = "Run diverged"

    def __init__(self, epoch: int, task: str, message: str | None = None) -> None:
        self.epoch = epoch
        self.task = task
        super().__init__(
            message
            or f"The loss of task '{task}' became non-finite at epoch {epoch}; the run was "
            "ended as diverged. Lower the learning rate (--lr) or the loss multiplier of "
            f"'{task}', or check the input data for extreme values."
        )


class FilterError(RheaError):
    """A `--where` expression that cannot be read or used; `position` is where it goes wrong."""

    title = "Filter error"

    def __init__(self, message: str, expression: str, position: int, reason: str) -> None:
        super().__init__(message)
        self.expression = expression
        self.position = position
        self.reason = reason
