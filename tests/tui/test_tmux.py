"""`rhea tui` in a real terminal: tmux runs it, sends keys, and capture-pane reads the screen."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
_SCRIPT = Path(sys.executable).with_name("rhea")
RHEA = str(_SCRIPT) if _SCRIPT.exists() else f"{sys.executable} -m rhea_tui.cli"


class Tmux:
    """One tmux server on its own socket, so the test never touches the user's sessions."""

    def __init__(self, width: int, height: int, command: str, env: dict[str, str]) -> None:
        self.socket = f"rhea-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{key}={value}" for key, value in env.items())
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            str(width),
            "-y",
            str(height),
            f"env {exports} {command}",
        )

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui").stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "tui").returncode == 0

    def wait(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; last screen:\n{text}")
            time.sleep(0.1)

    def kill(self) -> None:
        self.tmux("kill-server")


@pytest.mark.parametrize("colors", ["256", "standard"])
def test_tui_in_tmux_shows_runs_and_plot_axes(home: Path, colors: str) -> None:
    env = {
        "RHEA_HOME": str(home),
        "TERM": "tmux-256color" if colors == "256" else "screen",
        "TEXTUAL_COLOR_SYSTEM": colors,
        "OMP_NUM_THREADS": "1",
        "PATH": os.environ.get("PATH", ""),
    }
    term = Tmux(100, 30, f"{RHEA} tui --home {home}", env)
    try:
        text = term.wait(lambda s: "broken" in s and "lr-c" in s)
        for name in ("base", "lr-a", "lr-b", "lr-c", "broken", "live"):
            assert name in text
        assert "FAILED" in text and "DIVERGED" in text and "running" in text
        term.keys("Down", "Down", "Enter")  # lr-b
        # The plots draw after the panel titles: wait for their y-axis tick labels too
        # (the wait fails with the last screen if they never appear).
        text = term.wait(
            lambda s: (
                "test loss per task" in s
                and " 40" in s
                and re.search(r"\d\.\d+[┤├│]", s) is not None
            )
        )
        assert "learning rate" in text and "ELN violation" in text
        assert "lr-b" in text.splitlines()[0]
        term.keys("Escape")
        term.wait(lambda s: "broken" in s)
        term.keys("q")
        deadline = time.monotonic() + 10
        while term.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.alive(), "q did not quit the TUI"
    finally:
        term.kill()


def test_tui_in_tmux_opens_an_empty_home(tmp_path: Path) -> None:
    """A folder with no runs opens with first steps (it was refused), and stays untouched."""
    home = tmp_path / "fresh"
    home.mkdir()
    env = {"TERM": "tmux-256color", "OMP_NUM_THREADS": "1", "PATH": os.environ.get("PATH", "")}
    term = Tmux(80, 24, f"{RHEA} tui --home {home}", env)
    try:
        text = term.wait(lambda s: "No runs in" in s and "Press n" in s)
        footer = [line for line in text.splitlines() if line.strip()][-1]
        assert footer.rstrip().endswith("q Quit"), footer  # whole at 80 columns
        term.keys("n")
        term.wait(lambda s: "New run" in s and "learning rate" in s)
        term.keys("Escape")
        term.wait(lambda s: "No runs in" in s)
        term.keys("q")
        deadline = time.monotonic() + 10
        while term.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.alive(), "q did not quit the TUI"
    finally:
        term.kill()
    assert list(home.iterdir()) == []
