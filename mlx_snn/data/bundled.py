"""A small subset of real MNIST that ships inside the package (see MNIST_LICENSE.txt)."""

from __future__ import annotations

from importlib import resources

import numpy as np

BUNDLE = "mnist_subset.npz"


def bundled_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images [N, 28, 28] uint8, labels [N] uint8)`` of the bundled subset.

    The subset is the first 6000 training and first 2000 test images of MNIST
    (Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0).

    Args:
        split: ``"train"`` or ``"test"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    with resources.files(__package__).joinpath(BUNDLE).open("rb") as f:
        with np.load(f) as data:
            return data[f"{split}_images"], data[f"{split}_labels"]
