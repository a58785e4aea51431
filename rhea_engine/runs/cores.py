"""CPU cores for local runs: each CPU worker's share of the cores, its threads and its affinity.

Before the launcher starts a CPU worker it takes a share (`worker_share`): the pool (`--cpus
N`: the first N CPUs this process may use; by default all of them) is divided among the
home's running CPU workers of that pool and the new one, disjoint runs of cores while there
are enough. Workers already running are re-pinned to their new share, and when one ends the
others grow back (`rebalance`); a worker follows its share with its thread count
(`AffinityThreads`). The shares are recorded in <home>/cores.json under a file lock.

Each worker gets its thread count in the OpenMP/MKL variables and OMP_WAIT_POLICY=PASSIVE:
idle OpenMP threads sleep instead of spinning, so a run on a machine that other work keeps
busy slows down instead of collapsing. Such a run also starts with fewer threads, from the
load average. Slurm jobs take their threads from the allocation (`slurm_worker_env`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from rhea_engine.errors import ConfigError

LEDGER = "cores.json"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# set for a worker whose share the launcher may change: the most threads it may grow to
MAX_THREADS_VARIABLE = "RHEA_MAX_THREADS"
WORKER_MODULE = "rhea_engine.runs.worker"


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def cpu_pool(cpus: int | None = None) -> list[int]:
    """The CPUs local runs may share: all usable ones, or the first `cpus` (`--cpus N`)."""
    usable = usable_cpus()
    if cpus is None:
        return usable
    if cpus < 1:
        raise ConfigError(f"--cpus must be at least 1; got {cpus}.")
    if cpus > len(usable):
        raise ConfigError(
            f"--cpus {cpus} asks for more cores than Rhea may use here: {len(usable)} "
            f"(CPUs {', '.join(map(str, usable))}). Give at most {len(usable)}, or leave "
            "--cpus out to use them all."
        )
    return usable[:cpus]


def divide(pool: list[int], n: int) -> list[list[int]]:
    """`pool` cut into `n` shares: runs of consecutive CPUs as equal as can be; with more
    shares than CPUs, single CPUs handed out round-robin."""
    if n <= 0:
        return []
    if n <= len(pool):
        base, extra = divmod(len(pool), n)
        shares, start = [], 0
        for i in range(n):
            size = base + (1 if i < extra else 0)
            shares.append(pool[start : start + size])
            start += size
        return shares
    return [[pool[i % len(pool)]] for i in range(n)]


def threads_for(share: list[int], pool: list[int], busy: float) -> int:
    """Threads for a share: one per CPU, less the share's part of the cores that other
    work keeps `busy`; at least one."""
    others = busy * len(share) / max(len(pool), 1)
    return max(1, min(len(share), math.floor(len(share) - others + 0.5)))


def busy_cores(own_threads: int) -> float:
    """Cores kept busy by work other than this home's workers (1-minute load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load - own_threads)


def worker_env(threads: int, max_threads: int | None = None) -> dict[str, str]:
    """Environment of a worker with `threads` threads (that may grow to `max_threads`)."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    if max_threads is not None:
        env[MAX_THREADS_VARIABLE] = str(max_threads)
    return env


def slurm_worker_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A Slurm job's worker: one thread per CPU of the allocation (--cpus-per-task)."""
    try:
        cpus = int(environ.get("SLURM_CPUS_PER_TASK", ""))
    except ValueError:  # no --cpus-per-task: Slurm gives a task one CPU
        cpus = 1
    return worker_env(max(cpus, 1))


def _inherited_cap(environ: Mapping[str, str]) -> int | None:
    """A thread count the user set for every program (OMP_NUM_THREADS) caps a worker's."""
    try:
        value = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def runs_on_cpu(config: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """Whether a run with this config trains on the CPU (`auto` without a visible GPU)."""
    device = str(config.get("device", "auto"))
    if device == "cpu":
        return True
    if device != "auto":
        return False
    visible = env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is not None and visible.strip() in ("", "-1"):
        return True
    return not Path("/dev/nvidia0").exists()


def pin(pid: int, cpus: list[int]) -> None:
    """Set the affinity of every thread of `pid` (new threads inherit it); gone is fine."""
    if not hasattr(os, "sched_setaffinity"):
        return
    import psutil

    try:
        tids = [thread.id for thread in psutil.Process(pid).threads()]
    except psutil.Error:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # the thread ended, or the CPU set is not allowed to it
            pass


def worker_alive(pid: int) -> bool:
    """A live Rhea worker has this pid (not a zombie, not a reused pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        return WORKER_MODULE in process.cmdline()
    except psutil.Error:  # gone, or another user's process: not ours
        return False


@dataclass
class Share:
    """One CPU worker's part of a pool."""

    pid: int
    cpus: list[int]
    threads: int
    pool: list[int]
    max_threads: int = 0

    def env(self) -> dict[str, str]:
        return worker_env(self.threads, self.max_threads)


@dataclass
class Reservation:
    """A share held for a worker about to start; `started(pid)` records it."""

    share: Share | None
    env: dict[str, str] = field(default_factory=dict)

    def started(self, pid: int) -> None:
        if self.share is not None:
            self.share.pid = pid
            pin(pid, self.share.cpus)


def _read(home: Path) -> list[Share]:
    try:
        entries = json.loads((home / LEDGER).read_text())["workers"]
        return [Share(**entry) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no ledger yet, or an unreadable one: start afresh


def _write(home: Path, shares: list[Share]) -> None:
    path = home / LEDGER
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"workers": [asdict(s) for s in shares]}, indent=1))
    os.replace(tmp, path)


def _respread(shares: list[Share], pool: list[int], extra: int = 0) -> list[list[int]]:
    """Divide `pool` among `shares` (+ `extra` new ones); re-pin the shares that changed."""
    plan = divide(pool, len(shares) + extra)
    for share, cpus in zip(shares, plan, strict=False):
        if share.cpus != cpus:
            # what the worker's AffinityThreads will do
            if len(cpus) > len(share.cpus):
                share.threads = min(len(cpus), share.max_threads or len(cpus))
            else:
                share.threads = min(share.threads, len(cpus))
            share.cpus = cpus
            pin(share.pid, cpus)
    return plan[len(shares) :]


@contextmanager
def worker_share(
    home: Path,
    config: Mapping[str, Any],
    cpus: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Reservation]:
    """Hold a share of the pool for a worker the caller starts inside the block.

    Call `reservation.started(pid)` once the process exists; give the worker
    `reservation.env`. A run on a GPU gets no share (an empty environment).
    """
    pool = cpu_pool(cpus)
    if not runs_on_cpu(config, env or {}):
        yield Reservation(None)
        return
    with FileLock(str(home / LEDGER) + ".lock", timeout=30):
        shares = [s for s in _read(home) if worker_alive(s.pid)]
        same = [s for s in shares if s.pool == pool]
        busy = busy_cores(sum(s.threads for s in shares))
        cap = _inherited_cap(os.environ) or len(pool)
        configured = int(config.get("num_threads") or 0)
        cpus_new = _respread(same, pool, extra=1)[0]
        threads = configured or min(threads_for(cpus_new, pool, busy), cap)
        share = Share(0, cpus_new, threads, pool, max_threads=configured or cap)
        reservation = Reservation(share, share.env())
        try:
            yield reservation
        finally:
            kept = shares + ([share] if share.pid else [])
            if not share.pid:
                _respread(same, pool)  # the worker did not start: give the cores back
            _write(home, kept)


def rebalance(home: Path) -> None:
    """After a worker ended: divide each pool again among the workers still running."""
    if not (home / LEDGER).exists():
        return
    with FileLock(str(home / LEDGER) + ".lock", timeout=30):
        shares = [s for s in _read(home) if worker_alive(s.pid)]
        pools: dict[tuple[int, ...], list[Share]] = {}
        for share in shares:
            pools.setdefault(tuple(share.pool), []).append(share)
        for pool, members in pools.items():
            _respread(members, list(pool))
        _write(home, shares)


class AffinityThreads:
    """Keeps torch's thread count on the share of a worker that the launcher re-pins."""

    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self.cpus = len(usable_cpus())

    @classmethod
    def if_managed(cls, environ: Mapping[str, str] = os.environ) -> AffinityThreads | None:
        """One for a worker the launcher started with a share (None otherwise)."""
        try:
            return cls(int(environ[MAX_THREADS_VARIABLE]))
        except (KeyError, ValueError):
            return None

    def update(self) -> None:
        """Grow to a grown share (up to `max_threads`); shrink to a shrunk one."""
        cpus = len(usable_cpus())
        if cpus == self.cpus:
            return
        import torch

        current = torch.get_num_threads()
        threads = min(cpus, self.max_threads) if cpus > self.cpus else min(current, cpus)
        if threads != current:
            torch.set_num_threads(threads)
        self.cpus = cpus
