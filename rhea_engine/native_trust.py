"""Which AOTInductor packages a Rhea home may load: the ones it exported itself.

An AOTInductor package (.pt2) holds a shared library that is loaded (and so runs native code)
the moment the package is opened. `rhea export --format aoti` records the sha256 of every
package it writes in `<home>/native-code-exports.sha256` (the `sha256sum` format, one line
per package, appended); `rhea predict` opens a .pt2 only if its sha256 is listed there, or
when the user passes --trust-native-code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REGISTRY_FILE = "native-code-exports.sha256"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_export(home: str | Path, sha256: str, path: str | Path) -> None:
    """Add a package this home exported (one append: concurrent exports do not clash)."""
    line = f"{sha256}  {Path(path).resolve()}\n".replace("\r", " ")
    registry = Path(home) / REGISTRY_FILE
    fd = os.open(registry, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def exported_here(home: str | Path | None, sha256: str) -> bool:
    """Whether `home` recorded a package with this sha256."""
    if home is None:
        return False
    registry = Path(home) / REGISTRY_FILE
    try:
        lines = registry.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.split(maxsplit=1)[:1] == [sha256] for line in lines)
