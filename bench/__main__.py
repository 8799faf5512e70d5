"""``python -m bench [--quick] [--only NAME ...] ...``: the benchmark suite (bench/suite.py).

Run from the root of a source checkout (``pip install -e '.[bench]'`` for the peer
libraries). ``mlx-snn bench`` runs this in a subprocess from the checkout's root;
``python -m bench.peers status|install`` shows or installs the peers.
"""

from __future__ import annotations

import sys

from bench.suite import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m bench"))
