"""The multi-task FFI network: shared trunk, four heads, conservation by construction.

Layout (PHYSICS.md §1-§2): `F4[N, 4, 2, NF]` with axis 1 = (F_x, F_y, F_z, N). The
transfer matrices `y[N, 2, NF, 2, NF]` are indexed (out species, out flavor, in species,
in flavor): N_final[s, a] = sum_{t, b} y_dens[s, a, t, b] N_initial[t, b], and likewise
y_flux for each flux component. The module is TorchScript-able; the exported methods keep
the upstream signatures so C++ consumers keep working.
"""

# Buffers read as `Tensor | Module` to mypy; TorchScript rejects inline ignore comments.
# mypy: disable-error-code="operator,arg-type,index"

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rhea_engine.config import ACTIVATIONS, TrainConfig
from rhea_engine.errors import ConfigError, RunError
from rhea_engine.physics.units import NDENS_TO_INVSEC

_ACTIVATION_CLASSES: dict[str, type[nn.Module]] = {
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def n_inputs(NF: int, do_fdotu: bool, do_eln_inputs: bool = False) -> int:
    """Number of Lorentz-scalar inputs: NF(2NF+1) Minkowski products (+ 2NF with fdotu), plus
    with ELN inputs P(P+1)/2 products of the P = NF(NF-1)/2 ELN flavour differences and their -N."""
    pairs = NF * (NF - 1) // 2
    return (
        NF * (2 * NF + 1)
        + (2 * NF if do_fdotu else 0)
        + (pairs * (pairs + 3) // 2 if do_eln_inputs else 0)
    )


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


def _stack(
    n_in: int,
    width: int,
    nhidden: int,
    n_out: int,
    activation: str,
    batchnorm: bool,
    dropout: float,
) -> nn.Sequential:
    """One input block, `nhidden` hidden blocks of `width`, then (if n_out > 0) a linear read-out."""
    layers = _block(n_in, width, activation, batchnorm, dropout)
    for _ in range(nhidden):
        layers += _block(width, width, activation, batchnorm, dropout)
    if n_out > 0:
        layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class FFIModel(nn.Module):
    """Predicts stability, growth rate and the asymptotic four-flux of one grid cell."""

    def __init__(
        self,
        NF: int = 3,
        do_fdotu: bool = True,
        do_eln_inputs: bool = False,
        widths: dict[str, int] | None = None,
        nhidden: dict[str, int] | None = None,
        dropout_probability: float = 0.0,
        do_batchnorm: bool = True,
        activation: str = "leaky_relu",
        average_heavies_in_final_state: bool = True,
        conserve_lepton_number: str = "direct",
    ) -> None:
        super().__init__()
        if conserve_lepton_number not in ("none", "direct", "ymatrix"):
            raise ConfigError(
                f"conserve_lepton_number must be none, direct or ymatrix; got '{conserve_lepton_number}'."
            )
        w = {
            "shared": 64,
            "stability": 32,
            "growthrate": 32,
            "density": 32,
            "flux": 32,
            **(widths or {}),
        }
        h = {
            "shared": 1,
            "stability": 1,
            "growthrate": 1,
            "density": 1,
            "flux": 1,
            **(nhidden or {}),
        }
        self.NF = NF
        self.do_fdotu = do_fdotu
        self.do_eln_inputs = do_eln_inputs
        self.average_heavies_in_final_state = average_heavies_in_final_state
        self.conserve_lepton_number = conserve_lepton_number
        self.ndens_to_invsec = NDENS_TO_INVSEC
        self.NX = n_inputs(NF, do_fdotu, do_eln_inputs)
        self.Ny = (2 * NF) ** 2
        args = (activation, do_batchnorm, dropout_probability)
        self.shared = _stack(self.NX, w["shared"], h["shared"], 0, *args)
        self.stability_head = _stack(w["shared"], w["stability"], h["stability"], 1, *args)
        self.growthrate_head = _stack(w["shared"], w["growthrate"], h["growthrate"], 1, *args)
        self.density_head = _stack(w["shared"], w["density"], h["density"], self.Ny, *args)
        self.flux_head = _stack(w["shared"], w["flux"], h["flux"], self.Ny, *args)
        iu = torch.triu_indices(2 * NF, 2 * NF)
        self.register_buffer("_triu_i", iu[0].clone(), persistent=False)
        self.register_buffer("_triu_j", iu[1].clone(), persistent=False)
        pairs = torch.triu_indices(NF, NF, offset=1)
        self.register_buffer("_pair_a", pairs[0].clone(), persistent=False)
        self.register_buffer("_pair_b", pairs[1].clone(), persistent=False)
        iu_pairs = torch.triu_indices(pairs.shape[1], pairs.shape[1])
        self.register_buffer("_pair_triu_i", iu_pairs[0].clone(), persistent=False)
        self.register_buffer("_pair_triu_j", iu_pairs[1].clone(), persistent=False)
        self.register_buffer("_eye_species", torch.eye(2), persistent=False)
        self.register_buffer("_eye_flavor", torch.eye(NF), persistent=False)
        # The constraints are an affine map of the raw head output, y = raw @ A + c: build A
        # and c once from the reference implementation, then apply them with one addmm.
        with torch.no_grad():
            basis = torch.cat([torch.zeros(1, self.Ny), torch.eye(self.Ny)]).double()
            for name, is_density in (("dens", True), ("flux", False)):
                images = self._constrain_reference(basis, is_density).reshape(self.Ny + 1, self.Ny)
                # float32 for the working path; float64 masters keep double precision exact
                A, c = images[1:] - images[0], images[0].clone()
                self.register_buffer(f"_A_{name}", A.float(), persistent=False)
                self.register_buffer(f"_c_{name}", c.float(), persistent=False)
                self.register_buffer(f"_A_{name}_64", A, persistent=False)
                self.register_buffer(f"_c_{name}_64", c, persistent=False)

    # ---- inputs -----------------------------------------------------------------------
    @torch.jit.export
    def X_from_F4(self, F4: torch.Tensor) -> torch.Tensor:
        """Lorentz-scalar inputs [N, NX] from F4 [N, 4, 2, NF] (normalised by ntot).

        Computed in float64 whatever the input dtype, then returned in the input's dtype:
        the Minkowski products of nearly isotropic cells are small differences of O(1)
        terms, and training computes the same inputs in float64 (train_data), so a float32
        caller gets exactly the inputs the network was trained on.
        """
        F4_64 = F4.to(torch.float64)
        ntot = F4_64[:, 3].sum(dim=(1, 2))
        F4n = F4_64 / ntot[:, None, None, None]
        vec = F4n.reshape(F4n.shape[0], 4, 2 * self.NF)  # species index = s * NF + a
        dots = (
            torch.einsum("nis,nit->nst", vec[:, :3], vec[:, :3])
            - vec[:, 3, :, None] * vec[:, 3, None, :]
        )
        X = dots[:, self._triu_i, self._triu_j]
        if self.do_fdotu:
            X = torch.cat([X, -vec[:, 3]], dim=1)
        if self.do_eln_inputs:
            # ELN four-vector of each flavour, then its differences between flavours
            eln = F4n[:, :, 0] - F4n[:, :, 1]  # [N, 4, NF]
            G = eln[:, :, self._pair_a] - eln[:, :, self._pair_b]
            G_dots = (
                torch.einsum("nip,niq->npq", G[:, :3], G[:, :3])
                - G[:, 3, :, None] * G[:, 3, None, :]
            )
            X = torch.cat([X, G_dots[:, self._pair_triu_i, self._pair_triu_j], -G[:, 3]], dim=1)
        return X.to(F4.dtype)

    # ---- network ----------------------------------------------------------------------
    def _y_from_raw(self, raw: torch.Tensor, is_density: bool) -> torch.Tensor:
        """Constrained transfer matrix [N, 2, NF, 2, NF] from a raw head output [N, Ny]."""
        if raw.dtype == torch.float64:
            A = self._A_dens_64 if is_density else self._A_flux_64
            c = self._c_dens_64 if is_density else self._c_flux_64
        else:
            A = self._A_dens if is_density else self._A_flux
            c = self._c_dens if is_density else self._c_flux
        y = torch.addmm(c.to(raw.dtype), raw, A.to(raw.dtype))
        return y.reshape(raw.shape[0], 2, self.NF, 2, self.NF)

    def _constrain_reference(self, raw: torch.Tensor, is_density: bool) -> torch.Tensor:
        """Impose number conservation (and heavy averaging, ELN in y) on a raw head output."""
        NF = self.NF
        y = raw.reshape(raw.shape[0], 2, NF, 2, NF)
        # sum over output flavour must be delta(out species, in species) for each input species
        target = self._eye_species.to(y.dtype)[None, :, None, :, None]
        y = y + (target - y.sum(dim=2, keepdim=True)) / NF
        if self.average_heavies_in_final_state and NF > 2:
            heavy = y[:, :, 1:].mean(dim=2, keepdim=True).expand(-1, -1, NF - 1, -1, -1)
            y = torch.cat([y[:, :, :1], heavy], dim=2)
        if is_density and self.conserve_lepton_number == "ymatrix":
            # y[nu, a, t, b] - y[nubar, a, t, b] must be delta(a, b) (delta(t, nu) - delta(t, nubar))
            sign = torch.tensor([1.0, -1.0], dtype=y.dtype, device=y.device)
            eln_target = self._eye_flavor.to(y.dtype)[:, None, :] * sign[None, :, None]
            excess = y[:, 0] - y[:, 1] - eln_target[None]
            y = torch.stack([y[:, 0] - excess / 2, y[:, 1] + excess / 2], dim=1)
        return y

    def heads_from_X(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stability logit [N], log growth rate [N], y_dens, y_flux) from inputs X."""
        z = self.shared(X)
        logit = self.stability_head(z).squeeze(1)
        log_growth = self.growthrate_head(z).squeeze(1)
        y_dens = self._y_from_raw(self.density_head(z), True)
        y_flux = self._y_from_raw(self.flux_head(z), False)
        return logit, log_growth, y_dens, y_flux

    def forward(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.heads_from_X(X)

    def forward_train(
        self, X_asym: torch.Tensor, X_stab: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One trunk pass over an asymptotic and a stability batch side by side; the stability
        head sees the stability rows, the other heads the asymptotic rows."""
        n = X_asym.shape[0]
        z = self.shared(torch.cat([X_asym, X_stab]))
        logit = self.stability_head(z[n:]).squeeze(1)
        z_asym = z[:n]
        log_growth = self.growthrate_head(z_asym).squeeze(1)
        y_dens = self._y_from_raw(self.density_head(z_asym), True)
        y_flux = self._y_from_raw(self.flux_head(z_asym), False)
        return logit, log_growth, y_dens, y_flux

    # ---- outputs ----------------------------------------------------------------------
    @torch.jit.export
    def F4_from_y(
        self, F4_initial: torch.Tensor, y_dens: torch.Tensor, y_flux: torch.Tensor
    ) -> torch.Tensor:
        """Final F4 [N, 4, 2, NF] from the initial F4 and the transfer matrices."""
        # species index s * NF + a; contract the (in species, in flavour) axis
        n, NF = F4_initial.shape[0], self.NF
        S = 2 * NF
        F4_species = F4_initial.reshape(n, 4, S).contiguous()
        N_final = (y_dens.reshape(n, S, S) * F4_species[:, 3:]).sum(dim=2).reshape(n, 2, NF)
        F_final = torch.bmm(F4_species[:, :3], y_flux.reshape(n, S, S).transpose(1, 2)).reshape(
            n, 3, 2, NF
        )
        if self.conserve_lepton_number == "direct":
            eln_initial = F4_initial[:, 3, 0] - F4_initial[:, 3, 1]
            excess = N_final[:, 0] - N_final[:, 1] - eln_initial
            N_final = torch.stack([N_final[:, 0] - excess / 2, N_final[:, 1] + excess / 2], dim=1)
        return torch.cat([F_final, N_final[:, None]], dim=1)

    @torch.jit.export
    def predict_all(
        self, F4_initial: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(F4_final [N,4,2,NF], growth rate [N] in 1/s, stability [N] in [0, 1])."""
        X = self.X_from_F4(F4_initial)
        logit, log_growth, y_dens, y_flux = self.heads_from_X(X)
        F4_final = self.F4_from_y(F4_initial, y_dens, y_flux)
        ntot = F4_initial[:, 3].sum(dim=(1, 2))
        growthrate = torch.exp(log_growth) * ntot * self.ndens_to_invsec
        return F4_final, growthrate, torch.sigmoid(logit)

    @torch.jit.export
    def predict_stability(self, F4_initial: torch.Tensor) -> torch.Tensor:
        """Probability [N] in [0, 1] that each cell is stable."""
        X = self.X_from_F4(F4_initial)
        return torch.sigmoid(self.stability_head(self.shared(X)).squeeze(1))

    @torch.jit.export
    def predict_WhiskyTHC(
        self, F4_initial: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(y_dens, y_flux [N,2,NF,2,NF], growth rate [N] in 1/s, zero where stability > 0.5)."""
        X = self.X_from_F4(F4_initial)
        logit, log_growth, y_dens, y_flux = self.heads_from_X(X)
        ntot = F4_initial[:, 3].sum(dim=(1, 2))
        growthrate = torch.exp(log_growth) * ntot * self.ndens_to_invsec
        growthrate = torch.where(
            torch.sigmoid(logit) > 0.5, torch.zeros_like(growthrate), growthrate
        )
        return y_dens, y_flux, growthrate

    @torch.jit.export
    def convert_y_to_2flavor(self, y: torch.Tensor) -> torch.Tensor:
        """Fold mu and tau into one x flavour: [N,2,NF,2,NF] -> [N,2,2,2,2].

        Output x rows are summed over the heavies; input x columns are averaged over them
        (an x density splits equally between mu and tau), so N_x = N_mu + N_tau maps through.
        """
        rows = torch.stack([y[:, :, 0], y[:, :, 1:].sum(dim=2)], dim=2)  # [N,2,2,2,NF]
        return torch.stack([rows[..., 0], rows[..., 1:].mean(dim=-1)], dim=-1)


def model_kwargs(config: TrainConfig) -> dict[str, Any]:
    heads = ("shared", "stability", "growthrate", "density", "flux")
    return {
        "NF": config.NF,
        "do_fdotu": config.do_fdotu,
        "do_eln_inputs": config.do_eln_inputs,
        "widths": {h: config.width(h) for h in heads},
        "nhidden": {h: config.nhidden(h) for h in heads},
        "dropout_probability": config.dropout_probability,
        "do_batchnorm": config.do_batchnorm,
        "activation": config.activation,
        "average_heavies_in_final_state": config.average_heavies_in_final_state,
        "conserve_lepton_number": config.conserve_lepton_number,
    }


def build_model(config: TrainConfig) -> FFIModel:
    """A freshly initialised model for `config` (initialisation uses torch's global RNG)."""
    return FFIModel(**model_kwargs(config))


def model_from_checkpoint(ckpt: dict[str, Any]) -> FFIModel:
    """The model stored in a Rhea checkpoint dict, in eval mode, on the CPU."""
    from rhea_engine.config import from_dict

    try:
        config = from_dict(ckpt["config"])
        state = ckpt["model"]
    except KeyError as exc:
        raise RunError(
            f"The checkpoint lacks the entry {exc}; it is not a Rhea checkpoint."
        ) from exc
    model = build_model(config)
    model.load_state_dict(state)
    return model.eval()
