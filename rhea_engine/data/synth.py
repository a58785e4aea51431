"""Synthetic FFI data (docs/physics.md §8): sampled four-fluxes, crossing labels, Box3D final states."""

from __future__ import annotations

import ctypes
import functools
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rhea_engine.config import INT_RANGES
from rhea_engine.data.schema import F4_FINAL, F4_INITIAL, GROWTH_RATE, NF, STABLE, FloatArray
from rhea_engine.errors import DataError
from rhea_engine.physics.box import box3d
from rhea_engine.physics.crossing import crossing_test
from rhea_engine.physics.fourflux import flux_magnitude
from rhea_engine.physics.quadrature import MIXING_ORDER, STABILITY_ORDER

#: Families of sampled states, in code order, with their share of the samples.
FAMILIES = ("isotropic", "single_species", "skewed", "merger", "random")
FAMILY_WEIGHTS = (0.10, 0.10, 0.25, 0.30, 0.25)
#: Upstream training cut on the flux factor.
MAX_FLUX_FACTOR = 0.9
LOG10_NTOT_RANGE = (30.0, 35.0)
#: Skewed family: |ln(n_nubar_e / n_nu_e)| is below this.
SKEWED_LOG_RATIO = 0.08
#: Samples per random-number block: the output for a seed does not depend on the chunk size,
#: and the first n samples of a larger request are the same samples.
BLOCK = 4096
DEFAULT_CHUNK = 4 * BLOCK
NUM_FLAVORS = 3
#: Bounds of the arguments: the most rows a run reads from one file, what an int64 holds (the
#: seed is an HDF5 attribute), the most threads a run may use.
MAX_SAMPLES = INT_RANGES["samples_per_database"][1]
MAX_SEED = 2**63 - 1
MAX_WORKERS = INT_RANGES["num_threads"][1]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthSamples:
    """Generated rows: initial/final four-flux, growth rate (0 if stable), label, family code."""

    F4_initial: FloatArray = field(repr=False)
    F4_final: FloatArray = field(repr=False)
    growth_rate: FloatArray = field(repr=False)
    stable: FloatArray = field(repr=False)
    family: NDArray[np.int8] = field(repr=False)

    def __len__(self) -> int:
        return int(self.F4_initial.shape[0])


@dataclass(frozen=True)
class SynthResult:
    """What `synth_to_dir` wrote: paths, row counts and the unstable fraction per family."""

    asymptotic_path: Path
    stable_path: Path
    n: int
    n_unstable: int
    fractions: dict[str, float]
    counts: dict[str, int]
    seed: int


def _unit_vectors(rng: np.random.Generator, n: int) -> FloatArray:
    """Directions uniform on the sphere, shape [n, 3]."""
    cos_theta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)


def _block(seed: int, index: int, n: int) -> tuple[FloatArray, NDArray[np.int8]]:
    """Initial four-fluxes [n, 4, 2, 3] and family codes of one random-number block."""
    rng = np.random.default_rng([seed, index])
    family = rng.choice(len(FAMILIES), size=n, p=FAMILY_WEIGHTS).astype(np.int8)
    total = np.exp(rng.uniform(*LOG10_NTOT_RANGE, n) * np.log(10.0))
    # Three base species: nu_e, nubar_e and one heavy species (all four heavies identical).
    shares = rng.uniform(0.0, 1.0, (n, 3))  # nu_e, nubar_e, the four heavies together
    shares /= shares.sum(axis=1, keepdims=True)
    # Flux vectors uniform in the ball |F| <= 0.9 N: the "fully random" family.
    f = MAX_FLUX_FACTOR * np.cbrt(rng.uniform(0.0, 1.0, (n, 3)))
    direction = np.stack([_unit_vectors(rng, n) for _ in range(3)], axis=1)  # [n, species, 3]
    # Family-specific draws, made in a fixed order for the rows of each family.
    iso = family == FAMILIES.index("isotropic")
    f[iso] = 0.0
    single = np.flatnonzero(family == FAMILIES.index("single_species"))
    shares[single] = np.eye(3)[rng.integers(0, 3, single.size)]
    skewed = np.flatnonzero(family == FAMILIES.index("skewed"))
    f[skewed] = (MAX_FLUX_FACTOR * rng.uniform(0.0, 1.0, (skewed.size, 3))) ** 10
    # Nearly isotropic states cross only when nu_e and nubar_e nearly balance.
    skew_ratio = np.exp(rng.uniform(-SKEWED_LOG_RATIO, SKEWED_LOG_RATIO, skewed.size))
    light = shares[skewed, 0] + shares[skewed, 1]
    shares[skewed, 0] = light / (1.0 + skew_ratio)
    shares[skewed, 1] = light - shares[skewed, 0]
    merger = np.flatnonzero(family == FAMILIES.index("merger"))
    m = merger.size
    ratio = rng.uniform(0.8, 2.0, m)  # n_nubar_e / n_nu_e
    heavy_share = rng.uniform(0.2, 0.6, m)
    light = 1.0 - heavy_share
    shares[merger, 0] = light / (1.0 + ratio)
    shares[merger, 1] = light - shares[merger, 0]
    shares[merger, 2] = heavy_share
    # Flux factors ordered nu_e < nubar_e < heavies, directions tilted about a common axis.
    f[merger] = np.sort(
        rng.uniform(0.0, MAX_FLUX_FACTOR, (m, 3)) * np.array([0.5, 0.75, 1.0]), axis=1
    )
    aligned = _unit_vectors(rng, m)[:, None, :] + rng.normal(0.0, 0.25, (m, 3, 3))
    direction[merger] = aligned / np.linalg.norm(aligned, axis=2, keepdims=True)

    density = shares * total[:, None]
    density[:, 2] /= 4.0  # each heavy species
    F4 = np.empty((n, 4, 2, NUM_FLAVORS))
    for species, (s, flavors) in enumerate(((0, (0,)), (1, (0,)), (None, (1, 2)))):
        flux = (f[:, species] * density[:, species])[:, None] * direction[:, species]
        for nu in (0, 1) if s is None else (s,):
            for a in flavors:
                F4[:, :3, nu, a] = flux
                F4[:, 3, nu, a] = density[:, species]
    return F4, family


def _initial(n: int, seed: int, start: int) -> tuple[FloatArray, NDArray[np.int8]]:
    """Rows start .. start+n of the sample stream of `seed` (start is a multiple of BLOCK)."""
    parts = []
    for index in range(start // BLOCK, (start + n + BLOCK - 1) // BLOCK):
        parts.append(_block(seed, index, BLOCK))
    F4 = np.concatenate([p[0] for p in parts])[:n]
    family = np.concatenate([p[1] for p in parts])[:n]
    return F4, family


def _label_and_mix(F4: FloatArray, family: NDArray[np.int8]) -> SynthSamples:
    # Heavies are identical here, so the test takes its light two-species path: one call.
    unstable = crossing_test(F4, order=STABILITY_ORDER, chunk=max(1, F4.shape[0]))
    final = F4.copy()
    growth = np.zeros(F4.shape[0])
    rows = np.flatnonzero(unstable)
    if rows.size:
        result = box3d(F4[rows], order=MIXING_ORDER)
        final[rows] = result.F4_final
        growth[rows] = result.growth_rate
        # The mixing grid can miss a crossing the label grid saw: mix those on the label grid.
        missed = rows[~result.unstable]
        if missed.size:
            fine = box3d(F4[missed], order=STABILITY_ORDER)
            final[missed] = fine.F4_final
            growth[missed] = fine.growth_rate
            lost = missed[~fine.unstable]  # crossings at the eps threshold: count as stable
            unstable[lost] = False
    return SynthSamples(
        F4_initial=F4,
        F4_final=final,
        growth_rate=growth,
        stable=(~unstable).astype(np.float64),
        family=family,
    )


def raise_small_flux_factors(F4: FloatArray, min_flux_factor: float) -> FloatArray:
    """Species whose flux factor is above 0 but below `min_flux_factor` get exactly that one.

    The direction is kept and zero fluxes stay zero. Physically nothing is wrong with a flux of
    1e-19 N, but codes that compute in float32 lose it (its square underflows): this keeps such
    states out of data meant for them. Applied before labelling, so labels and final states
    belong to the states as written.
    """
    if min_flux_factor <= 0:
        return F4
    out = F4.copy()
    density = out[:, 3]
    fmag = flux_magnitude(out)
    small = (fmag > 0) & (density > 0) & (fmag < min_flux_factor * density)
    if small.any():
        scale = np.where(small, min_flux_factor * density / np.where(small, fmag, 1.0), 1.0)
        out[:, :3] *= scale[:, None]
    return out


def _check_args(n: int, seed: int, noise: float = 0.0, min_flux_factor: float = 0.0) -> None:
    if not (0.0 <= min_flux_factor <= MAX_FLUX_FACTOR):
        raise DataError(
            f"The minimum flux factor must be in [0, {MAX_FLUX_FACTOR}] (the largest flux factor "
            f"the generator draws), got {min_flux_factor!r}."
        )
    if not (0.0 <= noise < 1.0):
        raise DataError(f"The noise level must be in [0, 1) (a fraction of N_e), got {noise!r}.")
    if isinstance(n, bool) or int(n) != n or not 0 <= n <= MAX_SAMPLES:
        raise DataError(
            f"The number of synthetic samples must be an integer from 0 to {MAX_SAMPLES:,} "
            f"(the most rows a run reads from a file), got {n!r}."
        )
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise DataError(
            f"The seed must be an integer from 0 to 2**63 - 1 (it is stored in the files as a "
            f"64-bit integer), got {seed!r}."
        )


def add_noise(samples: SynthSamples, noise: float, seed: int, start: int) -> SynthSamples:
    """Perturb final states in the null space of the conserved quantities (simulation-like scatter).

    The e flavor gains 2c and mu and tau lose c each, the same for nu and nubar, with
    c ~ noise * N_e(final) * normal per four-flux component: the flavor-summed four-flux of nu
    and of nubar, each flavor's N_nu - N_nubar and mu = tau are untouched. Rows where the
    perturbation would give N < 0 or |F| > N keep their noiseless state.
    """
    if noise <= 0:
        return samples
    n = len(samples)
    blocks = range(start // BLOCK, (start + n + BLOCK - 1) // BLOCK)
    normal = np.concatenate(
        [np.random.default_rng([seed, b, 1]).normal(size=(BLOCK, 4)) for b in blocks]
    )[:n]
    final = samples.F4_final
    scale = noise * np.minimum(final[:, 3, 0, 0], final[:, 3, 1, 0])
    c = normal * scale[:, None]
    c[samples.stable == 1] = 0.0  # stable rows stay identical to their initial state
    noisy = final.copy()
    noisy[:, :, :, 0] += 2.0 * c[:, :, None]
    noisy[:, :, :, 1:] -= c[:, :, None, None]
    physical = np.all(noisy[:, 3] >= 0, axis=(1, 2)) & np.all(
        flux_magnitude(noisy) <= noisy[:, 3], axis=(1, 2)
    )
    noisy[~physical] = final[~physical]
    return SynthSamples(
        samples.F4_initial, noisy, samples.growth_rate, samples.stable, samples.family
    )


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc keep freed chunk temporaries for the next chunk instead of unmapping them.

    Each chunk allocates the same tens of megabytes of [rows, grid] temporaries. By default glibc
    serves blocks this large with fresh mappings and returns them on free, so every chunk pays
    the page faults again (about a fifth of the time for 20,000 samples). Raising the mmap and
    trim thresholds (mallopt(3)) keeps them in the heap for reuse; peak memory does not change.
    Done once per process; a no-op where the C library has no mallopt. Returns whether it applied.
    """
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mmap_ok = mallopt(m_mmap_threshold, 32 * 2**20)  # glibc's largest allowed on 64-bit
    trim_ok = mallopt(m_trim_threshold, 512 * 2**20)
    return bool(mmap_ok and trim_ok)


def default_workers() -> int:
    """Threads for the generator: the cores this process may use (NumPy releases the GIL)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or int(workers) != workers or not 1 <= workers <= MAX_WORKERS:
        raise DataError(
            f"The number of generator threads must be an integer from 1 to {MAX_WORKERS}, "
            f"got {workers!r}."
        )
    return int(workers)


def iter_chunks(
    n: int,
    seed: int,
    chunk: int = DEFAULT_CHUNK,
    noise: float = 0.0,
    workers: int = 1,
    min_flux_factor: float = 0.0,
) -> Iterator[SynthSamples]:
    """Generate `n` samples for `seed` in chunks (rounded up to whole blocks of 4096 rows), in order.

    With `workers` > 1, chunks are computed by that many threads, at most `workers` + 1 chunks
    in flight. The output does not depend on `workers`, bit for bit: the chunks are the same.
    """
    _check_args(n, seed, noise, min_flux_factor)
    workers = _check_workers(workers)
    keep_freed_memory()
    chunk = max(BLOCK, (int(chunk) + BLOCK - 1) // BLOCK * BLOCK)

    def one(start: int) -> SynthSamples:
        F4, family = _initial(min(chunk, n - start), seed, start)
        F4 = raise_small_flux_factors(F4, min_flux_factor)
        return add_noise(_label_and_mix(F4, family), noise, seed, start)

    starts = range(0, n, chunk)
    if workers == 1 or len(starts) == 1:
        for start in starts:
            yield one(start)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rhea-synth") as pool:
        pending: deque[Future[SynthSamples]] = deque()
        try:
            for start in starts:
                pending.append(pool.submit(one, start))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped early (an error, a closed generator): drop queued chunks
            for future in pending:
                future.cancel()


def generate(
    n: int,
    seed: int = 0,
    chunk: int = DEFAULT_CHUNK,
    noise: float = 0.0,
    workers: int = 1,
    min_flux_factor: float = 0.0,
) -> SynthSamples:
    """All `n` samples in memory (use synth_to_dir for large n): deterministic for a seed."""
    parts = list(iter_chunks(n, seed, chunk, noise, workers, min_flux_factor))
    if not parts:
        empty = np.zeros((0, 4, 2, NUM_FLAVORS))
        return SynthSamples(empty, empty.copy(), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
    return SynthSamples(
        F4_initial=np.concatenate([p.F4_initial for p in parts]),
        F4_final=np.concatenate([p.F4_final for p in parts]),
        growth_rate=np.concatenate([p.growth_rate for p in parts]),
        stable=np.concatenate([p.stable for p in parts]),
        family=np.concatenate([p.family for p in parts]),
    )


def _append(dataset: object, values: np.ndarray) -> None:
    old = dataset.shape[0]  # type: ignore[attr-defined]
    dataset.resize(old + values.shape[0], axis=0)  # type: ignore[attr-defined]
    dataset[old:] = values  # type: ignore[index]


def synth_paths(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """The files `synth_to_dir` writes into `directory`, by kind."""
    out = Path(directory).expanduser()
    return {"asymptotic": out / "asymptotic.h5", "stable": out / "stable.h5"}


def synth_to_dir(
    directory: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    progress: Progress | None = None,
    chunk: int = DEFAULT_CHUNK,
    noise: float = 0.0,
    workers: int | None = None,
    min_flux_factor: float = 0.0,
    force: bool = False,
) -> SynthResult:
    """Write DIR/asymptotic.h5 (unstable rows) and DIR/stable.h5 (all rows, labelled), streaming.

    `workers` threads compute the chunks (None: every usable core); the files do not depend on it.
    Existing files are replaced only with `force` (checked before any work).
    """
    import h5py

    _check_args(n, seed, noise, min_flux_factor)
    workers = default_workers() if workers is None else _check_workers(workers)
    if n == 0:
        raise DataError("Asked for 0 synthetic samples; give --n of at least 1.")
    out = Path(directory).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"Cannot write synthetic data into {out}: it is a file, not a directory.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the directory {out}: {exc.strerror}.") from None
    final_paths = synth_paths(out)
    existing = [str(p) for p in final_paths.values() if p.exists()]
    if existing and not force:
        raise DataError(
            f"Not overwriting {' and '.join(existing)}: runs may have recorded these files by "
            "path and sha256. Choose another directory, or pass --force to replace them."
        )
    tmp = {k: p.with_name(f".{p.name}.{os.getpid()}.tmp") for k, p in final_paths.items()}
    counts = np.zeros(len(FAMILIES), dtype=np.int64)
    unstable_counts = np.zeros(len(FAMILIES), dtype=np.int64)
    done = 0
    shape = (0, 4, 2, NUM_FLAVORS)
    grow = (None, 4, 2, NUM_FLAVORS)
    block = (min(n, 8192), 4, 2, NUM_FLAVORS)
    try:
        # The unstable count is known only at the end: the asymptotic file grows (with a chunk
        # cache large enough that appends never re-read a chunk); the stable file is laid out.
        with (
            h5py.File(tmp["asymptotic"], "w", rdcc_nbytes=16 * 2**20) as fa,
            h5py.File(tmp["stable"], "w") as fs,
        ):
            a_init = fa.create_dataset(
                F4_INITIAL, shape=shape, maxshape=grow, dtype="f8", chunks=block
            )
            a_final = fa.create_dataset(
                F4_FINAL, shape=shape, maxshape=grow, dtype="f8", chunks=block
            )
            a_rate = fa.create_dataset(
                GROWTH_RATE, shape=(0,), maxshape=(None,), dtype="f8", chunks=(block[0],)
            )
            s_init = fs.create_dataset(F4_INITIAL, shape=(n, 4, 2, NUM_FLAVORS), dtype="f8")
            s_label = fs.create_dataset(STABLE, shape=(n,), dtype="f8")
            s_family = fs.create_dataset("family", shape=(n,), dtype="i1")
            for h5 in (fa, fs):
                h5.create_dataset(NF, data=np.int64(NUM_FLAVORS))
                h5.attrs["generator"] = "rhea synthetic (docs/physics.md section 8)"
                h5.attrs["seed"] = int(seed)
                h5.attrs["noise"] = float(noise)
                h5.attrs["min_flux_factor"] = float(min_flux_factor)
                h5.attrs["families"] = ",".join(FAMILIES)
            if progress is not None:
                progress(0, n)
            for part in iter_chunks(n, seed, chunk, noise, workers, min_flux_factor):
                rows = part.stable == 0
                _append(a_init, part.F4_initial[rows])
                _append(a_final, part.F4_final[rows])
                _append(a_rate, part.growth_rate[rows])
                written = slice(done, done + len(part))
                s_init[written] = part.F4_initial
                s_label[written] = part.stable
                s_family[written] = part.family
                counts += np.bincount(part.family, minlength=len(FAMILIES))
                unstable_counts += np.bincount(part.family[rows], minlength=len(FAMILIES))
                done += len(part)
                if progress is not None:
                    progress(done, n)
        for key, path in final_paths.items():
            os.replace(tmp[key], path)
    except OSError as exc:
        raise DataError(f"Cannot write synthetic data into {out}: {exc}.") from None
    finally:
        for path in tmp.values():
            if path.exists():
                path.unlink()
    fractions = {
        name: float(unstable_counts[i] / counts[i]) if counts[i] else 0.0
        for i, name in enumerate(FAMILIES)
    }
    return SynthResult(
        asymptotic_path=final_paths["asymptotic"],
        stable_path=final_paths["stable"],
        n=n,
        n_unstable=int(unstable_counts.sum()),
        fractions=fractions,
        counts={name: int(counts[i]) for i, name in enumerate(FAMILIES)},
        seed=int(seed),
    )
