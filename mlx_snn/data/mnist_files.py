"""The MNIST / Fashion-MNIST IDX files: names per split, download mirrors and checksums.

MNIST is checked by the sha256 of each file's DECOMPRESSED bytes (gzip headers differ between
copies). Fashion-MNIST's publishers (github.com/zalandoresearch/fashion-mnist, README) give only
the md5 of their gzipped files: a download is checked against those, a file already on disk is
checked for its IDX structure only.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte.gz": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}

FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset's four files come from and how to check them.

    ``sha256`` maps a file's base name (no ``.gz``) to the sha256 of its decompressed bytes
    (``None``: structure checks only); ``gz_md5`` maps it to the md5 of the published ``.gz``
    (checked on download only).
    """

    title: str
    mirrors: tuple[str, ...]
    sha256: dict[str, str] | None
    gz_md5: dict[str, str] | None


DATASETS = {
    "mnist": DatasetFiles(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={name.removesuffix(".gz"): digest for name, digest in MNIST_SHA256.items()},
        gz_md5=None,
    ),
    "fashion": DatasetFiles(
        title="Fashion-MNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sha256=None,
        gz_md5=FASHION_GZ_MD5,
    ),
}
