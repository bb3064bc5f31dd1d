"""The house keeps its layers: stages import only the stages below them, and nothing imports in a
circle (imports inside functions and under ``TYPE_CHECKING`` count too)."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
STAGES = ["core", "settings", "inputs", "analysis", "relationships", "planning", "delivery"]


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return out


def test_no_import_cycle_in_crmkit():
    graph = grimp.build_graph("crmkit", cache_dir=None)
    assert len(graph.modules) > 40
    assert _cycles(graph) == []


def test_every_module_lives_in_a_stage():
    top = sorted(p.name for p in (ROOT / "lib" / "crmkit").iterdir()
                 if p.is_dir() and not p.name.startswith("__"))
    assert top == sorted([*STAGES, "demo"])


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")
def test_layers_contract_holds():
    done = subprocess.run([str(LINT_IMPORTS)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")
def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract is not vacuous: a settings module importing the runner fails it."""
    shutil.copytree(ROOT / "lib" / "crmkit", tmp_path / "crmkit",
                    ignore=shutil.ignore_patterns("__pycache__", "messages"))
    settings = tmp_path / "crmkit" / "settings" / "client.py"
    settings.write_text(settings.read_text(encoding="utf-8")
                        + "\n\ndef _upward():\n    from crmkit.delivery import runner  # noqa\n",
                        encoding="utf-8")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                       "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "crmkit.settings is not allowed to import crmkit.delivery" in done.stdout
