"""The package's architecture, read from its imports (ast, not a process).

The serving wing (`pneumonia.serve`, what the app and the Space import) may use
the ground floor and itself only: never the training or report wings, nor
TensorFlow, Keras, scikit-learn, SciPy or Matplotlib, at module level or inside
a function. No module imports, directly or through others, itself.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "pneumonia"
FORBIDDEN_IN_SERVING = ("pneumonia.train", "pneumonia.report", "pneumonia.batch", "tensorflow", "keras", "sklearn", "scipy",
                        "matplotlib", "seaborn")
MAX_LINES = 250


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (absolute names; `from a import b`
    gives `a.b` when that is a module of ours, else `a`)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.add(full if (ROOT / Path(*full.split("."))).with_suffix(".py").is_file() else base)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def ours(names: set[str]) -> set[str]:
    out = set()
    for n in names:
        while n and n not in MODULES:
            n = n.rpartition(".")[0]
        if n:
            out.add(n)
    return out


GRAPH = {name: ours(imports(path)) - {name} for name, path in MODULES.items()}


def test_the_graph_sees_the_package():
    assert {"pneumonia.serve.predictor", "pneumonia.train.training", "pneumonia.report.evaluate",
            "pneumonia.config"} <= set(GRAPH)
    assert "pneumonia.serve.lung_view" in GRAPH["pneumonia.serve.predictor"]
    assert "pneumonia.train.model" in GRAPH["pneumonia.report.evaluate"]


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith("pneumonia.serve")])
def test_serving_imports_nothing_of_training_report_or_heavy_libraries(name):
    bad = sorted(i for i in imports(MODULES[name])
                 if any(i == f or i.startswith(f + ".") for f in FORBIDDEN_IN_SERVING))
    assert not bad, f"{name} imports {bad}"


def test_the_ground_floor_imports_no_wing():
    for name in MODULES:
        if name.count(".") == 1:  # pneumonia.config, pneumonia.calibration, ...
            wings = [i for i in GRAPH[name] if i.count(".") > 1]
            assert not wings, f"{name} imports {wings}"


def test_the_training_wing_imports_nothing_of_the_report_wing():
    """Data flows one way: training writes a folder, reporting reads it (the report
    wing may use training code; the training wing never reaches up into reporting)."""
    for name in MODULES:
        if name.startswith("pneumonia.train."):
            up = [i for i in GRAPH[name] if i.startswith("pneumonia.report")]
            assert not up, f"{name} imports {up}"


def test_the_archive_wing_uses_serving_only():
    """`python -m pneumonia.batch` answers as the app does: the serving wing and the
    ground floor, never training code; of reporting only the report on your labels (--labels)."""
    for name in MODULES:
        if name.startswith("pneumonia.batch"):
            others = [i for i in GRAPH[name] if i.startswith(("pneumonia.train", "pneumonia.report"))
                      and i != "pneumonia.report.archive"]   # --labels: the report on your data
            assert not others, f"{name} imports {others}"


def test_no_import_cycles():
    state: dict[str, int] = {}   # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_a_cycle_would_be_found():
    """The cycle check itself, on a graph with one."""
    global GRAPH
    saved = GRAPH
    GRAPH = {**saved, "pneumonia.config": saved["pneumonia.config"] | {"pneumonia.folder"}}
    try:
        with pytest.raises(pytest.fail.Exception, match="import cycle"):
            test_no_import_cycles()
    finally:
        GRAPH = saved


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_are_small_and_say_what_they_hold(name):
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{name}: {len(text.splitlines())} lines"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip(), f"{name} has no docstring"
