// Small matrix products against a pre-packed right-hand side, for the per-step recurrent
// products of the fused layers (`h_{t-1}·W_hhᵀ` forward, `dG_t·W_hh` backward).
//
// The weight matrix is packed once per sequence into panels of 32 columns (k rows of 32
// contiguous floats, zero-padded), so each step streams it linearly with no per-call packing.
// The main micro-kernel keeps a 6×64 block of C (two panels) in registers (24 AVX-512 vectors)
// and performs one broadcast-FMA per row and vector per k; an 8×32 kernel (one panel) takes a
// leftover panel and long k.
#include "CKernels.h"
#include "kernel_attributes.h"
#include "packed_gemm_shared.h"
#include <string.h>

// Longest k for which ck_gemm_panels multiplies panels in pairs (ck_micro_pair).
#define CK_PAIR_MAX_K 2048

typedef float v16 __attribute__((vector_size(64), aligned(4)));

long ck_packed_size(long k, long n) { return ((n + PANEL - 1) / PANEL) * PANEL * k; }

#include "transpose16.h"

CK_KERNEL void ck_pack_strided(long k, long n, const float *b, long ldb, int transposed, float *packed,
                               long panelStride) {
    long panels = (n + PANEL - 1) / PANEL;
    for (long p = 0; p < panels; p++) {
        float *dst = packed + p * panelStride;
        long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
        long kk = 0;
        if (transposed && width == PANEL) {
            // Wᵀ by 16 × 16 blocks transposed in registers (a column-by-column gather is ~10x slower).
            for (; kk + 16 <= k; kk += 16) {
                ck_transpose16(b + j0 * ldb + kk, ldb, dst + kk * PANEL, PANEL);
                ck_transpose16(b + (j0 + 16) * ldb + kk, ldb, dst + kk * PANEL + 16, PANEL);
            }
        }
        for (; kk < k; kk++) {
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

CK_KERNEL void ck_pack(long k, long n, const float *b, long ldb, int transposed, float *packed) {
    ck_pack_strided(k, n, b, ldb, transposed, packed, PANEL * k);
}

// One row of a micro-kernel's result, two vectors (32 columns), into cr: stored or added, only
// the first `width` columns when the panel is the last, partial one.
// (The vectors come by pointer: by value they would trip -Wpsabi in the non-AVX-512 clones.)
CK_INLINE void ck_store_row(float *restrict cr, const v16 *lo, const v16 *hi, long width, int accumulate) {
    if (width == PANEL) {
        if (accumulate) {
            *(v16 *)cr += *lo;
            *(v16 *)(cr + 16) += *hi;
        } else {
            *(v16 *)cr = *lo;
            *(v16 *)(cr + 16) = *hi;
        }
    } else {
        float tmp[PANEL];
        *(v16 *)tmp = *lo;
        *(v16 *)(tmp + 16) = *hi;
        for (long j = 0; j < width; j++) cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
    }
}

// Both micro-kernels run their k loop in one of two copies: with `pfA` (and optionally `pfB`),
// lines pfA + 16·kk (and pfB + 16·kk) of the next panel are prefetched with row kk of this one,
// so the stream of a weight matrix larger than L2 overlaps the arithmetic instead of stalling it
// (16 × 1024 × 2048 product, one thread: 589 → 472 µs; 16 × 4096 × 512: 705 → 490 µs together
// with the larger row chunks of ck_gemm_panels); without, the loop carries no test.
#define CK_K_LOOP(STEP)                                                                                \
    do {                                                                                              \
        if (pfA) {                                                                                    \
            for (long kk = 0; kk < k; kk++) {                                                         \
                __builtin_prefetch(pfA + kk * 16, 0, 3);                                              \
                if (pfB) __builtin_prefetch(pfB + kk * 16, 0, 3);                                     \
                STEP(kk);                                                                             \
            }                                                                                         \
        } else {                                                                                      \
            for (long kk = 0; kk < k; kk++) STEP(kk);                                                 \
        }                                                                                             \
    } while (0)

// C[mr × width] (+)= A[mr × k] · panel[k × 32] (panel rows ldb apart, A rows lda apart); mr ≤ 8
// is a compile-time constant after inlining. `pfA`, `pfB` (may be NULL): see CK_K_LOOP.
CK_INLINE void ck_micro(const long mr, long k, const float *restrict a, long lda, const float *restrict p,
                        long ldb, float *restrict c, long ldc, long width, int accumulate, const float *pfA,
                        const float *pfB) {
    v16 lo[8], hi[8];
#pragma clang loop unroll(full)
    for (long r = 0; r < 8; r++) { lo[r] = (v16){0}; hi[r] = (v16){0}; }
#define CK_SINGLE_STEP(kk)                                                                             \
    do {                                                                                              \
        v16 b0 = *(const v16 *)(p + (kk) * ldb), b1 = *(const v16 *)(p + (kk) * ldb + 16);            \
        _Pragma("clang loop unroll(full)") for (long r = 0; r < 8; r++) {                             \
            if (r < mr) {                                                                             \
                float av = a[r * lda + (kk)];                                                         \
                lo[r] += av * b0;                                                                     \
                hi[r] += av * b1;                                                                     \
            }                                                                                         \
        }                                                                                             \
    } while (0)
    CK_K_LOOP(CK_SINGLE_STEP);
#undef CK_SINGLE_STEP
#pragma clang loop unroll(full)
    for (long r = 0; r < 8; r++)
        if (r < mr) ck_store_row(c + r * ldc, &lo[r], &hi[r], width, accumulate);
}

// C[mr × 64] (+)= A[mr × k] · [panel0 | panel1] for two 32-column panels (rows ldb apart) whose
// results go to c0 and c1 (widths w0, w1 ≤ 32): mr ≤ 6 rows × 4 vectors = 24 accumulators, so
// each k step issues 4 panel loads and 6 broadcasts for 24 FMAs, against 2 and 8 for 16 in
// ck_micro. Sums are formed in the same order as ck_micro's, so the results are identical.
// Measured on one thread while the machine was slow: 98 → 120 GFLOP/s (16 × 256 × 1024),
// 99 → 116 (64 × 512 × 1024). `pfA`, `pfB` (may be NULL): see CK_K_LOOP.
CK_INLINE void ck_micro_pair(const long mr, long k, const float *restrict a, long lda, const float *restrict p0,
                             const float *restrict p1, long ldb, float *restrict c0, float *restrict c1, long ldc,
                             long w0, long w1, int accumulate, const float *pfA, const float *pfB) {
    v16 acc[6][4];
#pragma clang loop unroll(full)
    for (long r = 0; r < 6; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < 4; v++) acc[r][v] = (v16){0};
    }
#define CK_PAIR_STEP(kk)                                                                               \
    do {                                                                                              \
        v16 b0 = *(const v16 *)(p0 + (kk) * ldb), b1 = *(const v16 *)(p0 + (kk) * ldb + 16);          \
        v16 b2 = *(const v16 *)(p1 + (kk) * ldb), b3 = *(const v16 *)(p1 + (kk) * ldb + 16);          \
        _Pragma("clang loop unroll(full)") for (long r = 0; r < 6; r++) {                             \
            if (r < mr) {                                                                             \
                float av = a[r * lda + (kk)];                                                         \
                acc[r][0] += av * b0;                                                                 \
                acc[r][1] += av * b1;                                                                 \
                acc[r][2] += av * b2;                                                                 \
                acc[r][3] += av * b3;                                                                 \
            }                                                                                         \
        }                                                                                             \
    } while (0)
    CK_K_LOOP(CK_PAIR_STEP);
#undef CK_PAIR_STEP
#pragma clang loop unroll(full)
    for (long r = 0; r < 6; r++) {
        if (r < mr) {
            ck_store_row(c0 + r * ldc, &acc[r][0], &acc[r][1], w0, accumulate);
            ck_store_row(c1 + r * ldc, &acc[r][2], &acc[r][3], w1, accumulate);
        }
    }
}
#undef CK_K_LOOP

// One row (matrix-vector) against `np` ≤ 4 panels at once (np a compile-time constant after
// inlining): each panel's two accumulators sum over k in order, exactly as a row of ck_micro and
// ck_micro_pair does, so a row comes out with the same bits alone as in any block of rows (the
// splits that follow the threads' speeds and the rows handed over mid-loop rely on it); the
// panels' 2·np independent chains hide the FMA latency. (Interleaving k instead, as this kernel
// once did, gave a lone row other bits than the same row in a block.)
CK_INLINE void ck_micro_row(const long np, long k, const float *restrict a, const float *const *panels, long ldb,
                            float *const *c, const long *width, int accumulate) {
    v16 lo[4], hi[4];
#pragma clang loop unroll(full)
    for (long q = 0; q < 4; q++) { lo[q] = (v16){0}; hi[q] = (v16){0}; }
    for (long kk = 0; kk < k; kk++) {
        float av = a[kk];
#pragma clang loop unroll(full)
        for (long q = 0; q < 4; q++) {
            if (q < np) {
                lo[q] += av * *(const v16 *)(panels[q] + kk * ldb);
                hi[q] += av * *(const v16 *)(panels[q] + kk * ldb + 16);
            }
        }
    }
#pragma clang loop unroll(full)
    for (long q = 0; q < 4; q++)
        if (q < np) ck_store_row(c[q], &lo[q], &hi[q], width[q], accumulate);
}

CK_KERNEL void ck_gemm_panels(long m, long k, const float *a, long lda, const float *b, long ldb,
                              long panelStride, long groups, long groupStride, long panelBegin, long panelEnd,
                              long n, float *c, long ldc, int accumulate, int descending) {
#if CK_HAS_AVX2_KERNELS
    if (ck_avx2_kernels_chosen()) {
        ck_gemm_panels_avx2(m, k, a, lda, b, ldb, panelStride, groups, groupStride, panelBegin, panelEnd, n, c, ldc,
                            accumulate, descending);
        return;
    }
#endif
    ck_panel_order order = ck_panel_order_of(groups, groupStride, panelBegin, panelEnd, descending);
    long count = order.count;
    if (m == 1) {
        for (long i = 0; i < count; i += 4) {
            const float *panels[4];
            float *out[4];
            long width[4], np = count - i < 4 ? count - i : 4;
            ck_row_panels(&order, i, np, b, panelStride, c, n, panels, out, width);
            switch (np) {
            case 4: ck_micro_row(4, k, a, panels, ldb, out, width, accumulate); break;
            case 3: ck_micro_row(3, k, a, panels, ldb, out, width, accumulate); break;
            case 2: ck_micro_row(2, k, a, panels, ldb, out, width, accumulate); break;
            default: ck_micro_row(1, k, a, panels, ldb, out, width, accumulate); break;
            }
        }
        return;
    }
    // Packed panels of 1 MB or more (half of L2, which also holds the step's other weights and
    // activations) come from L3, or are partly evicted, on every call: prefetch the next one.
    // (1 MB of W_hh at C1, next to 512 KB of W_ih: LSTM inference 1.03-1.05x. Below that, the
    // prefetches only cost issue slots: 2-5% on L2-resident weights.)
    int prefetch = ck_panels_prefetched(ldb, panelStride, k, count);
    // Chunks of rows outside, panels inside, 8-row blocks innermost: each panel is read once per
    // chunk and reused from L1/L2 by the chunk's row blocks, while the chunk of A stays in L2.
    // Panels from L3 get 1 MB chunks of A (a 16 × 4096 dG_t in 128 KB chunks read the 8 MB of
    // W_hh twice per step: 705 µs, against 490 µs in one chunk); L2-resident ones 128 KB.
    long chunk = ck_row_chunk(prefetch, k);
    for (long r0 = 0; r0 < m; r0 += chunk) {
        long r1 = r0 + chunk < m ? r0 + chunk : m;
        long i = 0;
        // Pairs of panels with 6-row blocks (see ck_micro_pair). Blocks 0 and 1 prefetch the
        // next pair's first and second panel (each block one panel, both halves). Up to k = 2048
        // (a pair of 512 KB): beyond, a pair and the next one no longer fit in L2 together
        // (16 × 4096 × 512: 968 µs in pairs against 879 in single panels).
        for (; k <= CK_PAIR_MAX_K && i + 1 < count; i += 2) {
            long pa = ck_panel_at(&order, i), pb = ck_panel_at(&order, i + 1);
            long ja = pa * PANEL, jb = pb * PANEL;
            long wa = n - ja < PANEL ? n - ja : PANEL, wb = n - jb < PANEL ? n - jb : PANEL;
            const float *panelA = b + pa * panelStride, *panelB = b + pb * panelStride;
            const float *nextA = prefetch && i + 2 < count ? b + ck_panel_at(&order, i + 2) * panelStride : NULL;
            const float *nextB = prefetch && i + 3 < count ? b + ck_panel_at(&order, i + 3) * panelStride : NULL;
            for (long r = r0, block = 0; r < r1; block++) {
                long rest = r1 - r;
                long mr = rest >= 6 ? 6 : rest >= 4 ? 4 : rest >= 2 ? 2 : 1;
                const float *ar = a + r * lda;
                float *ca = c + r * ldc + ja, *cb = c + r * ldc + jb;
                const float *next = block == 0 ? nextA : block == 1 ? nextB : NULL;
                const float *pfA = next, *pfB = next ? next + k * 16 : NULL;
                switch (mr) {
                case 6: ck_micro_pair(6, k, ar, lda, panelA, panelB, ldb, ca, cb, ldc, wa, wb, accumulate, pfA, pfB); break;
                case 4: ck_micro_pair(4, k, ar, lda, panelA, panelB, ldb, ca, cb, ldc, wa, wb, accumulate, pfA, pfB); break;
                case 2: ck_micro_pair(2, k, ar, lda, panelA, panelB, ldb, ca, cb, ldc, wa, wb, accumulate, pfA, pfB); break;
                default: ck_micro_pair(1, k, ar, lda, panelA, panelB, ldb, ca, cb, ldc, wa, wb, accumulate, pfA, pfB); break;
                }
                r += mr;
            }
        }
        // A last single panel: 8-row blocks.
        for (; i < count; i++) {
            long p = ck_panel_at(&order, i);
            long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
            const float *panel = b + p * panelStride;
            // The first row block prefetches the first half of the next panel, the second block
            // the second half; a lone block prefetches both.
            const float *next = prefetch && i + 1 < count ? b + ck_panel_at(&order, i + 1) * panelStride : NULL;
            for (long r = r0, block = 0; r < r1; block++) {
                long rest = r1 - r;
                long mr = rest >= 8 ? 8 : rest >= 4 ? 4 : rest >= 2 ? 2 : 1;
                const float *ar = a + r * lda;
                float *cr = c + r * ldc + j0;
                const float *pfA = block < 2 && next ? next + block * k * 16 : NULL;
                const float *pfB = block == 0 && next && r + mr >= r1 ? next + k * 16 : NULL;
                switch (mr) {
                case 8: ck_micro(8, k, ar, lda, panel, ldb, cr, ldc, width, accumulate, pfA, pfB); break;
                case 4: ck_micro(4, k, ar, lda, panel, ldb, cr, ldc, width, accumulate, pfA, pfB); break;
                case 2: ck_micro(2, k, ar, lda, panel, ldb, cr, ldc, width, accumulate, pfA, pfB); break;
                default: ck_micro(1, k, ar, lda, panel, ldb, cr, ldc, width, accumulate, pfA, pfB); break;
                }
                r += mr;
            }
        }
    }
}

void ck_gemm_packed(long m, long k, const float *a, long lda, const float *packed,
                    long panelBegin, long panelEnd, long n, float *c, long ldc, int accumulate) {
    ck_gemm_panels(m, k, a, lda, packed, PANEL, PANEL * k, 1, 0, panelBegin, panelEnd, n, c, ldc, accumulate, 0);
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

typedef int32_t vi16 __attribute__((vector_size(64)));

// The aligned 16 floats at p with the lanes outside from..<to set to zero, by an AND with a
// lane mask: a plain product with a zero x lane would not do, since the lanes read outside a
// row may hold a NaN bit pattern.
#define CK_MASKED_LOAD(p, from, to)                                                                    \
    ((v16)(*(const vi16 *)__builtin_assume_aligned((p), 64) &                                         \
           (((vi16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} >= (int32_t)(from)) &      \
            ((vi16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (int32_t)(to)))))

// ck_gemv_rows for `rows` rows that all start `o` floats (0…15) past a 64-byte boundary (ldw a
// multiple of 16): each row is read as aligned vectors from o floats before its start, the
// lanes outside the row masked to zero, against a copy of x shifted by o. A misaligned row
// otherwise splits every 16-float load over two cache lines (measured: 7.2 µs against 5.8 µs
// per step for half of a 1024 × 256 W_hh, which Swift arrays never align; this path: 4.8–5.1 µs
// at any offset). The masked reads stay within the cache lines (so the pages) that hold the row.
// xs is x shifted by o and zero-padded to `chunks` aligned vectors (the last with `tail` valid
// lanes).
CK_INLINE void ck_gemv_shifted_range(long rows, long k, const float *w, long ldw, long o, const float *xs,
                                     long chunks, long tail, const float *x, float *y, int accumulate,
                                     int descending) {
    long blocks = (rows + 15) / 16;
    for (long bi = 0; bi < blocks; bi++) {
        long r = (descending ? blocks - 1 - bi : bi) * 16;
        long block = rows - r < 16 ? rows - r : 16;
        v16 acc[16];
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) acc[i] = (v16){0};
        const float *base = w + r * ldw - o;    // 64-byte aligned
        if (block == 16) {
            v16 x0 = *(const v16 *)xs;
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++)
                acc[i] = CK_MASKED_LOAD(base + i * ldw, o, chunks == 1 ? tail : 16) * x0;
            for (long c = 1; c < chunks - 1; c++) {
                v16 xv = *(const v16 *)(xs + c * 16);
#pragma clang loop unroll(full)
                for (int i = 0; i < 16; i++)
                    acc[i] += *(const v16 *)__builtin_assume_aligned(base + i * ldw + c * 16, 64) * xv;
            }
            if (chunks > 1) {
                long c = chunks - 1;
                v16 xv = *(const v16 *)(xs + c * 16);
#pragma clang loop unroll(full)
                for (int i = 0; i < 16; i++)
                    acc[i] += CK_MASKED_LOAD(base + i * ldw + c * 16, 0, tail) * xv;
            }
            float sums[16];
            ck_reduce16(acc, sums);
            for (int i = 0; i < 16; i++) y[r + i] = accumulate ? y[r + i] + sums[i] : sums[i];
        } else {
            for (long i = 0; i < block; i++) {
                float s = 0;
                for (long kk = 0; kk < k; kk++) s += w[(r + i) * ldw + kk] * x[kk];
                y[r + i] = accumulate ? y[r + i] + s : s;
            }
        }
    }
}

// `rows` rows read as they lie (row strides not a multiple of 16), prefetching ahead in each row.
CK_INLINE void ck_gemv_plain_range(long rows, long k, const float *w, long ldw, const float *x, float *y,
                                   int accumulate, int descending) {
    long k16 = k - k % 16, full = rows / 16;
    for (long bi = 0; bi < full; bi++) {
        long r = (descending ? full - 1 - bi : bi) * 16;
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
    for (long r = full * 16; r < rows; r++) {
        float s = 0;
        for (long kk = 0; kk < k; kk++) s += w[r * ldw + kk] * x[kk];
        y[r] = accumulate ? y[r] + s : s;
    }
}

CK_KERNEL void ck_gemv_rows(long groups, long groupStride, long rows, long k, const float *w, long ldw,
                            const float *x, float *y, int accumulate, int descending) {
#if CK_HAS_AVX2_KERNELS
    if (ck_avx2_kernels_chosen()) {
        ck_gemv_rows_avx2(groups, groupStride, rows, k, w, ldw, x, y, accumulate, descending);
        return;
    }
#endif
    long o = (long)(((uintptr_t)w >> 2) & 15);
    if (((uintptr_t)w & 3) == 0 && ldw % 16 == 0 && k <= CK_GEMV_SHIFTED_MAX && k >= 16) {
        // x shifted by o, copied once for all the ranges.
        float xs[CK_GEMV_SHIFTED_MAX + 32] __attribute__((aligned(64)));
        long chunks = (o + k + 15) / 16;
        for (long i = 0; i < chunks * 16; i++) xs[i] = i >= o && i < o + k ? x[i - o] : 0.0f;
        long tail = o + k - (chunks - 1) * 16;   // valid lanes of the last chunk
        for (long gi = 0; gi < groups; gi++) {
            long g = descending ? groups - 1 - gi : gi;
            ck_gemv_shifted_range(rows, k, w + g * groupStride * ldw, ldw, o, xs, chunks, tail, x,
                                  y + g * groupStride, accumulate, descending);
        }
        return;
    }
    for (long gi = 0; gi < groups; gi++) {
        long g = descending ? groups - 1 - gi : gi;
        ck_gemv_plain_range(rows, k, w + g * groupStride * ldw, ldw, x, y + g * groupStride, accumulate, descending);
    }
}

int ck_packed_gemm_is_fast(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") || ck_avx2_kernels_chosen();
#else
    return 0;
#endif
}
