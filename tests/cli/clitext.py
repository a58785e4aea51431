"""Matching CLI output: rich panels drawn with box characters and wrapped lines."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path


def flat(text: str) -> str:
    """Panel text with the box drawing and line wrapping removed."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def answer_prompt(home: Path, args: list[str], answer: bytes) -> str:
    """Run the real `rhea` in a terminal, answer its question, return what it showed."""
    rhea_bin = Path(sys.executable).parent / "rhea"
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(rhea_bin), *args, "--home", str(home)], stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    while b"?" not in shown and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            shown += os.read(master, 4096)
    os.write(master, answer)
    process.wait(timeout=60)
    try:
        while select.select([master], [], [], 0.2)[0]:
            shown += os.read(master, 4096)
    except OSError:
        pass
    os.close(master)
    return shown.decode(errors="replace")
