"""Training data as device tensors: read, split, normalise once, sample epochs with no Python loop.

Each split is one packed float32 tensor per kind so that a batch is a single gather:
asymptotic rows hold [X | F4_initial/ntot | F4_final/ntot | log growth target], stability
rows hold [X | stable]. Rows of all files of a kind are concatenated; `offsets`/`lengths`
let every file contribute equally to an epoch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rhea_engine.config import TrainConfig
from rhea_engine.errors import DataError
from rhea_engine.losses import growthrate_target
from rhea_engine.model import inputs_from_F4, n_inputs


def _inputs(F4: torch.Tensor, layout: Layout) -> torch.Tensor:
    """The model's inputs, computed in float64 (what the model's own X_from_F4 returns)."""
    return inputs_from_F4(F4, layout.do_fdotu, layout.do_eln_inputs, layout.architecture)


@dataclass
class Packed:
    """Rows of one kind (asymptotic or stability) from one or more files, on a device."""

    rows: torch.Tensor  # [M, C] float32
    offsets: torch.Tensor  # [files] int64, first row of each file
    lengths: torch.Tensor  # [files] int64

    @property
    def n(self) -> int:
        return int(self.rows.shape[0])

    def to(self, device: torch.device) -> Packed:
        return Packed(self.rows.to(device), self.offsets.to(device), self.lengths.to(device))


@dataclass
class Layout:
    NF: int
    do_fdotu: bool
    do_eln_inputs: bool = False
    architecture: str = "transfer"

    @classmethod
    def of(cls, config: TrainConfig) -> Layout:
        return cls(config.NF, config.do_fdotu, config.do_eln_inputs, config.architecture)

    @property
    def nx(self) -> int:
        return n_inputs(self.NF, self.do_fdotu, self.do_eln_inputs, self.architecture)

    @property
    def nf4(self) -> int:
        return 8 * self.NF


@dataclass
class TrainingData:
    """Train and test splits of both kinds, plus float64 test arrays for the final evaluation."""

    layout: Layout
    asym_train: Packed
    asym_test: Packed
    stab_train: Packed
    stab_test: Packed
    test_F4_initial: np.ndarray  # [n, 4, 2, NF] float64, asymptotic test split
    test_F4_final: np.ndarray
    test_growthrate: np.ndarray
    test_stable_F4_initial: np.ndarray  # stability test split
    test_stable: np.ndarray
    files: list[dict[str, Any]] = field(default_factory=list)  # {"path", "sha256", "kind"}

    def to(self, device: torch.device) -> TrainingData:
        moved = {
            k: getattr(self, k).to(device)
            for k in ("asym_train", "asym_test", "stab_train", "stab_test")
        }
        return TrainingData(**{**self.__dict__, **moved})


PACK_CHUNK = 1 << 17  # rows converted at a time: bounds the float64 temporaries


def _asymptotic_rows(
    F4i: torch.Tensor, F4f: torch.Tensor, sigma: torch.Tensor, layout: Layout
) -> torch.Tensor:
    n = F4i.shape[0]
    ntot = F4i[:, 3].sum(dim=(1, 2))
    scale = ntot[:, None, None, None]
    return torch.cat(
        [
            _inputs(F4i, layout),
            (F4i / scale).reshape(n, -1),
            (F4f / scale).reshape(n, -1),
            growthrate_target(sigma, ntot)[:, None],
        ],
        dim=1,
    )


def _stability_rows(F4i: torch.Tensor, label: torch.Tensor, layout: Layout) -> torch.Tensor:
    return torch.cat([_inputs(F4i, layout), label.reshape(-1, 1)], dim=1)


def _pack(parts: list[tuple[np.ndarray, ...]], ncols: int, make_rows: Any) -> Packed:
    """Fill one float32 [rows, ncols] tensor chunk by chunk (float64 arithmetic per chunk)."""
    lengths = [int(np.asarray(part[0]).shape[0]) for part in parts]
    packed = torch.empty((sum(lengths), ncols), dtype=torch.float32)
    row = 0
    for part in parts:
        arrays = [np.asarray(a) for a in part]
        for start in range(0, arrays[0].shape[0], PACK_CHUNK):
            chunk = [
                torch.as_tensor(np.asarray(a[start : start + PACK_CHUNK], dtype=np.float64))
                for a in arrays
            ]
            rows = make_rows(*chunk)
            packed[row : row + rows.shape[0]] = rows
            row += rows.shape[0]
    return _finish(packed, lengths)


def pack_asymptotic(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], layout: Layout
) -> Packed:
    """Pack [(F4_initial, F4_final, growthrate), ...] (one tuple per file) into device rows."""
    ncols = 2 * layout.nf4 + layout.nx + 1
    return _pack(parts, ncols, lambda F4i, F4f, sigma: _asymptotic_rows(F4i, F4f, sigma, layout))  # type: ignore[arg-type]


def pack_stability(parts: list[tuple[np.ndarray, np.ndarray]], layout: Layout) -> Packed:
    """Pack [(F4_initial, stable), ...] (one tuple per file) into device rows."""
    return _pack(parts, layout.nx + 1, lambda F4i, label: _stability_rows(F4i, label, layout))  # type: ignore[arg-type]


def _finish(packed: torch.Tensor, lengths: list[int]) -> Packed:
    length = torch.tensor(lengths, dtype=torch.int64)
    offsets = torch.cumsum(length, 0) - length
    if not torch.isfinite(packed).all():
        raise DataError(
            "Non-finite values remained in the training rows after reading; check the input files."
        )
    return Packed(packed.contiguous(), offsets, length)


def epoch_indices(packed: Packed, n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` row indices: a file chosen uniformly per sample, then a row uniformly within it."""
    device = packed.rows.device
    files = torch.randint(int(packed.lengths.numel()), (n,), generator=generator, device=device)
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    within = (u * packed.lengths[files]).long().clamp_max(packed.lengths[files] - 1)
    return packed.offsets[files] + within


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _split(
    arrays: list[np.ndarray], test_size: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = arrays[0].shape[0]
    if n < 2:
        raise DataError(
            f"A data file has {n} usable row(s); at least 2 are needed to split train and test."
        )
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(test_size * n))), n - 1)
    test, train = order[:n_test], order[n_test:]
    return [a[train] for a in arrays], [a[test] for a in arrays]


def data_manifest(config: TrainConfig) -> list[dict[str, Any]]:
    """[{"path", "sha256", "kind"}] of the configured files; a missing file is a DataError."""
    if not config.database_list:
        raise DataError("No asymptotic data files given: set database_list (--data FILE.h5).")
    if not config.stable_database_list:
        raise DataError(
            "No stability data files given: set stable_database_list (--stable-data FILE.h5)."
        )
    out = []
    for kind, paths in (
        ("asymptotic", config.database_list),
        ("stable", config.stable_database_list),
    ):
        for path in paths:
            file = Path(path)
            if not file.is_file():
                raise DataError(f"The {kind} data file '{path}' does not exist or is not a file.")
            out.append({"path": str(file.resolve()), "sha256": sha256_file(file), "kind": kind})
    return out


def load_training_data(
    config: TrainConfig, manifest: list[dict[str, Any]] | None = None
) -> TrainingData:
    """Read `database_list` and `stable_database_list`, split each file, pack on the CPU."""
    from rhea_engine import data as rdata

    files = manifest if manifest is not None else data_manifest(config)
    layout = Layout.of(config)
    from rhea_engine.data.split import DataSet, augment_permutation, subsample, train_test_split_set

    def prepare(loaded: DataSet, path: str, seed: int) -> tuple[DataSet, DataSet]:
        if int(loaded.nf) != config.NF:
            raise DataError(
                f"'{path}' holds NF = {loaded.nf} flavours but the config asks for NF = {config.NF}."
            )
        loaded = subsample(
            loaded, config.samples_per_database, config.random_samples_per_database, seed
        )
        train_set, test_set = train_test_split_set(loaded, config.test_size, seed)
        if config.do_augment_permutation:
            train_set = augment_permutation(train_set)
        return train_set, test_set

    asym_tr, asym_te, stab_tr, stab_te = [], [], [], []
    for i, path in enumerate(config.database_list):
        a_train, a_test = prepare(rdata.load_asymptotic(path), path, config.random_seed + i)
        asym_tr.append((a_train.F4_initial, a_train.F4_final, a_train.growth_rate))
        asym_te.append((a_test.F4_initial, a_test.F4_final, a_test.growth_rate))
    for i, path in enumerate(config.stable_database_list):
        s_train, s_test = prepare(rdata.load_stable(path), path, config.random_seed + 1000 + i)
        stab_tr.append((s_train.F4_initial, np.asarray(s_train.stable, dtype=np.float64)))
        stab_te.append((s_test.F4_initial, np.asarray(s_test.stable, dtype=np.float64)))
    return TrainingData(
        layout=layout,
        asym_train=pack_asymptotic(asym_tr, layout),  # type: ignore[arg-type]
        asym_test=pack_asymptotic(asym_te, layout),  # type: ignore[arg-type]
        stab_train=pack_stability(stab_tr, layout),  # type: ignore[arg-type]
        stab_test=pack_stability(stab_te, layout),  # type: ignore[arg-type]
        test_F4_initial=np.concatenate([t[0] for t in asym_te]),
        test_F4_final=np.concatenate([t[1] for t in asym_te]),
        test_growthrate=np.concatenate([t[2] for t in asym_te]),
        test_stable_F4_initial=np.concatenate([t[0] for t in stab_te]),
        test_stable=np.concatenate([t[1] for t in stab_te]),
        files=files,
    )


def data_from_arrays(
    config: TrainConfig,
    asymptotic: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    stable: list[tuple[np.ndarray, np.ndarray]],
) -> TrainingData:
    """Build TrainingData from in-memory arrays (one tuple per 'file'), split as files are."""
    layout = Layout.of(config)
    asym = [
        _split(list(a), config.test_size, config.random_seed + i) for i, a in enumerate(asymptotic)
    ]
    stab = [
        _split(list(s), config.test_size, config.random_seed + 1000 + i)
        for i, s in enumerate(stable)
    ]
    return TrainingData(
        layout=layout,
        asym_train=pack_asymptotic([tuple(a[0]) for a in asym], layout),  # type: ignore[misc]
        asym_test=pack_asymptotic([tuple(a[1]) for a in asym], layout),  # type: ignore[misc]
        stab_train=pack_stability([tuple(s[0]) for s in stab], layout),  # type: ignore[misc]
        stab_test=pack_stability([tuple(s[1]) for s in stab], layout),  # type: ignore[misc]
        test_F4_initial=np.concatenate([a[1][0] for a in asym]),
        test_F4_final=np.concatenate([a[1][1] for a in asym]),
        test_growthrate=np.concatenate([a[1][2] for a in asym]),
        test_stable_F4_initial=np.concatenate([s[1][0] for s in stab]),
        test_stable=np.concatenate([s[1][1] for s in stab]).astype(np.float64),
    )
