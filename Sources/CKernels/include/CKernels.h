#ifndef CKERNELS_H
#define CKERNELS_H
// Element-wise kernels of the fused recurrent layers: one call per time step handles the gate
// non-linearities and the state update for `rows` batch rows of `hidden` units.
//
// Layouts (row-major): per-step gate blocks are [rows, G*hidden] with the gates side by side
// (LSTM i|f|g|o, GRU r|z|n); states are [rows, hidden].
//
// Masking: when `lengths` is not NULL, row b is active at time `t` only if t < lengths[b]. An
// inactive row keeps its state (new state = previous state), writes zeros to `out` and, in the
// backward kernels, passes its state gradients through unchanged with zero gate gradients.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- vector math (polynomial approximations, also used by the gate kernels) ----

/// y[i] = exp(x[i]); x clamped to [-87, 88].
void ck_exp(long n, const float *x, float *y);
/// y[i] = 1 / (1 + exp(-x[i])).
void ck_sigmoid(long n, const float *x, float *y);
/// y[i] = tanh(x[i]).
void ck_tanh(long n, const float *x, float *y);

// ---- forward steps ----

/// RNN: h' = act((gh + bhh) + xp), act = tanh or relu (`relu` != 0).
/// gh [rows, H] = h·W_hhᵀ (no bias); bhh [H]; xp [rows, H] = x·W_ihᵀ + b_ih.
void ck_rnn_forward(long rows, long hidden, int relu,
                    const float *gh, const float *bhh, const float *xp,
                    const float *hPrev, float *hNew, float *out,
                    const int32_t *lengths, long t);

/// LSTM: gates = (gh + bhh) + xp; i,f,o = σ, g = tanh; c' = f⊙c + i⊙g; h' = o⊙tanh(c').
/// gh, xp [rows, 4H]; bhh [4H]; `gates` [rows, 4H] receives the activated i|f|g|o.
void ck_lstm_forward(long rows, long hidden,
                     const float *gh, const float *bhh, const float *xp,
                     const float *hPrev, const float *cPrev, float *hNew, float *cNew, float *out,
                     float *gates, const int32_t *lengths, long t);

/// GRU: r = σ(xp_r + gh_r), z = σ(xp_z + gh_z), n = tanh(xp_n + r⊙gh_n), h' = (h - n)⊙z + n,
/// where gh = h·W_hhᵀ + bhh. `gates` [rows, 3H] receives r|z|n, `ghn` [rows, H] receives gh_n.
void ck_gru_forward(long rows, long hidden,
                    const float *gh, const float *bhh, const float *xp,
                    const float *hPrev, float *hNew, float *out,
                    float *gates, float *ghn, const int32_t *lengths, long t);

// ---- backward steps ----
// `dh` [rows, H] holds on entry the gradient reaching h_t from later steps; `dOut` [rows, H]
// (may be NULL) the gradient of this step's output. On return `dh` holds the part of dL/dh_{t-1}
// that does not go through W_hh (0 for RNN/LSTM, dh⊙z for GRU; the whole dh for inactive rows);
// the caller adds dGates·W_hh.

/// RNN: dpre = (dh + dOut) ⊙ act'(h_t); `h` [rows, H] is h_t.
void ck_rnn_backward(long rows, long hidden, int relu, const float *h,
                     const float *dOut, float *dh, float *dGates,
                     const int32_t *lengths, long t);

/// LSTM: `dc` [rows, H] in: dL/dc_t from later steps, out: dL/dc_{t-1}. dGates [rows, 4H] are
/// the gradients of the pre-activation gates.
void ck_lstm_backward(long rows, long hidden, const float *gates,
                      const float *cPrev, const float *cCur,
                      const float *dOut, float *dh, float *dc, float *dGates,
                      const int32_t *lengths, long t);

/// GRU: dGI [rows, 3H] = dL/d(x·W_ihᵀ + b_ih), dGH [rows, 3H] = dL/d(h·W_hhᵀ + b_hh)
/// (equal in r, z; dGH_n = dGI_n ⊙ r).
void ck_gru_backward(long rows, long hidden, const float *gates, const float *ghn,
                     const float *hPrev, const float *dOut, float *dh,
                     float *dGI, float *dGH, const int32_t *lengths, long t);

// ---- helpers ----

/// dst[r, :] = row for r in 0..<rows (broadcast a bias into a [rows, cols] block).
void ck_fill_rows(long rows, long cols, const float *row, float *dst);
/// dst[j] += Σ_r src[r, j] for a [rows, cols] block.
void ck_add_column_sums(long rows, long cols, const float *src, float *dst);

#ifdef __cplusplus
}
#endif
#endif
