// fp32 matrix products on the CPU's bf16 matrix units (Intel AMX), at fp32 accuracy.
//
// Each fp32 operand x is split exactly into three bf16 parts, x = x₀ + x₁ + x₂: x₀ is x with its
// mantissa cut to 8 bits, x₁ the same of x − x₀ (|x₁| < 2⁻⁷|x|), and x₂ = x − x₀ − x₁, which has
// at most 8 significant bits and so is a bf16 exactly (|x₂| < 2⁻¹⁵|x|). A product a·b is then the
// sum of the nine part products; the six kept here (a₀b₀, a₀b₁, a₁b₀, a₁b₁, a₀b₂, a₂b₀) leave out
// less than 2⁻²¹·|a·b|, a few fp32 roundings at worst and far less for typical bits. A bf16 × bf16
// product is exact in fp32 and the tile unit adds in fp32 (round to nearest); each pass of up to
// CK_TILE_TERMS_PER_PASS terms is summed from zero and then added to C, as a blocked GEMM does.
// Measured against Float64 (scripts/kernel_harness.c): ≤ 1e-7 of Σ|a·b| at k = 1024 (the FMA
// kernel: 1.6e-7), 2.9e-7 for a 6400-term weight gradient (OpenBLAS: 1.9e-7).
//
// The tile unit does 16 × 16 × 32 multiply-adds per instruction; six products per fp32
// multiply-add still leave it ~1.5x the FMA units' rate on a core of this machine
// (64 × 1024 × 1024: ~230-260 GFLOP/s fp32-equivalent by the median against ~160 for
// `ck_gemm_packed`).
//
// Layouts. The right-hand side B [k × n] is packed once into panels of 32 columns; a panel holds,
// for each block of 32 rows of k, six 16 × 32 bf16 tiles (1 KB each): part 0, 1, 2 of B, each as
// two tiles of 16 columns, in the tile unit's pair layout (tile row r = rows 2r and 2r + 1 of
// the block, element (r, 2c + i) = B(32·kb + 2r + i, j0 + c)). Rows and columns past k and n are
// zeros. The left-hand side A is split on each call into a per-thread buffer, 32 rows at a time
// as two 16-row tiles per part and block of k.
#include "CKernels.h"
#include "transpose16.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TILE_K 32                        // k per block (a tile row: 32 bf16)
#define TILE_PANEL 32                    // columns per panel (two 16-column tiles)
#define TILE_BLOCK (6 * 512)             // bf16 per block of k in a panel: 3 parts × 2 tiles
#define TILE_CHUNK_ROWS 128              // rows of A split at once (kept in L2 while panels pass)
#define TILE_CHUNK_K CK_TILE_TERMS_PER_PASS   // k per pass over C (a longer k is a sum of passes)

static long blocks_of(long k) { return (k + TILE_K - 1) / TILE_K; }

long ck_tile_packed_size(long k, long n) {
    return ((n + TILE_PANEL - 1) / TILE_PANEL) * blocks_of(k) * TILE_BLOCK;
}

// The three bf16 parts of x (cut, not rounded, so that the split is exact).
static inline void split3(float x, uint16_t *p0, uint16_t *p1, uint16_t *p2) {
    uint32_t u, v, w;
    memcpy(&u, &x, 4);
    uint32_t h = u & 0xFFFF0000u;
    float hf, r, mf, l;
    memcpy(&hf, &h, 4);
    r = x - hf;
    memcpy(&v, &r, 4);
    uint32_t m = v & 0xFFFF0000u;
    memcpy(&mf, &m, 4);
    l = r - mf;
    memcpy(&w, &l, 4);
    *p0 = (uint16_t)(h >> 16);
    *p1 = (uint16_t)(m >> 16);
    *p2 = (uint16_t)(w >> 16);
}

// Rows kk ∈ [k0, k1) of panel p, element by element (edges: partial blocks and panels, the
// zero rows that pad k). Row kk of the whole right-hand side is row kk − kOffset of b.
static void pack_rows(long k0, long k1, long p, long k, long n, const float *b, long ldb, int transposed,
                      uint16_t *panel, long kOffset) {
    long j0 = p * TILE_PANEL;
    for (long kk = k0; kk < k1; kk++) {
        uint16_t *block = panel + (kk / TILE_K) * TILE_BLOCK;
        long r = (kk % TILE_K) / 2, lane = kk % 2;
        for (long c = 0; c < TILE_PANEL; c++) {
            long j = j0 + c;
            float x = 0;
            if (kk >= kOffset && kk < kOffset + k && j < n)
                x = transposed ? b[j * ldb + (kk - kOffset)] : b[(kk - kOffset) * ldb + j];
            uint16_t s[3];
            split3(x, &s[0], &s[1], &s[2]);
            long at = (c / 16) * 512 + r * 32 + (c % 16) * 2 + lane;
            block[at] = s[0];
            block[1024 + at] = s[1];
            block[2048 + at] = s[2];
        }
    }
}

#if defined(__x86_64__) && defined(__linux__) && defined(__clang__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CK_TILE_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int tile_state = -1;   // -1 not asked yet, 0 no, 1 yes

static int ask_for_tiles(void) {
    if (getenv("RECURRENT_TILES") && strcmp(getenv("RECURRENT_TILES"), "0") == 0) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, avx512bw = (b >> 30) & 1, avx512f = (b >> 16) & 1;
    if (!(tile && bf16 && avx512f && avx512bw)) return 0;
    // Linux hands out the tile state (8 KB per thread) only to processes that ask (5.16 and later).
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int ck_tile_gemm_available(void) {
    int s = __atomic_load_n(&tile_state, __ATOMIC_ACQUIRE);
    if (s < 0) {
        s = ask_for_tiles();
        __atomic_store_n(&tile_state, s, __ATOMIC_RELEASE);
    }
    return s;
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t bytesPerRow[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

CK_TILE_TARGET static void configure_tiles(void) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int i = 0; i < 8; i++) {
        config.bytesPerRow[i] = 64;
        config.rows[i] = 16;
    }
    _tile_loadconfig(&config);
}

// The per-thread buffer A is split into.
static __thread uint16_t *split_buffer;
static __thread long split_capacity;

static uint16_t *split_space(long count) {
    if (count > split_capacity) {
        free(split_buffer);
        long bytes = (count * 2 + 63) / 64 * 64;
        split_buffer = aligned_alloc(64, (size_t)bytes);
        split_capacity = split_buffer ? count : 0;
    }
    return split_buffer;
}

// The three bf16 parts of 16 values (`split3` in vectors), each in the upper half of its lane with
// the lower half zero.
CK_TILE_TARGET static inline void split_lanes(__m512 x, __m512i part[3]) {
    const __m512i mask = _mm512_set1_epi32((int)0xFFFF0000u);
    part[0] = _mm512_and_si512(_mm512_castps_si512(x), mask);
    __m512 r = _mm512_sub_ps(x, _mm512_castsi512_ps(part[0]));
    part[1] = _mm512_and_si512(_mm512_castps_si512(r), mask);
    part[2] = _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(r, _mm512_castsi512_ps(part[1]))), mask);
}

// The three bf16 parts of 32 values of a row of A (x0, x1) into a tile row of each part.
CK_TILE_TARGET static inline void split_tile_row(__m512 x0, __m512 x1, uint16_t *dst) {
    __m512i p0[3], p1[3];
    split_lanes(x0, p0);
    split_lanes(x1, p1);
    for (int q = 0; q < 3; q++) {
        _mm256_store_si256((__m256i *)(dst + q * 1024), _mm512_cvtepi32_epi16(_mm512_srli_epi32(p0[q], 16)));
        _mm256_store_si256((__m256i *)(dst + q * 1024 + 16), _mm512_cvtepi32_epi16(_mm512_srli_epi32(p1[q], 16)));
    }
}

static inline __mmask16 first_lanes(long lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? 0 : (__mmask16)((1u << lanes) - 1);
}

// Splits rows [0, rows) and columns [0, k) of A into `out` (zeros past them, up to `halves` × 32
// rows and whole blocks of k): for each 32-row half, block of k and part, two 16 × 32 bf16
// tiles. A(i, kk) = a[i·lda + kk], or a[kk·lda + i] when `transposed` (the weight gradient's
// dGᵀ, read as 16 × 16 blocks transposed in registers).
CK_TILE_TARGET static void split_rows(long rows, long halves, long k, const float *a, long lda, int transposed,
                                      uint16_t *out) {
    long blocks = blocks_of(k);
    for (long h = 0; h < halves; h++) {
        uint16_t *half = out + (h * blocks) * TILE_BLOCK;
        if (!transposed) {
            for (long rr = 0; rr < 32; rr++) {
                long row = h * 32 + rr;
                const float *src = a + row * lda;
                uint16_t *base = half + (rr / 16) * 512 + (rr % 16) * 32;
                for (long kb = 0; kb < blocks; kb++) {
                    long k0 = kb * TILE_K, valid = row < rows ? (k - k0 < TILE_K ? k - k0 : TILE_K) : 0;
                    __m512 x0 = _mm512_maskz_loadu_ps(first_lanes(valid), src + k0);
                    __m512 x1 = _mm512_maskz_loadu_ps(first_lanes(valid - 16), src + k0 + 16);
                    split_tile_row(x0, x1, base + kb * TILE_BLOCK);
                }
            }
            continue;
        }
        long i0 = h * 32, iCount = rows - i0 < 32 ? rows - i0 : 32;
        for (long kb = 0; kb < blocks; kb++) {
            long k0 = kb * TILE_K, kCount = k - k0 < TILE_K ? k - k0 : TILE_K;
            float block[32 * 32] __attribute__((aligned(64)));   // block[i·32 + kk] = A(i0 + i, k0 + kk)
            if (iCount == 32 && kCount == 32) {
                for (int iq = 0; iq < 2; iq++)
                    for (int kq = 0; kq < 2; kq++)
                        ck_transpose16(a + (k0 + kq * 16) * lda + i0 + iq * 16, lda, block + iq * 16 * 32 + kq * 16, 32);
            } else {
                for (long i = 0; i < 32; i++)
                    for (long kk = 0; kk < 32; kk++)
                        block[i * 32 + kk] = i < iCount && kk < kCount ? a[(k0 + kk) * lda + i0 + i] : 0.0f;
            }
            for (long i = 0; i < 32; i++)
                split_tile_row(_mm512_load_ps(block + i * 32), _mm512_load_ps(block + i * 32 + 16),
                               half + kb * TILE_BLOCK + (i / 16) * 512 + (i % 16) * 32);
        }
    }
}

// C tiles: 0 = (rows 0-15, columns 0-15), 1 = (rows 0-15, columns 16-31), 2 and 3 the same for
// rows 16-31.
#define A_TILE(q, t) (ablock + (q) * 1024 + (t) * 512)
#define B_TILE(q, t) (bblock + (q) * 1024 + (t) * 512)

// One 32-row half of A against one panel: the six part products for every block of k, into
// C tiles 0-3 that hold the running sums. A tiles 4 and 5 (rows 0-15 and 16-31), B tiles 6 and 7
// (columns 0-15 and 16-31): 16 tile loads for 24 products per block.
CK_TILE_TARGET static void two_row_tiles(long blocks, const uint16_t *a, const uint16_t *b) {
    for (long kb = 0; kb < blocks; kb++) {
        const uint16_t *ablock = a + kb * TILE_BLOCK, *bblock = b + kb * TILE_BLOCK;
#define CK_FOUR_PRODUCTS()                                                                            \
        do {                                                                                          \
            _tile_dpbf16ps(0, 4, 6);                                                                  \
            _tile_dpbf16ps(1, 4, 7);                                                                  \
            _tile_dpbf16ps(2, 5, 6);                                                                  \
            _tile_dpbf16ps(3, 5, 7);                                                                  \
        } while (0)
        // a₀ against b₀, b₁, b₂
        _tile_loadd(4, A_TILE(0, 0), 64);
        _tile_loadd(5, A_TILE(0, 1), 64);
        for (int q = 0; q < 3; q++) {
            _tile_loadd(6, B_TILE(q, 0), 64);
            _tile_loadd(7, B_TILE(q, 1), 64);
            CK_FOUR_PRODUCTS();
        }
        // a₂ against b₀
        _tile_loadd(4, A_TILE(2, 0), 64);
        _tile_loadd(5, A_TILE(2, 1), 64);
        _tile_loadd(6, B_TILE(0, 0), 64);
        _tile_loadd(7, B_TILE(0, 1), 64);
        CK_FOUR_PRODUCTS();
        // a₁ against b₀ (still loaded), then b₁
        _tile_loadd(4, A_TILE(1, 0), 64);
        _tile_loadd(5, A_TILE(1, 1), 64);
        CK_FOUR_PRODUCTS();
        _tile_loadd(6, B_TILE(1, 0), 64);
        _tile_loadd(7, B_TILE(1, 1), 64);
        CK_FOUR_PRODUCTS();
#undef CK_FOUR_PRODUCTS
    }
}

// The same for a half of at most 16 rows: C tiles 0 and 1 (columns 0-15 and 16-31), the three
// parts of A resident in tiles 2-4 and one column tile's three parts of B in tiles 5-7: 9 tile
// loads for 12 products per block. The products come in the same order as in two_row_tiles, so
// a row's result does not depend on the rows beside it.
CK_TILE_TARGET static void one_row_tile(long blocks, const uint16_t *a, const uint16_t *b) {
    for (long kb = 0; kb < blocks; kb++) {
        const uint16_t *ablock = a + kb * TILE_BLOCK, *bblock = b + kb * TILE_BLOCK;
        _tile_loadd(2, A_TILE(0, 0), 64);
        _tile_loadd(3, A_TILE(1, 0), 64);
        _tile_loadd(4, A_TILE(2, 0), 64);
#define CK_SIX_PRODUCTS(C, T)                                                                         \
        do {                                                                                          \
            _tile_loadd(5, B_TILE(0, T), 64);                                                         \
            _tile_loadd(6, B_TILE(1, T), 64);                                                         \
            _tile_loadd(7, B_TILE(2, T), 64);                                                         \
            _tile_dpbf16ps(C, 2, 5);                                                                  \
            _tile_dpbf16ps(C, 2, 6);                                                                  \
            _tile_dpbf16ps(C, 2, 7);                                                                  \
            _tile_dpbf16ps(C, 4, 5);                                                                  \
            _tile_dpbf16ps(C, 3, 5);                                                                  \
            _tile_dpbf16ps(C, 3, 6);                                                                  \
        } while (0)
        CK_SIX_PRODUCTS(0, 0);
        CK_SIX_PRODUCTS(1, 1);
#undef CK_SIX_PRODUCTS
    }
}

// C[rows × width] (rows ≤ 32, width ≤ 32) of one half and panel over one pass of k: the sums
// start from zero in the tiles and are then stored into C or added to it in fp32 (so a long k
// is summed as a sum of passes, as a blocked GEMM does, not as one chain of 6·k additions).
CK_TILE_TARGET static void half_panel_product(long rows, long width, long blocks, const uint16_t *a, const uint16_t *b,
                                              float *c, long ldc, int accumulate) {
    int two = rows > 16;
    _tile_zero(0);
    _tile_zero(1);
    if (two) {
        _tile_zero(2);
        _tile_zero(3);
    }
    if (two) two_row_tiles(blocks, a, b);
    else one_row_tile(blocks, a, b);
    if (!accumulate && rows == 32 && width == 32) {
        _tile_stored(0, c, ldc * 4);
        _tile_stored(1, c + 16, ldc * 4);
        _tile_stored(2, c + 16 * ldc, ldc * 4);
        _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
        return;
    }
    // Through a 32 × 32 block: only its valid part reaches C.
    float sums[32 * 32] __attribute__((aligned(64)));
    _tile_stored(0, sums, 32 * 4);
    _tile_stored(1, sums + 16, 32 * 4);
    if (two) {
        _tile_stored(2, sums + 16 * 32, 32 * 4);
        _tile_stored(3, sums + 16 * 32 + 16, 32 * 4);
    }
    for (long r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        const float *sr = sums + r * 32;
        for (int v = 0; v < 2; v++) {
            long lanes = width - 16 * v;
            if (lanes <= 0) break;
            __mmask16 m = first_lanes(lanes);
            __m512 x = _mm512_load_ps(sr + 16 * v);
            if (accumulate) x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr + 16 * v), x);
            _mm512_mask_storeu_ps(cr + 16 * v, m, x);
        }
    }
}

CK_TILE_TARGET void ck_tile_gemm(long m, long k, const float *a, long lda, int transposedA, const uint16_t *packed,
                                 long groups, long groupStride, long panelBegin, long panelEnd, long n, float *c,
                                 long ldc, int accumulate, int descending) {
    if (m <= 0 || panelEnd <= panelBegin || groups <= 0) return;
    long blocks = blocks_of(k), panelSize = blocks * TILE_BLOCK;
    long chunkBlocks = TILE_CHUNK_K / TILE_K, chunkHalves = TILE_CHUNK_ROWS / 32;
    uint16_t *split = split_space(chunkHalves * (blocks < chunkBlocks ? blocks : chunkBlocks) * TILE_BLOCK);
    if (!split) abort();
    configure_tiles();
    for (long kb0 = 0; kb0 < blocks; kb0 += chunkBlocks) {
        // Terms k0 ..< k0 + kc; the passes after the first add to C.
        long k0 = kb0 * TILE_K, kc = k - k0 < TILE_CHUNK_K ? k - k0 : TILE_CHUNK_K, cb = blocks_of(kc);
        int add = accumulate || kb0 > 0;
        for (long r0 = 0; r0 < m; r0 += TILE_CHUNK_ROWS) {
            long rows = m - r0 < TILE_CHUNK_ROWS ? m - r0 : TILE_CHUNK_ROWS;
            long halves = (rows + 31) / 32;
            split_rows(rows, halves, kc, transposedA ? a + k0 * lda + r0 : a + r0 * lda + k0, lda, transposedA, split);
            for (long gi = 0; gi < groups; gi++) {
                long g = descending ? groups - 1 - gi : gi, perGroup = panelEnd - panelBegin;
                for (long pi = 0; pi < perGroup; pi++) {
                    long p = panelBegin + g * groupStride + (descending ? perGroup - 1 - pi : pi);
                    long j0 = p * TILE_PANEL, width = n - j0 < TILE_PANEL ? n - j0 : TILE_PANEL;
                    if (width <= 0) continue;
                    const uint16_t *panel = packed + p * panelSize + kb0 * TILE_BLOCK;
                    for (long h = 0; h < halves; h++) {
                        long hr = rows - h * 32 < 32 ? rows - h * 32 : 32;
                        half_panel_product(hr, width, cb, split + h * cb * TILE_BLOCK, panel,
                                           c + (r0 + h * 32) * ldc + j0, ldc, add);
                    }
                }
            }
        }
    }
    _tile_release();
}

// One full 32-row block of one full panel, vectorized. `src` points at B(32·kb, j0): row-major
// rows of b (ldb apart) when not transposed, else rows of W (b[j·ldb + kk]).
CK_TILE_TARGET static void pack_block(const float *src, long ldb, int transposed, uint16_t *block) {
    if (!transposed) {
        // Tile row r, dword c = (B(2r, c), B(2r + 1, c)): the upper halves of two rows' parts.
        for (int t = 0; t < 2; t++) {
            for (int r = 0; r < 16; r++) {
                __m512i even[3], odd[3];
                split_lanes(_mm512_loadu_ps(src + (2 * r) * ldb + 16 * t), even);
                split_lanes(_mm512_loadu_ps(src + (2 * r + 1) * ldb + 16 * t), odd);
                uint16_t *row = block + t * 512 + r * 32;
                for (int q = 0; q < 3; q++)
                    _mm512_storeu_si512(row + q * 1024, _mm512_or_si512(_mm512_srli_epi32(even[q], 16), odd[q]));
            }
        }
        return;
    }
    // Transposed: column c of the panel is row c of W; its 32 values of the block split into
    // parts give, per part, 16 dwords (pairs of k), which a 16 × 16 transpose turns into the
    // columns of the tile's rows.
    // Word w of the result = the upper word of dword w of (u0, u1).
    __m512i upper = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27,
                                     25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int t = 0; t < 2; t++) {
        ck_v16f parts[3][16];
        for (int c = 0; c < 16; c++) {
            const float *w = src + (16 * t + c) * ldb;
            __m512i p0[3], p1[3];
            split_lanes(_mm512_loadu_ps(w), p0);
            split_lanes(_mm512_loadu_ps(w + 16), p1);
            for (int q = 0; q < 3; q++) parts[q][c] = (ck_v16f)_mm512_permutex2var_epi16(p0[q], upper, p1[q]);
        }
        for (int q = 0; q < 3; q++) {
            // parts[q][c] lane r → tile row r, dword c.
            float tmp[256] __attribute__((aligned(64)));
            for (int c = 0; c < 16; c++) *(ck_v16f *)(tmp + 16 * c) = parts[q][c];
            ck_transpose16(tmp, 16, (float *)(block + q * 1024 + t * 512), 16);
        }
    }
}

void ck_tile_pack(long k, long n, const float *b, long ldb, int transposed, uint16_t *packed, long kTotal,
                  long kOffset) {
    long panels = (n + TILE_PANEL - 1) / TILE_PANEL, blocks = blocks_of(kTotal);
    long panelSize = blocks * TILE_BLOCK;
    long kEnd = kOffset + k == kTotal ? blocks * TILE_K : kOffset + k;
    int vector = ck_tile_gemm_available();
    for (long p = 0; p < panels; p++) {
        uint16_t *panel = packed + p * panelSize;
        long j0 = p * TILE_PANEL;
        int fullPanel = j0 + TILE_PANEL <= n;
        for (long kb = kOffset / TILE_K; kb * TILE_K < kEnd; kb++) {
            long b0 = kb * TILE_K, b1 = b0 + TILE_K;
            long r0 = b0 > kOffset ? b0 : kOffset, r1 = b1 < kEnd ? b1 : kEnd;
            if (vector && fullPanel && r0 == b0 && r1 == b1 && b1 <= kOffset + k) {
                const float *src = transposed ? b + j0 * ldb + (b0 - kOffset) : b + (b0 - kOffset) * ldb + j0;
                pack_block(src, ldb, transposed, panel + kb * TILE_BLOCK);
            } else {
                pack_rows(r0, r1, p, k, n, b, ldb, transposed, panel, kOffset);
            }
        }
    }
}
#else

int ck_tile_gemm_available(void) { return 0; }

void ck_tile_gemm(long m, long k, const float *a, long lda, int transposedA, const uint16_t *packed, long groups,
                  long groupStride, long panelBegin, long panelEnd, long n, float *c, long ldc, int accumulate,
                  int descending) {
    (void)m; (void)k; (void)a; (void)lda; (void)transposedA; (void)packed; (void)groups; (void)groupStride;
    (void)panelBegin; (void)panelEnd; (void)n; (void)c; (void)ldc; (void)accumulate; (void)descending;
    abort();   // callers check ck_tile_gemm_available first
}

void ck_tile_pack(long k, long n, const float *b, long ldb, int transposed, uint16_t *packed, long kTotal,
                  long kOffset) {
    long panels = (n + TILE_PANEL - 1) / TILE_PANEL, blocks = blocks_of(kTotal);
    long kEnd = kOffset + k == kTotal ? blocks * TILE_K : kOffset + k;
    for (long p = 0; p < panels; p++)
        pack_rows(kOffset, kEnd, p, k, n, b, ldb, transposed, packed + p * blocks * TILE_BLOCK, kOffset);
}

#endif
