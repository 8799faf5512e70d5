"""Sphinx configuration: MyST Markdown pages, API reference from the docstrings, strict build.

Build (from the repository root): ``sphinx-build -W --keep-going -n -b html docs docs/_build/html``.
``-W`` turns every warning into an error and ``-n`` warns on every unresolved cross-reference,
so a broken reference fails the build; ``_ext/public_api.py`` adds a warning for each public
name without a docstring, and ``_ext/bench_tables.py`` writes the benchmark tables from
``bench/results/*.json`` before the pages are read.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import mlx_snn  # noqa: E402

project = "mlx-snn"
author = "mlx-snn developers"
copyright = "2026, mlx-snn developers"
release = mlx_snn.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "public_api",
    "bench_tables",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated/*.md"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# Google-style sections (Args, Returns, Raises), as MLX writes them
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # NamedTuple fields: autodoc documents them once, as members
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}
add_module_names = False

# Strict: every cross-reference must resolve, except to types of other libraries (no network
# for intersphinx inventories in CI) and to names written as annotations.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(mlx|mx|nn|optim|np|numpy|pathlib|os|collections|typing|types|importlib)(\..*)?"),
    (r"py:.*", r"(Path|Callable|Iterable|Iterator|Sequence|Any|NamedTuple|Module)"),
    (r"py:.*", r"(callable|sequence)"),  # duck types in prose: "sequence of int"
    (r"py:.*", r"(array|ndarray|dtype|float32|float64|bfloat16|float16|uint8|int32)"),
]

html_theme = "sphinx_book_theme"
html_title = f"mlx-snn {release}"
html_theme_options = {"show_toc_level": 2}
html_static_path: list[str] = []
