// LIF backward (reverse recurrence over the saved membrane): one thread per neuron.
//
// inputs   h [T, N] (InT, the saved membrane "mem"), spikes [T, N] (SpikeT),
//          v0 [N] (InT), beta [F] (float), threshold [F] (float),
//          g_spikes [T, N], g_mem [T, N], g_state [N] (InT, the cotangents),
//          params [2] (float: the surrogate's shape parameters p0, p1)
// outputs  g_x [T, N] (InT), g_v0 [N] (InT),
//          g_beta [N], g_threshold [N] (float: sums over time per neuron; [1] and
//          not written unless BETA_GRAD / THR_GRAD; the caller sums over the batch)
// template InT, int RESET, bool DELAYED, bool DETACH, bool BETA_GRAD, bool THR_GRAD
//
// The surrogate derivative snn_surrogate_derivative(x, p0, p1) comes from the header
// (one expression per Surrogate class, mlx_snn/kernels/surrogates.py). Spikes are
// read, not recomputed from h, so a half-precision h cannot flip them.
// With c = dL/dv_t carried backwards (c = g_state at t = T-1), immediate timing:
//   dL/dh_t = c dv/dh + (g_s + c dv/ds) sg + g_mem,  dL/dx_t = dL/dh_t,
//   c <- beta dL/dh_t; dv/ds = -th (subtract), -h (zero), 0 (none or DETACH)
// delayed: dL/dm_t = c + g_mem + g_s sg; c <- beta dL/dm_t (times 1 - r_t for zero).
const uint n = thread_position_in_grid.x;
const uint N = h_shape[1];
if (n >= N) {
  return;
}
const uint T = h_shape[0];
const uint f = n % beta_shape[0];
const float b = beta[f];
const float th = threshold[f];
const float p0 = params[0];
const float p1 = params[1];
const float v0n = static_cast<float>(v0[n]);
float c = static_cast<float>(g_state[n]);
float gb = 0.0f;
float gt = 0.0f;
size_t i = size_t(T - 1) * N + n;
// h_t and s_t of the current step, loaded one step ahead (each element once)
float ht = static_cast<float>(h[i]);
float st = static_cast<float>(spikes[i]);
for (uint k = 0; k < T; ++k, i -= N) {
  const uint t = T - 1 - k;
  float hp = 0.0f;
  float sp = 0.0f;
  if (t > 0) {
    hp = static_cast<float>(h[i - N]);
    sp = static_cast<float>(spikes[i - N]);
  }
  const float sg = snn_surrogate_derivative(ht - th, p0, p1);
  const float g_s = static_cast<float>(g_spikes[i]);
  const float g_m = static_cast<float>(g_mem[i]);
  float gx;
  if (DELAYED) {
    const float gm = c + g_m + g_s * sg;
    if (THR_GRAD) {
      gt -= g_s * sg;
    }
    gx = gm;
    const float m_prev = t > 0 ? hp : v0n;
    const float r = t > 0 ? sp : (v0n > th ? 1.0f : 0.0f);
    if (RESET == SNN_RESET_SUBTRACT) {
      if (THR_GRAD) {
        gt -= r * gm;
      }
      if (BETA_GRAD) {
        gb += gm * m_prev;
      }
      c = b * gm;
    } else if (RESET == SNN_RESET_ZERO) {
      if (BETA_GRAD) {
        gb += gm * (1.0f - r) * m_prev;
      }
      c = b * (1.0f - r) * gm;
    } else {
      if (BETA_GRAD) {
        gb += gm * m_prev;
      }
      c = b * gm;
    }
  } else {
    float gh = c;
    float gs_reset = 0.0f;
    if (RESET == SNN_RESET_SUBTRACT) {
      gs_reset = -th * c;
      if (THR_GRAD) {
        gt -= st * c;
      }
    } else if (RESET == SNN_RESET_ZERO) {
      gh = c * (1.0f - st);
      gs_reset = -ht * c;
    }
    if (DETACH) {
      gs_reset = 0.0f;
    }
    const float gs = g_s + gs_reset;
    gh += gs * sg + g_m;
    if (THR_GRAD) {
      gt -= gs * sg;
    }
    gx = gh;
    if (BETA_GRAD) {
      gb += gh * (t > 0 ? snn_reset(hp, sp, th, RESET) : v0n);
    }
    c = b * gh;
  }
  g_x[i] = static_cast<InT>(gx);
  ht = hp;
  st = sp;
}
g_v0[n] = static_cast<InT>(c);
if (BETA_GRAD) {
  g_beta[n] = gb;
}
if (THR_GRAD) {
  g_threshold[n] = gt;
}
