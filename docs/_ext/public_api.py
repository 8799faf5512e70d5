"""Sphinx extension: a warning (an error under ``-W``) for each public name without a docstring,
and for each public module, class or function that the API reference does not document.

Public means: each module in :data:`PUBLIC_MODULES`, and every class or function it exports
(its ``__all__``, else its names without a leading underscore that it defines), with their
public methods and properties. Constants need no docstring. ``tests/test_docs.py`` runs the
docstring check without Sphinx. The reference check runs when Sphinx has read every page: a
name counts as documented under its public path (``mlx_snn.functional.lif_sequence``) or,
for a class, under the path it is defined at, which autodoc records as the canonical name
(``mlx_snn.LIF`` documents ``mlx_snn.nn.lif.LIF``, and so ``mlx_snn.nn.LIF``).
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
    "mlx_snn.nn",
    "mlx_snn.functional.parallel_lif",
    "mlx_snn.monitor",
    "mlx_snn.nir",
    "mlx_snn.nir.layers",
    "mlx_snn.viz",
    "mlx_snn.distributed",
    "mlx_snn.kernels",
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


def _documented_as(modname: str, name: str, obj) -> set[str]:
    """The dotted names under which the reference may document ``obj``."""
    names = {f"{modname}.{name}"}
    if inspect.isclass(obj):
        names.add(f"{obj.__module__}.{obj.__qualname__}")
    return names


def missing_from_reference(
    objects: set[str], documented_modules: set[str], modules=PUBLIC_MODULES
) -> list[str]:
    """Public modules, classes and functions that the reference does not document.

    ``objects`` and ``documented_modules`` are the dotted names the Python domain knows.
    """
    missing = []
    for modname in modules:
        module = importlib.import_module(modname)
        if modname not in documented_modules:
            missing.append(modname)
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            if not _documented_as(modname, name, obj) & objects:
                missing.append(f"{modname}.{name}")
    return sorted(set(missing))


def check(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for name in missing_docstrings():
        logger.warning(f"public name without a docstring: {name}")


def check_reference(app, env) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    py = env.get_domain("py")
    for name in missing_from_reference(set(py.objects), set(py.modules)):
        logger.warning(f"public name not in the API reference (docs/api.md): {name}")


def setup(app):
    app.connect("builder-inited", check)
    app.connect("env-check-consistency", check_reference)
    return {"parallel_read_safe": True, "version": "1"}
