// A small team of helper threads for the per-step work of the fused layers.
//
// The layers hand work to the team once per time step when a step is shared by hidden units, so
// the hand-off must cost well under a microsecond: helpers spin on the team's state for a while
// after each task (a few hundred microseconds) and only then sleep on a condition variable.
//
// Parts are claimed dynamically by the caller and the helpers alike, so a helper that the
// operating system has not scheduled (another process holds its core) never holds up a task:
// the caller claims and runs the parts nobody took. A claim is a compare-and-swap on one word
// holding (task generation, next part), which can only succeed for the task the claimer read.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

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

static void *ck_helper_main(void *arg) {
    long seen = (long)(intptr_t)arg >> CK_PART_BITS;   // generation before the first task
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
    if (parts <= 1 || parts > CK_PART_MASK || pthread_mutex_trylock(&team.runLock) != 0) {
        // One part, or the team is busy (a nested or concurrent call): run everything here.
        for (long p = 0; p < (parts > 1 ? parts : 1); p++) task(context, p);
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
    for (long spins = 0; atomic_load(&team.done) < parts; spins++) {
        if (spins > 20000) sched_yield();
        else ck_pause();
    }
    pthread_mutex_unlock(&team.runLock);
}
