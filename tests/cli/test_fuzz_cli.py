"""Every CLI command, every parameter, a corpus of bad values: exit 2, no traceback, home intact.

The commands and their parameters are read from the Typer app itself, so a new command or
option is fuzzed as soon as it exists (it only needs a baseline in `baselines()`, which the
test demands). Each invocation gives one parameter one value of the corpus on top of a
baseline of good arguments. A bad value must end with exit status 2, a one-paragraph
message and no Python traceback, and leave the home exactly as it was: the same files with
the same sizes and the same number of rows in every table of runs.db. A value that is in
fact good for a parameter (`ACCEPTED`: an output file named in unicode, a seed at the top of
its range) must be accepted, again without touching the home. Commands run in-process
(Typer's CliRunner), each under a time limit, so that one that hangs on a huge number is
reported instead of stalling the suite.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from rhea_tui.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from export_fixtures import make_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from upstream_format import write_run  # noqa: E402

runner = CliRunner()

#: label -> value. Numbers at and past the 64-bit limits, non-finite floats, empty, unicode,
#: control characters, and paths or names that try to leave their folder.
CORPUS: dict[str, str] = {
    "int64 max": str(2**63 - 1),
    "2**63": str(2**63),
    "below int64": str(-(2**63) - 1),
    "huge": "9" * 30,
    "inf": "inf",
    "-inf": "-inf",
    "nan": "nan",
    "1e400": "1e400",
    "empty": "",
    "unicode": "ラン🚀",
    "newline": "run1\n",
    "escape": "\x1b[31mred",
    "tab": "a\tb",
    "traversal": "../../escape",
    "sweep traversal": "sweep:../../escape",
}

#: Seconds one invocation may take; past it the command counts as hung.
TIME_LIMIT = 20


@dataclass(frozen=True)
class Param:
    """One parameter of one command, as the fuzz sees it."""

    command: tuple[str, ...]
    name: str
    flag: str | None  # None for a positional argument
    position: int  # index among the positional arguments (-1 for an option)

    @property
    def id(self) -> str:
        return " ".join(self.command) + " " + (self.flag or self.name.upper())


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, click command) of every command of the app, sub-commands included."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), ())


def has_home(command: Any) -> bool:
    return any(p.name == "home" for p in command.params)


def params() -> list[Param]:
    """Every parameter that takes a value (flags take none; --home gets its own test)."""
    out = []
    for path, command in commands():
        position = 0
        for p in command.params:
            if getattr(p, "is_flag", False) or p.name == "home":
                continue
            if p.param_type_name == "argument":
                out.append(Param(path, p.name, None, position))
                position += 1
            else:
                out.append(Param(path, p.name, p.opts[0], -1))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A home with a completed run (checkpoints), a sweep, data files and an exported model."""
    from rhea_engine.data.synth import synth_to_dir
    from rhea_engine.export import export_run
    from rhea_engine.runs.store import Store

    root = tmp_path_factory.mktemp("fuzz")
    home = root / "home"
    home.mkdir()
    make_run(home, "tiny")
    with Store(home) as store:
        store.create_sweep("sw", {})
        store.create_run({}, name="sw-1", sweep="sw", status="completed")
    data = root / "data"
    synth_to_dir(data, n=300, seed=1)
    model = export_run(home, "tiny", output=root / "model.pt", cpu=True).path
    upstream = root / "upstream" / "lr_scan"
    write_run(upstream / "model_a", "main", 1e-4)
    # Deep enough that '../../escape' from here still lies inside root.
    cwd = root / "a" / "b" / "cwd"
    cwd.mkdir(parents=True)
    (root / "out").mkdir()
    result = runner.invoke(app, ["ls", "--home", str(home)])  # ingest before the snapshots
    assert result.exit_code == 0, result.output
    shutil.copytree(home, root / "pristine")
    return {
        "pristine": root / "pristine",
        "root": root,
        "home": home,
        "asymptotic": data / "asymptotic.h5",
        "stable": data / "stable.h5",
        "model": model,
        "upstream": upstream,
        "out": root / "out",
        "cwd": cwd,
    }


def baselines(w: dict[str, Path]) -> dict[tuple[str, ...], tuple[list[str], list[str]]]:
    """(positional arguments, options) of a good invocation of each command.

    The good invocation writes nothing into the home: `run` is the exception (it starts a
    run), which is why every value the fuzz gives `run` must be refused.
    """
    data = ["--data", str(w["asymptotic"]), "--stable-data", str(w["stable"])]
    out = w["out"]
    return {
        ("run",): ([], [*data, "--epochs", "1", "--width", "4", "--nhidden", "0", "--detach"]),
        ("ls",): ([], []),
        ("show",): (["tiny"], []),
        ("stop",): (["sw-1"], []),
        ("resume",): (["tiny"], []),
        ("rm",): (["tiny"], []),  # without --yes: it asks, and the runner answers nothing
        ("sweep",): ([], [*data, "--lr", "1e-3,1e-4", "--epochs", "1", "--dry-run"]),
        ("compare",): (["tiny"], ["--no-plots"]),
        ("import",): ([str(w["upstream"])], []),
        ("export",): (["tiny"], ["--cpu", "-o", str(out / "m.pt")]),
        ("predict",): ([str(w["model"])], ["--nsm1"]),
        ("plot",): (["tiny"], ["-o", str(out / "f.png")]),
        ("tui",): ([], []),
        ("data", "synth"): ([str(out / "synth")], ["--n", "50"]),
        ("data", "inspect"): ([str(w["asymptotic"])], []),
        ("db", "rebuild"): ([], []),
        ("tag",): (["tiny"], []),  # without names it prints the run's tags
    }


def invocation(param: Param, value: str, w: dict[str, Path], with_home: bool) -> list[str]:
    """The baseline of `param`'s command with `value` given to `param`."""
    positional, options = (list(a) for a in baselines(w)[param.command])
    if param.flag is None:
        if param.position < len(positional):
            positional[param.position] = value
        else:
            positional.append(value)
    elif param.flag in options:
        options[options.index(param.flag) + 1] = value
    else:
        options += [param.flag, value]
    home = ["--home", str(w["home"])] if with_home else []
    return [*param.command, *positional, *options, *home]


class Hung(Exception):
    """Raised in a command that ran past TIME_LIMIT."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hung(f"still running after {TIME_LIMIT} s")


_COMMAND = typer.main.get_command(app)


def invoke(args: list[str]) -> Any:
    """Run `rhea ARGS` in-process; a command past TIME_LIMIT is interrupted (Hung).

    The click command is built once: Typer would rebuild it from the app for every call,
    which is half the cost of a refused value.
    """
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(typer.testing, "_get_command", lambda _: _COMMAND)
            return runner.invoke(app, args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Values that are in fact good for a parameter, with the reason; the test asserts they are
# accepted (exit 0, no traceback) and that the home keeps every file and row it had.
NAME_LIKE = ("int64 max", "2**63", "huge", "inf", "nan", "1e400")  # letters, digits, dots
FILE_NAMES = tuple(label for label in CORPUS if label != "empty")
# A positional argument starting with '-' reads as an option (`--` before it makes it a name).
POSITIONAL_FILE_NAMES = tuple(label for label in FILE_NAMES if not CORPUS[label].startswith("-"))
BIG_INTS = ("int64 max", "2**63", "huge")


def _because(labels: tuple[str, ...], reason: str) -> dict[str, str]:
    return dict.fromkeys(labels, reason)


ACCEPTED: dict[str, dict[str, str]] = {
    "sweep --name": {
        **_because(NAME_LIKE, "letters, digits and dots make a valid sweep name"),
        "empty": "no name: the next free one (sweepN)",
    },
    "import --name": {
        **_because(NAME_LIKE, "letters, digits and dots make a valid sweep name"),
        "empty": "no name: the folder's",
    },
    "sweep --tag": _because(NAME_LIKE, "letters, digits and dots make a valid tag"),
    "tag NAMES": _because(NAME_LIKE, "letters, digits and dots make a valid tag"),
    "sweep --data": {"empty": "no data files: those of the config"},
    "sweep --stable-data": {"empty": "no stable data files: those of the config"},
    "sweep --search": {"empty": "no search: the default (grid)"},
    "sweep --gpus": {"empty": "no GPU list: trials run on the config's device"},
    "sweep --budget": {
        **_because(BIG_INTS, "a finite duration, however long, is a budget (kept as JSON)"),
        "empty": "no budget",
    },
    "sweep --max-epochs-total": _because(
        BIG_INTS, "a cap above what the sweep trains is no cap (kept as JSON, compared in Python)"
    ),
    "sweep --parallel": _because(
        BIG_INTS, "more slots than trials: this grid's two trials at once"
    ),
    "sweep --partition": {"empty": "no partition: not a Slurm sweep"},
    "sweep --time": {"empty": "no time limit: not a Slurm sweep"},
    "sweep --account": {"empty": "no account: not a Slurm sweep"},
    "plot --smooth": _because(BIG_INTS, "a window longer than a curve averages all of it"),
    "plot --color-by": {"empty": "no parameter: the sweep's first differing one"},
    "data synth --seed": {"int64 max": "the largest seed an HDF5 int64 attribute holds"},
    # Output paths: any file name is one the user may choose, also outside the current folder.
    "export -o": _because(FILE_NAMES, "a file name the user may choose"),
    "data synth DIRECTORY": {
        **_because(POSITIONAL_FILE_NAMES, "a folder name the user may choose"),
        "empty": "Path('') is the current folder",
    },
}

# Values that are good but cannot be tried here without side effects the test must not have.
EXCLUDED: dict[str, dict[str, str]] = {
    "run --lr": _because(
        BIG_INTS,
        "a positive finite learning rate is valid however large (the worker reports the "
        "divergence); accepting it starts a real training run",
    ),
    "run --name": _because(NAME_LIKE, "a valid run name; accepting it starts a real training run"),
    "run --tag": _because(NAME_LIKE, "a valid tag; accepting it starts a real training run"),
}


def snapshot(w: dict[str, Path]) -> tuple[dict[str, int], dict[str, int]]:
    """(file -> size under the test's root, -1 for a folder; table -> row count of runs.db)."""
    root = w["root"]
    files = {
        str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
        for p in sorted(root.rglob("*"))
        if not p.name.endswith(("-wal", "-shm")) and "pristine" not in p.parts
    }
    with sqlite3.connect(w["home"] / "runs.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    return files, counts


def restore(w: dict[str, Path], before: tuple[dict[str, int], dict[str, int]]) -> None:
    """Put the world back as it was: the home from its pristine copy, new files removed."""
    if snapshot(w) == before:
        return
    shutil.rmtree(w["home"])
    shutil.copytree(w["pristine"], w["home"])
    for path in sorted(w["root"].rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = str(path.relative_to(w["root"]))
        if "pristine" in path.parts or path.is_relative_to(w["home"]):
            continue
        if rel in before[0]:
            continue
        if path.is_dir():
            path.rmdir()  # deepest first: its contents are gone already
        else:
            path.unlink()


def one_paragraph(output: str) -> bool:
    """One error panel whose text has no blank line: the one-paragraph message."""
    if output.count("╭") != 1 or output.count("╰") != 1:
        return False
    body = output[output.index("╭") :].splitlines()[1:-1]
    text = [line.strip("│ ") for line in body]
    return bool(text) and all(text)


def check(param: Param, label: str, w: dict[str, Path], with_home: bool) -> str | None:
    """None if the command behaved; else what went wrong, for the report."""
    good = ACCEPTED.get(param.id, {}).get(label)
    before = snapshot(w)
    args = invocation(param, CORPUS[label], w, with_home)
    result = invoke(args)
    after = snapshot(w)
    restore(w, before)
    problems = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"{type(result.exception).__name__}: {result.exception}")
    elif "Traceback" in result.output:
        problems.append("a traceback")
    if good is None:
        if result.exit_code != 2:
            problems.append(f"exit {result.exit_code}, not 2")
        elif not one_paragraph(result.output):
            problems.append("no one-paragraph message")
        if after != before:
            problems.append("files or rows changed")
    else:
        if result.exit_code != 0:
            problems.append(f"exit {result.exit_code}, but the value is good ({good})")
        lost = {
            f
            for f, size in before[0].items()
            if f.startswith("home/") and f != "home/runs.db" and after[0].get(f) != size
        }
        fewer = {t for t, n in before[1].items() if after[1].get(t, 0) < n}
        if lost or fewer:
            problems.append(f"the home lost or changed {sorted(lost | fewer)}")
    if not problems:
        return None
    shown = " ".join(
        a if a.isprintable() and a else repr(a) for a in args[: len(args) - 2 * with_home]
    )
    return (
        f"[{label}] rhea {shown}: {'; '.join(problems)} | {' '.join(result.output.split())[:160]}"
    )


def test_every_command_has_a_baseline(world: dict[str, Path]) -> None:
    missing = [" ".join(path) for path, _ in commands() if path not in baselines(world)]
    assert not missing, f"add a baseline for {missing}"


def test_baselines_are_good(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each baseline (but run's, which starts a run, and tui's) succeeds: a bad value, not the
    rest of the command line, is what the fuzz's refusals are about. rm, stop and resume
    refuse their baseline on purpose (asked without --yes; a run that is not running; one
    that completed), so only that they exit 2 with a message is checked for them."""
    monkeypatch.chdir(world["cwd"])
    commands_of = dict(commands())
    for path, (positional, options) in baselines(world).items():
        if path in (("run",), ("tui",)):
            continue
        home = ["--home", str(world["home"])] if has_home(commands_of[path]) else []
        before = snapshot(world)
        result = invoke([*path, *positional, *options, *home])
        restore(world, before)
        expected = 2 if path in (("rm",), ("stop",), ("resume",)) else 0
        assert result.exit_code == expected, (path, result.output)


def test_fuzz_every_parameter(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world["cwd"])
    commands_of = dict(commands())
    for table in (ACCEPTED, EXCLUDED):  # no stale entries
        ids = {p.id for p in params()}
        assert set(table) <= ids, set(table) - ids
    failures = []
    for param in params():
        with_home = has_home(commands_of[param.command])
        for label in CORPUS:
            if label in EXCLUDED.get(param.id, {}):
                continue
            problem = check(param, label, world, with_home)
            if problem:
                failures.append(problem)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
