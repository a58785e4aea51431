"""The multi-task FFI network: pick the architecture a config names, build it, load it back.

Architectures (`architecture` key): `transfer`, an MLP on Lorentz-scalar inputs
(rhea_engine.models.transfer), and `equivariant`, an e3nn network over the species
(rhea_engine.models.equivariant, imported only when asked for). Both predict transfer
matrices with conservation built in (rhea_engine.models.outputs) and can be made exactly
symmetric under a flavor group (`symmetry` key, rhea_engine.models.symmetry).
"""

from __future__ import annotations

from typing import Any

import torch

from rhea_engine.config import TrainConfig
from rhea_engine.errors import ConfigError, RunError
from rhea_engine.models.outputs import FFIModel
from rhea_engine.models.transfer import TransferModel, lorentz_scalars, n_lorentz_scalars

__all__ = ["FFIModel", "TransferModel", "build_model", "inputs_from_F4", "n_inputs"]


def n_inputs(
    NF: int, do_fdotu: bool, do_eln_inputs: bool = False, architecture: str = "transfer"
) -> int:
    """Width of the network input X: Lorentz scalars (transfer) or F4/ntot (equivariant)."""
    if architecture == "equivariant":
        return 8 * NF
    return n_lorentz_scalars(NF, do_fdotu, do_eln_inputs)


def inputs_from_F4(
    F4: torch.Tensor, do_fdotu: bool, do_eln_inputs: bool = False, architecture: str = "transfer"
) -> torch.Tensor:
    """The network input X of F4 [N, 4, 2, NF], what the model's own X_from_F4 returns."""
    if architecture == "equivariant":
        from rhea_engine.models.equivariant import normalised_F4

        return normalised_F4(F4)
    return lorentz_scalars(F4, do_fdotu, do_eln_inputs)


def build_model(config: TrainConfig) -> FFIModel:
    """A freshly initialised model for `config` (initialisation uses torch's global RNG)."""
    if config.architecture == "equivariant":
        from rhea_engine.models.equivariant import EquivariantModel, require_e3nn

        require_e3nn()
        return EquivariantModel(config)
    if config.architecture != "transfer":
        raise ConfigError(f"Unknown architecture '{config.architecture}'.")
    return TransferModel(config)


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
