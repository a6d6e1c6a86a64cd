// A small team of helper threads for the per-step work of the fused layers.
//
// The layers hand work to the team several times per sequence (projections, time loops, weight
// gradients), so the hand-off must cost well under a microsecond: helpers spin on the team's
// state for a while after each task (a few hundred microseconds) and only then sleep on a
// condition variable. A time loop whose steps are shared by hidden units is one stepped task
// (ck_team_steps): the threads enter it once and meet through a counter at each step.
//
// Parts are claimed dynamically by the caller and the helpers alike, so a helper that the
// operating system has not scheduled (another process holds its core) never holds up a task:
// the caller claims and runs the parts nobody took. A claim is a compare-and-swap on one word
// holding (task generation, next part), which can only succeed for the task the claimer read.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   // sched_getaffinity, CPU_COUNT
#endif
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CK_MAX_HELPERS 15
#define CK_SPIN_ROUNDS 4000
#define CK_PART_BITS 16
#define CK_PART_MASK ((1L << CK_PART_BITS) - 1)

static inline void ck_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Returns once *counter is at least value: spins a while, then yields the core (the thread that
// raises the counter may share it).
static void ck_wait_at_least(atomic_long *counter, long value) {
    for (long spins = 0; atomic_load_explicit(counter, memory_order_acquire) < value; spins++) {
        if (spins > 20000) sched_yield();
        else ck_pause();
    }
}

static struct {
    pthread_mutex_t runLock;               // one caller at a time
    pthread_mutex_t sleepLock;
    pthread_cond_t wake;
    atomic_long state;                     // generation << 16 | next unclaimed part
    atomic_long done;                      // parts finished in the current generation
    atomic_long sleepers;
    _Atomic(ck_team_task) task;
    _Atomic(void *) context;
    atomic_long parts;
    long helpers;                          // threads started (under runLock)
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

// Claims and runs parts of the task published with state `s` until none is left (or a newer
// task replaced it). Returns the last state seen.
static long ck_work(long s) {
    for (;;) {
        ck_team_task task = atomic_load(&team.task);
        void *context = atomic_load(&team.context);
        long parts = atomic_load(&team.parts);
        long part = s & CK_PART_MASK;
        if (part >= parts) return s;
        // The claim succeeds only if the state is still `s`: then task, context and parts read
        // above belong to this generation.
        if (atomic_compare_exchange_weak(&team.state, &s, s + 1)) {
            task(context, part);
            atomic_fetch_add(&team.done, 1);
            s = atomic_load(&team.state);
        }
    }
}

// The thread's index in the team: 0 for callers, 1… for helpers (own parts of ck_team_steps).
static _Thread_local long ck_worker = 0;
static atomic_long ck_next_worker = 1;

long ck_team_worker(void) { return ck_worker; }

// The library's thread setting (0 until the load-time default below, or a setter, sets it).
static atomic_long ck_threads = 0;
// Nesting depth of team work on this thread (ck_team_run on a caller; helpers are always inside).
static _Thread_local long ck_inside = 0;

static long ck_cores(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? online : 1;
}

long ck_default_threads(const char *openblas, const char *omp, long cores) {
    const char *values[2] = {openblas, omp};
    for (int i = 0; i < 2; i++) {
        if (!values[i]) continue;
        char *end;
        long n = strtol(values[i], &end, 10);
        if (end != values[i] && *end == 0 && n > 0) return n < cores ? n : cores;
    }
    return cores;
}

// The default, read from the environment when the program loads, before any thread of its own
// could call setenv (Recurrent's BLAS loader sets OPENBLAS_CORETYPE on first use) while this
// reads it.
__attribute__((constructor)) static void ck_team_default_threads(void) {
    long expected = 0;
    long initial = ck_default_threads(getenv("OPENBLAS_NUM_THREADS"), getenv("OMP_NUM_THREADS"), ck_cores());
    atomic_compare_exchange_strong(&ck_threads, &expected, initial);
}

long ck_team_threads(void) {
    long threads = atomic_load_explicit(&ck_threads, memory_order_relaxed);
    if (threads > 0) return threads;
    ck_team_default_threads();   // only if the constructor has not run
    return atomic_load(&ck_threads);
}

void ck_team_set_threads(long threads) { atomic_store(&ck_threads, threads > 1 ? threads : 1); }

long ck_team_available(void) { return ck_worker != 0 || ck_inside > 0 ? 1 : ck_team_threads(); }

long ck_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *ck_helper_main(void *arg) {
    long seen = (long)(intptr_t)arg >> CK_PART_BITS;   // generation before the first task
    ck_worker = atomic_fetch_add(&ck_next_worker, 1);
    for (;;) {
        long s = atomic_load(&team.state);
        for (int i = 0; i < CK_SPIN_ROUNDS && (s >> CK_PART_BITS) == seen; i++) {
            ck_pause();
            s = atomic_load(&team.state);
        }
        if ((s >> CK_PART_BITS) == seen) {
            pthread_mutex_lock(&team.sleepLock);
            atomic_fetch_add(&team.sleepers, 1);
            while (((s = atomic_load(&team.state)) >> CK_PART_BITS) == seen)
                pthread_cond_wait(&team.wake, &team.sleepLock);
            atomic_fetch_sub(&team.sleepers, 1);
            pthread_mutex_unlock(&team.sleepLock);
        }
        seen = s >> CK_PART_BITS;
        ck_work(s);
    }
    return NULL;
}

void ck_team_run(long parts, ck_team_task task, void *context) {
    ck_inside++;
    if (parts <= 1 || parts > CK_PART_MASK || pthread_mutex_trylock(&team.runLock) != 0) {
        // One part, or the team is busy (a nested or concurrent call): run everything here.
        for (long p = 0; p < (parts > 1 ? parts : 1); p++) task(context, p);
        ck_inside--;
        return;
    }
    long wanted = parts - 1 < CK_MAX_HELPERS ? parts - 1 : CK_MAX_HELPERS;
    while (team.helpers < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, ck_helper_main, (void *)(intptr_t)atomic_load(&team.state));
        pthread_attr_destroy(&attr);
        if (failed) break;
        team.helpers++;
    }
    atomic_store(&team.task, task);
    atomic_store(&team.context, context);
    atomic_store(&team.parts, parts);
    atomic_store(&team.done, 0);
    long generation = (atomic_load(&team.state) >> CK_PART_BITS) + 1;
    atomic_store(&team.state, generation << CK_PART_BITS);
    if (atomic_load(&team.sleepers) > 0) {
        pthread_mutex_lock(&team.sleepLock);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.sleepLock);
    }
    ck_work(generation << CK_PART_BITS);
    // Parts a helper claimed may still run; wait for them (yielding if that takes long, in case
    // the helper shares this core).
    ck_wait_at_least(&team.done, parts);
    pthread_mutex_unlock(&team.runLock);
    ck_inside--;
}

// ---- stepped tasks ----

typedef struct {
    ck_step_task task;
    void *context;
    long steps, parts, workers;
    atomic_long *claimed;      // per step: bit p set once part p is taken
    atomic_long finished;      // parts finished over all steps
} ck_steps_job;

// Runs part `part` of step `step` unless another thread took it first.
static inline void ck_steps_try(ck_steps_job *job, long step, long part) {
    long bit = 1L << part;
    atomic_long *mask = &job->claimed[step];
    if (atomic_load_explicit(mask, memory_order_relaxed) & bit) return;
    if (atomic_fetch_or(mask, bit) & bit) return;
    job->task(job->context, step, part);
    atomic_fetch_add(&job->finished, 1);
}

// One thread's walk through the steps: its own part, then the shared parts not yet taken, then
// any other worker's part not yet begun, then wait for the step's other parts.
static void ck_steps_worker(void *context, long teamPart) {
    (void)teamPart;
    ck_steps_job *job = context;
    long own = ck_worker;
    for (long s = 0; s < job->steps; s++) {
        if (own < job->workers) ck_steps_try(job, s, own);
        for (long p = job->workers; p < job->parts; p++) ck_steps_try(job, s, p);
        for (long p = 0; p < job->workers; p++) ck_steps_try(job, s, p);
        ck_wait_at_least(&job->finished, (s + 1) * job->parts);
    }
}

void ck_team_steps(long steps, long workers, long parts, ck_step_task task, void *context) {
    if (steps <= 0) return;
    if (workers > parts) workers = parts;
    if (workers <= 1 || parts > 63) {
        for (long s = 0; s < steps; s++)
            for (long p = 0; p < (parts > 1 ? parts : 1); p++) task(context, s, p);
        return;
    }
    ck_steps_job job = {task, context, steps, parts, workers, calloc((size_t)steps, sizeof(atomic_long)), 0};
    if (!job.claimed) {
        for (long s = 0; s < steps; s++)
            for (long p = 0; p < parts; p++) task(context, s, p);
        return;
    }
    // A caller is worker 0 for the whole task, also when it is itself a helper (nested call run
    // inline by ck_team_run, where it takes every part).
    long saved = ck_worker;
    ck_worker = 0;
    ck_team_run(workers, ck_steps_worker, &job);
    ck_worker = saved;
    free(job.claimed);
}

// ---- balance between a caller and one helper ----
//
// The two vCPUs of a shared machine do not always run at the same speed (a neighbour on the
// host): a char-LM training step once spent 30-40% of each two-part run with the caller waiting
// for the helper. Two-part work is therefore split by the speeds the threads showed last: each
// report gives the cost per item of either side (time to finish / items), the caller's share
// moves a quarter of the way to the share that would have equalized them, within 30-70%.

#define CK_SHARE_ONE 1000000L
static atomic_long ck_caller_share = CK_SHARE_ONE / 2;

long ck_team_balanced_split(long count, long quantum) {
    if (quantum < 1) quantum = 1;
    long blocks = (count + quantum - 1) / quantum;
    if (blocks < 2) return count;
    long share = atomic_load_explicit(&ck_caller_share, memory_order_relaxed);
    long first = (blocks * share + CK_SHARE_ONE / 2) / CK_SHARE_ONE;
    if (first < 1) first = 1;
    if (first > blocks - 1) first = blocks - 1;
    first *= quantum;
    return first < count ? first : count;
}

void ck_team_balance_report(long first, long count, long callerNs, long helperNs) {
    if (first <= 0 || first >= count || callerNs <= 0 || helperNs <= 0) return;
    double callerCost = (double)callerNs / (double)first;
    double helperCost = (double)helperNs / (double)(count - first);
    double target = helperCost / (callerCost + helperCost);   // equal finish times
    long share = atomic_load_explicit(&ck_caller_share, memory_order_relaxed);
    double next = 0.75 * ((double)share / CK_SHARE_ONE) + 0.25 * target;
    if (next < 0.3) next = 0.3;
    if (next > 0.7) next = 0.7;
    atomic_store_explicit(&ck_caller_share, (long)(next * CK_SHARE_ONE), memory_order_relaxed);
}

// ---- pieces that the owners of parallel tasks may run for each other ----

#define CK_POOL_MAX_OWNERS 4
#define CK_POOL_MAX_PIECES 16

struct ck_pool {
    long owners;
    atomic_long pieces;                                  // pieces added so far
    atomic_long finished;                                // pieces finished
    atomic_long started[CK_POOL_MAX_OWNERS];             // 1 once the owner's task has begun
    atomic_long ready[CK_POOL_MAX_OWNERS];               // 1 once the owner's fields below are set
    long count[CK_POOL_MAX_OWNERS];
    ck_team_task task[CK_POOL_MAX_OWNERS];
    void *context[CK_POOL_MAX_OWNERS];
    atomic_long claimed[CK_POOL_MAX_OWNERS][CK_POOL_MAX_PIECES];
};

ck_pool *ck_pool_create(long owners) {
    if (owners < 1 || owners > CK_POOL_MAX_OWNERS) return NULL;
    ck_pool *pool = calloc(1, sizeof *pool);
    if (pool) pool->owners = owners;
    return pool;
}

void ck_pool_destroy(ck_pool *pool) { free(pool); }

long ck_pool_max_pieces(void) { return CK_POOL_MAX_PIECES; }

void ck_pool_start(ck_pool *pool, long owner) { atomic_store(&pool->started[owner], 1); }

void ck_pool_run(ck_pool *pool, long owner, long count, ck_team_task task, void *context) {
    atomic_store(&pool->started[owner], 1);
    if (count < 0) count = 0;
    if (count > CK_POOL_MAX_PIECES) count = CK_POOL_MAX_PIECES;
    pool->count[owner] = count;
    pool->task[owner] = task;
    pool->context[owner] = context;
    atomic_fetch_add(&pool->pieces, count);
    atomic_store(&pool->ready[owner], 1);                // publishes count, task and context
    for (long idle = 0;;) {
        int ran = 0;
        // Own pieces first (their data is in this core's cache), then the other owners' in turn.
        for (long k = 0; k < pool->owners; k++) {
            long o = (owner + k) % pool->owners;
            if (!atomic_load(&pool->ready[o])) continue;
            for (long i = 0; i < pool->count[o]; i++) {
                if (atomic_load(&pool->claimed[o][i]) || atomic_exchange(&pool->claimed[o][i], 1)) continue;
                pool->task[o](pool->context[o], i);
                atomic_fetch_add(&pool->finished, 1);
                ran = 1;
            }
        }
        if (ran) continue;
        // Nothing left to claim: wait for the owners that have begun but not yet added their
        // pieces (they run on other threads), not for those that have not begun (when the team
        // runs the owners' tasks one after the other on one thread, a later one has not), and
        // for every added piece to finish.
        int waiting = 0;
        for (long o = 0; o < pool->owners; o++)
            if (atomic_load(&pool->started[o]) && !atomic_load(&pool->ready[o])) waiting = 1;
        if (!waiting && atomic_load(&pool->finished) == atomic_load(&pool->pieces)) break;
        if (++idle < CK_SPIN_ROUNDS) ck_pause(); else sched_yield();
    }
}

// ---- rows handed over mid-loop ----

enum { CK_HANDOVER_IDLE, CK_HANDOVER_RUNNING, CK_HANDOVER_REQUESTED, CK_HANDOVER_FINISHED, CK_HANDOVER_CUT };

struct ck_handover {
    atomic_long state;    // a CK_HANDOVER_* value; CK_HANDOVER_CUT + step after a cut at `step`
    atomic_long done;     // 1 once the asking thread has run the given-away rows
};

ck_handover *ck_handover_create(void) { return calloc(1, sizeof(ck_handover)); }

void ck_handover_destroy(ck_handover *handover) { free(handover); }

void ck_handover_begin(ck_handover *handover) { atomic_store(&handover->state, CK_HANDOVER_RUNNING); }

int ck_handover_poll(ck_handover *handover, long remaining, long minimum) {
    if (atomic_load_explicit(&handover->state, memory_order_relaxed) != CK_HANDOVER_REQUESTED) return 0;
    if (remaining >= minimum) return 1;
    atomic_store(&handover->state, CK_HANDOVER_FINISHED);   // too late to pay: declined
    return 0;
}

void ck_handover_cut(ck_handover *handover, long step) {
    atomic_store(&handover->state, CK_HANDOVER_CUT + step);   // sequentially consistent: publishes
}

void ck_handover_end(ck_handover *handover) {
    long state = atomic_load(&handover->state);
    if (state >= CK_HANDOVER_CUT) {
        for (long idle = 0; !atomic_load(&handover->done);)
            if (++idle < CK_SPIN_ROUNDS) ck_pause(); else sched_yield();
        return;
    }
    atomic_store(&handover->state, CK_HANDOVER_FINISHED);   // also declines a pending request
}

long ck_handover_request(ck_handover *handover) {
    long expected = CK_HANDOVER_RUNNING;
    if (!atomic_compare_exchange_strong(&handover->state, &expected, CK_HANDOVER_REQUESTED)) return -1;
    for (long idle = 0;;) {
        long state = atomic_load(&handover->state);
        if (state >= CK_HANDOVER_CUT) return state - CK_HANDOVER_CUT;
        if (state == CK_HANDOVER_FINISHED) return -1;
        if (++idle < CK_SPIN_ROUNDS) ck_pause(); else sched_yield();
    }
}

void ck_handover_done(ck_handover *handover) { atomic_store(&handover->done, 1); }

// ---- progress counters ----

struct ck_progress {
    atomic_long value;
    char padding[64 - sizeof(long)];   // its own cache line: the producer writes nothing else there
};

ck_progress *ck_progress_create(void) {
    ck_progress *p = aligned_alloc(64, sizeof(ck_progress));
    if (p) atomic_init(&p->value, 0);
    return p;
}

void ck_progress_destroy(ck_progress *p) { free(p); }

void ck_progress_publish(ck_progress *p, long value) {
    atomic_store_explicit(&p->value, value, memory_order_release);
}

void ck_progress_wait(ck_progress *p, long value) { ck_wait_at_least(&p->value, value); }
