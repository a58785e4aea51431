"""Pure loss functions of the six tasks (docs/physics.md §3), on quantities normalised by ntot.

Every function returns `(loss, max_abs_error)` as 0-d tensors and never synchronises with
the host, so a training loop can accumulate them on the device. Four-flux arguments are
`F4 / ntot` with shape [N, 4, 2, NF] (axis 1 = F_x, F_y, F_z, N).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rhea_engine.physics.units import NDENS_TO_INVSEC

Loss = tuple[torch.Tensor, torch.Tensor]

# The data each task's loss is computed on (the data kinds of `train_data.data_manifest`).
TASK_DATA = {
    "stability": "stable",
    "ndens": "asymptotic",
    "fluxmag": "asymptotic",
    "direction": "asymptotic",
    "growthrate": "asymptotic",
    "unphysical": "asymptotic",
}


def _magnitude(F: torch.Tensor) -> torch.Tensor:
    """|F| over axis 1; sqrt of a clamped square sum (zero vectors get a zero gradient, and
    this is much faster than linalg.vector_norm on strided slices)."""
    return (F[:, 0].square() + F[:, 1].square() + F[:, 2].square()).clamp_min(1e-30).sqrt()


def ndens_loss(F4n_pred: torch.Tensor, F4n_true: torch.Tensor) -> Loss:
    """MSE of N/ntot."""
    err = F4n_pred[:, 3] - F4n_true[:, 3]
    return err.square().mean(), err.abs().max()


def fluxmag_loss(F4n_pred: torch.Tensor, F4n_true: torch.Tensor) -> Loss:
    """MSE of |F|/ntot."""
    err = _magnitude(F4n_pred[:, :3]) - _magnitude(F4n_true[:, :3])
    return err.square().mean(), err.abs().max()


def direction_loss(F4n_pred: torch.Tensor, F4n_true: torch.Tensor, tiny: float = 1e-12) -> Loss:
    """mean(1 - F_pred_hat . F_true_hat) over species whose true flux is non-zero."""
    true_mag = _magnitude(F4n_true[:, :3])
    pred_mag = _magnitude(F4n_pred[:, :3])
    dot = (
        F4n_pred[:, 0] * F4n_true[:, 0]
        + F4n_pred[:, 1] * F4n_true[:, 1]
        + F4n_pred[:, 2] * F4n_true[:, 2]
    )
    cos = dot / (pred_mag * true_mag).clamp_min(tiny * tiny)
    mask = (true_mag > tiny).to(cos.dtype)
    err = (1.0 - cos) * mask
    return err.sum() / mask.sum().clamp_min(1.0), err.abs().max()


def growthrate_target(growthrate: torch.Tensor, ntot: torch.Tensor) -> torch.Tensor:
    """What the log-rate head learns: log(sigma / (ntot * NDENS_TO_INVSEC))."""
    return torch.log(growthrate / (ntot * NDENS_TO_INVSEC))


def growthrate_loss(log_growth_pred: torch.Tensor, log_growth_target: torch.Tensor) -> Loss:
    """MSE between the log-rate head and the log of the normalised true rate.

    Both sides are logarithms (upstream compared exp(head)/ntot against a log).
    """
    err = log_growth_pred - log_growth_target
    return err.square().mean(), err.abs().max()


def stability_loss(logit: torch.Tensor, stable: torch.Tensor) -> Loss:
    """BCE with logits on the raw stability logit (stable = 1); max |p - label|.

    The logit goes into the loss as it is (upstream squashed it with a sigmoid first).
    """
    loss = F.binary_cross_entropy_with_logits(logit, stable)
    return loss, (torch.sigmoid(logit) - stable).abs().max()


def unphysical_loss(F4n_pred: torch.Tensor) -> Loss:
    """mean(min(N, 0)^2) + mean(max(|F|^2 - N^2, 0)): penalises N < 0 and |F| > N."""
    N = F4n_pred[:, 3]
    negative = torch.clamp(N, max=0.0)
    F = F4n_pred
    superluminal = torch.clamp(
        F[:, 0].square() + F[:, 1].square() + F[:, 2].square() - N.square(), min=0.0
    )
    loss = negative.square().mean() + superluminal.mean()
    return loss, torch.maximum(negative.abs().max(), superluminal.max())


def final_state_losses(
    F4n_pred: torch.Tensor, F4n_true: torch.Tensor, tiny: float = 1e-12
) -> dict[str, Loss]:
    """ndens, fluxmag, direction and unphysical in one pass, sharing the flux magnitudes.

    Same values as the four separate functions; the training loop's fast path.
    """
    Fp0, Fp1, Fp2, Np = F4n_pred[:, 0], F4n_pred[:, 1], F4n_pred[:, 2], F4n_pred[:, 3]
    Ft0, Ft1, Ft2, Nt = F4n_true[:, 0], F4n_true[:, 1], F4n_true[:, 2], F4n_true[:, 3]
    pred_sq = Fp0.square() + Fp1.square() + Fp2.square()
    pred_mag = pred_sq.clamp_min(1e-30).sqrt()
    true_mag = (Ft0.square() + Ft1.square() + Ft2.square()).clamp_min(1e-30).sqrt()
    dN = Np - Nt
    dmag = pred_mag - true_mag
    cos = (Fp0 * Ft0 + Fp1 * Ft1 + Fp2 * Ft2) / (pred_mag * true_mag).clamp_min(tiny * tiny)
    mask = (true_mag > tiny).to(cos.dtype)
    dir_err = (1.0 - cos) * mask
    negative = torch.clamp(Np, max=0.0)
    superluminal = torch.clamp(pred_sq - Np.square(), min=0.0)
    return {
        "ndens": (dN.square().mean(), dN.abs().max()),
        "fluxmag": (dmag.square().mean(), dmag.abs().max()),
        "direction": (dir_err.sum() / mask.sum().clamp_min(1.0), dir_err.abs().max()),
        "unphysical": (
            negative.square().mean() + superluminal.mean(),
            torch.maximum(negative.abs().max(), superluminal.max()),
        ),
    }


def eln_violation(F4n_initial: torch.Tensor, F4n_final: torch.Tensor) -> torch.Tensor:
    """Max over samples and flavours of |dELN_final - dELN_initial| / ntot (inputs normalised)."""
    eln_initial = F4n_initial[:, 3, 0] - F4n_initial[:, 3, 1]
    eln_final = F4n_final[:, 3, 0] - F4n_final[:, 3, 1]
    return (eln_final - eln_initial).abs().max()


def combine_fixed(losses: dict[str, torch.Tensor], multipliers: dict[str, float]) -> torch.Tensor:
    """Sum of multiplier * loss over the tasks."""
    total = torch.zeros((), device=next(iter(losses.values())).device)
    for task, value in losses.items():
        total = total + multipliers[task] * value
    return total


def combine_learned(
    losses: dict[str, torch.Tensor],
    multipliers: dict[str, float],
    log_vars: dict[str, torch.Tensor],
) -> torch.Tensor:
    """Kendall, Gal & Cipolla (2018): sum exp(-s_k) m_k L_k + s_k for tasks with a learned s_k;
    tasks without one (the unphysical penalty) keep their fixed multiplier."""
    total = torch.zeros((), device=next(iter(losses.values())).device)
    for task, value in losses.items():
        if task in log_vars:
            s = log_vars[task]
            total = total + torch.exp(-s) * multipliers[task] * value + s
        else:
            total = total + multipliers[task] * value
    return total


def pcgrad(grads: list[torch.Tensor], order: list[list[int]]) -> torch.Tensor:
    """PCGrad (Yu et al. 2020): project each task gradient off the others it conflicts with.

    `grads` are flat per-task gradients; `order[i]` is the (random) order in which task i is
    projected against the others. Branch-free (torch.where), so no host synchronisation.
    """
    projected = []
    for i, g in enumerate(grads):
        g_i = g.clone()
        for j in order[i]:
            g_j = grads[j]
            dot = torch.dot(g_i, g_j)
            coeff = torch.where(
                dot < 0, dot / g_j.square().sum().clamp_min(1e-30), torch.zeros_like(dot)
            )
            g_i = g_i - coeff * g_j
        projected.append(g_i)
    return torch.stack(projected).sum(dim=0)


def pcgrad_backward(
    task_losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor], order: list[list[int]]
) -> None:
    """Set each parameter's `.grad` to the PCGrad combination of the tasks' gradients.

    The per-task gradients are flattened over all `params`, combined by `pcgrad`, and cut
    back into one gradient per parameter; a parameter a task does not reach gets zero.
    """
    grads = []
    for k, loss in enumerate(task_losses):
        g = torch.autograd.grad(
            loss, params, retain_graph=k < len(task_losses) - 1, allow_unused=True
        )
        grads.append(
            torch.cat(
                [
                    (gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                    for gi, p in zip(g, params, strict=True)
                ]
            )
        )
    flat = pcgrad(grads, order)
    start = 0
    for p in params:
        p.grad = flat[start : start + p.numel()].view_as(p).clone()
        start += p.numel()
