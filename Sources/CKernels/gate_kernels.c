// Gate non-linearities and state updates of the fused RNN/LSTM/GRU layers.
//
// Every kernel is a loop over rows with a branch-free inner loop over hidden units, so the
// compiler vectorizes it. On x86-64 each kernel is compiled three times (AVX-512, AVX2, baseline)
// and the loader picks the widest the CPU supports (function multi-versioning).
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define CK_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CK_KERNEL
#endif
#define CK_INLINE static inline __attribute__((always_inline))

static inline int ck_active(const int32_t *lengths, long b, long t) {
    return lengths == NULL || t < (long)lengths[b];
}

// exp(x) = 2^n · e^r with n = round(x / ln 2), |r| ≤ ln2/2, and a degree-6 polynomial for e^r
// (Cephes expf coefficients; ~1 ulp). x is clamped to [-87, 88] so 2^n stays a normal float.
CK_INLINE float ck_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float magic = 12582912.0f;                    // 1.5 · 2^23: adding it rounds to an integer
    float n = x * 1.44269504088896341f + magic;
    n -= magic;
    float r = x - n * 0.693145751953125f;               // ln 2 split in a high and a low part
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

CK_INLINE float ck_sigmoidf(float x) { return 1.0f / (1.0f + ck_expf(-x)); }

// tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2/(e^{2|x|} + 1) with the sign of x
// elsewhere; both are evaluated and one is selected (a blend, no branch).
CK_INLINE float ck_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float e = ck_expf(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    return ax < 0.625f ? small : big;
}

CK_KERNEL void ck_exp(long n, const float *restrict x, float *restrict y) {
    for (long i = 0; i < n; i++) y[i] = ck_expf(x[i]);
}

CK_KERNEL void ck_sigmoid(long n, const float *restrict x, float *restrict y) {
    for (long i = 0; i < n; i++) y[i] = ck_sigmoidf(x[i]);
}

CK_KERNEL void ck_tanh(long n, const float *restrict x, float *restrict y) {
    for (long i = 0; i < n; i++) y[i] = ck_tanhf(x[i]);
}

// ---------------------------------------------------------------- forward

CK_KERNEL void ck_rnn_forward(long rows, long H, int relu,
                              const float *restrict gh, const float *restrict bhh, const float *restrict xp,
                              const float *restrict hPrev, float *restrict hNew, float *restrict out,
                              const int32_t *lengths, long t) {
    for (long b = 0; b < rows; b++) {
        const float *g = gh + b * H, *x = xp + b * H, *hp = hPrev + b * H;
        float *hn = hNew + b * H, *o = out + b * H;
        if (!ck_active(lengths, b, t)) {
            memcpy(hn, hp, (size_t)H * sizeof(float));
            memset(o, 0, (size_t)H * sizeof(float));
            continue;
        }
        if (relu) {
            for (long j = 0; j < H; j++) {
                float a = (g[j] + bhh[j]) + x[j];
                float h = a > 0 ? a : 0;
                hn[j] = h;
                o[j] = h;
            }
        } else {
            for (long j = 0; j < H; j++) {
                float h = ck_tanhf((g[j] + bhh[j]) + x[j]);
                hn[j] = h;
                o[j] = h;
            }
        }
    }
}

CK_KERNEL void ck_lstm_forward(long rows, long H,
                               const float *restrict gh, const float *restrict bhh, const float *restrict xp,
                               const float *restrict hPrev, const float *restrict cPrev,
                               float *restrict hNew, float *restrict cNew, float *restrict out,
                               float *restrict gates, const int32_t *lengths, long t) {
    const long G = 4 * H;
    for (long b = 0; b < rows; b++) {
        const float *g = gh + b * G, *x = xp + b * G, *cp = cPrev + b * H;
        float *hn = hNew + b * H, *cn = cNew + b * H, *o = out + b * H, *a = gates + b * G;
        if (!ck_active(lengths, b, t)) {
            memcpy(hn, hPrev + b * H, (size_t)H * sizeof(float));
            memcpy(cn, cp, (size_t)H * sizeof(float));
            memset(o, 0, (size_t)H * sizeof(float));
            continue;
        }
        for (long j = 0; j < H; j++) {
            float i = ck_sigmoidf((g[j] + bhh[j]) + x[j]);
            float f = ck_sigmoidf((g[H + j] + bhh[H + j]) + x[H + j]);
            float c = ck_tanhf((g[2 * H + j] + bhh[2 * H + j]) + x[2 * H + j]);
            float u = ck_sigmoidf((g[3 * H + j] + bhh[3 * H + j]) + x[3 * H + j]);
            float cy = f * cp[j] + i * c;
            float hy = u * ck_tanhf(cy);
            a[j] = i;
            a[H + j] = f;
            a[2 * H + j] = c;
            a[3 * H + j] = u;
            cn[j] = cy;
            hn[j] = hy;
            o[j] = hy;
        }
    }
}

CK_KERNEL void ck_gru_forward(long rows, long H,
                              const float *restrict gh, const float *restrict bhh, const float *restrict xp,
                              const float *restrict hPrev, float *restrict hNew, float *restrict out,
                              float *restrict gates, float *restrict ghn, const int32_t *lengths, long t) {
    const long G = 3 * H;
    for (long b = 0; b < rows; b++) {
        const float *g = gh + b * G, *x = xp + b * G, *hp = hPrev + b * H;
        float *hn = hNew + b * H, *o = out + b * H, *a = gates + b * G, *gn = ghn + b * H;
        if (!ck_active(lengths, b, t)) {
            memcpy(hn, hp, (size_t)H * sizeof(float));
            memset(o, 0, (size_t)H * sizeof(float));
            continue;
        }
        for (long j = 0; j < H; j++) {
            float r = ck_sigmoidf(x[j] + (g[j] + bhh[j]));
            float z = ck_sigmoidf(x[H + j] + (g[H + j] + bhh[H + j]));
            float hnGate = g[2 * H + j] + bhh[2 * H + j];
            float n = ck_tanhf(x[2 * H + j] + r * hnGate);
            float hy = (hp[j] - n) * z + n;
            a[j] = r;
            a[H + j] = z;
            a[2 * H + j] = n;
            gn[j] = hnGate;
            hn[j] = hy;
            o[j] = hy;
        }
    }
}

// ---------------------------------------------------------------- backward

CK_KERNEL void ck_rnn_backward(long rows, long H, int relu, const float *restrict h,
                               const float *restrict dOut, float *restrict dh, float *restrict dGates,
                               const int32_t *lengths, long t) {
    for (long b = 0; b < rows; b++) {
        const float *hy = h + b * H;
        const float *dout = dOut ? dOut + b * H : NULL;
        float *d = dh + b * H, *dg = dGates + b * H;
        if (!ck_active(lengths, b, t)) {
            memset(dg, 0, (size_t)H * sizeof(float));
            continue;
        }
        if (dout) {
            for (long j = 0; j < H; j++) {
                float g = d[j] + dout[j];
                dg[j] = relu ? (hy[j] > 0 ? g : 0.0f) : g * (1.0f - hy[j] * hy[j]);
                d[j] = 0;
            }
        } else {
            for (long j = 0; j < H; j++) {
                float g = d[j];
                dg[j] = relu ? (hy[j] > 0 ? g : 0.0f) : g * (1.0f - hy[j] * hy[j]);
                d[j] = 0;
            }
        }
    }
}

CK_INLINE void ck_lstm_backward_row(long H, const float *restrict a, const float *restrict cp,
                                    const float *restrict cc, const float *restrict dout,
                                    float *restrict d, float *restrict dcell, float *restrict dg, int hasOut) {
    for (long j = 0; j < H; j++) {
        float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        float dhy = hasOut ? d[j] + dout[j] : d[j];
        float tc = ck_tanhf(cc[j]);
        float dc = dcell[j] + dhy * o * (1.0f - tc * tc);
        dg[j] = dc * g * i * (1.0f - i);
        dg[H + j] = dc * cp[j] * f * (1.0f - f);
        dg[2 * H + j] = dc * i * (1.0f - g * g);
        dg[3 * H + j] = dhy * tc * o * (1.0f - o);
        dcell[j] = dc * f;
        d[j] = 0;
    }
}

CK_KERNEL void ck_lstm_backward(long rows, long H, const float *restrict gates,
                                const float *restrict cPrev, const float *restrict cCur,
                                const float *restrict dOut, float *restrict dh, float *restrict dc,
                                float *restrict dGates, const int32_t *lengths, long t) {
    const long G = 4 * H;
    for (long b = 0; b < rows; b++) {
        float *dg = dGates + b * G;
        if (!ck_active(lengths, b, t)) {
            memset(dg, 0, (size_t)G * sizeof(float));
            continue;
        }
        if (dOut)
            ck_lstm_backward_row(H, gates + b * G, cPrev + b * H, cCur + b * H, dOut + b * H,
                                 dh + b * H, dc + b * H, dg, 1);
        else
            ck_lstm_backward_row(H, gates + b * G, cPrev + b * H, cCur + b * H, NULL,
                                 dh + b * H, dc + b * H, dg, 0);
    }
}

CK_INLINE void ck_gru_backward_row(long H, const float *restrict a, const float *restrict gn,
                                   const float *restrict hp, const float *restrict dout, float *restrict d,
                                   float *restrict gi, float *restrict gh, int hasOut) {
    for (long j = 0; j < H; j++) {
        float r = a[j], z = a[H + j], n = a[2 * H + j];
        float dhy = hasOut ? d[j] + dout[j] : d[j];
        float dn = dhy * (1.0f - z) * (1.0f - n * n);
        float dz = dhy * (hp[j] - n) * z * (1.0f - z);
        float dr = dn * gn[j] * r * (1.0f - r);
        gi[j] = dr;
        gi[H + j] = dz;
        gi[2 * H + j] = dn;
        gh[j] = dr;
        gh[H + j] = dz;
        gh[2 * H + j] = dn * r;
        d[j] = dhy * z;
    }
}

CK_KERNEL void ck_gru_backward(long rows, long H, const float *restrict gates, const float *restrict ghn,
                               const float *restrict hPrev, const float *restrict dOut, float *restrict dh,
                               float *restrict dGI, float *restrict dGH, const int32_t *lengths, long t) {
    const long G = 3 * H;
    for (long b = 0; b < rows; b++) {
        if (!ck_active(lengths, b, t)) {
            memset(dGI + b * G, 0, (size_t)G * sizeof(float));
            memset(dGH + b * G, 0, (size_t)G * sizeof(float));
            continue;
        }
        if (dOut)
            ck_gru_backward_row(H, gates + b * G, ghn + b * H, hPrev + b * H, dOut + b * H, dh + b * H,
                                dGI + b * G, dGH + b * G, 1);
        else
            ck_gru_backward_row(H, gates + b * G, ghn + b * H, hPrev + b * H, NULL, dh + b * H,
                                dGI + b * G, dGH + b * G, 0);
    }
}

// ---------------------------------------------------------------- helpers

void ck_fill_rows(long rows, long cols, const float *row, float *dst) {
    for (long r = 0; r < rows; r++) memcpy(dst + r * cols, row, (size_t)cols * sizeof(float));
}

CK_KERNEL void ck_add_column_sums(long rows, long cols, const float *restrict src, float *restrict dst) {
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * cols;
        for (long j = 0; j < cols; j++) dst[j] += s[j];
    }
}
