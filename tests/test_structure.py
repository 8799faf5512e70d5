"""How the library is put together: markers, defaults and imports that a test must keep honest.

- every public module class either acts over time (a ``TemporalModule``, which TAC and
  TAC-TP reject) or is a per-frame layer TAC accepts: a new neuron cannot be forgotten;
- every public signature with a ``surrogate`` defaults to the named constant, and every
  ``backend=`` says where the kernel backends are available;
- no module of the library imports another module's private names, puts the source
  checkout on ``sys.path`` or imports ``bench``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path

import mlx.nn as nn
import pytest

import mlx_snn as snn
from mlx_snn import surrogate
from mlx_snn.nn import TemporalModule

PACKAGE = Path(snn.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
EXPORTERS = (snn, snn.nn, snn.models, snn.functional, snn.encode, snn.loss, snn.surrogate)

# constructor arguments of the public modules that need some
ARGS = {
    "AssociativeLeaky": lambda: (4, 3),
    "TemporalSelectorDecoder": lambda: (4, 3),
    "TAC": lambda: (nn.Linear(4, 4),),
    "TACTP": lambda: (nn.Linear(4, 4),),
    "SeqToBatch": lambda: (nn.Linear(4, 4),),
    "TTFSNet": lambda: (10, 2.0, 1.0, 1.0, 2.0, True, "auto"),
}
# public modules that act on each frame on their own (TAC may wrap them)
PER_FRAME = {"VotingLayer"}


def public_module_classes() -> dict[str, type]:
    found = {}
    for exporter in (snn, snn.nn, snn.models):
        for name in exporter.__all__:
            obj = getattr(exporter, name)
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj is not TemporalModule:
                found[name] = obj
    return found


def test_the_enumeration_sees_every_neuron():
    names = set(public_module_classes())
    expected = {"LIF", "ParallelLIF", "StateLeaky", "AMOS", "AssociativeLeaky", "TAC", "TACTP"}
    assert expected | {"TemporalSelectorDecoder", "SeqToBatch", "VotingLayer"} <= names


@pytest.mark.parametrize("name", sorted(public_module_classes()))
def test_tac_rejects_every_temporal_module_and_accepts_per_frame_ones(name):
    cls = public_module_classes()[name]
    module = cls(*ARGS.get(name, tuple)())
    if name in PER_FRAME:
        assert not isinstance(module, TemporalModule)
        snn.TAC(module, 2)
        snn.TACTP(module, 2)
        return
    assert isinstance(module, TemporalModule), (
        f"{name} is neither a TemporalModule nor listed as per-frame in this test"
    )
    for layer in (module, nn.Sequential(nn.Linear(4, 4), module)):
        for wrapper in (snn.TAC, snn.TACTP):
            with pytest.raises(ValueError, match=f"contains {cls.__name__}, which works across"):
                wrapper(layer, 2)


@pytest.mark.parametrize("layer", [nn.RNN(3, 3), nn.GRU(3, 3), nn.LSTM(3, 3)])
def test_tac_rejects_mlx_recurrent_layers(layer):
    for wrapper in (snn.TAC, snn.TACTP):
        with pytest.raises(ValueError, match="works across time"):
            wrapper(layer, 2)


def surrogate_signatures() -> dict[str, inspect.Parameter]:
    found = {}
    for exporter in EXPORTERS:
        for name in getattr(exporter, "__all__", ()):
            obj = getattr(exporter, name)
            target = obj.__init__ if inspect.isclass(obj) else obj
            if not callable(target):
                continue
            try:
                params = inspect.signature(target).parameters
            except (TypeError, ValueError):
                continue
            if "surrogate" in params and params["surrogate"].default is not inspect.Parameter.empty:
                found[f"{exporter.__name__}.{name}"] = params["surrogate"]
    return found


def test_every_surrogate_default_is_the_named_constant():
    found = surrogate_signatures()
    assert len(found) >= 9, sorted(found)
    for name, param in found.items():
        amos = name.rsplit(".", 1)[1] in ("AMOS", "amos")
        expected = surrogate.AMOS_DEFAULT if amos else surrogate.DEFAULT
        assert param.default == expected, f"{name}: surrogate defaults to {param.default!r}"
    assert surrogate.get(surrogate.DEFAULT) == surrogate.fast_sigmoid()
    assert surrogate.get(surrogate.AMOS_DEFAULT) == surrogate.atan()


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """Absolute module name of ``from <node.module> import ...`` written in ``path``."""
    if node.level == 0:
        return node.module or ""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # the package
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports() -> list[str]:
    """``from .x import _name`` (a private name, not a private submodule) and
    ``module._name`` on an imported module of this package."""
    bad = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        modules = {}  # local name -> one of our modules
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _resolve(path, node)
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full.startswith("mlx_snn") and _is_module(full):
                    modules[alias.asname or alias.name] = full
                elif _private(alias.name) and source.startswith("mlx_snn"):
                    bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {full}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and _private(node.attr)
            ):
                where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                bad.append(f"{where} uses {modules[node.value.id]}.{node.attr}")
    return bad


def test_no_private_names_are_imported_across_modules():
    assert private_imports() == []


def test_the_private_import_check_sees_a_violation(monkeypatch):
    fake = PACKAGE / "nn" / "lif.py"
    source = "from ..functional.lif import _loop_fn\nfrom .. import surrogate\nsurrogate._x\n"
    monkeypatch.setattr(Path, "read_text", lambda self: source if self == fake else "")
    bad = private_imports()
    assert any("imports mlx_snn.functional.lif._loop_fn" in b for b in bad), bad
    assert any("uses mlx_snn.surrogate._x" in b for b in bad), bad


def test_the_library_never_reaches_into_the_checkout():
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                names = []
            assert not any(n == "bench" or n.startswith("bench.") for n in names), path
        assert "sys.path" not in path.read_text(), f"{path} touches sys.path"


def test_every_backend_argument_says_where_kernels_are_available():
    documented = 0
    for exporter in EXPORTERS:
        for name in getattr(exporter, "__all__", ()):
            obj = getattr(exporter, name)
            target = obj.__init__ if inspect.isclass(obj) else obj
            try:
                params = inspect.signature(target).parameters
            except (TypeError, ValueError):
                continue
            if "backend" not in params:
                continue
            doc = " ".join((obj.__doc__ or "").split())
            # says where, and points to where to look: the command or the function
            own = "only where that device and" in doc and (
                "mlx-snn info" in doc or "mlx_snn.backends.available" in doc
            )
            refers = re.search(r"backend[^.]*(:| are) as in :(class|func):", doc) is not None
            assert own or refers, (
                f"{exporter.__name__}.{name}: backend= availability not documented"
            )
            documented += own
    assert documented >= 3
