"""Datasets: a small bundled MNIST subset for offline demos and tests."""

from .bundled import bundled_mnist
from .idx import read_idx

__all__ = ["bundled_mnist", "read_idx"]
