"""The embedded default data set: synthetic HDF5 files generated once into <home>/data/.

Two `rhea run`s starting at once on a new home must not both generate or read half-written
files: generation happens under an exclusive lock file, into a temporary folder whose files
are renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from rhea_engine.errors import DataError

DEFAULT_N = 20_000
DEFAULT_SEED = 1
DATA_DIR = "data"
ASYMPTOTIC = "asymptotic.h5"  # the names `synth_to_dir` writes (and `rhea data synth HOME/data`)
STABLE = "stable.h5"


def _present(folder: Path) -> tuple[list[str], list[str]] | None:
    # stable.h5 is moved into place before asymptotic.h5, so asymptotic.h5 means both are whole
    if (folder / ASYMPTOTIC).is_file() and (folder / STABLE).is_file():
        return [str(folder / ASYMPTOTIC)], [str(folder / STABLE)]
    return None


def default_data(
    home: Path,
    progress: Callable[[str, float], None] | None = None,
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
) -> tuple[list[str], list[str], bool]:
    """(database_list, stable_database_list, generated_now) of the default data set."""
    folder = Path(home) / DATA_DIR
    found = _present(folder)
    if found:
        return (*found, False)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".generate.lock"):
        found = _present(folder)  # another run may have made it while we waited
        if found:
            return (*found, False)
        from rhea_engine.data.synth import synth_to_dir  # numpy/h5py only when needed

        partial = folder / f".partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            synth_to_dir(partial, n=n, seed=seed, progress=_adapt(progress))
            if not (partial / ASYMPTOTIC).is_file() or not (partial / STABLE).is_file():
                raise DataError(
                    f"Generating the default data set in {folder} produced no HDF5 files."
                )
            os.replace(partial / STABLE, folder / STABLE)
            os.replace(partial / ASYMPTOTIC, folder / ASYMPTOTIC)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return [str(folder / ASYMPTOTIC)], [str(folder / STABLE)], True


def _adapt(progress: Callable[[str, float], None] | None) -> Callable[..., Any] | None:
    """The generator's progress callback, passed through as (message, fraction)."""
    if progress is None:
        return None

    def report(*args: Any) -> None:
        fraction = next((float(a) for a in args if isinstance(a, (int, float))), 0.0)
        if len(args) >= 2 and all(isinstance(a, (int, float)) for a in args[:2]) and args[1]:
            fraction = float(args[0]) / float(args[1])  # (done, total)
        progress("Generating the default synthetic data set", min(max(fraction, 0.0), 1.0))

    return report
