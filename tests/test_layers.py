"""The shape of the house, checked from the imports themselves (as test_project checks the declared
dependencies): each layer imports only the layers below it, no module imports itself back through a circle,
no private name crosses a module boundary, and hbkit's own imports sit at module level unless a comment names
them heavy."""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

REAL_ROOT = ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hbkit"
#: bottom to top; a module may import its own layer and the layers listed before it
LAYERS = ("core", "data", "encoders", "retrieval", "analysis", "train", "experiment", "app")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(name: str, path: Path):
    """(line, imported module, imported name or None, at module level) for every import of an hbkit module."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "hbkit" or mod.startswith("hbkit."):
                for a in node.names:
                    yield node.lineno, mod, a.name, id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("hbkit"):
                    yield node.lineno, a.name, None, id(node) in top


def _target(mod: str, name: str | None, modules: dict) -> str:
    """The module an import names: ``from hbkit.analysis import stats`` names hbkit.analysis.stats."""
    return f"{mod}.{name}" if name and f"{mod}.{name}" in modules else mod


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def _graph():
    modules = _modules()
    edges = defaultdict(set)
    rows = []
    for name, path in modules.items():
        for line, mod, imported, top in _imports(name, path):
            tgt = _target(mod, imported, modules)
            edges[name].add(tgt)
            rows.append((name, path, line, tgt, imported, top))
    return modules, edges, rows


def test_every_module_belongs_to_a_layer():
    modules = _modules()
    loose = sorted(m for m in modules if m != "hbkit" and _layer(m) is None)
    assert loose == [], f"modules outside the layers {LAYERS}: {loose}"


def test_no_import_from_a_higher_layer():
    _, _, rows = _graph()
    up = [f"{p.relative_to(ROOT)}:{line} ({LAYERS[_layer(src)]}) imports {tgt} ({LAYERS[_layer(tgt)]})"
          for src, p, line, tgt, _, _ in rows
          if src != "hbkit" and _layer(tgt) is not None and _layer(tgt) > _layer(src)]
    assert up == [], "\n".join(up)


def test_no_circle():
    modules, edges, _ = _graph()
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if n not in modules or n == m:
                continue
            if state.get(n) == "open":
                circles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m)
    assert circles == [], circles


def test_no_private_name_crosses_a_module():
    _, _, rows = _graph()
    private = [f"{p.relative_to(ROOT)}:{line} imports {tgt}.{imp}" for src, p, line, tgt, imp, _ in rows
               if imp and imp.startswith("_") and tgt != src]
    assert private == [], private


def test_hbkit_imports_sit_at_module_level_unless_heavy():
    """An import inside a function hides a dependency; it is allowed only where a comment on its line says why
    it is heavy (torch, transformers, faiss, umap, plotly behind it) or where the package's entry point stays
    light on purpose (``hbkit/__init__``)."""
    _, _, rows = _graph()
    hidden = []
    for src, p, line, tgt, imp, top in rows:
        if top or src == "hbkit":
            continue
        text = p.read_text().splitlines()[line - 1]
        if "heavy" not in text:
            hidden.append(f"{p.relative_to(ROOT)}:{line}: {text.strip()}")
    assert hidden == [], "\n".join(hidden)


def test_the_checks_see_a_violation(tmp_path):
    """The checks above are not vacuous: an upward import, a circle and a private import in a copy are caught."""
    import shutil
    copy = tmp_path / "hbkit"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "*.csv", "*.json", "*.md"))
    (copy / "core" / "bad.py").write_text("from hbkit.app.cli import main\nfrom hbkit.core.bad2 import _x\n")
    (copy / "core" / "bad2.py").write_text("from hbkit.core.bad import main\n_x = 1\n")
    globals()["ROOT"], globals()["PKG"] = tmp_path, copy
    try:
        _, edges, rows = _graph()
        assert any(src == "hbkit.core.bad" and _layer(tgt) == LAYERS.index("app") for src, _, _, tgt, _, _ in rows)
        assert "hbkit.core.bad2" in edges["hbkit.core.bad"] and "hbkit.core.bad" in edges["hbkit.core.bad2"]
        for check, needle in ((test_no_circle, "hbkit.core.bad"), (test_no_private_name_crosses_a_module, "_x")):
            with pytest.raises(AssertionError, match=needle):
                check()
    finally:
        globals()["ROOT"], globals()["PKG"] = REAL_ROOT, REAL_ROOT / "hbkit"
