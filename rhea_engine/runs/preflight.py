"""Checks made before a run is created: its name, every row of its data files, its device."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from rhea_engine.config import TrainConfig
from rhea_engine.errors import DataError, DeviceError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    """The HDF5 signature sits at byte 0, 512, 1024, 2048, ... (a user block may precede it)."""
    with open(path, "rb") as handle:
        offset = 0
        size = path.stat().st_size
        while offset < size:
            handle.seek(offset)
            if handle.read(8) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def check_data_files(
    paths: Iterable[str], flag: str, kind: str | None = None, nf: int | None = None
) -> list[str]:
    """Absolute paths of `paths`; DataError naming the first that is missing, not HDF5, or
    (with `kind`, "asymptotic" or "stable") not a file of that kind that training can read.

    With `kind`, every row is checked as the training process would read it (chunk by
    chunk: rhea_engine.data.validate), so a bad file is refused before a run exists. `nf`:
    the number of flavors the config asks for.
    """
    checked = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(f"The data file '{raw}' given with {flag} does not exist.")
        if not path.is_file():
            raise DataError(f"The data file '{raw}' given with {flag} is not a file.")
        if not os.access(path, os.R_OK):
            raise DataError(
                f"The data file '{raw}' given with {flag} cannot be read (permissions)."
            )
        try:
            hdf5 = _is_hdf5(path)
        except OSError as exc:
            raise DataError(
                f"The data file '{raw}' given with {flag} cannot be read: {exc}."
            ) from exc
        if not hdf5:
            raise DataError(
                f"The data file '{raw}' given with {flag} is not an HDF5 file; Rhea reads the "
                "upstream HDF5 layout (see `rhea data inspect FILE.h5`)."
            )
        if kind is not None:
            _check_contents(path, raw, flag, kind, nf)
        checked.append(str(path.resolve()))
    return checked


def _check_contents(path: Path, raw: str, flag: str, kind: str, nf: int | None) -> None:
    """The kind, schema and every row of one data file (DataError on the first problem)."""
    from rhea_engine.data.io import detect_kind
    from rhea_engine.data.validate import check_file

    found = detect_kind(path)
    if found != kind:
        raise DataError(
            f"The data file '{raw}' given with {flag} is a{'n' if found[0] == 'a' else ''} "
            f"{found} file, but {flag} expects {kind} files"
            f"{' (use --stable-data for it)' if found == 'stable' else ' (use --data for it)'}."
        )
    report = check_file(path, found)
    if nf is not None and report.nf != nf:
        raise DataError(
            f"The data file '{raw}' given with {flag} holds NF = {report.nf} flavors, but the "
            f"config asks for NF = {nf} (set NF={report.nf}, or give files with {nf} flavors)."
        )
    if report.usable_rows < 2:
        raise DataError(
            f"The data file '{raw}' given with {flag} has {report.usable_rows} usable row(s); "
            "training needs at least 2 to split them into a train and a test set."
        )


def check_device(device: str) -> None:
    """DeviceError if `device` names CUDA and CUDA (or that GPU) is not available."""
    if not device.startswith("cuda"):
        return
    import torch  # only when CUDA was asked for

    if not torch.cuda.is_available():
        raise DeviceError(
            f"--device {device} was asked for, but CUDA is not available on this machine "
            "(no GPU, or a CPU-only torch). Use --device cpu or --device auto."
        )
    if ":" in device:
        index = int(device.split(":", 1)[1])
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(
                f"--device {device} was asked for, but this machine has {count} GPU(s) "
                f"(cuda:0 to cuda:{count - 1})."
            )


def check_gpus(gpus: Iterable[str], device: str) -> None:
    """DeviceError if trials are to be pinned to GPUs (`--gpus 0,1`) that are not there."""
    wanted = [int(g) for g in gpus]
    if not wanted:
        return
    if device == "cpu":
        raise DeviceError(
            f"--gpus {','.join(map(str, wanted))} pins trials to GPUs, but --device is cpu; "
            "drop one of them."
        )
    import torch  # only when GPUs were asked for

    if not torch.cuda.is_available():
        raise DeviceError(
            f"--gpus {','.join(map(str, wanted))} was asked for, but CUDA is not available on "
            "this machine (no GPU, or a CPU-only torch). Drop --gpus to run the trials on the CPU."
        )
    count = torch.cuda.device_count()
    missing = [g for g in wanted if g >= count]
    if missing:
        raise DeviceError(
            f"--gpus asks for GPU {missing[0]}, but this machine has {count} GPU(s) "
            f"(0 to {count - 1})."
        )


_LOGIN_NAME = re.compile(r"(^|[-_.0-9])(login|ln|frontend|head)([-_.0-9]|$)", re.IGNORECASE)


def _has_nvidia_gpu() -> bool:
    """A cheap look for an NVIDIA GPU (no torch import): the driver's device files."""
    return Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").glob("*"))


def login_node_warning(
    device: str,
    on_slurm: bool = False,
    host: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> str | None:
    """A warning (not an error) when a run would train on the CPU of what looks like a
    cluster's login node: the host is named like one, or Slurm is installed here and this
    process is not a Slurm job. None when it trains on a GPU or is submitted to Slurm."""
    if on_slurm or device.startswith("cuda") or (device == "auto" and _has_nvidia_gpu()):
        return None
    host = host or socket.gethostname()
    reasons = []
    if _LOGIN_NAME.search(host.split(".")[0]):
        reasons.append(f"its name, {host}")
    if shutil.which("sbatch", path=environ.get("PATH")) and "SLURM_JOB_ID" not in environ:
        reasons.append("Slurm is installed and this is not a Slurm job")
    if not reasons:
        return None
    return (
        f"This run would train on the CPU of {host}, which looks like a cluster's login node "
        f"({'; '.join(reasons)}); login nodes are shared: submit it to Slurm or start it on a "
        "compute node."
    )


def check_new_run(
    config: TrainConfig,
    name: str | None,
    flags: tuple[str, str] = ("--data", "--stable-data"),
) -> tuple[list[str], list[str]]:
    """The checks made before a run is created, by `rhea run`, sweeps and the TUI alike.

    The name must be a valid handle; data files must exist and be HDF5 of the right kind
    whose every row passes the readers' checks, with the config's NF, both kinds or neither (then the default synthetic set is used); a CUDA device must
    exist. Returns the absolute asymptotic and stable paths (empty: the default set).
    """
    from rhea_engine.runs.rundir import check_run_name

    if name is not None:
        check_run_name(name)
    asymptotic = check_data_files(config.database_list, flags[0], "asymptotic", config.NF)
    stable = check_data_files(config.stable_database_list, flags[1], "stable", config.NF)
    if bool(asymptotic) != bool(stable):
        raise DataError(
            f"Training needs both asymptotic files ({flags[0]}) and stability files "
            f"({flags[1]}); give both, or neither to use the default synthetic data set."
        )
    check_device(config.device)
    return asymptotic, stable
