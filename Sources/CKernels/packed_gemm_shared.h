// What the packed products' two files share: the tuning constants, and the AVX2 + FMA versions
// (packed_gemm_avx2.c) that packed_gemm.c's entry points hand their calls to on CPUs without
// AVX-512, with the same arguments and the same bits.
#ifndef CK_PACKED_GEMM_SHARED_H
#define CK_PACKED_GEMM_SHARED_H

#include "CKernels.h"

#define PANEL CK_PANEL_WIDTH
// How far ahead in a row ck_gemv_rows's general path (row strides not a multiple of 16)
// prefetches (4 cache lines): the 16 rows it reads at once are too many streams for the
// hardware prefetchers.
#define CK_PREFETCH_FLOATS 64
// Longest row (floats) ck_gemv_rows reads as shifted aligned vectors (its x copy is on the stack).
#define CK_GEMV_SHIFTED_MAX 4096
// Rows of A that ck_gemm_panels keeps in L2 while panels stream past them from L3 (bytes).
#define CK_A_CHUNK_BYTES (1L << 20)
// A core's L2 on the AVX2 machine measured (AMD EPYC, 1 MB).
#define CK_L2_BYTES (1L << 20)

// The panels of one ck_gemm_panels call in the order it takes them: ranges panelBegin..<panelEnd
// shifted by g·groupStride for g in 0..<groups, last to first when descending (every panel's
// results are the same in either order).
typedef struct {
    long count, perGroup, begin, groupStride;
    int descending;
} ck_panel_order;

static inline ck_panel_order ck_panel_order_of(long groups, long groupStride, long panelBegin, long panelEnd,
                                               int descending) {
    long perGroup = panelEnd > panelBegin ? panelEnd - panelBegin : 0;
    return (ck_panel_order){groups * perGroup, perGroup, panelBegin, groupStride, descending};
}

// The i-th panel taken.
static inline long ck_panel_at(const ck_panel_order *o, long i) {
    long ordinal = o->descending ? o->count - 1 - i : i;
    return o->begin + (ordinal / o->perGroup) * o->groupStride + ordinal % o->perGroup;
}

// For a one-row product: panels i..<i+np of the order, where each starts in b, where its
// results go in c, and how many of its columns are real (the last panel of n may be partial).
static inline void ck_row_panels(const ck_panel_order *o, long i, long np, const float *b, long panelStride, float *c,
                                 long n, const float **panels, float **out, long *width) {
    for (long q = 0; q < np; q++) {
        long p = ck_panel_at(o, i + q), j0 = p * PANEL;
        panels[q] = b + p * panelStride;
        out[q] = c + j0;
        width[q] = n - j0 < PANEL ? n - j0 : PANEL;
    }
}

// Packed panels of CK_STREAMED_BYTES or more a call come from L3 (or are partly evicted) on
// every call, so each next one is prefetched (tuned on a 2 MB L2; the AVX2 kernels were measured
// with it on a 1 MB one).
static inline int ck_panels_prefetched(long ldb, long panelStride, long k, long count) {
    return ldb == PANEL && panelStride == PANEL * k && count * panelStride * (long)sizeof(float) >= CK_STREAMED_BYTES;
}

// Rows of A per chunk (a multiple of 8): CK_A_CHUNK_BYTES of A while panels stream from L3,
// else 128 KB.
static inline long ck_row_chunk(int prefetch, long k) {
    long chunk = ((prefetch ? CK_A_CHUNK_BYTES : 131072) / (4 * (k > 0 ? k : 1))) & ~7L;
    return chunk < 8 ? 8 : chunk;
}

#if defined(__x86_64__) && defined(__clang__)
#define CK_HAS_AVX2_KERNELS 1
void ck_gemm_panels_avx2(long m, long k, const float *a, long lda, const float *b, long ldb,
                         long panelStride, long groups, long groupStride, long panelBegin, long panelEnd,
                         long n, float *c, long ldc, int accumulate, int descending);
void ck_gemv_rows_avx2(long groups, long groupStride, long rows, long k, const float *w, long ldw,
                       const float *x, float *y, int accumulate, int descending);
/// Whether the CPU has AVX2 and FMA but not AVX-512F (computed once).
int ck_avx2_kernels_chosen(void);
#else
#define CK_HAS_AVX2_KERNELS 0
#endif

#endif
