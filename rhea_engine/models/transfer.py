"""The transfer-matrix network: Lorentz-scalar inputs, an MLP trunk and four heads.

Optionally exact under a flavor group (`symmetry`): the trunk sees every transformed copy
of the inputs (a signed gather of X), the invariant heads are averaged over the copies and
the transfer matrices are averaged back, mean_g g^-1·y(g·F4), folded into the constraint map.
"""

# Buffers read as `Tensor | Module` to mypy; TorchScript rejects inline ignore comments.
# mypy: disable-error-code="operator,arg-type,index"

from __future__ import annotations

import torch
from torch import nn

from rhea_engine.config import ACTIVATIONS, TrainConfig
from rhea_engine.errors import ConfigError
from rhea_engine.models import symmetry as sym
from rhea_engine.models.outputs import FFIModel

_ACTIVATION_CLASSES: dict[str, type[nn.Module]] = {
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def n_lorentz_scalars(NF: int, do_fdotu: bool, do_eln_inputs: bool = False) -> int:
    """Number of Lorentz-scalar inputs: NF(2NF+1) Minkowski products (+ 2NF with fdotu), plus
    with ELN inputs P(P+1)/2 products of the P = NF(NF-1)/2 ELN flavour differences and their -N."""
    pairs = NF * (NF - 1) // 2
    return (
        NF * (2 * NF + 1)
        + (2 * NF if do_fdotu else 0)
        + (pairs * (pairs + 3) // 2 if do_eln_inputs else 0)
    )


def lorentz_scalars(F4: torch.Tensor, do_fdotu: bool, do_eln_inputs: bool) -> torch.Tensor:
    """Lorentz-scalar inputs [N, NX] from F4 [N, 4, 2, NF] (normalised by ntot).

    Computed in float64 whatever the input dtype, then returned in the input's dtype: the
    Minkowski products of nearly isotropic cells are small differences of O(1) terms, and
    training computes the same inputs in float64 (train_data), so a float32 caller gets
    exactly the inputs the network was trained on.
    """
    NF = F4.shape[3]
    F4_64 = F4.to(torch.float64)
    ntot = F4_64[:, 3].sum(dim=(1, 2))
    F4n = F4_64 / ntot[:, None, None, None]
    vec = F4n.reshape(F4n.shape[0], 4, 2 * NF)  # species index = s * NF + a
    dots = (
        torch.einsum("nis,nit->nst", vec[:, :3], vec[:, :3])
        - vec[:, 3, :, None] * vec[:, 3, None, :]
    )
    iu = torch.triu_indices(2 * NF, 2 * NF, device=F4.device)
    X = dots[:, iu[0], iu[1]]
    if do_fdotu:
        X = torch.cat([X, -vec[:, 3]], dim=1)
    if do_eln_inputs:
        # ELN four-vector of each flavour, then its differences between flavours
        eln = F4n[:, :, 0] - F4n[:, :, 1]  # [N, 4, NF]
        pairs = torch.triu_indices(NF, NF, offset=1, device=F4.device)
        G = eln[:, :, pairs[0]] - eln[:, :, pairs[1]]
        G_dots = (
            torch.einsum("nip,niq->npq", G[:, :3], G[:, :3]) - G[:, 3, :, None] * G[:, 3, None, :]
        )
        iu_pairs = torch.triu_indices(pairs.shape[1], pairs.shape[1], device=F4.device)
        X = torch.cat([X, G_dots[:, iu_pairs[0], iu_pairs[1]], -G[:, 3]], dim=1)
    return X.to(F4.dtype)


def _block(
    n_in: int, n_out: int, activation: str, batchnorm: bool, dropout: float
) -> list[nn.Module]:
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"Activation must be one of {', '.join(ACTIVATIONS)}; got '{activation}'."
        )
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out))
    # in place where the activation allows it: saves one allocation per layer
    in_place = activation in ("leaky_relu", "relu", "silu")
    layers.append(
        _ACTIVATION_CLASSES[activation](inplace=True)
        if in_place
        else _ACTIVATION_CLASSES[activation]()
    )
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def mlp_layers(
    n_in: int, width: int, nhidden: int, n_out: int, config: TrainConfig
) -> list[nn.Module]:
    """One input block, `nhidden` hidden blocks of `width`, then (if n_out > 0) a linear read-out;
    activation, batch norm and dropout as the config says."""
    args = (config.activation, config.do_batchnorm, config.dropout_probability)
    layers = _block(n_in, width, *args)
    for _ in range(nhidden):
        layers += _block(width, width, *args)
    if n_out > 0:
        layers.append(nn.Linear(width, n_out))
    return layers


def mlp(n_in: int, width: int, nhidden: int, n_out: int, config: TrainConfig) -> nn.Sequential:
    """`mlp_layers` as one module."""
    return nn.Sequential(*mlp_layers(n_in, width, nhidden, n_out, config))


class TransferModel(FFIModel):
    """Lorentz-scalar inputs -> shared trunk -> stability, growth-rate and two transfer heads."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.do_fdotu = config.do_fdotu
        self.do_eln_inputs = config.do_eln_inputs
        self.NX = n_lorentz_scalars(config.NF, config.do_fdotu, config.do_eln_inputs)
        w, h = config.width, config.nhidden
        self.shared = mlp(self.NX, w("shared"), h("shared"), 0, config)
        self.stability_head = mlp(w("shared"), w("stability"), h("stability"), 1, config)
        self.growthrate_head = mlp(w("shared"), w("growthrate"), h("growthrate"), 1, config)
        self.density_head = mlp(w("shared"), w("density"), h("density"), self.Ny, config)
        self.flux_head = mlp(w("shared"), w("flux"), h("flux"), self.Ny, config)
        elements = sym.group(config.symmetry, config.NF)
        # group averaging: the trunk sees each of the G transformed copies of X
        self.group_order = len(elements)
        index: list[int] = []
        sign: list[float] = []
        for g in elements:
            g_index, g_sign = sym.input_gather(g, config.do_fdotu, config.do_eln_inputs)
            index += g_index
            sign += g_sign
        self.register_buffer("_copy_index", torch.tensor(index), persistent=False)
        self.register_buffer("_copy_sign", torch.tensor(sign), persistent=False)
        self._build_constraints(sym.output_average(elements) if len(elements) > 1 else None)

    @torch.jit.export
    def X_from_F4(self, F4: torch.Tensor) -> torch.Tensor:
        """Lorentz-scalar inputs [N, NX] from F4 [N, 4, 2, NF] (see `lorentz_scalars`)."""
        return lorentz_scalars(F4, self.do_fdotu, self.do_eln_inputs)

    def _trunk(self, X: torch.Tensor) -> torch.Tensor:
        """Trunk features [N·G, width], the G transformed copies of each row side by side."""
        if self.group_order > 1:
            X = (X[:, self._copy_index] * self._copy_sign.to(X.dtype)).reshape(-1, self.NX)
        return self.shared(X)

    def _invariant(self, head_out: torch.Tensor) -> torch.Tensor:
        """[N·G, 1] head output -> [N], averaged over the group."""
        return head_out.reshape(-1, self.group_order).mean(dim=1)

    def _heads(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw_rows = self.group_order * self.Ny
        log_growth = self._invariant(self.growthrate_head(z))
        y_dens = self._y_from_raw(self.density_head(z).reshape(-1, raw_rows), True)
        y_flux = self._y_from_raw(self.flux_head(z).reshape(-1, raw_rows), False)
        return log_growth, y_dens, y_flux

    def heads_from_X(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stability logit [N], log growth rate [N], y_dens, y_flux) from inputs X."""
        z = self._trunk(X)
        logit = self._invariant(self.stability_head(z))
        log_growth, y_dens, y_flux = self._heads(z)
        return logit, log_growth, y_dens, y_flux

    def forward_train(
        self, X_asym: torch.Tensor, X_stab: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One trunk pass over an asymptotic and a stability batch side by side; the stability
        head sees the stability rows, the other heads the asymptotic rows."""
        n = X_asym.shape[0] * self.group_order
        z = self._trunk(torch.cat([X_asym, X_stab]))
        logit = self._invariant(self.stability_head(z[n:]))
        log_growth, y_dens, y_flux = self._heads(z[:n])
        return logit, log_growth, y_dens, y_flux

    def stability_logit(self, X: torch.Tensor) -> torch.Tensor:
        return self._invariant(self.stability_head(self._trunk(X)))
