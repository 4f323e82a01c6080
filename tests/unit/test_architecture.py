"""The import rules docs/ARCHITECTURE.md states, checked on the source: floors, no upward import, no cycle, size."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
FLOORS = {  # package -> floor; a module imports only from its own floor or below
    "orchestrator": 1, "orchestrator.train": 1,
    "orchestrator.node": 2,
    "orchestrator.spec": 3,
    "orchestrator.estimate": 4,
    "orchestrator.submit": 4,
    "orchestrator.data": 4,
    "orchestrator.observe": 5,
    "orchestrator.cli": 6, "orchestrator.__main__": 6,
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor(module: str) -> int:
    """The floor of a module: that of the longest package prefix named in FLOORS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in FLOORS:
            return FLOORS[".".join(parts[:end])]
    raise AssertionError(f"{module} is in no floor of docs/ARCHITECTURE.md")


def imported(module: str, top_level_only: bool = False) -> set[str]:
    """The toolkit modules ``module`` imports (lazy imports inside functions too, unless ``top_level_only``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names}
    return {m for m in found if m.split(".")[0] == "orchestrator" and m != module}


def test_every_module_is_on_a_floor_and_imports_nothing_above_it() -> None:
    upward = [f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})"
              for m in MODULES for d in sorted(imported(m)) if floor(d) > floor(m)]
    assert upward == []
    assert max(FLOORS.values()) <= 6


def test_there_is_no_import_cycle() -> None:
    graph = {m: imported(m) & MODULES.keys() for m in MODULES}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join(path + (module,))
        if module not in done:
            for dep in graph[module]:
                visit(dep, path + (module,))
            done.add(module)

    for module in graph:
        visit(module, ())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module: str) -> None:
    assert len(MODULES[module].read_text().splitlines()) <= MAX_LINES


def test_the_node_side_imports_only_the_standard_library_at_import_time() -> None:
    third_party = {f"{m}: {name}" for m in MODULES if floor(m) == FLOORS["orchestrator.node"]
                   for name in _top_level_imports(MODULES[m])
                   if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("orchestrator")}
    assert third_party == set()


def test_cli_verbs_do_not_import_each_other() -> None:
    helpers = {"orchestrator.cli.common", "orchestrator.cli.output"}
    verbs = {m for m in MODULES if m.startswith("orchestrator.cli.") and m not in helpers}
    assert {f"{m} imports {d}" for m in verbs for d in imported(m) & verbs} == set()


def _top_level_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__":
            names.append(node.module or "")
    return names


def test_status_loads_no_submit_side_library() -> None:
    # status runs in polling loops over huge sweeps: submitit, Jinja2, YAML, the estimator and torch stay unloaded
    probe = ("import sys, orchestrator.cli as c; c.main.get_command(None, 'status'); "
             "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('submitit', 'jinja2', 'yaml', 'torch', 'cloudpickle') or m.startswith(('orchestrator.estimate', "
             "'orchestrator.submit.render', 'orchestrator.submit.plan', 'orchestrator.spec.config')))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.stdout.split() == []


def test_every_verb_loads_and_help_lists_them() -> None:
    from orchestrator.cli import VERBS, main
    assert [main.get_command(None, v).name for v in VERBS] == [  # type: ignore[arg-type, union-attr]
        "profiles", "recipes", "validate", "estimate", "plan", "render", "submit", "preflight", "status", "logs",
        "cancel", "report", "compare", "data", "runsh"]

