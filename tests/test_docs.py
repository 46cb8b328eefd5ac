"""The docs site's sources stay true: the README is one screen whose links exist, and the API index names every
public name (``make docs`` builds the site itself with ``mkdocs build --strict`` in CI)."""
import re
from pathlib import Path

import hbkit

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_is_one_screen_and_its_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert len(links) >= 10
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_the_api_index_names_every_public_name_and_each_module_has_a_page():
    index = (ROOT / "docs" / "api" / "index.md").read_text()
    assert [n for n in hbkit.__all__ if f"`hbkit.{n}`" not in index] == []
    pages = "".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    documented = set(re.findall(r"^::: (\S+)$", pages, flags=re.M))
    modules = {m if isinstance(m, str) else m[0] for m in hbkit._EXPORTS.values()} - {"hbkit.app.widgets",
                                                                                        "hbkit.data.registry"}
    assert modules <= documented, sorted(modules - documented)


def test_every_dotted_name_the_docs_cite_exists():
    """```hbkit.a.b``` in a docs page or the README names a module, class or function that exists."""
    import importlib

    from tests.test_docstrings import resolves

    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    cited = {(p.name, m) for p in pages for m in re.findall(r"`(hbkit(?:\.\w+)+)(?:\(\))?`", p.read_text())}
    assert len(cited) > 20
    broken = sorted(f"{page}: {name}" for page, name in cited if not resolves(name, importlib.import_module("hbkit"), None))
    assert not broken, broken
