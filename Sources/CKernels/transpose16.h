// A 16 × 16 transpose of 32-bit values in AVX-512 registers, shared by the packing of the FMA
// kernels (packed_gemm.c) and of the tile kernels (tile_gemm.c).
#ifndef CK_TRANSPOSE16_H
#define CK_TRANSPOSE16_H

#include "kernel_attributes.h"

typedef float ck_v16f __attribute__((vector_size(64), aligned(4)));

// One level of a 16 × 16 transpose in registers: for each pair of rows (i, i + b) with bit b of
// i clear, swap the b × b blocks above and below the diagonal. Levels b = 8, 4, 2, 1 together
// transpose the whole block.
#define CK_SWAP_LEVEL(b, X, Y)                                                                        \
    do {                                                                                              \
        ck_v16f x_ = (X), y_ = (Y);                                                                   \
        (X) = __builtin_shufflevector(x_, y_, CK_LO_##b);                                             \
        (Y) = __builtin_shufflevector(x_, y_, CK_HI_##b);                                             \
    } while (0)
// new x[l] = l has bit b ? y[l - b] : x[l];  new y[l] = l has bit b ? y[l] : x[l + b]
#define CK_LO_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define CK_HI_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define CK_LO_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define CK_HI_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define CK_LO_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define CK_HI_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define CK_LO_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define CK_HI_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31

// dst[c·ldd + r] = src[r·lds + c] for a 16 × 16 block.
CK_INLINE void ck_transpose16(const float *src, long lds, float *dst, long ldd) {
    ck_v16f v[16];
#pragma clang loop unroll(full)
    for (int r = 0; r < 16; r++) v[r] = *(const ck_v16f *)(src + r * lds);
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) if (!(i & 8)) CK_SWAP_LEVEL(8, v[i], v[i + 8]);
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) if (!(i & 4)) CK_SWAP_LEVEL(4, v[i], v[i + 4]);
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) if (!(i & 2)) CK_SWAP_LEVEL(2, v[i], v[i + 2]);
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) if (!(i & 1)) CK_SWAP_LEVEL(1, v[i], v[i + 1]);
#pragma clang loop unroll(full)
    for (int c = 0; c < 16; c++) *(ck_v16f *)(dst + c * ldd) = v[c];
}

#endif
