"""ASHA: asynchronous successive halving of a sweep's trials on their test loss."""

from __future__ import annotations

import math

from rhea_engine.errors import ConfigError


def asha_rungs(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """Rung epochs r, r*eta, r*eta^2, ... below `max_epochs` (no rung at the last epoch)."""
    if min_epochs < 1:
        raise ConfigError(f"--asha-min-epochs must be at least 1; got {min_epochs}.")
    if eta < 2:
        raise ConfigError(f"--asha-eta must be at least 2; got {eta}.")
    rungs = []
    rung = min_epochs
    while rung < max_epochs:
        rungs.append(rung)
        rung *= eta
    return rungs


class Asha:
    """Successive halving on a loss (lower is better), decided as trials reach each rung.

    A trial reaching rung k continues only if its loss ranks among the best
    max(1, n // eta) of the n trials that have reached rung k so far (itself included);
    otherwise it is pruned. Trials are never revisited, as in ASHA (Li et al. 2020).
    """

    def __init__(self, min_epochs: int, eta: int, max_epochs: int) -> None:
        self.eta = eta
        self.rungs = asha_rungs(min_epochs, eta, max_epochs)
        self.recorded: dict[int, dict[str, float]] = {rung: {} for rung in self.rungs}
        self.pruned: dict[str, int] = {}  # trial -> rung epoch where it stopped

    def report(self, trial: str, epoch: int, loss: float) -> bool:
        """Record `trial`'s loss at rung `epoch`; True if the trial should be pruned."""
        if epoch not in self.recorded or trial in self.recorded[epoch] or trial in self.pruned:
            return trial in self.pruned
        if not math.isfinite(loss):
            loss = math.inf
        at_rung = self.recorded[epoch]
        at_rung[trial] = loss
        ranked = sorted(at_rung.items(), key=lambda item: (item[1], item[0]))
        keep = max(1, len(ranked) // self.eta)
        if trial in {name for name, _ in ranked[:keep]}:
            return False
        self.pruned[trial] = epoch
        return True

    def pending_rungs(self, trial: str, last_epoch: int) -> list[int]:
        """Rungs `trial` has reached (by `last_epoch`) but that were not decided yet."""
        if trial in self.pruned:
            return []
        return [r for r in self.rungs if r <= last_epoch and trial not in self.recorded[r]]
