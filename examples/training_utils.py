"""What the example training scripts share: data, checkpoints, result files, optional imports.

Used by ``examples/ttfs_mnist.py``. ``examples/mnist.py`` has its own copies of the same
pieces (written first); these are their generic form, with the configuration passed in.

- :func:`load_images`: MNIST / Fashion-MNIST through :func:`mlx_snn.data.mnist` as float
  ``[N, 28, 28, 1]`` in ``[0, 1]`` and int32 labels;
- :func:`save_checkpoint` / :func:`load_checkpoint`: one safetensors file with the model's
  parameters (BatchNorm statistics included), the optimizer state and JSON metadata,
  written atomically; loading refuses a checkpoint made with other settings;
- :func:`portable_path`, :func:`write_json`: result files hold repository-relative paths
  only and are never left half-written;
- :func:`check_optional_imports`: a one-line hint when the ``examples`` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

import mlx_snn as snn

ROOT = Path(__file__).resolve().parents[1]


def check_optional_imports(script: str, modules: Iterable[str] = ("tqdm", "matplotlib")) -> None:
    """Exit with a one-line hint when a module of the ``examples`` extra is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"{script} needs {' and '.join(missing)}: "
            'pip install ".[examples]" from the repository root'
        )


def load_images(
    split: str, data_dir: str | None, dataset: str, limit: int | None
) -> tuple[mx.array, mx.array]:
    """The first ``limit`` (all when ``None``) images ``[N, 28, 28, 1]`` float32 in
    ``[0, 1]`` and labels ``[N]`` int32 of ``split``."""
    images, labels = snn.data.mnist(split, data_dir=data_dir, dataset=dataset)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = mx.array(images[..., None].astype(np.float32) / 255.0)
    return x, mx.array(labels.astype(np.int32))


def portable_path(path: str | None) -> str | None:
    """``path`` as stored in result files: relative to the repository root.

    A path in the repository or beside it (``runs/x``, ``../shared/data/mnist``) is stored
    relative to the root; one elsewhere keeps only its last component, so no absolute path
    of this machine is written.
    """
    if path is None:
        return None
    for candidate in (os.path.abspath(path), os.path.realpath(path)):
        try:
            rel = os.path.relpath(candidate, ROOT)
        except ValueError:  # another drive on Windows
            continue
        if not rel.startswith(os.pardir + os.sep + os.pardir):
            return rel
    return Path(path).name


def write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as indented JSON through a temporary file (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def save_checkpoint(path: Path, model, optimizer, meta: dict) -> None:
    """Save ``model.parameters()``, ``optimizer.state`` and ``meta`` (JSON values) to ``path``."""
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), arrays, metadata={k: json.dumps(v) for k, v in meta.items()})
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, config: dict, must_match: Iterable[str]) -> dict:
    """Restore what :func:`save_checkpoint` saved into ``model`` and ``optimizer``.

    ``meta["config"]`` must agree with ``config`` on every key of ``must_match``, else
    ``SystemExit`` names the differences. Returns the decoded ``meta``.
    """
    arrays, raw = mx.load(str(path), return_metadata=True)
    meta = {k: json.loads(v) for k, v in raw.items()}
    saved = meta.get("config", {})
    diff = [
        f"{k}: checkpoint {saved.get(k)!r}, now {config[k]!r}"
        for k in must_match
        if saved.get(k) != config[k]
    ]
    if diff:
        raise SystemExit(f"--resume: {path} was made with other settings ({'; '.join(diff)})")
    model.load_weights([(k[6:], v) for k, v in arrays.items() if k.startswith("model.")])
    opt = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    if sorted(opt) != sorted(k for k, _ in tree_flatten(optimizer.state)):
        raise SystemExit(f"--resume: the optimizer state in {path} does not fit this model")
    optimizer.state = tree_map_with_path(lambda key, _: opt[key], optimizer.state)
    return meta
