"""Build mlx_snn/data/mnist_subset.npz from the real MNIST IDX files.

Usage: python tools/make_mnist_subset.py [../shared/data/mnist]
Takes the first 6000 training and first 2000 test images, after checking the
decompressed files against their published sha256 sums.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

from mlx_snn.data.idx import parse_idx, read_idx_bytes
from mlx_snn.data.mnist_files import MNIST_SHA256

N_TRAIN, N_TEST = 6000, 2000


def load(folder: Path, name: str) -> np.ndarray:
    raw = read_idx_bytes(folder / name)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256[name]:
        raise SystemExit(f"{name}: sha256 {digest} does not match the published sum")
    return parse_idx(raw, name)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist")
    out = Path(__file__).resolve().parents[1] / "mlx_snn" / "data" / "mnist_subset.npz"
    np.savez_compressed(
        out,
        train_images=load(folder, "train-images-idx3-ubyte.gz")[:N_TRAIN],
        train_labels=load(folder, "train-labels-idx1-ubyte.gz")[:N_TRAIN],
        test_images=load(folder, "t10k-images-idx3-ubyte.gz")[:N_TEST],
        test_labels=load(folder, "t10k-labels-idx1-ubyte.gz")[:N_TEST],
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
