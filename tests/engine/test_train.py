"""The training loop: learning, conservation, resume, divergence, stop, checkpoints, devices."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from train_fixtures import random_F4, tiny_config, tiny_data, write_h5_sets

from rhea_engine import losses as L
from rhea_engine.checkpoint import latest_checkpoint, load_checkpoint
from rhea_engine.errors import DataError, DeviceError, DivergedError, RunError
from rhea_engine.model import model_from_checkpoint
from rhea_engine.train import Callbacks, resolve_device, train
from rhea_engine.train_data import epoch_indices, load_training_data
from rhea_engine.trainer import Trainer
from rhea_engine.vocabulary import TASKS


class Recorder(Callbacks):
    def __init__(self) -> None:
        self.epochs: list[tuple[int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, Path, str]] = []
        self.evaluation: dict[str, float] = {}
        self.start: dict[str, Any] = {}

    def on_start(self, info: dict[str, Any]) -> None:
        self.start = info

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, metrics))

    def on_checkpoint(self, epoch: int, path: Path, kind: str) -> None:
        self.checkpoints.append((epoch, path, kind))

    def on_evaluation(self, results: dict[str, float]) -> None:
        self.evaluation = results


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return tiny_data(tiny_config())


def test_tiny_training_learns_and_conserves(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config(epochs=6, conserve_lepton_number="direct")
    rec = Recorder()
    result = train(config, callbacks=rec, checkpoint_dir=tmp_path, data=data)
    assert [e for e, _ in rec.epochs] == [1, 2, 3, 4, 5, 6]
    first, last = rec.epochs[0][1], rec.epochs[-1][1]
    assert last["test_loss"] < 0.8 * first["test_loss"]
    names = {f"{t}_{s}_{k}" for t in TASKS for s in ("train", "test") for k in ("loss", "max")}
    names |= {
        "train_loss",
        "test_loss",
        "ELN_violation",
        "ELN_violation_test",
        "learning_rate",
        "epoch_seconds",
        "samples_per_second",
    }
    assert set(last) == names
    assert last["ELN_violation"] < 1e-6 and last["ELN_violation_test"] < 1e-6
    # the trained model conserves flavour-summed number exactly and ELN (direct) to float precision
    model = result.model.eval()
    F4 = torch.as_tensor(data.test_F4_initial, dtype=torch.float32)
    with torch.no_grad():
        F4_final = model.predict_all(F4)[0].double()
    F4 = F4.double()
    ntot = F4[:, 3].sum(dim=(1, 2))
    assert ((F4_final.sum(dim=3) - F4.sum(dim=3)).abs().amax(dim=(1, 2)) / ntot).max() < 1e-6
    d_eln = (F4_final[:, 3, 0] - F4_final[:, 3, 1]) - (F4[:, 3, 0] - F4[:, 3, 1])
    assert (d_eln.abs() / ntot[:, None]).max() < 1e-6
    # evaluation: model vs Box3D vs identity
    ev = rec.evaluation
    assert ev["model_ndens_mean_err"] < ev["identity_ndens_mean_err"]
    assert ev["box3d_ndens_max_err"] < 1e-12  # the labels are Box3D's own
    assert 0.0 <= ev["model_stability_accuracy"] <= 1.0
    assert ev["model_eln_violation"] < 1e-6
    # checkpoints: one per epoch (output_every=1), best, last; all safe to load
    kinds = {k for _, _, k in rec.checkpoints}
    assert {"best", "periodic", "final"} <= kinds
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 6 and ckpt["config"]["epochs"] == 6
    raw = torch.load(tmp_path / "epoch_00006.pt", weights_only=True)
    assert set(raw) >= {
        "model",
        "optimizer",
        "scheduler",
        "config",
        "epoch",
        "best_test_loss",
        "rng",
    }
    assert all(isinstance(v, torch.Tensor) for v in raw["rng"].values() if not isinstance(v, list))
    loaded = model_from_checkpoint(raw)
    with torch.no_grad():
        assert torch.equal(loaded.predict_all(F4.float())[0], model.predict_all(F4.float())[0])


def test_resume_is_bit_for_bit(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config(epochs=4, dropout_probability=0.1, warmup_iters=2)
    straight = train(config, checkpoint_dir=tmp_path / "a", data=data, evaluate_at_end=False)
    train(config.replace(epochs=2), checkpoint_dir=tmp_path / "b", data=data, evaluate_at_end=False)
    resumed = train(
        config,
        checkpoint_dir=tmp_path / "b",
        data=data,
        evaluate_at_end=False,
        resume_from=tmp_path / "b" / "last.pt",
    )
    assert resumed.epochs_completed == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.last_metrics["test_loss"] == straight.last_metrics["test_loss"]
    ca, cb = (
        load_checkpoint(tmp_path / "a" / "last.pt"),
        load_checkpoint(tmp_path / "b" / "last.pt"),
    )
    assert ca["scheduler"]["warmup"] == cb["scheduler"]["warmup"]
    assert torch.equal(ca["rng"]["sampler"], cb["rng"]["sampler"])


def test_latest_checkpoint_and_bad_files(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    train(
        tiny_config(epochs=3, output_every=2),
        checkpoint_dir=run / "checkpoints",
        data=data,
        evaluate_at_end=False,
    )
    latest = latest_checkpoint(run)
    assert latest is not None and load_checkpoint(latest)["epoch"] == 3
    assert latest_checkpoint(tmp_path / "nothing") is None
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="Rhea checkpoint"):
        load_checkpoint(junk)
    torch.save({"state": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(RunError, match="not a Rhea checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_learned_task_weights_train(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    config = tiny_config(epochs=2, task_weighting="learned", epoch_num_samples=1024)
    train(config, callbacks=rec, checkpoint_dir=tmp_path, data=data, evaluate_at_end=False)
    metrics = rec.epochs[-1][1]
    assert np.isfinite(metrics["test_loss"])
    weights = [
        metrics[f"weight_{t}"] for t in ("stability", "ndens", "fluxmag", "direction", "growthrate")
    ]
    assert all(w > 0 for w in weights) and any(w != 1.0 for w in weights)


def test_pcgrad_backward_assembles_the_projected_gradient() -> None:
    """Hand-computed: g1 = (1, 0 | 0), g2 = (-1, 1 | 2) over w (2 values) and b; c unused.
    g1.g2 = -1 < 0, so g1' = g1 + g2/6 = (5/6, 1/6 | 1/3) and g2' = g2 + g1 = (0, 1 | 2):
    w gets (5/6, 7/6), b gets 7/3 (plain backward would give (0, 1) and 2), c gets 0."""
    w = torch.zeros(2, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    c = torch.zeros(1, requires_grad=True)
    first = w @ torch.tensor([1.0, 0.0])
    second = w @ torch.tensor([-1.0, 1.0]) + 2.0 * b.sum()
    L.pcgrad_backward([first, second], [w, b, c], [[1], [0]])
    assert torch.allclose(w.grad, torch.tensor([5 / 6, 7 / 6]))
    assert torch.allclose(b.grad, torch.tensor([7 / 3]))
    assert torch.equal(c.grad, torch.zeros(1))


def test_pcgrad_training_step_uses_the_projected_gradient(data) -> None:  # type: ignore[no-untyped-def]
    """Two active tasks (the order of projection is then fixed): the step's gradient is the
    PCGrad combination computed here by hand from the two task gradients, not their sum."""
    silent = {f"loss_multiplier_{t}": 0.0 for t in ("stable", "ndens", "fluxmag")}
    config = tiny_config(task_weighting="pcgrad", do_unphysical_check=False, **silent)
    trainer = Trainer(config, data, torch.device("cpu"))
    independent = copy.deepcopy(trainer)
    asym, stab = data.asym_train.rows[:256], data.stab_train.rows[:256]
    trainer.step(asym, stab)
    params = list(independent.model.parameters())
    values = independent.batch_losses(asym, stab)[1].values
    g1, g2 = (
        torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(
                    torch.autograd.grad(
                        values[TASKS.index(t)], params, retain_graph=True, allow_unused=True
                    ),
                    params,
                    strict=True,
                )
            ]
        )
        for t in ("direction", "growthrate")
    )
    dot = torch.dot(g1, g2)
    assert dot < 0  # the tasks conflict, so the projection changes the gradient
    expected = (g1 - dot / g2.square().sum() * g2) + (g2 - dot / g1.square().sum() * g1)
    step_grad = torch.cat([p.grad.reshape(-1) for p in trainer.model.parameters()])
    assert torch.allclose(step_grad, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(step_grad, g1 + g2, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "changes", [{"learning_rate": 1e30, "optimizer": "sgd"}, {"loss_multiplier_ndens": 1e39}]
)
def test_divergence_names_epoch_and_task(tmp_path: Path, data, changes: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    with pytest.raises(DivergedError) as info:
        train(tiny_config(epochs=3, **changes), callbacks=rec, checkpoint_dir=tmp_path, data=data)
    assert info.value.epoch == 1 and info.value.task in TASKS
    assert "epoch 1" in info.value.message and info.value.task in info.value.message
    assert rec.epochs == []  # nothing non-finite was reported as an epoch
    assert not (tmp_path / "best.pt").exists()


def test_should_stop_writes_stop_checkpoint_of_last_finished_epoch(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    calls = {"n": 0}
    batches_per_epoch = 2048 // 256

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > batches_per_epoch + 3  # mid-way through epoch 2

    result = train(
        tiny_config(epochs=5, output_every=10),
        callbacks=rec,
        checkpoint_dir=tmp_path,
        data=data,
        should_stop=should_stop,
    )
    assert result.stopped and result.epochs_completed == 1
    assert rec.checkpoints[-1][2] == "stop" and rec.checkpoints[-1][0] == 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert rec.evaluation == {}


def test_epoch_sampling_weights_files_equally() -> None:
    from rhea_engine.train_data import Packed

    rows = torch.arange(1100, dtype=torch.float32)[:, None]
    packed = Packed(rows, torch.tensor([0, 1000]), torch.tensor([1000, 100]))
    gen = torch.Generator().manual_seed(0)
    idx = epoch_indices(packed, 20000, gen)
    from_small = (idx >= 1000).float().mean()
    assert abs(float(from_small) - 0.5) < 0.02
    assert int(idx.min()) >= 0 and int(idx.max()) < 1100
    assert len(torch.unique(idx[idx >= 1000])) == 100


def test_device_errors(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(DeviceError):
        train(tiny_config(device="cuda:0"), checkpoint_dir=tmp_path, data=data)


def test_data_errors(tmp_path: Path) -> None:
    a_path, s_path = write_h5_sets(tmp_path / "data", n=400)
    with pytest.raises(DataError, match="does not exist"):
        load_training_data(
            tiny_config(
                database_list=(str(tmp_path / "missing.h5"),), stable_database_list=(str(s_path),)
            )
        )
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(DataError):
        load_training_data(
            tiny_config(database_list=(str(bad),), stable_database_list=(str(s_path),))
        )
    with pytest.raises(DataError):  # a stability file where an asymptotic one belongs
        load_training_data(
            tiny_config(database_list=(str(s_path),), stable_database_list=(str(s_path),))
        )
    with pytest.raises(DataError, match="No asymptotic"):
        load_training_data(tiny_config())
    loaded = load_training_data(
        tiny_config(database_list=(str(a_path),), stable_database_list=(str(s_path),))
    )
    assert loaded.asym_train.n + loaded.asym_test.n > 0
    assert {f["kind"] for f in loaded.files} == {"asymptotic", "stable"}
    assert all(len(f["sha256"]) == 64 for f in loaded.files)


def test_subsampling_options(tmp_path: Path) -> None:
    a_path, s_path = write_h5_sets(tmp_path / "data", n=600)
    files = {"database_list": (str(a_path),), "stable_database_list": (str(s_path), str(s_path))}
    plain = load_training_data(tiny_config(**files))
    assert plain.stab_train.n + plain.stab_test.n == 1200  # the 600-row file, listed twice
    small = load_training_data(tiny_config(samples_per_database=100, **files))
    assert small.asym_train.n + small.asym_test.n == 100
    assert small.stab_train.n + small.stab_test.n == 200 and small.stab_train.lengths.tolist() == [
        80,
        80,
    ]
    drawn = load_training_data(tiny_config(random_samples_per_database=50, **files))
    assert drawn.asym_train.n + drawn.asym_test.n == 50


def test_augmentation_appends_the_mu_tau_swapped_training_rows(tmp_path: Path) -> None:
    """Every training row whose mu and tau differ gets one copy with them swapped (and only
    those rows: the others would be duplicates); the test split is left alone."""
    from rhea_engine.data import write_asymptotic, write_stable
    from rhea_engine.physics import box3d
    from rhea_engine.train_data import pack_asymptotic, pack_stability

    F4 = random_F4(600, seed=5)
    F4[1::2, :3, :, 2] *= -1  # tau's flux reversed on odd rows: mu and tau differ there
    box = box3d(F4)
    flux_factor = np.linalg.norm(box.F4_final[:, :3], axis=1) / box.F4_final[:, 3]
    keep = box.unstable & (flux_factor.max(axis=(1, 2)) <= 1.0)  # a few mixed past |F| = N
    asym = (F4[keep], box.F4_final[keep], box.growth_rate[keep])
    stable = (F4, (~box.unstable).astype(np.float64))
    write_asymptotic(tmp_path / "a.h5", *asym)
    write_stable(tmp_path / "s.h5", *stable)
    files = {
        "database_list": (str(tmp_path / "a.h5"),),
        "stable_database_list": (str(tmp_path / "s.h5"),),
    }
    plain = load_training_data(tiny_config(**files))
    augmented = load_training_data(tiny_config(do_augment_permutation=True, **files))
    assert augmented.asym_test.n == plain.asym_test.n
    assert augmented.stab_test.n == plain.stab_test.n

    def rows(packed) -> list[bytes]:  # type: ignore[no-untyped-def]
        return [row.tobytes() for row in packed.rows.numpy()]

    def swapped(a: np.ndarray) -> np.ndarray:
        return a[..., [0, 2, 1]]

    raw_asym = pack_asymptotic([asym], plain.layout)
    swapped_asym = pack_asymptotic([(swapped(asym[0]), swapped(asym[1]), asym[2])], plain.layout)
    raw_stab = pack_stability([stable], plain.layout)
    swapped_stab = pack_stability([(swapped(stable[0]), stable[1])], plain.layout)
    mu_tau_differ = {
        "asym": np.any(asym[0][..., 1] != asym[0][..., 2], axis=(1, 2))
        | np.any(asym[1][..., 1] != asym[1][..., 2], axis=(1, 2)),
        "stab": np.any(stable[0][..., 1] != stable[0][..., 2], axis=(1, 2)),
    }
    for kind, raw, copies in (("asym", raw_asym, swapped_asym), ("stab", raw_stab, swapped_stab)):
        origin = {row: i for i, row in enumerate(rows(raw))}
        before, after = (
            rows(getattr(plain, f"{kind}_train")),
            rows(getattr(augmented, f"{kind}_train")),
        )
        changed = [origin[row] for row in before if mu_tau_differ[kind][origin[row]]]
        assert 0 < len(changed) < len(before)
        assert len(after) - len(before) == len(changed)
        assert after[: len(before)] == before
        assert after[len(before) :] == [rows(copies)[i] for i in changed]


def test_resume_with_a_different_network_is_a_clear_error(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    train(tiny_config(epochs=1), checkpoint_dir=tmp_path, data=data, evaluate_at_end=False)
    with pytest.raises(RunError, match="does not fit"):
        train(
            tiny_config(epochs=2, width_shared=24),
            checkpoint_dir=tmp_path,
            data=data,
            resume_from=tmp_path / "last.pt",
        )
