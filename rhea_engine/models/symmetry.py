"""The flavor groups a model can respect, as permutations of the 2·NF species of a four-flux.

A group element swaps neutrinos with antineutrinos (or not) and permutes the flavors:
(g·F4)[:, :, s, a] = F4[:, :, s XOR swap, flavors[a]]. With species index k = s·NF + a that
is a permutation `p` of the species, (g·F4)[..., k] = F4[..., p[k]], and a transfer matrix
transforms as (g·y)[k, l] = y[p[k], p[l]]: a model is equivariant when y(g·F4) = g·y(F4).

Groups (docs/physics.md §7, §9): `box3d` = nu<->nubar x mu<->tau, exact for Box3D-made data;
`full` = nu<->nubar x every flavor permutation, the symmetry of the FFI itself; `none`.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import torch


class FlavorSymmetry(NamedTuple):
    """One group element: swap nu and nubar, then take flavor `flavors[a]` into slot a."""

    swap: bool
    flavors: tuple[int, ...]


def group(symmetry: str, NF: int) -> list[FlavorSymmetry]:
    """The elements of the named group for NF flavors, identity first."""
    identity = tuple(range(NF))
    if symmetry == "none":
        perms = [identity]
    elif symmetry == "box3d":
        perms = [identity] + ([(0, 2, 1)] if NF == 3 else [])
    elif symmetry == "full":
        perms = list(itertools.permutations(range(NF)))
    else:
        raise ValueError(f"unknown symmetry {symmetry!r}")
    swaps = [False] if symmetry == "none" else [False, True]
    return [FlavorSymmetry(swap, perm) for swap in swaps for perm in perms]


def species_permutation(g: FlavorSymmetry) -> list[int]:
    """p with (g·F4)[..., k] = F4[..., p[k]] over the species index k = s·NF + a."""
    NF = len(g.flavors)
    return [(s ^ int(g.swap)) * NF + g.flavors[a] for s in range(2) for a in range(NF)]


def inverse(p: list[int]) -> list[int]:
    out = [0] * len(p)
    for k, source in enumerate(p):
        out[source] = k
    return out


def transform_F4(F4: torch.Tensor, g: FlavorSymmetry) -> torch.Tensor:
    """g·F4 for F4 [N, 4, 2, NF]."""
    n, NF = F4.shape[0], F4.shape[-1]
    p = torch.tensor(species_permutation(g), device=F4.device)
    return F4.reshape(n, 4, 2 * NF)[:, :, p].reshape(n, 4, 2, NF)


def transform_y(y: torch.Tensor, g: FlavorSymmetry) -> torch.Tensor:
    """g·y for transfer matrices y [N, 2, NF, 2, NF]: what y(g·F4) is for an equivariant model."""
    n, NF = y.shape[0], y.shape[-1]
    S = 2 * NF
    p = torch.tensor(species_permutation(g), device=y.device)
    return y.reshape(n, S, S)[:, p][:, :, p].reshape(n, 2, NF, 2, NF)


def _triu_position(n: int, offset: int = 0) -> dict[tuple[int, int], int]:
    rows, cols = torch.triu_indices(n, n, offset=offset).tolist()
    return {(i, j): t for t, (i, j) in enumerate(zip(rows, cols, strict=True))}


def input_gather(
    g: FlavorSymmetry, do_fdotu: bool, do_eln_inputs: bool
) -> tuple[list[int], list[float]]:
    """(index, sign) with X(g·F4) = X(F4)[:, index] * sign for the transfer model's inputs.

    The Minkowski products of species pairs and the -N of each species permute; the ELN
    flavor differences G_ab permute too, changing sign when nu and nubar swap (the ELN
    flips) and when the permutation reverses the order of a and b.
    """
    NF = len(g.flavors)
    p = species_permutation(g)
    species_pairs = _triu_position(2 * NF)
    index = [species_pairs[min(p[i], p[j]), max(p[i], p[j])] for i, j in species_pairs]
    sign = [1.0] * len(index)
    if do_fdotu:
        index += [len(species_pairs) + k for k in p]
        sign += [1.0] * len(p)
    if do_eln_inputs:
        base = len(index)
        flavor_pairs = list(_triu_position(NF, offset=1))
        pair_of = {pair: q for q, pair in enumerate(flavor_pairs)}
        source, pair_sign = [], []
        for a, b in flavor_pairs:
            fa, fb = g.flavors[a], g.flavors[b]
            source.append(pair_of[min(fa, fb), max(fa, fb)])
            pair_sign.append(1.0 if fa < fb else -1.0)
        products = _triu_position(len(flavor_pairs))
        for q, r in products:
            sq, sr = source[q], source[r]
            index.append(base + products[min(sq, sr), max(sq, sr)])
            sign.append(pair_sign[q] * pair_sign[r])
        eln_sign = -1.0 if g.swap else 1.0
        index += [base + len(products) + source[q] for q in range(len(flavor_pairs))]
        sign += [eln_sign * pair_sign[q] for q in range(len(flavor_pairs))]
    return index, sign


def output_average(elements: list[FlavorSymmetry]) -> torch.Tensor:
    """M [G·S², S²] (float64): raw transfer matrices of the transformed inputs, stacked per
    element, times M = the group average mean_g g^-1·y(g·F4), an equivariant matrix."""
    NF = len(elements[0].flavors)
    S = 2 * NF
    M = torch.zeros(len(elements) * S * S, S * S, dtype=torch.float64)
    for h, g in enumerate(elements):
        back = inverse(species_permutation(g))
        for k in range(S):
            for m in range(S):
                M[h * S * S + back[k] * S + back[m], k * S + m] = 1.0 / len(elements)
    return M


def species_orbits(elements: list[FlavorSymmetry]) -> list[int]:
    """The orbit label of each species (0, 1, ... in order of first appearance)."""
    S = 2 * len(elements[0].flavors)
    perms = [species_permutation(g) for g in elements]
    return _labels([frozenset(p[k] for p in perms) for k in range(S)])


def pair_orbits(elements: list[FlavorSymmetry]) -> list[list[int]]:
    """[S][S] orbit labels of ordered species pairs (k, l) under the group."""
    S = 2 * len(elements[0].flavors)
    perms = [species_permutation(g) for g in elements]
    keys = [frozenset((p[k], p[m]) for p in perms) for k in range(S) for m in range(S)]
    flat = _labels(keys)
    return [flat[k * S : (k + 1) * S] for k in range(S)]


def _labels(keys: Sequence[Hashable]) -> list[int]:
    seen: dict[Hashable, int] = {}
    return [seen.setdefault(key, len(seen)) for key in keys]
