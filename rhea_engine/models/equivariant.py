"""The equivariant network: the 2·NF species as nodes with scalar and vector features (e3nn).

Each node starts from its own (N, F⃗)/ntot, a 0e scalar and a 1o vector (plus a one-hot of
its species orbit where the symmetry tells species apart). An interaction block gathers, for
every node, the mean features of the nodes in each orbit of species pairs (self, nu/nubar
partner, same species other flavors, ... as the symmetry group defines them), mixes them
linearly, multiplies them channel by channel with the node's own features (tensor products
0e·0e, 1o·1o -> 0e and 0e·1o, 1o·0e -> 1o), and adds the gated result back (residual).
Invariant read-outs: stability and growth rate from per-orbit means of the node scalars and
vector norms; the transfer matrices y[k, l] from each ordered pair's scalars, the channel-wise
dot products of their vectors and the pair's orbit, so the final state is built and constrained
exactly as in the transfer model (conservation, heavy averaging, ELN handling).

Every step is equivariant under rotations, reflections and the chosen flavor group by
construction; no group averaging. e3nn is imported only when this network is built.
"""

# Buffers read as `Tensor | Module` to mypy; TorchScript rejects inline ignore comments.
# mypy: disable-error-code="operator,arg-type,index"

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from rhea_engine.config import TrainConfig
from rhea_engine.errors import ConfigError
from rhea_engine.models import symmetry as sym
from rhea_engine.models.outputs import FFIModel
from rhea_engine.models.transfer import mlp, mlp_layers

_GATE_ACTIVATIONS = {
    "leaky_relu": torch.nn.functional.leaky_relu,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
}


def require_e3nn() -> None:
    """A clear error when the optional e3nn package is missing."""
    try:
        import e3nn  # noqa: F401
    except ImportError:
        raise ConfigError(
            "architecture = equivariant needs the e3nn package, which is not installed. "
            "Install it with: pip install 'rhea[equivariant]' (or pip install e3nn), or use "
            "architecture = transfer."
        ) from None


def normalised_F4(F4: torch.Tensor) -> torch.Tensor:
    """The equivariant network's input X [N, 4·2·NF]: F4/ntot, divided in float64."""
    F4_64 = F4.to(torch.float64)
    ntot = F4_64[:, 3].sum(dim=(1, 2))
    return (F4_64 / ntot[:, None, None, None]).reshape(F4.shape[0], -1).to(F4.dtype)


def cell_rms_norm(h: torch.Tensor) -> torch.Tensor:
    """Node features [N, S, D] divided by their root mean square over the cell (all nodes and
    channels): bounds what the quadratic products see, keeps the ratios between the nodes,
    and is invariant under rotations and species permutations."""
    return h * torch.rsqrt((h * h).mean(dim=(1, 2), keepdim=True) + 1e-12)


def channels(config: TrainConfig) -> int:
    """Scalar and vector channels per node: a node carries width_shared numbers (C + 3C)."""
    return max(1, config.width_shared // 4)


class Interaction(nn.Module):
    """One residual block over the species nodes: pair-orbit messages, channel-wise tensor
    products with the node's own features, a gate.

    Node features are laid out as e3nn irreps `Cx0e + Cx1o` (C scalars, then C vectors of 3);
    concatenations regroup scalars and vectors so that every e3nn layer sees one segment per
    irrep type (`KCx0e + KCx1o`), which keeps each layer to two matrix products."""

    def __init__(self, C: int, orbit_means: torch.Tensor, activation: str) -> None:
        super().__init__()
        from e3nn import o3
        from e3nn.nn import Gate

        K = orbit_means.shape[0]
        self.C = C
        self.register_buffer("orbit_means", orbit_means.clone(), persistent=False)
        hidden = o3.Irreps(f"{C}x0e + {C}x1o")
        self.message = o3.Linear(o3.Irreps(f"{K * C}x0e + {K * C}x1o"), hidden)
        self.product = o3.TensorProduct(
            hidden,
            hidden,
            o3.Irreps(f"{C}x0e + {C}x0e + {C}x1o + {C}x1o"),
            [(0, 0, 0, "uuu", True), (1, 1, 1, "uuu", True), (0, 1, 2, "uuu", True)]
            + [(1, 0, 3, "uuu", True)],
        )
        self.gate = Gate(
            f"{C}x0e", [_GATE_ACTIVATIONS[activation]], f"{C}x0e", [torch.sigmoid], f"{C}x1o"
        )
        self.mix = o3.Linear(o3.Irreps(f"{3 * C}x0e + {3 * C}x1o"), self.gate.irreps_in)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, S, C = h.shape[0], h.shape[1], self.C
        residual = h
        h = cell_rms_norm(h)
        # per node and pair orbit k, the mean features of the orbit's partner nodes
        gathered = torch.einsum("kij,njd->nikd", self.orbit_means, h)  # [N, S, K, D]
        gathered = torch.cat(
            [gathered[..., :C].reshape(n, S, -1), gathered[..., C:].reshape(n, S, -1)], dim=2
        )
        m = self.message(gathered)
        products = self.product(h, m)  # [2C scalars | 2C vectors]
        mixed = self.mix(
            torch.cat([products[..., : 2 * C], m[..., :C], products[..., 2 * C :], m[..., C:]], 2)
        )
        return residual + self.gate(mixed)


class PairReadout(nn.Module):
    """An MLP on each ordered species pair (k, l): [s_k, s_l, v_k·v_l, orbit one-hot] -> 1.

    The first layer is applied term by term (node terms once per node, the orbit term as a
    bias per pair) rather than on the concatenated pair features: the same function with
    S times fewer multiplications for the node parts and no [N, S, S, features] copy."""

    def __init__(
        self, C: int, pair_orbit: torch.Tensor, width: int, nhidden: int, config: TrainConfig
    ) -> None:
        super().__init__()
        n_orbits = int(pair_orbit.max()) + 1
        layers = mlp_layers(3 * C + n_orbits, width, nhidden, 1, config)
        self.C = C
        self.first = layers[0]
        self.rest = nn.Sequential(*layers[1:])
        self.register_buffer("pair_orbit", pair_orbit.clone(), persistent=False)

    def forward(self, scalars: torch.Tensor, dots: torch.Tensor) -> torch.Tensor:
        """Raw transfer matrix [N, S·S] (out species k major) from node scalars [N, S, C] and
        the pair dot products [N, S, S, C]."""
        n, S, C = scalars.shape[0], scalars.shape[1], self.C
        weight = self.first.weight.to(scalars.dtype)
        bias = self.first.bias.to(scalars.dtype)
        out_node = torch.matmul(scalars, weight[:, :C].t())  # [N, S, W]
        in_node = torch.matmul(scalars, weight[:, C : 2 * C].t())
        orbit = weight[:, 3 * C :].t()[self.pair_orbit] + bias  # [S, S, W]
        node_terms = (out_node[:, :, None] + orbit) + in_node[:, None]  # [N, S, S, W]
        z = torch.addmm(
            node_terms.reshape(n * S * S, -1),
            dots.reshape(n * S * S, C),
            weight[:, 2 * C : 3 * C].t(),
        )
        return self.rest(z).reshape(n, S * S)


class EquivariantModel(FFIModel):
    """Species graph network (e3nn): exact under rotations and the configured flavor group."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        from e3nn import o3

        S = 2 * config.NF
        self.S = S
        self.C = C = channels(config)
        elements = sym.group(config.symmetry, config.NF)
        node_orbit = sym.species_orbits(elements)
        pair_orbit = sym.pair_orbits(elements)
        n_node_orbits, n_pair_orbits = max(node_orbit) + 1, max(max(r) for r in pair_orbit) + 1
        # mean over the nodes of each pair orbit, per receiving node: [orbits, S, S]
        means = torch.zeros(n_pair_orbits, S, S)
        for i in range(S):
            for j in range(S):
                means[pair_orbit[i][j], i, j] = 1.0
        means = means / means.sum(dim=2, keepdim=True).clamp_min(1.0)
        self.n_types = n_node_orbits if n_node_orbits > 1 else 0
        types = torch.eye(n_node_orbits)[node_orbit]  # [S, orbits]
        self.register_buffer("_node_types", types, persistent=False)
        self.register_buffer("_orbit_pool", (types / types.sum(0)).T.contiguous(), persistent=False)
        irreps_in = o3.Irreps(f"{1 + self.n_types}x0e + 1x1o")
        self.embed = o3.Linear(irreps_in, o3.Irreps(f"{C}x0e + {C}x1o"))
        self.blocks = nn.ModuleList(
            [Interaction(C, means, config.activation) for _ in range(1 + config.nhidden_shared)]
        )
        w, h = config.width, config.nhidden
        n_pooled = n_node_orbits * 2 * C
        self.stability_head = mlp(n_pooled, w("stability"), h("stability"), 1, config)
        self.growthrate_head = mlp(n_pooled, w("growthrate"), h("growthrate"), 1, config)
        orbits = torch.tensor(pair_orbit)
        self.density_head = PairReadout(C, orbits, w("density"), h("density"), config)
        self.flux_head = PairReadout(C, orbits, w("flux"), h("flux"), config)
        self._build_constraints()

    @torch.jit.export
    def X_from_F4(self, F4: torch.Tensor) -> torch.Tensor:
        """The network input [N, 4·2·NF]: F4/ntot (see `normalised_F4`)."""
        return normalised_F4(F4)

    def _nodes(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node scalars [N, S, C] and vectors [N, S, C, 3] after the interaction blocks."""
        n = X.shape[0]
        F4n = X.reshape(n, 4, self.S)
        parts = [F4n[:, 3, :, None]]
        if self.n_types > 0:
            parts.append(self._node_types.to(X.dtype).expand(n, self.S, self.n_types))
        parts.append(F4n[:, :3].transpose(1, 2))
        h = self.embed(torch.cat(parts, dim=2))
        for block in self.blocks:
            h = block(h)
        h = cell_rms_norm(h)
        return h[..., : self.C], h[..., self.C :].reshape(n, self.S, self.C, 3)

    def _pooled(self, scalars: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """Per species orbit, the mean node scalars and squared vector norms [N, orbits·2C]."""
        invariants = torch.cat([scalars, (vectors * vectors).sum(dim=3)], dim=2)
        pooled = torch.einsum("os,nsd->nod", self._orbit_pool.to(scalars.dtype), invariants)
        return pooled.reshape(scalars.shape[0], -1)

    def _transfer(
        self, scalars: torch.Tensor, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """y_dens, y_flux from the invariants of each ordered species pair (out k, in l)."""
        dots = torch.einsum("nkcx,nlcx->nklc", vectors, vectors)
        y_dens = self._y_from_raw(self.density_head(scalars, dots), True)
        y_flux = self._y_from_raw(self.flux_head(scalars, dots), False)
        return y_dens, y_flux

    def heads_from_X(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stability logit [N], log growth rate [N], y_dens, y_flux) from inputs X."""
        scalars, vectors = self._nodes(X)
        pooled = self._pooled(scalars, vectors)
        y_dens, y_flux = self._transfer(scalars, vectors)
        logit = self.stability_head(pooled).squeeze(1)
        return logit, self.growthrate_head(pooled).squeeze(1), y_dens, y_flux

    def forward_train(
        self, X_asym: torch.Tensor, X_stab: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass over an asymptotic and a stability batch side by side; the stability head
        sees the stability rows, the other heads the asymptotic rows."""
        n = X_asym.shape[0]
        scalars, vectors = self._nodes(torch.cat([X_asym, X_stab]))
        pooled = self._pooled(scalars, vectors)
        logit = self.stability_head(pooled[n:]).squeeze(1)
        log_growth = self.growthrate_head(pooled[:n]).squeeze(1)
        y_dens, y_flux = self._transfer(scalars[:n], vectors[:n])
        return logit, log_growth, y_dens, y_flux

    def stability_logit(self, X: torch.Tensor) -> torch.Tensor:
        scalars, vectors = self._nodes(X)
        return self.stability_head(self._pooled(scalars, vectors)).squeeze(1)

    def __prepare_scriptable__(self) -> Any:
        """torch.jit.script hook: a copy whose e3nn layers are compiled the way e3nn needs
        (scripted or traced); the eager model itself stays as it is."""
        from e3nn.util.jit import compile as e3nn_compile

        return e3nn_compile(copy.deepcopy(self))
