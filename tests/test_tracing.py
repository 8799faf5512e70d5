"""``host_values``: reads values eagerly, returns None under mx.compile / mx.vmap tracing."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlx_snn._tracing import host_values


def test_mlx_refuses_to_read_traced_arrays_with_the_message_host_values_expects():
    """Pins the MLX behaviour that ``host_values`` detects: if this message changes,
    ``host_values`` re-raises instead of skipping and the compile tests below fail."""
    seen = []

    def f(x):
        with pytest.raises(ValueError, match="during function transformations") as err:
            x.sum().item()
        seen.append(str(err.value))
        return x

    mx.compile(f)(mx.array([1.0]))
    mx.vmap(f)(mx.ones((2, 1)))
    assert len(seen) == 2


def test_host_values_reads_eagerly_and_under_grad():
    assert host_values(mx.array(3), mx.array(True), mx.array(0.5)) == (3, True, 0.5)
    got = []

    def f(x):
        got.append(host_values(mx.max(x)))
        return (x * x).sum()

    mx.grad(f)(mx.array([1.0, 2.0]))
    mx.vjp(lambda x: (got.append(host_values(mx.max(x))), x * 2)[1], [mx.ones(2)], [mx.ones(2)])
    assert got == [(2.0,), (1.0,)]


def test_host_values_returns_none_for_traced_arrays_but_reads_closure_constants():
    const = mx.array([4.0, 5.0])
    got = []

    def f(x):
        got.append(host_values(mx.max(x)))
        got.append(host_values(mx.max(const * 2)))
        return x + 1

    out = mx.compile(f)(mx.array([1.0]))
    assert out.item() == 2.0  # the refused read leaves the trace intact
    mx.vmap(f)(mx.ones((3, 1)))
    assert got == [None, (10.0,), None, (10.0,)]
