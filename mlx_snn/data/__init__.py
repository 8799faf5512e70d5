"""Datasets: verified MNIST / Fashion-MNIST loader and a small bundled MNIST subset."""

from .bundled import bundled_mnist
from .idx import read_idx
from .mnist import default_data_dir, mnist

__all__ = ["bundled_mnist", "default_data_dir", "mnist", "read_idx"]
