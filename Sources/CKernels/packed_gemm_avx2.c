// The packed products of packed_gemm.c (`ck_gemm_panels`, `ck_gemv_rows`) for x86-64 CPUs with
// AVX2 and FMA but no AVX-512: most AMD CPUs before Zen 4, Zen 4 where a hypervisor hides
// AVX-512 (the AMD EPYC this project was measured on in November 2026), Intel's client chips.
// 16 registers of 8 floats instead of 32 of 16, so the register blocks change, and nothing else.
//
// Every result has the same bits as the AVX-512 kernels give: an element of a panel product is
// the same chain of fused multiply-adds over k from zero, and a dot product of `ck_gemv_rows`
// keeps the same 16 partial sums (lane j sums k ≡ j mod 16, from the same 64-byte-aligned
// reads) and adds them in the same tree. So these products give the same numbers on both kinds
// of machine, and the tests of rows and panels coming out alike hold on both
// (`PackedKernelArithmeticTests` checks either set against the same scalar definition).
#include "packed_gemm_shared.h"

#if CK_HAS_AVX2_KERNELS
#include <immintrin.h>
#include <stdint.h>

#define CK_AVX2 __attribute__((target("avx2,fma")))
#define CK_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// One row of 16 columns (two vectors) into cr: stored, or added to C, only the first `width`.
CK_AVX2_INLINE void ck8_store16(float *restrict cr, __m256 lo, __m256 hi, long width, int accumulate) {
    if (width >= 16) {
        if (accumulate) {
            lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
            hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);
        }
        _mm256_storeu_ps(cr, lo);
        _mm256_storeu_ps(cr + 8, hi);
    } else {
        float tmp[16];
        _mm256_storeu_ps(tmp, lo);
        _mm256_storeu_ps(tmp + 8, hi);
        for (long j = 0; j < width; j++) cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
    }
}

// C[mr × w] (+)= A[mr × k] · B[k × 16] for 16 columns of a panel (rows ldb apart): mr ≤ 6 rows
// × 2 vectors = 12 accumulators, 2 loads of B and mr broadcasts per k for 2·mr FMAs. With
// `from` (rows of 32 floats, as ck8_panel_block keeps them) the chains go on from there
// instead of zero, so a product over k in blocks has the bits of one pass.
// With pf, line pf + 16·kk is prefetched with row kk (the next panel, streamed from L3) into L2
// only (prefetcht1): the next panel is 128 KB at k = 1024, four times a 32 KB L1, so into L1 it
// can only push out lines the current panel's row blocks still read (the likely reason; no
// counters to show it on this VM). Paired against prefetches into L1 (`bench_paired.py
// --versus`, 16-30 pairs of chunks, three runs; median of the pair ratios): C2 LSTM inference
// 1.02, 1.09, 1.06; C4 LSTM inference 1.12, 1.01, 1.05.
CK_AVX2_INLINE void ck8_micro(const long mr, long k, const float *restrict a, long lda, const float *restrict p,
                              long ldb, const float *from, float *c, long ldc, long width, int accumulate,
                              const float *pf) {
    __m256 acc[6][2];
#pragma clang loop unroll(full)
    for (long r = 0; r < 6; r++) {
        if (from && r < mr) {
            acc[r][0] = _mm256_loadu_ps(from + r * 32);
            acc[r][1] = _mm256_loadu_ps(from + r * 32 + 8);
        } else {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        }
    }
#define CK8_STEP(kk)                                                                                   \
    do {                                                                                              \
        __m256 b0 = _mm256_loadu_ps(p + (kk) * ldb), b1 = _mm256_loadu_ps(p + (kk) * ldb + 8);        \
        _Pragma("clang loop unroll(full)") for (long r = 0; r < 6; r++) {                             \
            if (r < mr) {                                                                             \
                __m256 av = _mm256_broadcast_ss(a + r * lda + (kk));                                  \
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                                       \
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                                       \
            }                                                                                         \
        }                                                                                             \
    } while (0)
    if (pf) {
        for (long kk = 0; kk < k; kk++) {
            __builtin_prefetch(pf + kk * 16, 0, 2);
            CK8_STEP(kk);
        }
    } else {
        for (long kk = 0; kk < k; kk++) CK8_STEP(kk);
    }
#undef CK8_STEP
#pragma clang loop unroll(full)
    for (long r = 0; r < 6; r++)
        if (r < mr) ck8_store16(c + r * ldc, acc[r][0], acc[r][1], width, accumulate);
}

// One row against np ≤ 3 panels at once (12 accumulators; ck_micro_row takes 4 with 32
// registers): each element's chain over k as in the kernels above.
CK_AVX2_INLINE void ck8_micro_row(const long np, long k, const float *restrict a, const float *const *panels,
                                  long ldb, float *const *c, const long *width, int accumulate) {
    __m256 acc[3][4];
#pragma clang loop unroll(full)
    for (long q = 0; q < 3; q++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < 4; v++) acc[q][v] = _mm256_setzero_ps();
    }
    for (long kk = 0; kk < k; kk++) {
        __m256 av = _mm256_broadcast_ss(a + kk);
#pragma clang loop unroll(full)
        for (long q = 0; q < 3; q++) {
            if (q < np) {
                const float *row = panels[q] + kk * ldb;
#pragma clang loop unroll(full)
                for (int v = 0; v < 4; v++) acc[q][v] = _mm256_fmadd_ps(av, _mm256_loadu_ps(row + 8 * v), acc[q][v]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (long q = 0; q < 3; q++) {
        if (q < np) {
            ck8_store16(c[q], acc[q][0], acc[q][1], width[q], accumulate);
            if (width[q] > 16) ck8_store16(c[q] + 16, acc[q][2], acc[q][3], width[q] - 16, accumulate);
        }
    }
}

// Terms of k per block when ck_gemm_panels_avx2 takes its panels in blocks of k (32 KB of a
// panel).
#define CK8_KC 256

// Rows [r0, r1) of a panel (each half of 16 columns in turn; rows ldb apart) over the terms
// k0..<k1 of k: row blocks of 6, the last 7 or 8 rows as 4 + 3 or 4 + 4 (a block of 2 rows has 4
// accumulators, too few to cover the FMA latency). The chains go on from `partial` (rows of
// 32) after the first block of terms, and back there before the last. With pf, the first row
// block of each half prefetches half of the (k1 − k0)·32 floats from pf (what comes next).
CK_AVX2_INLINE void ck8_panel_block(long r0, long r1, long k0, long k1, long k, const float *a, long lda,
                                    const float *panel, long ldb, float *c, long ldc, long width, int accumulate,
                                    const float *pf, float *partial) {
    long kb = k1 - k0;
    int first = k0 == 0, last = k1 == k;
    for (long h = 0; h < 2 && 16 * h < width; h++) {
        const float *p = panel + 16 * h + k0 * ldb;
        long w = width - 16 * h < 16 ? width - 16 * h : 16;
        for (long r = r0; r < r1;) {
            long rest = r1 - r;
            long mr = rest > 8 ? 6 : rest >= 7 ? 4 : rest;
            const float *ar = a + r * lda + k0, *pfr = r == r0 && pf ? pf + h * kb * 16 : NULL;
            float *kept = first && last ? NULL : partial + (r - r0) * 32 + 16 * h;
            const float *from = first ? NULL : kept;
            float *out = last ? c + r * ldc + 16 * h : kept;
            long ldo = last ? ldc : 32, wo = last ? w : 16;
            int acc = last ? accumulate : 0;
            switch (mr) {
            case 6: ck8_micro(6, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            case 5: ck8_micro(5, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            case 4: ck8_micro(4, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            case 3: ck8_micro(3, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            case 2: ck8_micro(2, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            default: ck8_micro(1, kb, ar, lda, p, ldb, from, out, ldo, wo, acc, pfr); break;
            }
            r += mr;
        }
    }
}

CK_AVX2 void ck_gemm_panels_avx2(long m, long k, const float *a, long lda, const float *b, long ldb,
                                 long panelStride, long groups, long groupStride, long panelBegin, long panelEnd,
                                 long n, float *c, long ldc, int accumulate, int descending) {
    ck_panel_order order = ck_panel_order_of(groups, groupStride, panelBegin, panelEnd, descending);
    long count = order.count;
    if (m == 1) {
        for (long i = 0; i < count; i += 3) {
            const float *panels[3];
            float *out[3];
            long width[3], np = count - i < 3 ? count - i : 3;
            ck_row_panels(&order, i, np, b, panelStride, c, n, panels, out, width);
            switch (np) {
            case 3: ck8_micro_row(3, k, a, panels, ldb, out, width, accumulate); break;
            case 2: ck8_micro_row(2, k, a, panels, ldb, out, width, accumulate); break;
            default: ck8_micro_row(1, k, a, panels, ldb, out, width, accumulate); break;
            }
        }
        return;
    }
    // Panels of 1 MB or more come from L3: each prefetches the next while it is multiplied, the
    // first row block of its first half the next panel's first half, of its second half the rest.
    int prefetch = ck_panels_prefetched(ldb, panelStride, k, count);
    long chunk = ck_row_chunk(prefetch, k);
    // When a step product's few rows of A (up to 32), its panel and the next one prefetched
    // outgrow L2 (16 rows at k = 4096, C4's backward step: 256 KB + 2 × 512 KB), panels go in
    // blocks of CK8_KC terms, each block prefetching the next (the chains kept between blocks).
    int blocked = prefetch && m <= 32 && k > 2 * CK8_KC && (m + 2 * PANEL) * k * (long)sizeof(float) > CK_L2_BYTES;
    long kc = blocked ? CK8_KC : k;
    float partial[blocked ? 32 * 32 : 1];
    for (long r0 = 0; r0 < m; r0 += chunk) {
        long r1 = r0 + chunk < m ? r0 + chunk : m;
        for (long i = 0; i < count; i++) {
            long p = ck_panel_at(&order, i);
            long j0 = p * PANEL, width = n - j0 < PANEL ? n - j0 : PANEL;
            const float *panel = b + p * panelStride;
            const float *next = prefetch && i + 1 < count ? b + ck_panel_at(&order, i + 1) * panelStride : NULL;
            for (long k0 = 0;; k0 += kc) {
                long k1 = k - k0 < kc + kc / 2 ? k : k0 + kc;
                ck8_panel_block(r0, r1, k0, k1, k, a, lda, panel, ldb, c + j0, ldc, width, accumulate,
                                k1 < k ? panel + k1 * PANEL : next, partial);
                if (k1 == k) break;
            }
        }
    }
}

// The sum of the 16 lanes (lo: 0–7, hi: 8–15) in ck_reduce16's tree: a_j = v_j + v_{j+8},
// b_j = a_j + a_{j+4}, then (b_0 + b_2) + (b_1 + b_3).
CK_AVX2_INLINE float ck8_reduce16(__m256 lo, __m256 hi) {
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// Lanes from..<to of 16 as two all-ones masks (lo: lanes 0–7, hi: 8–15).
CK_AVX2_INLINE void ck8_lane_mask(long from, long to, __m256 *lo, __m256 *hi) {
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i f = _mm256_set1_epi32((int)from), t = _mm256_set1_epi32((int)to), eight = _mm256_set1_epi32(8);
    __m256i upper = _mm256_add_epi32(lanes, eight);
    // lane ≥ from and lane < to  ⇔  lane > from − 1 and to > lane
    __m256i fm1 = _mm256_sub_epi32(f, _mm256_set1_epi32(1));
    *lo = _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(lanes, fm1), _mm256_cmpgt_epi32(t, lanes)));
    *hi = _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(upper, fm1), _mm256_cmpgt_epi32(t, upper)));
}

// Rows that all start o floats past a 64-byte boundary (see ck_gemv_shifted_range): 16-row
// blocks as in the AVX-512 kernel (a last partial block by scalar sums, as there), each in four
// groups of 4 rows (8 accumulators).
CK_AVX2_INLINE void ck8_gemv_shifted_range(long rows, long k, const float *w, long ldw, long o, const float *xs,
                                           long chunks, long tail, const float *x, float *y, int accumulate,
                                           int descending) {
    __m256 firstLo, firstHi, lastLo, lastHi;
    ck8_lane_mask(o, chunks == 1 ? tail : 16, &firstLo, &firstHi);
    ck8_lane_mask(0, tail, &lastLo, &lastHi);
    long blocks = (rows + 15) / 16;
    for (long bi = 0; bi < blocks; bi++) {
        long r = (descending ? blocks - 1 - bi : bi) * 16;
        long block = rows - r < 16 ? rows - r : 16;
        if (block < 16) {
            for (long i = 0; i < block; i++) {
                float s = 0;
                for (long kk = 0; kk < k; kk++) s += w[(r + i) * ldw + kk] * x[kk];
                y[r + i] = accumulate ? y[r + i] + s : s;
            }
            continue;
        }
        for (long g = 0; g < 16; g += 4) {
            const float *base = w + (r + g) * ldw - o;   // 64-byte aligned
            __m256 lo[4], hi[4];
            __m256 x0 = _mm256_load_ps(xs), x1 = _mm256_load_ps(xs + 8);
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                lo[i] = _mm256_mul_ps(_mm256_and_ps(_mm256_load_ps(base + i * ldw), firstLo), x0);
                hi[i] = _mm256_mul_ps(_mm256_and_ps(_mm256_load_ps(base + i * ldw + 8), firstHi), x1);
            }
            for (long ch = 1; ch < chunks - 1; ch++) {
                __m256 v0 = _mm256_load_ps(xs + ch * 16), v1 = _mm256_load_ps(xs + ch * 16 + 8);
#pragma clang loop unroll(full)
                for (int i = 0; i < 4; i++) {
                    lo[i] = _mm256_fmadd_ps(_mm256_load_ps(base + i * ldw + ch * 16), v0, lo[i]);
                    hi[i] = _mm256_fmadd_ps(_mm256_load_ps(base + i * ldw + ch * 16 + 8), v1, hi[i]);
                }
            }
            if (chunks > 1) {
                long ch = chunks - 1;
                __m256 v0 = _mm256_load_ps(xs + ch * 16), v1 = _mm256_load_ps(xs + ch * 16 + 8);
#pragma clang loop unroll(full)
                for (int i = 0; i < 4; i++) {
                    lo[i] = _mm256_fmadd_ps(_mm256_and_ps(_mm256_load_ps(base + i * ldw + ch * 16), lastLo), v0, lo[i]);
                    hi[i] = _mm256_fmadd_ps(_mm256_and_ps(_mm256_load_ps(base + i * ldw + ch * 16 + 8), lastHi), v1,
                                            hi[i]);
                }
            }
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                float s = ck8_reduce16(lo[i], hi[i]);
                long row = r + g + i;
                y[row] = accumulate ? y[row] + s : s;
            }
        }
    }
}

// Rows read as they lie (row strides not a multiple of 16), prefetching ahead in each row.
CK_AVX2_INLINE void ck8_gemv_plain_range(long rows, long k, const float *w, long ldw, const float *x, float *y,
                                         int accumulate, int descending) {
    long k16 = k - k % 16, full = rows / 16;
    for (long bi = 0; bi < full; bi++) {
        long r = (descending ? full - 1 - bi : bi) * 16;
        for (long g = 0; g < 16; g += 4) {
            __m256 lo[4], hi[4];
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) { lo[i] = _mm256_setzero_ps(); hi[i] = _mm256_setzero_ps(); }
            for (long kk = 0; kk < k16; kk += 16) {
                __m256 v0 = _mm256_loadu_ps(x + kk), v1 = _mm256_loadu_ps(x + kk + 8);
#pragma clang loop unroll(full)
                for (int i = 0; i < 4; i++) {
                    const float *row = w + (r + g + i) * ldw + kk;
                    __builtin_prefetch(row + CK_PREFETCH_FLOATS);
                    lo[i] = _mm256_fmadd_ps(_mm256_loadu_ps(row), v0, lo[i]);
                    hi[i] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8), v1, hi[i]);
                }
            }
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                long row = r + g + i;
                float s = ck8_reduce16(lo[i], hi[i]);
                for (long kk = k16; kk < k; kk++) s += w[row * ldw + kk] * x[kk];
                y[row] = accumulate ? y[row] + s : s;
            }
        }
    }
    for (long r = full * 16; r < rows; r++) {
        float s = 0;
        for (long kk = 0; kk < k; kk++) s += w[r * ldw + kk] * x[kk];
        y[r] = accumulate ? y[r] + s : s;
    }
}

CK_AVX2 void ck_gemv_rows_avx2(long groups, long groupStride, long rows, long k, const float *w, long ldw,
                               const float *x, float *y, int accumulate, int descending) {
    long o = (long)(((uintptr_t)w >> 2) & 15);
    if (((uintptr_t)w & 3) == 0 && ldw % 16 == 0 && k <= CK_GEMV_SHIFTED_MAX && k >= 16) {
        float xs[CK_GEMV_SHIFTED_MAX + 32] __attribute__((aligned(64)));
        long chunks = (o + k + 15) / 16;
        for (long i = 0; i < chunks * 16; i++) xs[i] = i >= o && i < o + k ? x[i - o] : 0.0f;
        long tail = o + k - (chunks - 1) * 16;
        for (long gi = 0; gi < groups; gi++) {
            long g = descending ? groups - 1 - gi : gi;
            ck8_gemv_shifted_range(rows, k, w + g * groupStride * ldw, ldw, o, xs, chunks, tail, x,
                                   y + g * groupStride, accumulate, descending);
        }
        return;
    }
    for (long gi = 0; gi < groups; gi++) {
        long g = descending ? groups - 1 - gi : gi;
        ck8_gemv_plain_range(rows, k, w + g * groupStride * ldw, ldw, x, y + g * groupStride, accumulate, descending);
    }
}

int ck_avx2_kernels_chosen(void) {
    static int chosen = -1;   // -1: not yet known (a race only computes the same value twice)
    int known = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    __builtin_cpu_init();
    known = !__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    __atomic_store_n(&chosen, known, __ATOMIC_RELAXED);
    return known;
}

#endif
