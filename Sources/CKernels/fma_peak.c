// The machine's fp32 multiply-add peak as the threads of a benchmark see it, for "fraction of
// peak" figures: a nominal peak (cores × FMA units × lanes × 2 × base clock) is off by the turbo
// clock (measured here: 256 GFLOP/s nominal for 2 cores, 2 × 170-175 measured).
#include "CKernels.h"

// CHAINS independent chains of a = a·b + c on vectors of type V (LANES floats), `rounds` times;
// returns FLOP/s. Enough chains to keep every FMA unit busy through the FMA latency (x86: 2
// units × 4 cycles = 8; Apple cores: 4 × 4 = 16), and all of them feed the result written to
// `sink`, so none can be dropped.
#define CK_FMA_CHAINS(V, LANES, CHAINS)                                                               \
    do {                                                                                              \
        V b, c, a[CHAINS];                                                                            \
        for (int l = 0; l < LANES; l++) { b[l] = 0.999999f; c[l] = 1e-7f; }                           \
        for (int i = 0; i < CHAINS; i++) a[i] = b * (float)(i + 1);                                   \
        long start = ck_now_ns();                                                                      \
        for (long r = 0; r < rounds; r++) {                                                           \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < CHAINS; i++) a[i] = a[i] * b + c;  \
        }                                                                                             \
        double elapsed = (ck_now_ns() - start) * 1e-9;                                                \
        V s = a[0];                                                                                   \
        for (int i = 1; i < CHAINS; i++) s += a[i];                                                   \
        *sink = s[0];                                                                                 \
        return elapsed > 0 ? (double)rounds * CHAINS * LANES * 2 / elapsed : 0;                       \
    } while (0)

typedef float ck_v4 __attribute__((vector_size(16)));

#if defined(__x86_64__) && defined(__clang__)
typedef float ck_v8 __attribute__((vector_size(32)));
typedef float ck_v16 __attribute__((vector_size(64)));

__attribute__((target("avx512f"))) static double ck_fma_chains_avx512(long rounds, float *sink) {
    CK_FMA_CHAINS(ck_v16, 16, 12);
}

__attribute__((target("avx2,fma"))) static double ck_fma_chains_avx2(long rounds, float *sink) {
    CK_FMA_CHAINS(ck_v8, 8, 12);
}
#endif

static double ck_fma_chains_plain(long rounds, float *sink) {
    CK_FMA_CHAINS(ck_v4, 4, 16);
}

// On the widest vectors the CPU has; narrower vectors run 2 or 4 times the rounds, so a burst
// takes about as long.
static double ck_fma_chains(long rounds, float *sink) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ck_fma_chains_avx512(rounds, sink);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ck_fma_chains_avx2(rounds * 2, sink);
#endif
    return ck_fma_chains_plain(rounds * 4, sink);
}

typedef struct {
    long rounds;
    double rate[64];
    float sink[64];
} ck_peak_job;

static void ck_peak_part(void *context, long part) {
    ck_peak_job *job = context;
    job->rate[part] = ck_fma_chains(job->rounds, &job->sink[part]);
}

double ck_fma_peak(long threads, long bursts) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    ck_peak_job job = {.rounds = 10000000};   // ~23 ms per burst at 170 GFLOP/s per thread
    double best = 0;
    for (long burst = 0; burst < bursts; burst++) {
        ck_team_run(threads, ck_peak_part, &job);
        double total = 0;
        for (long p = 0; p < threads; p++) total += job.rate[p];
        if (total > best) best = total;
    }
    return best;
}
