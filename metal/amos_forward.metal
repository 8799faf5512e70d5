// AMOS (at-most-one-spike) forward: charge scan fused with the first-spike and
// second-fake-spike search, one thread per neuron.
//
// inputs   x [T, N] (InT), threshold [F] (float), params [2] (float: alpha, 1/tau)
// outputs  spikes [T, N] (SpikeT), h [T, N] (InT; [1] and not written unless WRITE_H),
//          t_first [N] (int32), t_second [N] (int32)
// template InT, SpikeT, bool WRITE_H
//
// h_t = alpha h_{t-1} + x_t / tau (h_{-1} = 0, float32 carry); fake spikes
// [h_t >= th] with step T-1 forced; t_first = first fake spike, t_second = the
// next one (T when t_first = T-1); s_t = [t = t_first].
const uint n = thread_position_in_grid.x;
const uint N = x_shape[1];
if (n >= N) {
  return;
}
const uint T = x_shape[0];
const float th = threshold[n % threshold_shape[0]];
const float alpha = params[0];
const float inv_tau = params[1];
float h_t = 0.0f;
int t_f = -1;
int t_sf = int(T);
size_t i = n;
for (uint t = 0; t < T; ++t, i += N) {
  h_t = alpha * h_t + inv_tau * static_cast<float>(x[i]);
  const bool fake = h_t >= th || t == T - 1;
  float s = 0.0f;
  if (fake && t_f < 0) {
    t_f = int(t);
    s = 1.0f;
  } else if (fake && t_sf == int(T)) {
    t_sf = int(t);
  }
  spikes[i] = static_cast<SpikeT>(s);
  if (WRITE_H) {
    h[i] = static_cast<InT>(h_t);
  }
}
t_first[n] = t_f;
t_second[n] = t_sf;
