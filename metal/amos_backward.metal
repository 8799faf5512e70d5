// AMOS backward (PTTFS eqs 15-19, the "second fake spike" rule), one thread per neuron.
//
// inputs   g_spikes [T, N] (InT), g_h [T, N] (InT; [1] and not read unless HAS_GH),
//          h [T, N] (InT), t_first [N] (int32), t_second [N] (int32),
//          threshold [F] (float), params [4] (float: alpha, 1/tau, surrogate p0, p1)
// outputs  g_x [T, N] (InT)
// template InT, bool HAS_GH
//
// dL/ds_t = g_t - g_{t_f} (t < t_f), g_{t_f} - g_{t_sf} (t = t_f; 0 when t_sf = T),
// 0 after t_f; G_t = dL/ds_t sg(h_t - th) + g_h_t; gbar_t = G_t + alpha gbar_{t+1};
// dL/dx_t = gbar_t / tau. h and g_spikes are not read after t_f.
const uint n = thread_position_in_grid.x;
const uint N = h_shape[1];
if (n >= N) {
  return;
}
const uint T = h_shape[0];
const float th = threshold[n % threshold_shape[0]];
const float alpha = params[0];
const float inv_tau = params[1];
const float p0 = params[2];
const float p1 = params[3];
const int t_f = t_first[n];
const int t_sf = t_second[n];
const float g_first = static_cast<float>(g_spikes[size_t(t_f) * N + n]);
const float g_second = t_sf < int(T) ? static_cast<float>(g_spikes[size_t(t_sf) * N + n]) : 0.0f;
float acc = 0.0f;
size_t i = size_t(T - 1) * N + n;
for (uint k = 0; k < T; ++k, i -= N) {
  const int t = int(T - 1 - k);
  float g = HAS_GH ? static_cast<float>(g_h[i]) : 0.0f;
  if (t <= t_f) {
    const float d = t < t_f ? static_cast<float>(g_spikes[i]) - g_first : g_first - g_second;
    g += d * snn_surrogate_derivative(static_cast<float>(h[i]) - th, p0, p1);
  }
  acc = g + alpha * acc;
  g_x[i] = static_cast<InT>(acc * inv_tau);
}
