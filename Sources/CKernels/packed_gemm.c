// Small matrix products against a pre-packed right-hand side, for the per-step recurrent
// products of the fused layers (`h_{t-1}·W_hhᵀ` forward, `dG_t·W_hh` backward).
//
// The weight matrix is packed once per sequence into panels of 32 columns (k rows of 32
// contiguous floats, zero-padded), so each step streams it linearly with no per-call packing.
// The micro-kernel keeps an 8×32 block of C in registers (16 AVX-512 vectors) and performs one
// broadcast-FMA per row and vector per k.
#include "CKernels.h"
#include "kernel_attributes.h"
#include <string.h>

#define PANEL CK_PANEL_WIDTH
// How far ahead in a row ck_gemv_rows prefetches (4 cache lines): the 16 rows it reads at once
// are too many streams for the hardware prefetchers.
#define CK_PREFETCH_FLOATS 64

typedef float v16 __attribute__((vector_size(64), aligned(4)));

long ck_packed_size(long k, long n) { return ((n + PANEL - 1) / PANEL) * PANEL * k; }

void ck_pack(long k, long n, const float *b, long ldb, int transposed, float *packed) {
    long panels = (n + PANEL - 1) / PANEL;
    for (long p = 0; p < panels; p++) {
        float *dst = packed + p * PANEL * k;
        long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
        for (long kk = 0; kk < k; kk++) {
            float *row = dst + kk * PANEL;
            if (transposed) {
                for (long c = 0; c < width; c++) row[c] = b[(j0 + c) * ldb + kk];
            } else {
                memcpy(row, b + kk * ldb + j0, (size_t)width * sizeof(float));
            }
            for (long c = width; c < PANEL; c++) row[c] = 0;
        }
    }
}

// C[mr × width] (+)= A[mr × k] · panel[k × 32] (panel rows ldb apart), with A(r, kk) at
// a[r·ars + kk·aks] (row-major A: ars = lda, aks = 1; transposed: ars = 1, aks = lda); mr ≤ 8 is a
// compile-time constant after inlining.
CK_INLINE void ck_micro(const long mr, long k, const float *restrict a, long ars, long aks,
                        const float *restrict p, long ldb, float *restrict c, long ldc, long width, int accumulate) {
    v16 lo[8], hi[8];
#pragma clang loop unroll(full)
    for (long r = 0; r < 8; r++) { lo[r] = (v16){0}; hi[r] = (v16){0}; }
    for (long kk = 0; kk < k; kk++) {
        v16 b0 = *(const v16 *)(p + kk * ldb);
        v16 b1 = *(const v16 *)(p + kk * ldb + 16);
#pragma clang loop unroll(full)
        for (long r = 0; r < 8; r++) {
            if (r < mr) {
                float av = a[r * ars + kk * aks];
                lo[r] += av * b0;
                hi[r] += av * b1;
            }
        }
    }
#pragma clang loop unroll(full)
    for (long r = 0; r < 8; r++) {
        if (r < mr) {
            float *cr = c + r * ldc;
            if (width == PANEL) {
                if (accumulate) {
                    *(v16 *)cr += lo[r];
                    *(v16 *)(cr + 16) += hi[r];
                } else {
                    *(v16 *)cr = lo[r];
                    *(v16 *)(cr + 16) = hi[r];
                }
            } else {
                float tmp[PANEL];
                *(v16 *)tmp = lo[r];
                *(v16 *)(tmp + 16) = hi[r];
                for (long j = 0; j < width; j++) cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
            }
        }
    }
}

// One row (matrix-vector): four k-interleaved accumulator pairs hide the FMA latency.
CK_INLINE void ck_micro_row(long k, const float *restrict a, const float *restrict p, long ldb,
                            float *restrict c, long width, int accumulate) {
    v16 lo[4] = {{0}, {0}, {0}, {0}}, hi[4] = {{0}, {0}, {0}, {0}};
    long kk = 0;
    for (; kk + 4 <= k; kk += 4) {
#pragma clang loop unroll(full)
        for (long u = 0; u < 4; u++) {
            float av = a[kk + u];
            lo[u] += av * *(const v16 *)(p + (kk + u) * ldb);
            hi[u] += av * *(const v16 *)(p + (kk + u) * ldb + 16);
        }
    }
    for (; kk < k; kk++) {
        float av = a[kk];
        lo[0] += av * *(const v16 *)(p + kk * ldb);
        hi[0] += av * *(const v16 *)(p + kk * ldb + 16);
    }
    v16 l = (lo[0] + lo[1]) + (lo[2] + lo[3]);
    v16 h = (hi[0] + hi[1]) + (hi[2] + hi[3]);
    float tmp[PANEL];
    *(v16 *)tmp = l;
    *(v16 *)(tmp + 16) = h;
    for (long j = 0; j < width; j++) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
}

CK_KERNEL void ck_gemm_panels(long m, long k, const float *a, long lda, const float *b, long ldb,
                              long panelStride, long panelBegin, long panelEnd, long n, float *c, long ldc,
                              int accumulate) {
    if (m == 1) {
        for (long p = panelBegin; p < panelEnd; p++) {
            long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
            ck_micro_row(k, a, b + p * panelStride, ldb, c + j0, width, accumulate);
        }
        return;
    }
    // Chunks of rows (up to 128 KB of A) outside, panels inside, 8-row blocks innermost: each
    // panel is read from memory (or L2) once per chunk and reused from L1/L2 by the chunk's row
    // blocks, while the chunk of A stays in L2.
    long chunk = (131072 / (4 * (k > 0 ? k : 1))) & ~7L;
    if (chunk < 8) chunk = 8;
    for (long r0 = 0; r0 < m; r0 += chunk) {
        long r1 = r0 + chunk < m ? r0 + chunk : m;
        for (long p = panelBegin; p < panelEnd; p++) {
            long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
            const float *panel = b + p * panelStride;
            for (long r = r0; r < r1;) {
                long rest = r1 - r;
                long mr = rest >= 8 ? 8 : rest >= 4 ? 4 : rest >= 2 ? 2 : 1;
                const float *ar = a + r * lda;
                float *cr = c + r * ldc + j0;
                switch (mr) {
                case 8: ck_micro(8, k, ar, lda, 1, panel, ldb, cr, ldc, width, accumulate); break;
                case 4: ck_micro(4, k, ar, lda, 1, panel, ldb, cr, ldc, width, accumulate); break;
                case 2: ck_micro(2, k, ar, lda, 1, panel, ldb, cr, ldc, width, accumulate); break;
                default: ck_micro(1, k, ar, lda, 1, panel, ldb, cr, ldc, width, accumulate); break;
                }
                r += mr;
            }
        }
    }
}

void ck_gemm_packed(long m, long k, const float *a, long lda, const float *packed,
                    long panelBegin, long panelEnd, long n, float *c, long ldc, int accumulate) {
    ck_gemm_panels(m, k, a, lda, packed, PANEL, PANEL * k, panelBegin, panelEnd, n, c, ldc, accumulate);
}

// Sum of the 16 lanes of each of 16 vectors: out[i] = Σ v[i], by a transposing add tree.
CK_INLINE void ck_reduce16(v16 *v, float *out) {
    v16 l1[8], l2[4], l3[2];
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        v16 x = v[2 * i], y = v[2 * i + 1];
        l1[i] = __builtin_shufflevector(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
              + __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }   // l1[i]: lanes 0-7 partial sums of v[2i], lanes 8-15 of v[2i+1]
#pragma clang loop unroll(full)
    for (int i = 0; i < 4; i++) {
        v16 x = l1[2 * i], y = l1[2 * i + 1];
        l2[i] = __builtin_shufflevector(x, y, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
              + __builtin_shufflevector(x, y, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    }   // l2[i]: 4-lane groups for v[4i], v[4i+2], v[4i+1], v[4i+3]
#pragma clang loop unroll(full)
    for (int i = 0; i < 2; i++) {
        v16 x = l2[2 * i], y = l2[2 * i + 1];
        l3[i] = __builtin_shufflevector(x, y, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
              + __builtin_shufflevector(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }   // l3[i]: 2-lane groups for v[8i + {0, 4, 2, 6, 1, 5, 3, 7}]
    v16 x = l3[0], y = l3[1];
    v16 s = __builtin_shufflevector(x, y, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30)
          + __builtin_shufflevector(x, y, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    // lane 2q holds v[0 + perm[q]], lane 2q+1 holds v[8 + perm[q]], perm = {0, 4, 2, 6, 1, 5, 3, 7}
    static const int perm[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    float lanes[16];
    *(v16 *)lanes = s;
    for (int q = 0; q < 8; q++) {
        out[perm[q]] = lanes[2 * q];
        out[8 + perm[q]] = lanes[2 * q + 1];
    }
}

CK_KERNEL void ck_gemv_rows(long rows, long k, const float *w, long ldw, const float *x, float *y, int accumulate) {
    long r = 0;
    long k16 = k - k % 16;
    for (; r + 16 <= rows; r += 16) {
        v16 acc[16];
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) acc[i] = (v16){0};
        for (long kk = 0; kk < k16; kk += 16) {
            v16 xv = *(const v16 *)(x + kk);
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++) {
                __builtin_prefetch(w + (r + i) * ldw + kk + CK_PREFETCH_FLOATS);
                acc[i] += *(const v16 *)(w + (r + i) * ldw + kk) * xv;
            }
        }
        float sums[16];
        ck_reduce16(acc, sums);
        for (int i = 0; i < 16; i++) {
            float s = sums[i];
            for (long kk = k16; kk < k; kk++) s += w[(r + i) * ldw + kk] * x[kk];
            y[r + i] = accumulate ? y[r + i] + s : s;
        }
    }
    for (; r < rows; r++) {
        float s = 0;
        for (long kk = 0; kk < k; kk++) s += w[r * ldw + kk] * x[kk];
        y[r] = accumulate ? y[r] + s : s;
    }
}

int ck_packed_gemm_is_fast(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}
