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
// Bytes of panels per call from which ck_gemm_panels prefetches the next panel (tuned on a 2 MB
// L2; the AVX2 kernels were measured with it on a 1 MB one).
#define CK_PREFETCH_PANELS_BYTES (1L << 20)

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
