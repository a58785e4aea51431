"""The TUI's import graph: no circle, screens and widgets never import the app, the state
model and the formats load without Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rhea_tui

PACKAGE = Path(rhea_tui.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """rhea_tui module -> the rhea_tui modules it imports anywhere (functions and
    TYPE_CHECKING blocks included: an import that only type checkers see is still a circle)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    edges.add(submodule if submodule in paths else base)
        graph[name] = {e for e in edges if e in paths and e != name and e != "rhea_tui"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_graph_sees_the_imports_it_must() -> None:
    graph = import_graph()
    assert "rhea_tui.screens.runs" in graph["rhea_tui.app"]  # a function-level import
    assert "rhea_tui.state" in graph["rhea_tui.screens.run"]
    assert "rhea_tui.actions" in graph["rhea_tui.screens.runs"]  # `from rhea_tui import actions`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_rhea_tui_has_no_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_screens_and_widgets_never_import_the_app() -> None:
    graph = import_graph()
    inside = [m for m in graph if m.startswith(("rhea_tui.screens", "rhea_tui.widgets"))]
    assert "rhea_tui.screens.runs" in inside and "rhea_tui.widgets.runs_table" in inside
    assert {m: "rhea_tui.app" for m in inside if "rhea_tui.app" in graph[m]} == {}


def test_state_live_actions_and_format_load_without_textual(home: Path) -> None:
    code = (
        "import sys\n"
        "from rhea_tui.state import TuiState\n"
        "import rhea_tui.actions, rhea_tui.format\n"
        f"state = TuiState({str(home)!r})\n"
        "state.refresh()\n"
        "state.close()\n"
        "print(len(state.runs), 'textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["6", "False"]
