"""A full file system, for real (a small tmpfs mounted for the test): the run fails cleanly.

Mounting needs root (CI runs as root); elsewhere these tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhea_engine.config import default_config
from rhea_engine.runs import launch
from rhea_engine.runs.rundir import RunWriter, read_events
from rhea_engine.runs.store import Store


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` on `folder` for the body (skip the test where that cannot be)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill it needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_checkpoint_on_a_full_disk_fails_the_run_and_leaves_no_partial_file(
    rhea_home: Path, tiny_data: tuple[Path, Path]
) -> None:
    asymptotic, stable = tiny_data
    config = default_config().replace(
        epochs=2,
        epoch_num_samples=500,
        batch_size=250,
        device="cpu",
        heartbeat_seconds=1.0,
        database_list=[str(asymptotic)],
        stable_database_list=[str(stable)],
        **{f"width_{h}": 128 for h in ("shared", "stability", "growthrate", "density", "flux")},
        **{f"nhidden_{h}": 2 for h in ("shared", "stability", "growthrate", "density", "flux")},
    )  # a checkpoint of ~3 MB, on a file system of 1 MB
    store = Store(rhea_home)
    row = store.create_run(config.to_dict(), name="full")
    assert row.path is not None
    files = {p.name: p.read_bytes() for p in row.path.iterdir() if p.is_file()}
    with small_tmpfs(row.path, "1m"):
        for name, content in files.items():  # the run directory, now on the small disk
            (row.path / name).write_bytes(content)
        process = launch.start_worker(store, "full")
        try:
            assert process.wait(timeout=300) == 2
        finally:
            if process.poll() is None:
                process.kill()
        final = launch.wait_final(store, "full", 30)
        assert final.status == "failed", (final.status, final.error)
        assert final.error is not None and f"No space left on {row.path}" in final.error
        assert f"(the file system mounted at {row.path})" in final.error
        assert final.traceback is None  # the message says it all
        assert not [p.name for p in row.path.rglob("*.tmp")]
        assert (row.path / "checkpoints").is_dir()
        from rhea_tui.cli import app

        shown = CliRunner().invoke(app, ["show", "full", "--home", str(rhea_home)])
        assert shown.exit_code == 0 and "Traceback" not in shown.output
        assert "No space left on" in " ".join(shown.output.split())
    store.close()


def test_an_event_line_cut_short_by_a_full_disk_never_swallows_the_next(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        writer = RunWriter(disk / "run")
        writer.log("started")  # the file's last page has room left
        filler = _fill(disk)
        with pytest.raises(OSError):
            writer.log("x" * 20_000)  # more than the page's remainder: written in part
        filler.unlink()
        writer.status("failed", error="No space left")
        writer.close()
        events = read_events(disk / "run").events
    assert [e["type"] for e in events] == ["log", "status"]
    assert events[-1]["status"] == "failed"


def test_a_script_checkpoint_copied_onto_a_full_disk_leaves_no_partial_file(
    tmp_path: Path,
) -> None:
    from rhea_engine.errors import DiskFullError
    from rhea_engine.tracking import start_run

    source = tmp_path / "model.pt"
    source.write_bytes(os.urandom(1 << 20))
    with small_tmpfs(tmp_path / "home", "256k") as home:
        with pytest.raises(DiskFullError) as info:
            with start_run(name="script", home=home, capture_output=False) as run:
                run.log(1, {"test_loss": 0.5})
                run.checkpoint(1, source)
        assert f"No space left on {home}" in info.value.message
        checkpoints = home / "runs" / "script" / "checkpoints"
        assert list(checkpoints.iterdir()) == []
        events = read_events(home / "runs" / "script").events
        assert events[-1]["type"] == "status" and events[-1]["status"] == "failed"
        assert "No space left on" in events[-1]["error"] and not events[-1].get("traceback")
