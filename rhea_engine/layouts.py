# mypy: disable-error-code="operator,no-any-return"
# (TorchScript reads `# type:` comments inside scripted methods, so none can go there.)
"""The two layouts of `predict_all` that simulation codes consume.

`not-main` (Rhea's own, and upstream not-main's): F4 [N, 4, 2, NF] (F_x, F_y, F_z, N; nu/nubar;
flavor) in and out, growth rate in 1/s. `main` (upstream main's consumers, its
example_use_model.py and cpp_interface/): F4 [N, 2, NF, 4] (nu/nubar; flavor; x, y, z, t) in and
out, and the growth rate in cm^-3 as upstream main's models return it (sigma / NDENS_TO_INVSEC:
they leave the sqrt(2) G_F factor to the caller). Stability is the probability that the cell
is stable in both.
"""

from __future__ import annotations

import torch

from rhea_engine.physics.units import NDENS_TO_INVSEC

LAYOUTS = ("not-main", "main")
DEFAULT_LAYOUT = "not-main"
#: What each layout's predict_all takes and returns, for model cards and messages.
DESCRIPTION = {
    "not-main": {
        "input": "F4_initial [N, 4, 2, NF] cm^-3: axis 1 (F_x, F_y, F_z, N), axis 2 nu/nubar, "
        "axis 3 flavor (e, mu, tau)",
        "F4_final": "[N, 4, 2, NF] cm^-3",
        "growthrate": "[N] 1/s",
    },
    "main": {
        "input": "F4_initial [N, 2, NF, 4] cm^-3: axis 1 nu/nubar, axis 2 flavor (e, mu, tau), "
        "axis 3 (x, y, z, t) with t the number density (upstream main's layout)",
        "F4_final": "[N, 2, NF, 4] cm^-3",
        "growthrate": "[N] cm^-3, as upstream main's models return it: multiply by "
        f"NDENS_TO_INVSEC = {NDENS_TO_INVSEC:.10g} cm^3/s for 1/s",
    },
}


def check_layout(layout: str) -> str:
    from rhea_engine.errors import ExportError

    if layout not in LAYOUTS:
        raise ExportError(f"Unknown layout '{layout}'; use one of {', '.join(LAYOUTS)}.")
    return layout


class MainLayout(torch.nn.Module):
    """A Rhea model with upstream main's predict_all: F4 [N, 2, NF, 4] in and out.

    The growth rate comes back in cm^-3 (divided by NDENS_TO_INVSEC), as main's models return
    it. `predict_stability` takes the same layout; `convert_y_to_2flavor` folds mu and tau of a
    [N, 2, NF, 4] tensor into x = mu + tau, as main's method does.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.NF = int(getattr(model, "NF", 3))
        self.rhea_layout = "main"
        self.ndens_to_invsec = NDENS_TO_INVSEC  # cm^3/s

    def _rhea_layout(self, F4_initial: torch.Tensor) -> torch.Tensor:
        n = F4_initial.shape[0]
        return F4_initial.reshape(n, 2, self.NF, 4).permute(0, 3, 1, 2).contiguous()

    @torch.jit.export
    def predict_all(
        self, F4_initial: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        F4_final, growthrate, stability = self.model.predict_all(self._rhea_layout(F4_initial))
        return (
            F4_final.permute(0, 2, 3, 1).contiguous(),
            growthrate / self.ndens_to_invsec,
            stability,
        )

    @torch.jit.export
    def predict_stability(self, F4_initial: torch.Tensor) -> torch.Tensor:
        return self.model.predict_stability(self._rhea_layout(F4_initial))

    @torch.jit.export
    def convert_y_to_2flavor(self, F4: torch.Tensor) -> torch.Tensor:
        return torch.cat([F4[:, :, :1], F4[:, :, 1:].sum(dim=2, keepdim=True)], dim=2)

    def forward(self, F4_initial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.predict_all(F4_initial)


def to_layout(F4: torch.Tensor, layout: str) -> torch.Tensor:
    """F4 [N, 4, 2, NF] in `layout`."""
    return F4.permute(0, 2, 3, 1).contiguous() if layout == "main" else F4


def outputs_in_rhea_units(
    outputs: tuple[torch.Tensor, ...], layout: str, n: int, NF: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """predict_all outputs of a `layout` model as F4 [n, 4, 2, NF], growth rate [n] in 1/s and
    stability [n], in float64 on the CPU. Single-cell outputs squeezed to 0-d are reshaped."""
    F4_final, growth, stability = (t.detach().double().cpu() for t in outputs)
    if layout == "main":
        F4_final = F4_final.reshape(n, 2, NF, 4).permute(0, 3, 1, 2)
        growth = growth * NDENS_TO_INVSEC
    return F4_final.reshape(n, 4, 2, NF), growth.reshape(n), stability.reshape(n)
