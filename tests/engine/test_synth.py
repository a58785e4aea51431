"""Synthetic generator: determinism, family fractions, Box3D invariants of its output, files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from rhea_engine.data import load_asymptotic, load_stable
from rhea_engine.data.synth import FAMILIES, MAX_FLUX_FACTOR, SynthSamples, generate, synth_to_dir
from rhea_engine.errors import DataError
from rhea_engine.physics import (
    box3d,
    crossing_test,
    eln,
    flavor_sum,
    flux_factor,
    flux_magnitude,
    ntot,
)


def test_determinism_and_chunk_independence(synth_small: SynthSamples) -> None:
    again = generate(4096, seed=11, chunk=1000)
    for name in ("F4_initial", "F4_final", "growth_rate", "stable", "family"):
        assert np.array_equal(getattr(again, name), getattr(synth_small, name)), name
    # A shorter request gives the leading samples: inputs and labels exactly, the mixed states
    # to rounding (the matrix products may round differently for a different row count).
    prefix = generate(1000, seed=11)
    assert np.array_equal(prefix.F4_initial, synth_small.F4_initial[:1000])
    assert np.array_equal(prefix.stable, synth_small.stable[:1000])
    scale = ntot(prefix.F4_initial)[:, None, None, None]
    assert np.all(np.abs(prefix.F4_final - synth_small.F4_final[:1000]) <= 1e-14 * scale)
    assert np.allclose(prefix.growth_rate, synth_small.growth_rate[:1000], rtol=1e-14, atol=0)
    other = generate(1000, seed=12)
    assert not np.array_equal(other.F4_initial, prefix.F4_initial)


def test_sampling_rules(synth_small: SynthSamples) -> None:
    F4 = synth_small.F4_initial
    assert F4.dtype == np.float64 and F4.shape == (4096, 4, 2, 3)
    total = ntot(F4)
    assert total.min() >= 1e30 * (1 - 1e-12) and total.max() <= 1e35 * (1 + 1e-12)
    assert np.log10(total).std() > 1.2  # spread over the decades, not bunched
    assert flux_factor(F4).max() <= MAX_FLUX_FACTOR * (1 + 1e-12)
    for a in (1, 2):  # all four heavy species identical
        for s in (0, 1):
            assert np.array_equal(F4[:, :, s, a], F4[:, :, 0, 1])
    assert set(np.unique(synth_small.family)) == set(range(len(FAMILIES)))


def test_labels_and_final_states(synth_small: SynthSamples) -> None:
    F4, final = synth_small.F4_initial, synth_small.F4_final
    unstable = synth_small.stable == 0
    assert np.array_equal(unstable, crossing_test(F4, order=41))
    assert np.array_equal(unstable, synth_small.growth_rate > 0)
    assert np.array_equal(F4[~unstable], final[~unstable])  # stable rows unchanged, bit for bit
    assert np.all(np.any(final[unstable] != F4[unstable], axis=(1, 2, 3)))
    mixed = box3d(F4[unstable], order=17)
    same = mixed.unstable  # a few crossings only the label grid sees are mixed on it instead
    assert same.mean() > 0.99
    assert np.array_equal(mixed.F4_final[same], final[unstable][same])
    assert np.array_equal(mixed.growth_rate[same], synth_small.growth_rate[unstable][same])


def test_invariants_of_output(synth_small: SynthSamples) -> None:
    F4, final = synth_small.F4_initial, synth_small.F4_final
    total = ntot(F4)
    assert np.all(np.abs(flavor_sum(final) - flavor_sum(F4)) <= 1e-12 * total[:, None, None])
    assert np.all(np.abs(eln(final) - eln(F4)) <= 1e-12 * total[:, None])
    assert np.all(final[:, 3] >= 0)
    assert np.all(flux_magnitude(final) <= final[:, 3] + 1e-9 * total[:, None, None])
    assert np.array_equal(final[..., 1], final[..., 2])  # mu = tau in, mu = tau out


def test_family_fractions() -> None:
    samples = generate(3 * 4096, seed=5)
    unstable = samples.stable == 0
    frac = {name: unstable[samples.family == i].mean() for i, name in enumerate(FAMILIES)}
    assert frac["isotropic"] == 0.0 and frac["single_species"] == 0.0
    assert 0.40 < frac["skewed"] < 0.60
    assert 0.68 < frac["merger"] < 0.85
    assert frac["random"] > 0.92
    assert 0.45 < unstable.mean() < 0.75


def test_synth_to_dir(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = synth_to_dir(
        tmp_path / "data", 5000, seed=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, 5000) and calls[-1] == (5000, 5000)
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:], strict=False))
    asym, stable = load_asymptotic(result.asymptotic_path), load_stable(result.stable_path)
    assert len(stable) == 5000 and len(asym) == result.n_unstable == int((stable.stable == 0).sum())
    assert asym.max_conservation_error <= 1e-12 and np.all(asym.growth_rate > 0)
    expected = generate(5000, seed=2)
    assert np.array_equal(stable.F4_initial, expected.F4_initial)
    assert np.array_equal(asym.F4_final, expected.F4_final[expected.stable == 0])
    with h5py.File(result.stable_path) as h5:
        assert h5["F4_initial(1|ccm)"].dtype == np.float64
        assert np.array_equal(h5["family"][()], expected.family)
    assert set(result.fractions) == set(FAMILIES) and sum(result.counts.values()) == 5000
    assert not list((tmp_path / "data").glob(".*tmp"))


def test_threads_give_the_same_files(tmp_path: Path) -> None:
    """Chunks computed by several threads come out in order and bit for bit as with one."""
    one = synth_to_dir(tmp_path / "one", 3 * 16384 + 5, seed=4, workers=1)
    three = synth_to_dir(tmp_path / "three", 3 * 16384 + 5, seed=4, workers=3)
    for a, b in (
        (one.stable_path, three.stable_path),
        (one.asymptotic_path, three.asymptotic_path),
    ):
        with h5py.File(a) as ha, h5py.File(b) as hb:
            assert set(ha) == set(hb)
            for name in ha:
                assert np.array_equal(ha[name][()], hb[name][()]), name
    assert one.counts == three.counts and one.n_unstable == three.n_unstable
    # a consumer that stops early leaves no thread behind
    from rhea_engine.data.synth import iter_chunks

    chunks = iter_chunks(10 * 4096, seed=4, chunk=4096, workers=2)
    assert len(next(chunks)) == 4096
    chunks.close()
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("rhea-synth")]


def test_synth_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        synth_to_dir(tmp_path, 0, seed=1)
    with pytest.raises(DataError):
        generate(-5, seed=1)
    with pytest.raises(DataError):
        generate(5, seed=-1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        synth_to_dir(tmp_path / "file", 10, seed=1)
    assert len(generate(0, seed=1)) == 0
    for workers in (0, -1, 1.5, True):
        with pytest.raises(DataError, match="threads"):
            synth_to_dir(tmp_path / "w", 10, seed=1, workers=workers)  # type: ignore[arg-type]
    assert not (tmp_path / "w").exists()


def test_noise_keeps_conserved_quantities(synth_small: SynthSamples) -> None:
    noisy = generate(4096, seed=11, noise=0.05)
    assert np.array_equal(noisy.F4_initial, synth_small.F4_initial)
    assert np.array_equal(noisy.stable, synth_small.stable)
    unstable = synth_small.stable == 0
    changed = np.any(noisy.F4_final != synth_small.F4_final, axis=(1, 2, 3))
    assert not changed[~unstable].any() and changed[unstable].mean() > 0.5
    F4, final = noisy.F4_initial, noisy.F4_final
    total = ntot(F4)
    assert np.all(np.abs(flavor_sum(final) - flavor_sum(F4)) <= 1e-12 * total[:, None, None])
    assert np.all(np.abs(eln(final) - eln(F4)) <= 1e-12 * total[:, None])
    assert np.all(final[:, 3] >= 0) and np.all(flux_magnitude(final) <= final[:, 3])
    assert np.array_equal(final[..., 1], final[..., 2])
    assert np.array_equal(generate(4096, seed=11, noise=0.05).F4_final, final)
    with pytest.raises(DataError, match="noise"):
        generate(10, seed=1, noise=1.5)


def test_min_flux_factor_keeps_fluxes_float32_codes_can_see(synth_small: SynthSamples) -> None:
    from rhea_engine.data.schema import FLOAT32_FLUX_FLOOR, rows_with_unresolved_flux

    assert rows_with_unresolved_flux(synth_small.F4_initial) > 0  # physical, but lost in float32
    floor = 1e-6
    raised = generate(4096, seed=11, min_flux_factor=floor)
    N, fmag = raised.F4_initial[:, 3], flux_magnitude(raised.F4_initial)
    moving = fmag > 0
    assert np.all(fmag[moving] >= floor * N[moving] * (1 - 1e-12))
    assert np.array_equal(moving, flux_magnitude(synth_small.F4_initial) > 0)  # zeros stay zero
    assert rows_with_unresolved_flux(raised.F4_initial) == 0
    assert FLOAT32_FLUX_FLOOR == pytest.approx(1.0842e-19, rel=1e-4)
    # rows without a small flux are the same samples, bit for bit
    untouched = np.all(
        (fmag == 0) | (flux_magnitude(synth_small.F4_initial) >= floor * N), axis=(1, 2)
    )
    assert 0.5 < untouched.mean() < 1.0
    assert np.array_equal(raised.F4_initial[untouched], synth_small.F4_initial[untouched])
    assert np.array_equal(raised.F4_final[untouched], synth_small.F4_final[untouched])
    # labels and final states belong to the raised states: conservation holds in every row
    total = ntot(raised.F4_initial)[:, None, None]
    diff = np.abs(flavor_sum(raised.F4_final) - flavor_sum(raised.F4_initial))
    assert np.all(diff <= 1e-12 * total)
    assert np.array_equal(raised.stable == 1, ~crossing_test(raised.F4_initial))
    with pytest.raises(DataError, match="minimum flux factor"):
        generate(10, seed=1, min_flux_factor=0.95)


def test_synth_to_dir_never_overwrites_without_force(tmp_path: Path) -> None:
    first = synth_to_dir(tmp_path / "d", 300, seed=5)
    before = first.asymptotic_path.read_bytes(), first.stable_path.read_bytes()
    with pytest.raises(DataError, match="Not overwriting .*asymptotic.h5 and .*stable.h5"):
        synth_to_dir(tmp_path / "d", 300, seed=6)
    assert (first.asymptotic_path.read_bytes(), first.stable_path.read_bytes()) == before
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "stable.h5").write_text("mine")
    with pytest.raises(DataError, match="Not overwriting .*stable.h5"):
        synth_to_dir(tmp_path / "e", 300, seed=6)
    assert (tmp_path / "e" / "stable.h5").read_text() == "mine"
    assert not (tmp_path / "e" / "asymptotic.h5").exists()
    again = synth_to_dir(tmp_path / "d", 300, seed=6, force=True)
    assert again.stable_path.read_bytes() != before[1]
