// Linear scan h_t = a_t h_{t-1} + b_t, one thread per lane (wide inputs).
//
// inputs   a [T, N] (A_PER_STEP) or [N] (InT), b [T, N] (InT), h0 [N] (InT)
// outputs  h [T, N] (InT)
// template InT, bool A_PER_STEP, bool REVERSE, bool TRANSPOSE
//
// REVERSE runs from t = T-1 down to 0 (h_t = a_t h_{t+1} + b_t, h_T = h0).
// TRANSPOSE uses the decay of the step the scan comes from (h_t = a_{t-1} h_{t-1}
// + b_t, forward order; h0 enters the first step undecayed): the gradient of a scan
// is the transposed scan in the opposite direction. One multiply-add per step,
// float32 carry, no division.
const uint n = thread_position_in_grid.x;
const uint N = b_shape[1];
if (n >= N) {
  return;
}
const uint T = b_shape[0];
const float a_const = A_PER_STEP ? 0.0f : static_cast<float>(a[n]);
float carry = static_cast<float>(h0[n]);
size_t prev = 0;
for (uint k = 0; k < T; ++k) {
  const uint t = REVERSE ? T - 1 - k : k;
  const size_t i = size_t(t) * N + n;
  float decay = a_const;
  if (TRANSPOSE) {
    decay = k == 0 ? 1.0f : (A_PER_STEP ? static_cast<float>(a[prev]) : a_const);
  } else if (A_PER_STEP) {
    decay = static_cast<float>(a[i]);
  }
  carry = decay * carry + static_cast<float>(b[i]);
  h[i] = static_cast<InT>(carry);
  prev = i;
}
