"""What every Rhea network shares: transfer matrices with conservation built in, and the
exported methods with the upstream signatures.

Layout (docs/physics.md §1-§2): `F4[N, 4, 2, NF]` with axis 1 = (F_x, F_y, F_z, N). The
transfer matrices `y[N, 2, NF, 2, NF]` are indexed (out species, out flavor, in species,
in flavor): N_final[s, a] = sum_{t, b} y_dens[s, a, t, b] N_initial[t, b], and likewise
y_flux for each flux component. Final fluxes are combinations of the initial ones with
rotation-invariant coefficients, so every architecture is rotation-equivariant; and every
O(3)-equivariant vector function of the initial fluxes has this form (Villar et al.,
"Scalars are universal", NeurIPS 2021), so the form costs no generality.
"""

# Buffers read as `Tensor | Module` to mypy; TorchScript rejects inline ignore comments.
# mypy: disable-error-code="operator,arg-type,index"

from __future__ import annotations

import torch
from torch import nn

from rhea_engine.config import TrainConfig
from rhea_engine.physics.units import NDENS_TO_INVSEC


class FFIModel(nn.Module):
    """Predicts stability, growth rate and the asymptotic four-flux of one grid cell.

    Subclasses (the architectures) provide `X_from_F4`, `heads_from_X`, `forward_train` and
    `stability_logit`; this class turns raw transfer-matrix outputs into constrained ones and
    provides the exported methods.
    """

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.NF = config.NF
        self.Ny = (2 * config.NF) ** 2
        self.average_heavies_in_final_state = config.average_heavies_in_final_state
        self.conserve_lepton_number = config.conserve_lepton_number
        self.ndens_to_invsec = NDENS_TO_INVSEC
        self.register_buffer("_eye_species", torch.eye(2), persistent=False)
        self.register_buffer("_eye_flavor", torch.eye(config.NF), persistent=False)

    def _build_constraints(self, raw_map: torch.Tensor | None = None) -> None:
        """The constraints are an affine map of the raw head output, y = raw @ A + c: build A
        and c once from the reference implementation (after an optional linear `raw_map`, such
        as a group average), then apply them with one addmm."""
        with torch.no_grad():
            basis = torch.cat([torch.zeros(1, self.Ny), torch.eye(self.Ny)]).double()
            for name, is_density in (("dens", True), ("flux", False)):
                images = self._constrain_reference(basis, is_density).reshape(self.Ny + 1, self.Ny)
                A, c = images[1:] - images[0], images[0].clone()
                if raw_map is not None:
                    A = raw_map.double() @ A
                # float32 for the working path; float64 masters keep double precision exact
                self.register_buffer(f"_A_{name}", A.float(), persistent=False)
                self.register_buffer(f"_c_{name}", c.float(), persistent=False)
                self.register_buffer(f"_A_{name}_64", A, persistent=False)
                self.register_buffer(f"_c_{name}_64", c, persistent=False)

    def _y_from_raw(self, raw: torch.Tensor, is_density: bool) -> torch.Tensor:
        """Constrained transfer matrix [N, 2, NF, 2, NF] from a raw head output [N, rows of A]."""
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

    # ---- provided by each architecture ------------------------------------------------
    def X_from_F4(self, F4: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def heads_from_X(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stability logit [N], log growth rate [N], y_dens, y_flux) from inputs X."""
        raise NotImplementedError

    def forward_train(
        self, X_asym: torch.Tensor, X_stab: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stability logit of the stability rows, log growth rate, y_dens, y_flux of the
        asymptotic rows) in one pass over both batches."""
        raise NotImplementedError

    def stability_logit(self, X: torch.Tensor) -> torch.Tensor:
        """Stability logit [N] from inputs X."""
        raise NotImplementedError

    def forward(
        self, X: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.heads_from_X(X)

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
        return torch.sigmoid(self.stability_logit(self.X_from_F4(F4_initial)))

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
