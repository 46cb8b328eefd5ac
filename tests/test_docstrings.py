"""Every Sphinx-style reference in hbkit's docstrings (``:func:``, ``:class:``, ``:mod:``, ``:meth:``,
``:data:``, ``:attr:``, ``:exc:``) names an object that exists, so a moved or renamed function cannot leave a
docstring pointing at nothing. A reference resolves as a dotted import path, else inside the module that holds
the docstring, else inside the class that holds it."""
import importlib
import inspect
import pkgutil
import re

import pytest

import hbkit

ROLE = re.compile(r":(func|class|mod|meth|data|attr|exc):`~?([^`<]+?)`")


def _docstrings(module):
    """(owner, docstring) of the module, and of each class, method, property and function defined in it."""
    yield module, module.__doc__ or ""
    for obj in vars(module).values():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            yield obj, obj.__doc__ or ""
            for member in vars(obj).values():
                f = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if callable(f):
                    yield obj, f.__doc__ or ""
        elif inspect.isfunction(obj):
            yield obj, obj.__doc__ or ""


def _walk(obj, parts):
    for p in parts:
        obj = getattr(obj, p)
    return obj


def resolves(target: str, module, owner) -> bool:
    parts = target.strip().removesuffix("()").split(".")
    for i in range(len(parts), 0, -1):   # the longest importable prefix, then attributes
        try:
            head = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            _walk(head, parts[i:])
            return True
        except AttributeError:
            break
    for scope in (module, owner if inspect.isclass(owner) else None):
        if scope is None:
            continue
        try:
            _walk(scope, parts)
            return True
        except AttributeError:
            pass
    return False


def references():
    for info in pkgutil.walk_packages(hbkit.__path__, "hbkit."):
        module = importlib.import_module(info.name)
        for owner, doc in _docstrings(module):
            for role, target in ROLE.findall(doc):
                yield info.name, owner, role, target


def test_every_docstring_reference_resolves():
    found = list(references())
    assert len(found) > 100, "the walk found almost no references: the pattern or the walk is broken"
    broken = sorted({f"{name}: :{role}:`{target}`" for name, owner, role, target in found
                     if not resolves(target, importlib.import_module(name), owner)})
    assert not broken, "docstring references that name nothing:\n" + "\n".join(broken)


@pytest.mark.parametrize("target, ok", [("hbkit.retrieval.faiss_search.search", True), ("search", False),
                                        ("hbkit.analysis.stats.no_such_function", False),
                                        ("hbkit.no_such_module.f", False), ("stage_data", True)])
def test_the_resolver_tells_a_real_name_from_a_missing_one(target, ok):
    import hbkit.experiment.stages as stages

    assert resolves(target, stages, None) is ok


def test_every_exported_function_says_its_arguments_result_and_use():
    """The functions ``hbkit`` exports (what users call) document Args (if they take any), Returns and an Example."""
    lacking = []
    for name in dir(hbkit):
        obj = getattr(hbkit, name)
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        needed = ("Args:", "Returns:", "Example") if inspect.signature(obj).parameters else ("Returns:", "Example")
        missing = [k for k in needed if k not in doc]
        if missing:
            lacking.append(f"hbkit.{name}: {', '.join(missing)}")
    assert not lacking, "\n".join(lacking)
