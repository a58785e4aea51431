"""A small trained-looking run for the export tests: real store row, events and checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpp"))

from make_parity_data import SMALL, small_model  # noqa: E402

from rhea_engine.checkpoint import FORMAT, epoch_path, save_checkpoint  # noqa: E402
from rhea_engine.config import TrainConfig  # noqa: E402
from rhea_engine.runs.rundir import RunWriter  # noqa: E402
from rhea_engine.runs.store import Store  # noqa: E402

DATA = [
    {"path": "/data/asymptotic.h5", "sha256": "ab" * 32, "kind": "asymptotic"},
    {"path": "/data/stable.h5", "sha256": "cd" * 32, "kind": "stable"},
]


def tiny_config() -> TrainConfig:
    return TrainConfig(**SMALL, device="cpu", epochs=10, output_every=5)


def make_run(
    home: Path, name: str = "tiny", epochs: tuple[int, ...] = (5, 10), best_epoch: int | None = 5
) -> Path:
    """A run with periodic checkpoints at `epochs` (different weights each), last.pt, best.pt."""
    config = tiny_config()
    with Store(home) as store:
        row = store.create_run(config, name=name, status="running")
    assert row.path is not None
    with RunWriter(row.path) as writer:
        writer.start(
            device="cpu",
            total_epochs=config.epochs,
            git_commit="0" * 40,
            git_dirty=False,
            data=DATA,
            resumed_from_epoch=None,
        )
        ckpt: dict[str, object] | None = None
        for epoch in epochs:
            model = small_model(seed=epoch)
            writer.epoch(
                epoch, {"train_loss": 1.0 / epoch, "test_loss": 2.0 / epoch, "ELN_violation": 1e-7}
            )
            ckpt = {
                "format": FORMAT,
                "model": model.state_dict(),
                "config": config.to_dict(),
                "epoch": epoch,
                "kind": "periodic",
                "best_test_loss": 2.0 / epoch,
            }
            path = save_checkpoint(ckpt, epoch_path(row.path / "checkpoints", epoch))
            writer.checkpoint(epoch, path, "periodic")
            if epoch == best_epoch:
                save_checkpoint({**ckpt, "kind": "best"}, row.path / "checkpoints" / "best.pt")
        if ckpt is not None:
            save_checkpoint({**ckpt, "kind": "final"}, row.path / "checkpoints" / "last.pt")
        writer.evaluation(
            {"model_ndens_rmse": 0.01, "box3d_ndens_rmse": 0.02, "model_growth_err": float("nan")}
        )
        writer.status("completed")
    return row.path


def eager_model(run_path: Path, epoch: int) -> torch.nn.Module:
    from rhea_engine.checkpoint import load_checkpoint
    from rhea_engine.model import model_from_checkpoint

    return model_from_checkpoint(load_checkpoint(epoch_path(run_path / "checkpoints", epoch)))
