"""The half-precision rule, in one place.

Every neuron, scan and operator accepts float16 and bfloat16 inputs and
parameters, and follows one rule:

- **Carries in float32.** Membranes, scan accumulators, running sums and the
  state that continues a sequence are computed in :func:`carry_dtype` of the
  input: float32 for a half-precision input, the input's own dtype otherwise.
  Parameters (decays, thresholds, time constants) are used in that dtype too,
  so ``beta=0.9`` means 0.9 to fp32 accuracy, not bfloat16's 0.8984375.
- **Decisions on the carry.** A spike fires where the float32 membrane crosses
  the threshold, before any rounding to the input dtype.
- **Outputs in the input dtype.** Spikes, membranes and readouts ``[T, B, ...]``
  come back in the dtype of the input; the returned ``state`` stays in the
  carry dtype (float32 for half inputs), so passing it back continues the
  sequence exactly as one longer call would.
- **Backward passes** compute in the carry dtype from what the forward saved
  (saved tensors are outputs, so in the input dtype) and return each gradient
  in its primal's dtype.

Accuracy to expect against a float64 loop on the same (rounded) inputs: the
float32 carries do not drift with ``T``; what remains is one rounding of each
output to the input dtype (relative ``2**-9`` for bfloat16, ``2**-12`` for
float16) and, in gradients, the surrogate derivative evaluated at the rounded
membrane. ``tests/test_half_precision.py`` states the tolerances per dtype.
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["HALF_DTYPES", "carry_dtype", "to_carry", "to_dtype"]

HALF_DTYPES = (mx.float16, mx.bfloat16)


def carry_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """The dtype carries and parameters use for inputs of ``dtype``: float32 for a half
    type, ``dtype`` itself otherwise."""
    return mx.float32 if dtype in HALF_DTYPES else dtype


def to_dtype(x: mx.array, dtype: mx.Dtype) -> mx.array:
    """``x`` as ``dtype`` (no op, and no copy, when it already is)."""
    return x if x.dtype == dtype else x.astype(dtype)


def to_carry(x: mx.array) -> mx.array:
    """``x`` in its carry dtype (float32 for a half-precision array)."""
    return to_dtype(x, carry_dtype(x.dtype))
