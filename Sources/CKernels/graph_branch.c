// The branch of the autodiff graph a thread is building (GraphBranches.swift): a thread-local
// number that every new node records, so that a branch built on its own thread can tell its own
// nodes from the ones it reads from outside.
#include "CKernels.h"
#include <stdatomic.h>

static _Thread_local long ck_branch = 0;
static atomic_long ck_next_branch = 1;

long ck_graph_branch(void) { return ck_branch; }

long ck_graph_enter_branch(long branch) {
    long previous = ck_branch;
    ck_branch = branch;
    return previous;
}

long ck_graph_new_branch(void) { return atomic_fetch_add(&ck_next_branch, 1); }
