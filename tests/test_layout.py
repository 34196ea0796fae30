"""The house rules of STYLE.md that a test can hold: who may import Hydra, and what the core imports."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for package in ("router", "forensics", "ui") for p in (ROOT / package).rglob("*.py"))


def imports(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m.group(1).split(".")[0] for m in re.finditer(r"^\s*(?:from|import)\s+([\w.]+)", text, re.MULTILINE)}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_builder_module_imports_hydra(path):
    if path == ROOT / "router" / "config.py":
        return
    assert not imports(path) & {"hydra", "omegaconf"}


@pytest.mark.parametrize("path", [p for p in SOURCES if p.is_relative_to(ROOT / "router")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_neither_ui_nor_forensics(path):
    assert not imports(path) & {"ui", "forensics", "gradio"}


@pytest.mark.parametrize("path", [p for p in SOURCES if p.is_relative_to(ROOT / "forensics")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_forensics_imports_no_ui(path):
    assert not imports(path) & {"ui", "gradio"}


def _package_graph(package: str) -> dict[str, set[str]]:
    """Module-level imports between the modules of one package (imports inside functions do not count)."""
    graph = {}
    for path in sorted((ROOT / package).glob("*.py")):
        text = path.read_text(encoding="utf-8")
        top = re.findall(rf"^(?:from|import)\s+{package}(?:\.(\w+)|\s+import\s+([\w, ]+))", text, re.MULTILINE)
        names = set()
        for sub, listed in top:
            names |= {sub} if sub else {n.strip() for n in listed.split(",")}
        graph[path.stem] = {n for n in names if (ROOT / package / f"{n}.py").exists()} - {path.stem}
    return graph


@pytest.mark.parametrize("package", ["router", "forensics", "ui"])
def test_no_import_cycles(package):
    graph = _package_graph(package)
    done: set[str] = set()

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"import cycle: {' -> '.join((*stack, node))}"
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, (*stack, node))
        done.add(node)

    for node in graph:
        visit(node, ())
