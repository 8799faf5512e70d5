// LIF forward over a whole sequence: one thread per neuron, a loop over time.
//
// inputs   x [T, N] (InT), v0 [N] (InT), beta [F] (float), threshold [F] (float)
// outputs  spikes [T, N] (SpikeT: InT or uint8_t), mem [T, N] (InT; [1] and not
//          written unless WRITE_MEM), state [N] (InT)
// template InT, SpikeT, int RESET (SNN_RESET_*), bool DELAYED, bool WRITE_MEM
//
// immediate: h = beta v + x;  s = [h >= th];  v = reset(h, s)
// delayed (snnTorch Leaky): r = [m_prev > th]; m = beta m_prev + x - th r (subtract),
//          beta (1 - r) m_prev + x (zero), beta m_prev + x (none); s = [m > th]
const uint n = thread_position_in_grid.x;
const uint N = x_shape[1];
if (n >= N) {
  return;
}
const uint T = x_shape[0];
const uint f = n % beta_shape[0];
const float b = beta[f];
const float th = threshold[f];
float v = static_cast<float>(v0[n]);
float r = (DELAYED && v > th) ? 1.0f : 0.0f;
size_t i = n;
for (uint t = 0; t < T; ++t, i += N) {
  const float xt = static_cast<float>(x[i]);
  float h;
  float s;
  if (DELAYED) {
    if (RESET == SNN_RESET_SUBTRACT) {
      h = b * v + xt - th * r;
    } else if (RESET == SNN_RESET_ZERO) {
      h = b * (v * (1.0f - r)) + xt;
    } else {
      h = b * v + xt;
    }
    s = h > th ? 1.0f : 0.0f;
    r = s;
    v = h;
  } else {
    h = b * v + xt;
    s = h >= th ? 1.0f : 0.0f;
    v = snn_reset(h, s, th, RESET);
  }
  spikes[i] = static_cast<SpikeT>(s);
  if (WRITE_MEM) {
    mem[i] = static_cast<InT>(h);
  }
}
state[n] = static_cast<InT>(v);
