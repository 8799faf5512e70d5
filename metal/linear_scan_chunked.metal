// Linear scan for few lanes and long T: the time axis is split into C chunks.
//
// inputs, outputs and templates InT, A_PER_STEP, REVERSE, TRANSPOSE as in
// linear_scan.metal, plus int LW (lanes per threadgroup) and int C (chunks).
// Threadgroup (LW, C, 1), grid (LW * ceil(N / LW), C, 1): x is the lane, y the chunk.
//
// 1. each thread scans its chunk from zero: end value e_j and decay product A_j;
// 2. an inclusive Hillis-Steele scan over the chunks in threadgroup memory composes
//    (A, e) pairs: (A2, e2) after (A1, e1) = (A2 A1, A2 e1 + e2);
// 3. each thread rescans its chunk from its incoming carry A_{<j} h0 + e_{<j}.
// Products of decays are only ever multiplied (they may underflow to 0 as the
// sequential scan's carry would), never divided by. Lanes past N do no memory
// access but take part in every barrier.
const uint n = thread_position_in_grid.x;
const uint lx = thread_position_in_threadgroup.x;
const uint j = thread_position_in_threadgroup.y;
const uint N = b_shape[1];
const uint T = b_shape[0];
const bool live = n < N;
const uint L = (T + C - 1) / C;
const uint k0 = j * L < T ? j * L : T;
const uint k1 = k0 + L < T ? k0 + L : T;
const uint slot = j * LW + lx;
threadgroup float tg_a[LW * C];
threadgroup float tg_e[LW * C];

const float a_const = (live && !A_PER_STEP) ? static_cast<float>(a[n]) : 0.0f;
float prod = 1.0f;
float e = 0.0f;
if (live) {
  for (uint k = k0; k < k1; ++k) {
    const uint t = REVERSE ? T - 1 - k : k;
    float decay = a_const;
    if (TRANSPOSE) {
      const uint tp = REVERSE ? t + 1 : t - 1;
      decay = k == 0 ? 1.0f : (A_PER_STEP ? static_cast<float>(a[size_t(tp) * N + n]) : a_const);
    } else if (A_PER_STEP) {
      decay = static_cast<float>(a[size_t(t) * N + n]);
    }
    e = decay * e + static_cast<float>(b[size_t(t) * N + n]);
    prod *= decay;
  }
}
tg_a[slot] = prod;
tg_e[slot] = e;
for (uint d = 1; d < C; d <<= 1) {
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float a_left = 1.0f;
  float e_left = 0.0f;
  if (j >= d) {
    a_left = tg_a[slot - d * LW];
    e_left = tg_e[slot - d * LW];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  e = prod * e_left + e;
  prod = prod * a_left;
  tg_a[slot] = prod;
  tg_e[slot] = e;
}
threadgroup_barrier(mem_flags::mem_threadgroup);
if (!live) {
  return;
}
float carry = static_cast<float>(h0[n]);
if (j > 0) {
  carry = tg_a[slot - LW] * carry + tg_e[slot - LW];
}
for (uint k = k0; k < k1; ++k) {
  const uint t = REVERSE ? T - 1 - k : k;
  const size_t i = size_t(t) * N + n;
  float decay = a_const;
  if (TRANSPOSE) {
    const uint tp = REVERSE ? t + 1 : t - 1;
    decay = k == 0 ? 1.0f : (A_PER_STEP ? static_cast<float>(a[size_t(tp) * N + n]) : a_const);
  } else if (A_PER_STEP) {
    decay = static_cast<float>(a[i]);
  }
  carry = decay * carry + static_cast<float>(b[i]);
  h[i] = static_cast<InT>(carry);
}
