// First threshold crossing per neuron with a forced spike at the last step, for a
// given membrane h; one thread per neuron, stops reading at the second fake spike.
//
// inputs   h [T, N] (InT), threshold [F] (float)
// outputs  t_first [N] (int32), forced [N] (bool), t_second [N] (int32)
// template InT
//
// fake spikes [h_t >= th] with step T-1 forced; t_first = the first, t_second = the
// next (T when t_first = T-1); forced = no step crossed the threshold.
const uint n = thread_position_in_grid.x;
const uint N = h_shape[1];
if (n >= N) {
  return;
}
const uint T = h_shape[0];
const float th = threshold[n % threshold_shape[0]];
int t_f = -1;
int t_sf = int(T);
bool crossed = false;
size_t i = n;
for (uint t = 0; t < T; ++t, i += N) {
  const bool above = static_cast<float>(h[i]) >= th;
  if (above || t == T - 1) {
    if (t_f < 0) {
      t_f = int(t);
      crossed = above;
    } else {
      t_sf = int(t);
      break;
    }
  }
}
t_first[n] = t_f;
forced[n] = !crossed;
t_second[n] = t_sf;
