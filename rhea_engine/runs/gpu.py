"""GPU figures of a training process, read through NVIDIA's management library when present.

`nvidia-ml-py` (module `pynvml`, the `gpu` extra) is optional: without it, without a GPU,
or for a CPU run nothing is sampled and nothing fails. The worker records the figures as
`gpu` events (see `rundir`), so front ends read files, never the GPU. NVML numbers GPUs
physically whatever CUDA_VISIBLE_DEVICES says, so a torch device is mapped back first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from rhea_engine.errors import RheaError

Record = Callable[[list[dict[str, Any]]], None]


def physical_gpu(device: str, visible: str | None) -> int | str | None:
    """NVML's index (or UUID) of torch device `device` ('cuda', 'cuda:1') when the process
    sees CUDA_VISIBLE_DEVICES=`visible`; None for a CPU device or an index it cannot see."""
    if not device.startswith("cuda"):
        return None
    local = int(device.split(":", 1)[1]) if ":" in device else 0
    if visible is None or not visible.strip():
        return local
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if local >= len(entries):
        return None
    entry = entries[local]
    return int(entry) if entry.isdigit() else entry  # GPU-<uuid> (or a MIG id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GpuSampler:
    """One GPU's utilisation and memory, and the memory this process holds on it."""

    def __init__(self, nvml: Any, handle: Any, index: int | str, name: str) -> None:
        self.nvml, self.handle, self.index, self.name = nvml, handle, index, name

    @classmethod
    def open(cls, device: str, visible: str | None = None) -> GpuSampler | None:
        """A sampler for torch device `device`, or None when NVML or the GPU is not there."""
        if visible is None:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        target = physical_gpu(device, visible)
        if target is None:
            return None
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            if isinstance(target, int):
                handle = pynvml.nvmlDeviceGetHandleByIndex(target)
            else:
                handle = pynvml.nvmlDeviceGetHandleByUUID(target)
            name = _text(pynvml.nvmlDeviceGetName(handle))
        except Exception:  # noqa: BLE001 - NVMLError and its many subclasses: no figures
            return None
        return cls(pynvml, handle, target, name)

    def process_memory(self) -> float | None:
        """Bytes of GPU memory this process holds (None where NVML does not say)."""
        try:
            processes = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:  # noqa: BLE001
            return None
        for process in processes:
            if process.pid == os.getpid() and process.usedGpuMemory is not None:
                return float(process.usedGpuMemory)
        return None

    def sample(self) -> dict[str, Any] | None:
        """{index, name, utilization (%), memory_used, memory_total, process_memory (bytes)}."""
        try:
            utilization = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
            memory = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
        except Exception:  # noqa: BLE001 - a GPU that fell off the bus: no figures this time
            return None
        return {
            "index": self.index,
            "name": self.name,
            "utilization": float(utilization.gpu),
            "memory_used": float(memory.used),
            "memory_total": float(memory.total),
            "process_memory": self.process_memory(),
        }

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


class GpuMonitor(threading.Thread):
    """Samples the GPU every `seconds` and passes the figures to `record` until stopped."""

    def __init__(self, sampler: GpuSampler, record: Record, seconds: float) -> None:
        super().__init__(daemon=True, name="rhea-gpu")
        self.sampler, self.record, self.seconds = sampler, record, seconds
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while True:
                figures = self.sampler.sample()
                if figures is not None:
                    try:
                        self.record([figures])
                    except OSError:
                        pass  # a transient file-system error must not kill the run
                    except RheaError:
                        return  # the run has ended (its final status is written)
                if self.done.wait(self.seconds):
                    return
        finally:
            self.sampler.close()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5.0)


def start_monitor(device: str, record: Record, seconds: float) -> GpuMonitor | None:
    """Record GPU figures of torch device `device` every `seconds` (None: nothing to sample)."""
    sampler = GpuSampler.open(device)
    if sampler is None:
        return None
    monitor = GpuMonitor(sampler, record, seconds)
    monitor.start()
    return monitor
