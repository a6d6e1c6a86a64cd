// Attributes shared by the vectorized kernels (gate_kernels.c, packed_gemm.c).
#ifndef CK_KERNEL_ATTRIBUTES_H
#define CK_KERNEL_ATTRIBUTES_H

// On x86-64 a kernel is compiled three times (AVX-512; x86-64-v3, which is AVX2 with FMA; and
// baseline) and the loader picks the widest the CPU supports (function multi-versioning). The
// middle level names FMA too: AVX2 alone would leave every multiply-add unfused there.
#if defined(__x86_64__) && defined(__clang__)
#define CK_KERNEL __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define CK_KERNEL
#endif
#define CK_INLINE static inline __attribute__((always_inline))

#endif
