"""The embedded default data set: synthetic HDF5 files generated once into <home>/data/.

Two `rhea run`s starting at once on a new home must not both generate or read half-written
files: generation happens under an exclusive lock file, into a temporary folder that is
renamed into place when complete.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rhea_engine.errors import DataError

DEFAULT_N = 20_000
DEFAULT_SEED = 1
DATA_DIR = "data"
SYNTH_DIR = "synthetic"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def split_files(directory: Path) -> tuple[list[str], list[str]]:
    """(database_list, stable_database_list) of a generated folder, by file name."""
    files = sorted(p for p in directory.glob("*.h5") if p.is_file())
    stable = [str(p) for p in files if "stable" in p.name]
    asymptotic = [str(p) for p in files if "stable" not in p.name]
    return asymptotic, stable


def default_data(
    home: Path, progress: Callable[[str, float], None] | None = None,
    n: int = DEFAULT_N, seed: int = DEFAULT_SEED,
) -> tuple[list[str], list[str], bool]:
    """(database_list, stable_database_list, generated_now) of the default data set."""
    target = Path(home) / DATA_DIR / f"{SYNTH_DIR}-n{n}-seed{seed}"
    if (target / ".complete").is_file():
        return (*split_files(target), False)
    with _locked(Path(home) / DATA_DIR / ".generate.lock"):
        if (target / ".complete").is_file():  # another run made it while we waited
            return (*split_files(target), False)
        from rhea_engine.data.synth import synth_to_dir  # numpy/h5py only when needed

        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            synth_to_dir(partial, n=n, seed=seed, progress=_adapt(progress))
            (partial / ".complete").write_text(f"n={n} seed={seed}\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(partial, target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    asymptotic, stable = split_files(target)
    if not asymptotic and not stable:
        raise DataError(f"Generating the default data set in {target} produced no HDF5 files.")
    return asymptotic, stable, True


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
