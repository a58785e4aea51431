"""Cores for local runs: shares, threads, affinity, and real workers sharing the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rhea_engine.errors import ConfigError
from rhea_engine.runs import cores, launch
from rhea_engine.runs.store import Store

TWO_CPUS = pytest.mark.skipif(len(cores.usable_cpus()) < 2, reason="needs at least two usable CPUs")


def test_divide_gives_disjoint_runs_of_cores_then_shares_single_ones() -> None:
    assert cores.divide([0, 1], 1) == [[0, 1]]
    assert cores.divide([0, 1], 2) == [[0], [1]]
    assert cores.divide([0, 1, 2, 3, 4, 5], 4) == [[0, 1], [2, 3], [4], [5]]
    assert cores.divide([4, 5], 3) == [[4], [5], [4]]  # more runs than cores: one core each
    assert cores.divide([0, 1], 0) == []


def test_threads_for_a_share_leave_the_busy_cores_to_others() -> None:
    assert cores.threads_for([0, 1], [0, 1], busy=0.0) == 2
    assert cores.threads_for([0, 1], [0, 1], busy=0.4) == 2
    assert cores.threads_for([0, 1], [0, 1], busy=1.0) == 1  # a lone run on a busy machine
    assert cores.threads_for([0, 1], [0, 1], busy=9.0) == 1  # never fewer than one
    assert cores.threads_for([2, 3], [0, 1, 2, 3], busy=2.0) == 1


def test_cpu_pool_and_its_errors() -> None:
    usable = cores.usable_cpus()
    assert cores.cpu_pool() == usable and cores.cpu_pool(1) == usable[:1]
    with pytest.raises(ConfigError, match="at least 1"):
        cores.cpu_pool(0)
    with pytest.raises(ConfigError, match=f"at most {len(usable)}"):
        cores.cpu_pool(len(usable) + 1)


def test_worker_environments() -> None:
    env = cores.worker_env(3, 4)
    assert {env[v] for v in cores.THREAD_VARIABLES} == {"3"}
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env[cores.MAX_THREADS_VARIABLE] == "4"
    slurm = cores.slurm_worker_env({"SLURM_CPUS_PER_TASK": "6"})
    assert slurm["OMP_NUM_THREADS"] == "6" and cores.MAX_THREADS_VARIABLE not in slurm
    assert cores.slurm_worker_env({})["OMP_NUM_THREADS"] == "1"  # Slurm's default: one CPU
    assert cores.runs_on_cpu({"device": "cpu"}, {})
    assert not cores.runs_on_cpu({"device": "cuda:0"}, {})
    assert cores.runs_on_cpu({"device": "auto"}, {"CUDA_VISIBLE_DEVICES": ""})


@TWO_CPUS
def test_affinity_threads_follow_the_share() -> None:
    before_cpus, before_threads = os.sched_getaffinity(0), torch.get_num_threads()
    pool = sorted(before_cpus)[:2]
    try:
        os.sched_setaffinity(0, pool)
        torch.set_num_threads(2)
        follower = cores.AffinityThreads(max_threads=2)
        os.sched_setaffinity(0, pool[:1])
        follower.update()
        assert torch.get_num_threads() == 1
        os.sched_setaffinity(0, pool)
        follower.update()
        assert torch.get_num_threads() == 2
        assert cores.AffinityThreads.if_managed({}) is None
    finally:
        os.sched_setaffinity(0, before_cpus)
        torch.set_num_threads(before_threads)


def _affinity(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in raw if b"=" in e)


@TWO_CPUS
def test_two_real_workers_share_the_cores_and_the_survivor_takes_them_back(
    rhea_home: Path, tiny_data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool of two CPUs: a lone worker gets both; a second one splits them (the first is
    re-pinned); when the first ends, the second gets both back. Threads: one per CPU of the
    share, passive waiting."""
    from rhea_engine.config import resolve

    monkeypatch.delenv("OMP_NUM_THREADS")  # no cap inherited from the test session
    store = Store(rhea_home)
    config = resolve(
        sets=["epochs=10000", "epoch_num_samples=512", "batch_size=256", "output_every=10000"],
        base={
            "database_list": [str(tiny_data[0])],
            "stable_database_list": [str(tiny_data[1])],
            "device": "cpu",
        },
    )
    pool = cores.cpu_pool(2)
    first = store.create_run(config.to_dict(), name="first")
    second = store.create_run(config.to_dict(), name="second")
    a = launch.start_worker(store, first.name, cpus=2)
    b = None
    try:
        assert _affinity(a.pid) == set(pool)
        env = _environ(a.pid)
        assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env[cores.MAX_THREADS_VARIABLE] == "2"
        assert env["OMP_NUM_THREADS"] in ("1", "2")  # 1 when the machine is busy
        b = launch.start_worker(store, second.name, cpus=2)
        assert _affinity(a.pid) | _affinity(b.pid) == set(pool)
        assert len(_affinity(a.pid)) == len(_affinity(b.pid)) == 1
        assert _affinity(a.pid) != _affinity(b.pid)
        assert _environ(b.pid)["OMP_NUM_THREADS"] == "1"
        a.terminate()
        a.wait(timeout=60)
        cores.rebalance(store.home)
        assert _affinity(b.pid) == set(pool)
        ledger = cores._read(store.home)
        assert [(s.pid, s.cpus, s.threads) for s in ledger] == [(b.pid, pool, 2)]
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
        store.close()


@TWO_CPUS
def test_a_worker_that_fails_to_start_gives_its_share_back(
    rhea_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(rhea_home)
    row = store.create_run({"device": "cpu"}, name="doomed")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no such interpreter")

    monkeypatch.setattr(launch.subprocess, "Popen", refuse)
    with pytest.raises(Exception, match="could not be started"):
        launch.start_worker(store, row.name)
    assert cores._read(store.home) == []
    store.close()


def test_gpu_runs_take_no_share(tmp_path: Path) -> None:
    with cores.worker_share(tmp_path, {"device": "cuda:0"}) as share:
        assert share.env == {} and share.share is None
        share.started(os.getpid())
    assert not (tmp_path / cores.LEDGER).exists()


def test_a_worker_on_its_share_trains_the_same_model_as_train_in_process(
    rhea_home: Path, tiny_data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--cpus 1: the worker runs on one pinned core, one thread, passive OpenMP; its losses
    are those of train() in this process (one thread too) on the same config."""
    from rhea_engine.config import resolve
    from rhea_engine.train import Callbacks, train

    monkeypatch.delenv("OMP_NUM_THREADS")
    config = resolve(
        sets=["epochs=2", "epoch_num_samples=1024", "batch_size=256", "compile=false"],
        base={
            "database_list": [str(tiny_data[0])],
            "stable_database_list": [str(tiny_data[1])],
            "device": "cpu",
        },
    )

    class Losses(Callbacks):
        def __init__(self) -> None:
            self.train_loss: list[float] = []

        def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
            self.train_loss.append(metrics["train_loss"])

    here = Losses()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, callbacks=here, checkpoint_dir=rhea_home / "here", evaluate_at_end=False)
    finally:
        torch.set_num_threads(threads)
    store = Store(rhea_home)
    try:
        row = store.create_run(config.to_dict(), name="shared")
        process = launch.start_worker(store, row.name, cpus=1)
        assert _environ(process.pid)["OMP_NUM_THREADS"] == "1"
        assert process.wait(timeout=300) == 0
        assert launch.wait_final(store, row.name, 60).status == "completed"
        worker = [value for _, value in store.metrics(row.name, ["train_loss"])["train_loss"]]
    finally:
        store.close()
    assert worker == pytest.approx(here.train_loss, rel=1e-5)
