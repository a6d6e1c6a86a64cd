#ifndef CKERNELS_H
#define CKERNELS_H
// Kernels of the fused recurrent layers (C, so they vectorize to the CPU's widest SIMD).
//
// Gate kernels: one call per time step applies the gate non-linearities and the state update to
// a block of `rows` batch rows × `units` hidden units. Pointers arrive already offset to the
// block's first row and unit. A gate row holds the G gates side by side (LSTM i|f|g|o, GRU r|z|n):
// gate g of unit j is at `g·hidden + j`; gate rows are `ldGate` apart. Buffers of shape
// [rows, H] (cells, outputs, gradients of h and c, GRU gh_n) have row stride `hidden`; the hidden
// state buffers have their own strides `ldPrev` (h_{t-1}) and `ldNext` (h_t).
//
// Masking: when `lengths` is not NULL (offset to the block's first row), row b is active at time
// `t` only if t < lengths[b]. An inactive row keeps its state (h_t = h_{t-1}, c_t = c_{t-1}),
// writes zeros to `out`, and in the backward kernels passes its state gradients through
// unchanged with zero gate gradients.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Shape of the block one gate-kernel call works on.
typedef struct {
    long rows;               ///< batch rows in the block
    long units;              ///< hidden units in the block
    long hidden;             ///< H: gate block stride in a gate row; row stride of [rows, H] buffers
    long ldGate;             ///< row stride of gate buffers (usually G·H)
    long ldPrev;             ///< row stride of h_{t-1}
    long ldNext;             ///< row stride of h_t
    long ldOut;              ///< row stride of the output h_t (forward) and of its gradient (backward)
    long t;                  ///< time index, for masking
    const int32_t *lengths;  ///< per-row sequence lengths or NULL (all active)
} ck_block;

// ---- optimizers ----

/// The per-step constants of an Adam update (see `Adam.step`).
typedef struct {
    float lerpWeight;        ///< 1 - β₁: m ← m + (1 - β₁)(g - m)
    float beta2;             ///< β₂
    float squareWeight;      ///< 1 - β₂
    float correction2Root;   ///< √(1 - β₂ᵗ)
    float epsilon;           ///< ε
    float negativeStepSize;  ///< -γ / (1 - β₁ᵗ)
    float coupledDecay;      ///< λ added to the gradient (Adam), else 0
    float shrink;            ///< θ ← θ · shrink first (AdamW: 1 - γλ), else 1
} ck_adam_constants;

/// One Adam step over n elements:
/// g ← grad + λθ; m ← m + (1-β₁)(g - m); v ← β₂v + (1-β₂)g²; θ ← θ - γ/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε).
void ck_adam_update(long n, float *theta, const float *grad, float *m, float *v, const ck_adam_constants *constants);

// ---- vector math (the polynomial approximations the gate kernels use) ----

/// y[i] = exp(x[i]); x clamped to [-87, 88].
void ck_exp(long n, const float *x, float *y);
/// y[i] = 1 / (1 + exp(-x[i])).
void ck_sigmoid(long n, const float *x, float *y);
/// y[i] = tanh(x[i]).
void ck_tanh(long n, const float *x, float *y);

// ---- forward steps ----
// gh: h_{t-1}·W_hhᵀ without bias; bhh: b_hh (offset to the first unit); xp: x_t·W_ihᵀ, which
// already includes b_ih when `bih` is NULL; otherwise the kernel adds `bih` (b_ih) to it.
// RNN and LSTM also take xp = NULL with `bih`: then gh is the one product [x_t | h_{t-1}]·[W_ih |
// W_hh]ᵀ and the pre-activation is (gh + b_hh) + b_ih.

/// RNN: h_t = act((gh + b_hh) + (xp [+ b_ih])), act = tanh or relu (`relu` != 0).
void ck_rnn_forward(const ck_block *s, int relu, const float *gh, const float *bhh, const float *bih,
                    const float *xp, const float *hPrev, float *hNext, float *out);

/// LSTM: gates = (gh + b_hh) + (xp [+ b_ih]); i, f, o = σ, g = tanh; c_t = f⊙c_{t-1} + i⊙g;
/// h_t = o⊙tanh(c_t). `gates` receives the activated i|f|g|o.
void ck_lstm_forward(const ck_block *s, const float *gh, const float *bhh, const float *bih, const float *xp,
                     const float *hPrev, const float *cPrev, float *hNext, float *cNext, float *out,
                     float *gates);

/// GRU: with gh' = gh + b_hh and xp' = xp [+ b_ih]: r = σ(xp'_r + gh'_r), z = σ(xp'_z + gh'_z),
/// n = tanh(xp'_n + r⊙gh'_n), h_t = (h_{t-1} - n)⊙z + n. `gates` receives r|z|n, `ghn` [rows, H]
/// receives gh'_n.
void ck_gru_forward(const ck_block *s, const float *gh, const float *bhh, const float *bih, const float *xp,
                    const float *hPrev, float *hNext, float *out, float *gates, float *ghn);

// ---- backward steps ----
// `dh` [rows, H] holds on entry dL/dh_t from later steps; `dOut` (may be NULL) dL/d(out_t). On
// return `dh` holds the part of dL/dh_{t-1} that does not pass through W_hh (0 for RNN and LSTM,
// dh⊙z for GRU; all of it for inactive rows): the caller then adds dG_t·W_hh. `biasGrad` (may be
// NULL, offset to the first unit, gates at g·hidden) accumulates the column sums of dGates.

/// RNN: dGates = (dh + dOut) ⊙ act'(h_t), with `hNext` = h_t.
void ck_rnn_backward(const ck_block *s, int relu, const float *hNext, const float *dOut, float *dh,
                     float *dGates, float *biasGrad);

/// LSTM: `dc` [rows, H] in: dL/dc_t, out: dL/dc_{t-1}. dGates = dL/d(pre-activation gates); it may
/// be `gates` itself (the gradients then replace the saved activations).
void ck_lstm_backward(const ck_block *s, const float *gates, const float *cPrev, const float *cNext,
                      const float *dOut, float *dh, float *dc, float *dGates, float *biasGrad);

/// GRU: dGI = dL/d(x·W_ihᵀ + b_ih), dGH = dL/d(h·W_hhᵀ + b_hh) (equal in r and z; dGH_n = dGI_n⊙r).
/// `biasGrad` sums dGI, `hiddenBiasGrad` sums dGH. dGI may be `gates` itself.
void ck_gru_backward(const ck_block *s, const float *gates, const float *ghn, const float *hPrev,
                     const float *dOut, float *dh, float *dGI, float *dGH, float *biasGrad,
                     float *hiddenBiasGrad);

// ---- helpers ----

/// dst[r·ldDst + j] = src[r·ldSrc + j] for a [rows, cols] block (strided copy).
void ck_copy_rows(long rows, long cols, const float *src, long ldSrc, float *dst, long ldDst);
/// dst[r, :] = row for each of `rows` rows of width `cols` (broadcasts a bias).
void ck_fill_rows(long rows, long cols, const float *row, float *dst);
/// sums[j] += Σ_r src[r·ld + j] for a [rows, cols] block, rows added in order (a bias gradient).
void ck_sum_rows(long rows, long cols, const float *src, long ld, float *sums);
/// dst[r·ldDst + j] += src[r·ldSrc + j] for a [rows, cols] block (strided add; ldSrc = 0 adds one
/// row, a bias, to every row).
void ck_add_rows(long rows, long cols, const float *src, long ldSrc, float *dst, long ldDst);

// ---- products against a packed right-hand side ----

/// Columns per packed panel.
#define CK_PANEL_WIDTH 32
/// Bytes of weights from which a product's panels are taken to come from L3 at every call
/// (1 MB: half of the L2 they were tuned on, all of the AVX2 machine's): `ck_gemm_panels`
/// prefetches the next panel from there on, and a units split shares slices of the units
/// between its threads (`StepProduct.streamsWeights`).
#define CK_STREAMED_BYTES 1048576

/// Floats needed to pack a [k × n] right-hand side: ceil(n / 32) panels of k × 32.
long ck_packed_size(long k, long n);
/// Packs B [k × n] into panels of 32 columns (zero-padded); B(kk, j) = b[kk·ldb + j], or
/// b[j·ldb + kk] when `transposed` (packing Wᵀ from a row-major W [n × k], by 16 × 16 blocks
/// transposed in registers: ~50 µs for a 1024 × 256 W).
void ck_pack(long k, long n, const float *b, long ldb, int transposed, float *packed);
/// ck_pack with panel p written at packed + p·panelStride (ck_pack: panelStride = 32·k), so two
/// matrices can be packed as the upper and lower rows of the same panels: `[W_ih | W_hh]ᵀ` as
/// W_ihᵀ at packed with k = I and W_hhᵀ at packed + 32·I with k = H, both with panelStride
/// 32·(I + H).
void ck_pack_strided(long k, long n, const float *b, long ldb, int transposed, float *packed, long panelStride);
/// C[m × n] = A[m × k] · B, or C += A · B when `accumulate`, for the column panels
/// panelBegin..<panelEnd only (columns [32·panelBegin, min(32·panelEnd, n))). A and C are
/// row-major with row strides lda and ldc.
void ck_gemm_packed(long m, long k, const float *a, long lda, const float *packed,
                    long panelBegin, long panelEnd, long n, float *c, long ldc, int accumulate);
/// The same product with B given as 32-column panels: panel p starts at b + p·panelStride and its
/// rows are ldb apart. Packed: ldb = 32, panelStride = 32·k. A row-major B [k × n] with n a
/// multiple of 32 can be used in place: ldb = n, panelStride = 32. The call covers `groups`
/// ranges of panels, panelBegin + g·groupStride ..< panelEnd + g·groupStride for g in 0..<groups
/// (one range: groups = 1; the same units of every gate: groups = G, groupStride = H / 32), in
/// one pass that prefetches each next panel across the ranges. With `descending` the panels go
/// last to first, each panel's results unchanged (as `ck_gemv_rows`' `descending`: calls that
/// alternate start on the panels the call before left in L2).
void ck_gemm_panels(long m, long k, const float *a, long lda, const float *b, long ldb,
                    long panelStride, long groups, long groupStride, long panelBegin, long panelEnd,
                    long n, float *c, long ldc, int accumulate, int descending);
/// y[r] = Σ_k w[r·ldw + kk]·x[kk] for r in g·groupStride + 0..<rows, g in 0..<groups (y += … when
/// `accumulate`): matrix-vector product with `groups` ranges of rows of a row-major matrix (the
/// same units of each gate), 16 rows at a time (dot products reduced by a transposing tree).
/// When ldw is a multiple of 16 the rows are read with 64-byte aligned loads wherever they start
/// (the lanes outside a row masked off), so an unaligned matrix costs no split loads.
/// With `descending` the blocks of 16 rows (and the groups) go last to first, each row's sum
/// unchanged: calls that alternate find the rows they start with still in L1 from the call
/// before (a loop step at batch 1 rereads its 512 KB of `W_hh` from L2: 4-5% faster per call).
void ck_gemv_rows(long groups, long groupStride, long rows, long k, const float *w, long ldw, const float *x,
                  float *y, int accumulate, int descending);
/// Whether the packed products run vector kernels: AVX-512, or AVX2 with FMA (packed_gemm_avx2.c,
/// the same bits); otherwise the platform BLAS is faster.
int ck_packed_gemm_is_fast(void);

// ---- fp32 products on the bf16 matrix units (tile_gemm.c) ----

/// Terms of k that `ck_tile_gemm` sums in one pass over C; a longer k is summed in passes of
/// this many, each added to C.
#define CK_TILE_TERMS_PER_PASS 1024

/// Whether `ck_tile_gemm` can run here: the CPU has the bf16 matrix units (AMX-BF16) and Linux
/// granted this process their state (asked on the first call). `RECURRENT_TILES=0` in the
/// environment says no.
int ck_tile_gemm_available(void);
/// bf16 elements needed to pack a [k × n] right-hand side for `ck_tile_gemm`: ceil(n / 32)
/// panels of ceil(k / 32) blocks of 6 tiles of 16 × 32.
long ck_tile_packed_size(long k, long n);
/// Packs rows kOffset..<kOffset + k of a right-hand side with `kTotal` rows, B(kOffset + kk, j) =
/// b[kk·ldb + j] (b[j·ldb + kk] when `transposed`), each value split into three bf16 parts. The
/// call with kOffset + k = kTotal also writes the zero rows that pad k to a multiple of 32;
/// columns past n are zeros. (`[W_ih | W_hh]ᵀ`: W_ihᵀ with kOffset 0, W_hhᵀ with kOffset I.)
void ck_tile_pack(long k, long n, const float *b, long ldb, int transposed, uint16_t *packed, long kTotal,
                  long kOffset);
/// C[m × n] = A[m × k] · B (C += A · B when `accumulate`) for the column panels panelBegin +
/// g·groupStride ..< panelEnd + g·groupStride, g in 0..<groups (as `ck_gemm_panels`), B packed by
/// `ck_tile_pack`. A(i, kk) = a[i·lda + kk], or a[kk·lda + i] when `transposedA`. fp32 accuracy
/// from six bf16 part products per multiply-add (see tile_gemm.c); k past
/// CK_TILE_TERMS_PER_PASS is summed in passes. `descending` as for `ck_gemm_panels`.
void ck_tile_gemm(long m, long k, const float *a, long lda, int transposedA, const uint16_t *packed, long groups,
                  long groupStride, long panelBegin, long panelEnd, long n, float *c, long ldc, int accumulate,
                  int descending);

// ---- buffer pool ----

/// A 64-byte aligned block of `bytes` bytes (uninitialized), reusing a block of the same size
/// released earlier (blocks of 256 KiB or more; up to 32 blocks and 1 GiB are kept).
void *ck_buffer_acquire(size_t bytes);
/// Returns a block from ck_buffer_acquire(bytes) (same `bytes`) for reuse.
void ck_buffer_release(void *block, size_t bytes);
/// Makes the C heap keep freed memory for reuse (glibc: mmap threshold 256 MiB, trim threshold
/// 1 GiB), unless GLIBC_TUNABLES already sets either threshold or RECURRENT_HEAP=system. Returns
/// whether it changed anything (always 0 off glibc).
int ck_heap_keep_freed(void);

// ---- progress counters ----

/// A counter one thread raises and others wait on (a step-by-step hand-off between threads).
typedef struct ck_progress ck_progress;
/// A counter at 0, or NULL.
ck_progress *ck_progress_create(void);
void ck_progress_destroy(ck_progress *progress);
/// Sets the counter (never lower it); what the thread wrote before is visible to a waiter after.
void ck_progress_publish(ck_progress *progress, long value);
/// Returns once the counter is at least `value` (spinning, then yielding the core).
void ck_progress_wait(ck_progress *progress, long value);

// ---- graph branches ----

/// The graph branch this thread is building (0 outside any branch); new nodes record it.
long ck_graph_branch(void);
/// Makes `branch` this thread's branch and returns the one it replaces.
long ck_graph_enter_branch(long branch);
/// A branch number not handed out before (1, 2, ...).
long ck_graph_new_branch(void);

// ---- thread team ----

/// A part of a task: `part` in 0..<parts.
typedef void (*ck_team_task)(void *context, long part);
/// Runs task(context, p) for p in 0..<parts and returns when all are done. The calling thread and
/// helper threads claim parts as they come free; helpers spin between tasks (so a hand-off per
/// time step is cheap) and sleep after a few hundred microseconds without work. A call made while
/// the team is busy (nested or from another thread) runs all parts on its own thread.
void ck_team_run(long parts, ck_team_task task, void *context);
/// The library's thread setting: how many threads the team's work is shared between (the caller
/// and threads - 1 helpers). Defaults to ck_default_threads of the environment's
/// OPENBLAS_NUM_THREADS and OMP_NUM_THREADS and the cores this process may run on.
long ck_team_threads(void);
/// The default thread setting, as OpenBLAS chooses its own: the first of `openblas` and `omp`
/// (environment values, NULL when unset) that is a positive integer, at most `cores`; else `cores`.
long ck_default_threads(const char *openblas, const char *omp, long cores);
/// Sets the library's thread setting (values below 1 mean 1).
void ck_team_set_threads(long threads);
/// The threads work started on this thread may share: 1 inside a part of the team's work (a
/// helper, or a caller while it runs its parts, where the team is busy), else ck_team_threads().
long ck_team_available(void);

/// The fp32 multiply-add peak of `threads` threads running at once, in FLOP/s: the best of
/// `bursts` bursts (~23 ms each) of independent vector FMA chains on every thread (the widest
/// vectors the CPU has). For "fraction of peak" figures in benchmarks.
double ck_fma_peak(long threads, long bursts);

/// Part `part` of step `step` of a stepped task.
typedef void (*ck_step_task)(void *context, long step, long part);
/// Runs task(context, s, p) for s in 0..<steps and p in 0..<parts (at most 63), each step's parts
/// after all parts of the step before: a time loop shared by up to `workers` threads (at most
/// `parts`), entered once. Parts 0..<workers are the threads' own: part p of every step runs on
/// the same thread when it can (the caller takes part 0), so the data a part streams stays in
/// that core's cache. A thread that is done with its own part takes the shared parts (from
/// `workers` on) in order, then any other own part nobody has started (a helper the operating
/// system has not scheduled never holds up a step it has not started); small shared parts even
/// out the threads' finishing times within each step. Threads meet at each step by waiting on one
/// counter of finished parts (parts are claimed through a word per step), instead of a hand-off
/// per step as with ck_team_run.
void ck_team_steps(long steps, long workers, long parts, ck_step_task task, void *context);
/// The calling thread's index in the team: 0 for a caller, 1… for the helpers (the part of
/// ck_team_steps each takes first).
long ck_team_worker(void);
/// Pieces of work that the owners of tasks running side by side (one per thread) may run for
/// each other, so a thread that is done with its own work takes some of a slower one's.
typedef struct ck_pool ck_pool;
/// A pool for `owners` (at most 4) owners, or NULL.
ck_pool *ck_pool_create(long owners);
void ck_pool_destroy(ck_pool *pool);
/// Most pieces one owner may add (16).
long ck_pool_max_pieces(void);
/// Marks owner `owner`'s task as begun: from then on the other owners' ck_pool_run waits for its
/// pieces. Call it when the task starts, before its own work.
void ck_pool_start(ck_pool *pool, long owner);
/// Owner `owner` adds its `count` pieces (task(context, i) runs piece i), then runs the pieces
/// nobody has claimed, its own first and then the other owners', until every owner that has begun
/// has added its pieces and all added pieces have finished. Each piece runs exactly once, on
/// whichever owner's thread claims it. Every owner that calls ck_pool_start must call this once.
void ck_pool_run(ck_pool *pool, long owner, long count, ck_team_task task, void *context);
/// Rows of a time loop that the loop's owner hands to another thread mid-sequence: when a
/// thread has finished its own loop it asks (ck_handover_request), and the owner, at its next
/// step, keeps half of its rows and lets the asking thread run the other half's remaining steps.
typedef struct ck_handover ck_handover;
ck_handover *ck_handover_create(void);
void ck_handover_destroy(ck_handover *handover);
/// Owner: its loop has begun (only a begun loop is waited for).
void ck_handover_begin(ck_handover *handover);
/// Owner, before step `step` of its loop with `remaining` steps left (this one included):
/// 1 when a request is pending and `remaining` is at least `minimum` — from this step on the
/// asking thread runs the given-away rows, and the owner publishes what it gives before calling
/// ck_handover_cut — else 0 (a pending request is then declined).
int ck_handover_poll(ck_handover *handover, long remaining, long minimum);
/// Owner: hands over from step `step` (after a poll returned 1; publishes everything stored before).
void ck_handover_cut(ck_handover *handover, long step);
/// Owner, after its loop: declines any pending request, or, after a cut, waits until the asking
/// thread has run the given-away rows.
void ck_handover_end(ck_handover *handover);
/// Another thread, done with its own loop: the step from which to run the given-away rows
/// (then call ck_handover_done), or -1 when there is nothing to take (the owner has not begun,
/// has finished, or declined).
long ck_handover_request(ck_handover *handover);
/// The asking thread has run the given-away rows.
void ck_handover_done(ck_handover *handover);
/// A monotonic clock in nanoseconds.
long ck_now_ns(void);
/// For work shared by a caller and one helper: how many of `count` items (a multiple of
/// `quantum`, at least one quantum each) the caller should take so both finish together, from
/// the speeds the two last showed (ck_team_balance_report); half before any report.
long ck_team_balanced_split(long count, long quantum);
/// Reports a two-part run: the caller took `first` of `count` items and finished `callerNs` after
/// the start, the helper took the rest and finished `helperNs` after it.
void ck_team_balance_report(long first, long count, long callerNs, long helperNs);

#ifdef __cplusplus
}
#endif
#endif
