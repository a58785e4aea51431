"""Watch your own training script in Rhea: a small upstream-style loop logged with start_run.

The loop below is the shape of a typical research script (a parameter dict, a network that
maps the initial four-flux to the final one, Adam with a plateau scheduler, per-task train
and test losses every epoch, a model file every few epochs). An import and three lines
(marked "Rhea:") connect it to Rhea; everything else is ordinary PyTorch.

    python examples/tracking_loop.py --home ~/ffi-runs --epochs 30
    rhea ls --home ~/ffi-runs           # or: rhea tui --home ~/ffi-runs
    rhea plot my-loop -o my-loop.pdf --home ~/ffi-runs

Metrics named as Rhea names them (`{task}_{train,test}_loss`, `train_loss`, `test_loss`,
`ELN_violation`, `learning_rate`) get Rhea's per-task and ELN panels; any other name is
kept and plotted as it is.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from rhea_engine.data.synth import generate  # stands in for your own data files
from rhea_engine.tracking import start_run  # Rhea: the import

TASKS = ("ndens", "fluxmag", "growthrate", "stability")


def load_data(n: int, test_size: float, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Synthetic cells (replace with your own HDF5 reading), normalised by ntot, split."""
    cells = generate(n, seed=seed)
    ntot = cells.F4_initial[:, 3].sum(axis=(1, 2))
    scale = ntot[:, None, None, None]
    growth = np.log10(1.0 + cells.growth_rate)  # 1/s; 0 for stable cells
    growth = (growth - growth.mean()) / growth.std()  # a tame regression target
    arrays = {
        "x": (cells.F4_initial / scale).reshape(n, -1),
        "y": (cells.F4_final / scale).reshape(n, -1),
        "growth": growth,
        "stable": np.asarray(cells.stable, dtype=np.float64),
    }
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(test_size * n))
    splits = {"test": order[:n_test], "train": order[n_test:]}
    return {
        split: {k: torch.as_tensor(v[rows], dtype=torch.float32) for k, v in arrays.items()}
        for split, rows in splits.items()
    }


class Net(nn.Module):
    def __init__(self, n_in: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, width), nn.LeakyReLU(), nn.Linear(width, width))
        self.final = nn.Linear(width, n_in)
        self.growth = nn.Linear(width, 1)
        self.stable = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = torch.relu(self.body(x))
        return x + self.final(h), self.growth(h)[:, 0], self.stable(h)[:, 0]


def task_losses(net: Net, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    final, growth, stable_logit = net(batch["x"])
    n = batch["x"].shape[0]
    pred, true = final.view(n, 4, 2, -1), batch["y"].view(n, 4, 2, -1)
    return {
        "ndens": ((pred[:, 3] - true[:, 3]) ** 2).mean(),
        "fluxmag": ((pred[:, :3] - true[:, :3]) ** 2).mean(),
        "growthrate": ((growth - batch["growth"]) ** 2).mean(),
        "stability": nn.functional.binary_cross_entropy_with_logits(stable_logit, batch["stable"]),
    }


def eln_violation(net: Net, batch: dict[str, torch.Tensor]) -> float:
    """Largest change of the electron lepton number (nu_e - nubar_e density) in units of ntot."""
    n = batch["x"].shape[0]
    with torch.no_grad():
        pred = net(batch["x"])[0].view(n, 4, 2, -1)
    start = batch["x"].view(n, 4, 2, -1)
    eln = lambda f4: f4[:, 3, 0, :].sum(-1) - f4[:, 3, 1, :].sum(-1)  # noqa: E731
    return float((eln(pred) - eln(start)).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None, help="Rhea home (default: $RHEA_HOME or .)")
    parser.add_argument("--name", default=None, help="run name (default: run1, run2, ...)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=4000)
    args = parser.parse_args()
    parms = {
        "epochs": args.epochs,
        "learning_rate": 3e-3,
        "batch_size": 256,
        "width": 32,
        "output_every": 5,
        "test_size": 0.2,
        "random_seed": 42,
    }
    torch.manual_seed(parms["random_seed"])
    data = load_data(args.samples, parms["test_size"], parms["random_seed"])
    net = Net(data["train"]["x"].shape[1], parms["width"])
    optimizer = torch.optim.Adam(net.parameters(), lr=parms["learning_rate"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)

    # Rhea: one run in the home; the `with` ends it completed, failed or stopped
    with start_run(name=args.name, config=parms, home=args.home) as run:
        for epoch in range(1, parms["epochs"] + 1):
            net.train()
            order = torch.randperm(data["train"]["x"].shape[0])
            for start in range(0, len(order), parms["batch_size"]):
                rows = order[start : start + parms["batch_size"]]
                batch = {k: v[rows] for k, v in data["train"].items()}
                optimizer.zero_grad()
                sum(task_losses(net, batch).values()).backward()
                optimizer.step()
            net.eval()
            metrics: dict[str, float] = {}
            with torch.no_grad():
                for split in ("train", "test"):
                    losses = task_losses(net, data[split])
                    metrics.update({f"{t}_{split}_loss": float(v) for t, v in losses.items()})
                    metrics[f"{split}_loss"] = float(sum(losses.values()))
            metrics["ELN_violation"] = eln_violation(net, data["train"])
            metrics["ELN_violation_test"] = eln_violation(net, data["test"])
            metrics["learning_rate"] = optimizer.param_groups[0]["lr"]
            scheduler.step(metrics["test_loss"])
            run.log(epoch, metrics)  # Rhea: one line per epoch, like loss.dat
            print(f"epoch {epoch}  test_loss {metrics['test_loss']:.4e}", flush=True)
            if epoch % parms["output_every"] == 0:
                path = run.checkpoint_dir / f"model{epoch:04d}.pt"
                torch.save(net.state_dict(), path)
                run.checkpoint(epoch, path)  # Rhea: recorded, listed by `rhea show`


if __name__ == "__main__":
    main()
