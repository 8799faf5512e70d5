"""Sphinx extension: a warning (an error under ``-W``) for each public name without a docstring.

Public means: each module in :data:`PUBLIC_MODULES`, and every class or function it exports
(its ``__all__``, else its names without a leading underscore that it defines), with their
public methods and properties. Constants need no docstring. ``tests/test_docs.py`` runs the
same check without Sphinx.
"""

from __future__ import annotations

import importlib
import inspect

PUBLIC_MODULES = (
    "mlx_snn",
    "mlx_snn.functional",
    "mlx_snn.surrogate",
    "mlx_snn.encode",
    "mlx_snn.loss",
    "mlx_snn.models",
    "mlx_snn.data",
    "mlx_snn.training",
    "mlx_snn.backends",
)


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    ]


def _own_doc(obj) -> str:
    """A class's own docstring (not one inherited from a base class); else ``getdoc``."""
    if inspect.isclass(obj):
        return (vars(obj).get("__doc__") or "").strip()
    return (inspect.getdoc(obj) or "").strip()


def missing_docstrings(modules=PUBLIC_MODULES) -> list[str]:
    """Dotted names of public modules, classes, functions, methods and properties without one."""
    missing = []
    for modname in modules:
        module = importlib.import_module(modname)
        if not (module.__doc__ or "").strip():
            missing.append(modname)
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            if not _own_doc(obj):
                missing.append(f"{modname}.{name}")
            if not inspect.isclass(obj):
                continue
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    if not (inspect.getdoc(getattr(obj, attr, member)) or "").strip():
                        missing.append(f"{modname}.{name}.{attr}")
    return sorted(set(missing))


def check(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for name in missing_docstrings():
        logger.warning(f"public name without a docstring: {name}")


def setup(app):
    app.connect("builder-inited", check)
    return {"parallel_read_safe": True, "version": "1"}
