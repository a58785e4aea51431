"""A new user's first hour: the documents cited exist, README's examples and links hold, and
`make` says what it does, how long the demo takes and what to type next."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("rhea_engine", "rhea_tui", "tests", "benchmarks", "docs", "examples", "cpp_interface")


def _texts() -> dict[Path, str]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "Makefile", ROOT / "Dockerfile"]
    for folder in SOURCES:
        for pattern in ("*.py", "*.md", "*.h", "*.cpp", "*.txt"):
            files += (ROOT / folder).rglob(pattern)
    return {
        f: f.read_text(errors="replace") for f in files if f.is_file() and "build" not in f.parts
    }


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.MULTILINE)]


def test_every_cited_document_is_in_the_repository() -> None:
    """Code and docs cite docs/physics.md and docs/design.md, with sections that exist, and
    never a document the repository does not hold."""
    missing = []
    for path, text in _texts().items():
        for match in re.finditer(r"\b((?:docs/)?[A-Za-z]+\.md)(?: §(\d+))?", text):
            name, section = match.group(1), match.group(2)
            in_docs = path.parent.name == "docs" and not name.startswith("docs/")
            doc = path.parent / name if in_docs else ROOT / name
            where = f"{path.relative_to(ROOT)} cites {name}"
            if not doc.is_file():
                missing.append(where)
                continue
            if section and not any(h.startswith(f"{section}. ") for h in _headings(doc)):
                missing.append(f"{where} §{section}, which it does not have")
    assert not missing, missing


def test_markdown_links_resolve() -> None:
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"https?://", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (doc.parent / file) if file else doc
            if not resolved.exists():
                broken.append(f"{doc.name}: {target}")
            elif anchor and anchor not in {_slug(h) for h in _headings(resolved)}:
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken


def _everyday_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Everyday use", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_readme_first_commands_run_as_written() -> None:
    """rhea is put on the PATH first, and the first `rhea run` uses files an earlier line made."""
    lines = _everyday_block()
    first_rhea = next(i for i, line in enumerate(lines) if line.startswith("rhea "))
    assert any(line.startswith("source .venv/bin/activate") for line in lines[:first_rhea])
    first_run = next(i for i, line in enumerate(lines) if line.startswith("rhea run"))
    made = [line.split()[3] for line in lines[:first_run] if line.startswith("rhea data synth ")]
    data = re.findall(r"--(?:stable-)?data (\S+)", lines[first_run])
    assert data, lines[first_run]
    for path in data:
        assert any(path.startswith(folder.rstrip("/") + "/") for folder in made), path


def _make(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_install_says_what_it_does_and_takes_a_torch_index() -> None:
    steps = _make("-W", "pyproject.toml", "install")  # as if pyproject.toml had changed
    echoed = [line for line in steps.splitlines() if line.startswith("echo ")]
    assert any("torch" in line and "minutes" in line for line in echoed), steps
    assert any("source .venv/bin/activate" in line for line in echoed), steps
    cuda = "https://download.pytorch.org/whl/cu128"
    assert f"--index-url {cuda}" in _make("-W", "pyproject.toml", "install", f"TORCH_INDEX={cuda}")
    assert "--index-url" not in steps  # the default: pip's configured index
    readme = (ROOT / "README.md").read_text()
    assert f"make demo TORCH_INDEX={cuda}" in readme  # README's GPU example is not the default


def test_demo_says_how_long_it_takes_and_what_to_type_next() -> None:
    steps = _make("-o", ".venv/.installed", "demo").splitlines()  # the demo's own recipe
    first_rhea = next(i for i, line in enumerate(steps) if "rhea" in line and "echo" not in line)
    assert any("minutes" in line for line in steps[:first_rhea]), steps
    last = " ".join(steps[-3:])
    assert "source .venv/bin/activate" in last and "rhea tui" in last, steps
