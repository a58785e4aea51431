"""Data layer: HDF5 schema, validated readers and writers, splits and the synthetic generator."""

from rhea_engine.data.io import (
    detect_kind,
    load_asymptotic,
    load_stable,
    write_asymptotic,
    write_stable,
)
from rhea_engine.data.schema import (
    F4_FINAL,
    F4_INITIAL,
    GROWTH_RATE,
    NF,
    STABLE,
    AsymptoticSet,
    StableSet,
)
from rhea_engine.data.split import (
    augment_permutation,
    heavy_permutations,
    permute_flavors,
    subsample,
    train_test_split_set,
)
from rhea_engine.data.synth import SynthResult, SynthSamples, generate, synth_to_dir

__all__ = [
    "F4_FINAL",
    "F4_INITIAL",
    "GROWTH_RATE",
    "NF",
    "STABLE",
    "AsymptoticSet",
    "StableSet",
    "SynthResult",
    "SynthSamples",
    "augment_permutation",
    "detect_kind",
    "generate",
    "heavy_permutations",
    "permute_flavors",
    "subsample",
    "synth_to_dir",
    "train_test_split_set",
    "load_asymptotic",
    "load_stable",
    "write_asymptotic",
    "write_stable",
]
