// Times the step-product kernels on one thread, apart from the layers, for the per-core figures in
// docs/benchmarks.md and docs/benchmark-history.md (pin it to a core with taskset; the machine's
// cores do not run at the same speed for minutes at a time).
//
//   clang -O3 -ffp-contract=fast -I Sources/CKernels/include -o /tmp/kernel_harness scripts/kernel_harness.c -lopenblas
//   taskset -c 0 /tmp/kernel_harness gemm 64 512 1024    # ck_gemm_packed: C[m×n] = A[m×k]·B, B packed once
//   taskset -c 0 /tmp/kernel_harness gemv 256 256 128    # ck_gemv_rows: 4 gates × units rows of W [4H × k],
//                                                        # ascending and descending by turns as in the loop
//   taskset -c 0 /tmp/kernel_harness stream 524288       # a plain sum over N bytes (a core's read rate)
//   taskset -c 0 /tmp/kernel_harness gates 128 1         # the LSTM and GRU forward gate kernels on ROWS × UNITS
//                                                        # (H = UNITS), in ns per unit
//   taskset -c 0 /tmp/kernel_harness tiles 64 1024 1024  # ck_tile_gemm against ck_gemm_packed, call by call
//   taskset -c 0 /tmp/kernel_harness tilepeak            # bf16 TFLOP/s of 4 independent tile products
//   taskset -c 0 /tmp/kernel_harness phases              # which work slows in the machine's slow minutes:
//                                                        # FMAs in registers, sums over L1 and L2, a product
//                                                        # in L2, divisions, gate passes, by turns (see
//                                                        # `phases` below)
//   OPENBLAS_CORETYPE=SkylakeX taskset -c 0 /tmp/kernel_harness wgrad 512 384 3200
//                                                        # weight gradient C[m×n] = Aᵀ·B, A [k×m]: the tiles
//                                                        # (B packed each call) against OpenBLAS sgemm
//
// `tiles` and `wgrad` also give each kernel's worst error against a Float64 sum, as a fraction of
// Σ|a·b|. Build it exactly so: with -march=native the multi-versioned kernels ran about 3x slower
// here (37-60 GFLOP/s against ~170 for the 64 × 512 × 1024 product).
#define _GNU_SOURCE   // thread_team.c (sched_getaffinity), before any header
#include "../Sources/CKernels/packed_gemm.c"
#include "../Sources/CKernels/packed_gemm_avx2.c"
#include "../Sources/CKernels/tile_gemm.c"
#include "../Sources/CKernels/gate_kernels.c"
#include "../Sources/CKernels/thread_team.c"
#include "../Sources/CKernels/fma_peak.c"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALLS 2000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *x, const void *y) {
    double d = *(const double *)x - *(const double *)y;
    return d < 0 ? -1 : d > 0;
}

static float *filled(long count, int period, float scale, float shift) {
    float *p = aligned_alloc(64, (size_t)((count * 4 + 63) / 64 * 64));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (long i = 0; i < count; i++) p[i] = (float)(i % period) * scale + shift;
    return p;
}

// Worst |c − Σ a·b| / Σ|a·b| over a sample of C's elements; A(i, kk) = a[i·lda + kk] (a[kk·lda + i]
// when transposedA), B(kk, j) = b[kk·n + j].
static double worst_error(long m, long k, long n, const float *a, long lda, int transposedA, const float *b,
                          const float *c) {
    double worst = 0;
    for (long i = 0; i < m; i += 7)
        for (long j = 0; j < n; j += 5) {
            double sum = 0, scale = 0;
            for (long kk = 0; kk < k; kk++) {
                double p = (double)(transposedA ? a[kk * lda + i] : a[i * lda + kk]) * b[kk * n + j];
                sum += p;
                scale += fabs(p);
            }
            double e = fabs(c[i * n + j] - sum) / scale;
            if (e > worst) worst = e;
        }
    return worst;
}

static float *random_filled(long count) {
    float *p = filled(count, 1, 0, 0);
    unsigned long x = 88172645463325252UL;
    for (long i = 0; i < count; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (float)((x >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
    }
    return p;
}

// Median of the calls after the first `warm` (sorted in place).
static double median_after(double *t, int calls, int warm) {
    qsort(t + warm, calls - warm, sizeof(double), by_value);
    return t[warm + (calls - warm) / 2];
}

// `rounds` × 4 independent TDPBF16PS on resident tiles (16 × 16 × 32 multiply-adds each).
CK_TILE_TARGET __attribute__((noinline)) static void tile_products(long rounds, float *sink) {
    static uint16_t ones[512] __attribute__((aligned(64)));
    for (int i = 0; i < 512; i++) ones[i] = 0x3f80;   // bf16 1.0
    configure_tiles();
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, ones, 64); _tile_loadd(5, ones, 64); _tile_loadd(6, ones, 64); _tile_loadd(7, ones, 64);
    for (long r = 0; r < rounds; r++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    static float out[256] __attribute__((aligned(64)));
    _tile_stored(0, out, 64);
    *sink = out[0];
    _tile_release();
}

typedef float v8s __attribute__((vector_size(32)));

// 6 independent chains of divisions on 8 floats, in registers (not inlined, so that repeated
// calls are not folded into one); the FMA burst beside it is the peak probe's (`fma_peak.c`).
__attribute__((target("avx2,fma"), noinline)) static float division_chains(long rounds) {
    v8s a[6], d;
    for (int i = 0; i < 8; i++) d[i] = 1.0000001f;
    for (int v = 0; v < 6; v++)
        for (int i = 0; i < 8; i++) a[v][i] = 1.0f + v * 1e-3f;
    for (long r = 0; r < rounds; r++)
        for (int v = 0; v < 6; v++) a[v] = a[v] / d;
    float s = 0;
    for (int v = 0; v < 6; v++) s += a[v][0];
    return s;
}

// A sum of n floats (a multiple of 64) in 8 vectors of 8 (no spills), added to *sink: the rate
// a core reads them (`stream`, `phases`; not inlined, so that repeated calls are not folded into
// one). For x86-64 with AVX2, in 256-bit loads on AVX-512 machines too: there half their L1
// rate, about their L2 and L3 rates.
__attribute__((target("avx2,fma"), noinline)) static void load_sum(const float *p, long n, float *sink) {
    v8s a[8] = {{0}};
    for (long i = 0; i + 64 <= n; i += 64)
        for (int v = 0; v < 8; v++) a[v] += *(const v8s *)(p + i + 8 * v);
    v8s s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (int i = 0; i < 8; i++) *sink += s[i];
}

// `phases` (AVX2 machines): 3000 rounds, each timing in turn an FMA burst in registers (0.2 ms),
// 64 sums over 16 KB (L1), 2 sums over 512 KB (L2), one packed product in L2 (M = 32,
// K = 128, N = 1024: 512 KB of panels), a burst of divisions in registers (~19 µs) and 20 LSTM
// gate passes on one row of 128 units (C3's, data in L1). For each, the median and
// 10th-percentile call as a share of its best; then, of the rounds whose product took over 1.25x
// its best, how many found each of the others over 1.25x its own best too (the same slow minute).
static int phases(void) {
    enum { ROUNDS = 3000 };
    long m = 32, k = 128, n = 1024;
    float *a = filled(m * k, 7, 0.1f, -0.3f), *b = filled(k * n, 5, 0.1f, -0.2f), *c = filled(m * n, 1, 0, 0);
    float *packed = filled(ck_packed_size(k, n), 1, 0, 0), *l1 = filled(4096, 3, 1e-6f, 0),
          *l2 = filled(131072, 3, 1e-6f, 0);
    ck_pack(k, n, b, n, 0, packed);
    enum { KINDS = 6, PRODUCT = 3 };
    static double t[KINDS][ROUNDS], sorted[ROUNDS];
    float *gh = random_filled(1024), *bh = random_filled(1024), *bi = random_filled(1024), *xp = random_filled(1024),
          *hp = random_filled(256), *cp = random_filled(256), *hn = filled(256, 1, 0, 0), *cn = filled(256, 1, 0, 0),
          *o = filled(256, 1, 0, 0), *gates = filled(1024, 1, 0, 0);
    ck_block block = {1, 128, 256, 1024, 256, 256, 256, 0, NULL};
    float sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double s = now();
        ck_fma_chains_avx2(95000, &sink);   // 12 chains of multiply-adds on 8 floats, in registers
        t[0][r] = now() - s;
        s = now();
        for (int i = 0; i < 64; i++) load_sum(l1, 4096, &sink);
        t[1][r] = now() - s;
        s = now();
        for (int i = 0; i < 2; i++) load_sum(l2, 131072, &sink);
        t[2][r] = now() - s;
        s = now();
        ck_gemm_packed(m, k, a, k, packed, 0, (n + 31) / 32, n, c, n, 0);
        t[PRODUCT][r] = now() - s;
        s = now();
        sink += division_chains(3000);
        t[4][r] = now() - s;
        s = now();
        for (int i = 0; i < 20; i++) ck_lstm_forward(&block, gh, bh, bi, xp, hp, cp, hn, cn, o, gates);
        t[5][r] = now() - s;
    }
    const char *names[KINDS] = {"FMAs in registers", "sums over 16 KB", "sums over 512 KB", "product in L2",
                                "divisions", "LSTM gate passes"};
    double best[KINDS];
    for (int j = 0; j < KINDS; j++) {
        memcpy(sorted, t[j], sizeof sorted);
        qsort(sorted, ROUNDS, sizeof(double), by_value);
        best[j] = sorted[0];
        printf("%-18s best %7.1f us; median call at %.2f of the best speed, p10 %.2f\n", names[j], best[j] * 1e6,
               best[j] / sorted[ROUNDS / 2], best[j] / sorted[ROUNDS * 9 / 10]);
    }
    int slow = 0, also[KINDS] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        if (t[PRODUCT][r] <= 1.25 * best[PRODUCT]) continue;
        slow++;
        for (int j = 0; j < KINDS; j++) also[j] += t[j][r] > 1.25 * best[j];
    }
    printf("rounds with the product over 1.25x its best: %d of %d; slow too in those: FMAs %d, 16 KB sums %d, "
           "512 KB sums %d, divisions %d, gate passes %d (check %g)\n", slow, ROUNDS, also[0], also[1], also[2],
           also[4], also[5], (double)sink + c[0] + hn[0]);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    static double times[CALLS];
    double work = 0;            // flops per call (gemm, gemv) or bytes (stream)
    const char *unit = "GFLOP/s";
    float sink = 0;
    if (!strcmp(mode, "gemm") && argc == 5) {
        long m = atol(argv[2]), k = atol(argv[3]), n = atol(argv[4]);
        float *a = filled(m * k, 7, 0.1f, -0.3f), *b = filled(k * n, 5, 0.1f, -0.2f), *c = filled(m * n, 1, 0, 0);
        float *packed = filled(ck_packed_size(k, n), 1, 0, 0);
        ck_pack(k, n, b, n, 0, packed);
        for (int r = 0; r < CALLS; r++) {
            double t = now();
            ck_gemm_packed(m, k, a, k, packed, 0, (n + 31) / 32, n, c, n, 0);
            times[r] = now() - t;
        }
        work = 2.0 * m * k * n;
        sink = c[0];
    } else if (!strcmp(mode, "gemv") && argc == 5) {
        long H = atol(argv[2]), k = atol(argv[3]), units = atol(argv[4]);
        float *w = filled(4 * H * k, 7, 0.1f, 0), *x = filled(k, 3, 0.2f, 0), *y = filled(4 * H, 1, 0, 0);
        for (int r = 0; r < CALLS; r++) {
            double t = now();
            ck_gemv_rows(4, H, units, k, w, k, x, y, 0, r % 2);
            times[r] = now() - t;
        }
        work = 4.0 * units * k * 4;
        unit = "GB/s of weights";
        sink = y[0];
    } else if (!strcmp(mode, "stream") && argc == 3) {
        long n = atol(argv[2]) / 4;
        float *p = filled(n, 1, 0, 1);
        for (int r = 0; r < CALLS; r++) {
            double t = now();
            load_sum(p, n, &sink);
            times[r] = now() - t;
        }
        work = 4.0 * n;
        unit = "GB/s";
    } else if (!strcmp(mode, "gates") && argc == 4) {
        long U = atol(argv[2]), R = atol(argv[3]);
        float *g = random_filled(R * 4 * U), *x = random_filled(R * 4 * U), *bh = random_filled(4 * U),
              *bi = random_filled(4 * U), *hp = random_filled(R * U), *cp = random_filled(R * U),
              *hn = filled(R * U, 1, 0, 0), *cn = filled(R * U, 1, 0, 0), *o = filled(R * U, 1, 0, 0),
              *a = filled(R * 4 * U, 1, 0, 0), *gn = filled(R * U, 1, 0, 0);
        static double tg[CALLS];
        for (int cell = 0; cell < 2; cell++) {
            long G = cell == 0 ? 4 : 3;
            ck_block block = {R, U, U, G * U, U, U, U, 0, NULL};
            for (int r = 0; r < CALLS; r++) {
                double t = now();
                if (cell == 0) ck_lstm_forward(&block, g, bh, bi, x, hp, cp, hn, cn, o, a);
                else ck_gru_forward(&block, g, bh, bi, x, hp, hn, o, a, gn);
                tg[r] = now() - t;
            }
            double median = median_after(tg, CALLS, 100);
            printf("gates %s %ld units x %ld rows: best %.2f, median %.2f ns per unit (check %g)\n",
                   cell == 0 ? "lstm" : "gru", U, R, tg[100] * 1e9 / (U * R), median * 1e9 / (U * R), (double)hn[0]);
        }
        return 0;
    } else if (!strcmp(mode, "phases") && argc == 2) {
        return phases();
    } else if (!strcmp(mode, "tilepeak") && argc == 2) {
        if (!ck_tile_gemm_available()) { fprintf(stderr, "no bf16 matrix units here\n"); return 1; }
        for (int r = 0; r < 20; r++) {
            double t = now();
            tile_products(50000, &sink);
            times[r] = now() - t;
        }
        qsort(times, 20, sizeof(double), by_value);
        double flops = 50000.0 * 4 * 16 * 16 * 32 * 2;
        printf("tilepeak: best %.0f, median %.0f bf16 GFLOP/s (6 per fp32 multiply-add: %.0f, %.0f; check %g)\n",
               flops / times[0] * 1e-9, flops / times[10] * 1e-9, flops / times[0] * 1e-9 / 6,
               flops / times[10] * 1e-9 / 6, (double)sink);
        return 0;
    } else if ((!strcmp(mode, "tiles") || !strcmp(mode, "wgrad")) && argc == 5) {
        if (!ck_tile_gemm_available()) { fprintf(stderr, "no bf16 matrix units here\n"); return 1; }
        int wgrad = !strcmp(mode, "wgrad"), calls = wgrad ? 40 : 600;
        long m = atol(argv[2]), k = atol(argv[wgrad ? 4 : 3]), n = atol(argv[wgrad ? 3 : 4]);
        float *a = random_filled(m * k), *b = random_filled(k * n), *c = filled(m * n, 1, 0, 0);
        uint16_t *tiles = aligned_alloc(64, (size_t)(ck_tile_packed_size(k, n) * 2 + 63) / 64 * 64);
        float *packed = filled(ck_packed_size(k, n), 1, 0, 0);
        ck_tile_pack(k, n, b, n, 0, tiles, k, 0);
        ck_pack(k, n, b, n, 0, packed);
        static double tt[CALLS], to[CALLS], tp[CALLS];
        double errTiles = 0, errOther = 0;
        if (wgrad) openblas_set_num_threads(1);
        for (int r = 0; r < calls; r++) {
            double t = now();
            if (wgrad) ck_tile_pack(k, n, b, n, 0, tiles, k, 0);
            tp[r] = now() - t;
            t = now();
            ck_tile_gemm(m, k, a, wgrad ? m : k, wgrad, tiles, 1, 0, 0, (n + 31) / 32, n, c, n, 0, 0);
            tt[r] = now() - t;
            if (r == 0) errTiles = worst_error(m, k, n, a, wgrad ? m : k, wgrad, b, c);
            t = now();
            if (wgrad) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1, a, m, b, n, 0, c, n);
            else ck_gemm_packed(m, k, a, k, packed, 0, (n + 31) / 32, n, c, n, 0);
            to[r] = now() - t;
            if (r == 0) errOther = worst_error(m, k, n, a, wgrad ? m : k, wgrad, b, c);
        }
        int warm = wgrad ? 5 : 100;
        double flops = 2.0 * m * k * n * 1e-9;
        double mt = median_after(tt, calls, warm), mo = median_after(to, calls, warm), mp = median_after(tp, calls, warm);
        printf("%s %ld x %ld x %ld: tiles best %.1f, median %.1f GFLOP/s (error %.1e of sum|ab|); %s best %.1f, "
               "median %.1f (error %.1e); median ratio %.2f\n", mode, m, k, n, flops / tt[warm], flops / mt, errTiles,
               wgrad ? "OpenBLAS" : "ck_gemm_packed", flops / to[warm], flops / mo, errOther,
               wgrad ? mo / (mt + mp) : mo / mt);
        if (wgrad) printf("  packing B each call: median %.2f ms (in the ratio)\n", mp * 1e3);
        return 0;
    } else {
        fprintf(stderr, "usage: %s gemm M K N | gemv H K UNITS | stream BYTES | gates UNITS ROWS | tiles M K N | wgrad M N K | "
                "tilepeak | phases\n",
                argv[0]);
        return 2;
    }
    // The first 100 calls warm the caches; rates from the fastest, median and 90th-percentile call.
    qsort(times + 100, CALLS - 100, sizeof(double), by_value);
    double *t = times + 100;
    long count = CALLS - 100;
    printf("%s %s: best %.1f, median %.1f, p90 %.1f %s (best call %.2f us; check %g)\n", mode, argc > 2 ? argv[2] : "",
           work / t[0] * 1e-9, work / t[count / 2] * 1e-9, work / t[count * 9 / 10] * 1e-9, unit, t[0] * 1e6,
           (double)sink);
    return 0;
}
