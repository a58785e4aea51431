"""A real (small) sweep with ASHA (Optuna's successive halving): the weak trial is stopped with a
checkpoint and marked pruned, and the sweep's study records it as pruned."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhea_engine.config import default_config
from rhea_engine.runs.store import Store
from rhea_engine.runs.supervise import Supervisor, SweepOptions


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from rhea_engine.data.synth import synth_to_dir

    folder = tmp_path_factory.mktemp("synth")
    synth_to_dir(folder, n=2000, seed=1)
    return str(folder / "asymptotic.h5"), str(folder / "stable.h5")


def test_asha_prunes_the_weak_trial(tmp_path: Path, data: tuple[str, str]) -> None:
    # epochs of about a second, so the supervisor sees rung 1 while trial 2 still runs
    base = default_config().replace(
        epochs=4,
        epoch_num_samples=30000,
        batch_size=500,
        warmup_iters=0,
        device="cpu",
        database_list=[data[0]],
        stable_database_list=[data[1]],
        heartbeat_seconds=1.0,
        width_shared=16,
        width_stability=8,
        width_growthrate=8,
        width_density=8,
        width_flux=8,
    )
    with Store(tmp_path) as store:
        store.create_sweep("asha", {})
        store.create_run(base.replace(learning_rate=3e-3), name="asha-1", sweep="asha")
        # a learning rate this small leaves the loss where it started: clearly the weaker trial
        store.create_run(base.replace(learning_rate=1e-9), name="asha-2", sweep="asha")
        options = SweepOptions(parallel=1, pruning={"kind": "asha", "min_epochs": 1, "eta": 2})
        supervisor = Supervisor(store, "asha", options, poll_s=0.2)
        rows = {r.name: r for r in supervisor.run()}
        assert supervisor.trials is not None and supervisor.trials.search is not None
        states = {t.user_attrs["run"]: t.state.name for t in supervisor.trials.search.study.trials}
        strong, weak = store.get_run("asha-1"), store.get_run("asha-2")
    assert rows["asha-1"].status == "completed" and strong.last_epoch == 4
    assert weak.status == "pruned", (weak.status, weak.error)
    assert "ASHA at epoch 1" in (weak.error or "")
    assert weak.last_epoch is not None and 1 <= weak.last_epoch < 4
    assert weak.checkpoints, "a pruned trial keeps its checkpoint"
    assert (weak.path / weak.checkpoints[-1]["path"]).is_file()
    assert states == {"asha-1": "COMPLETE", "asha-2": "PRUNED"}
    assert any("asha-2: pruned at epoch 1" in note for note in supervisor.notes)
