import CKernels

// The library's own threads (`ck_team_run` in thread_team.c): work split into parts, part 0 on
// the calling thread, the others on helpers that spin for a while between tasks, so a hand-off
// rarely waits for a thread to wake.

/// The library's own threads: the fused layers, large products, copies and fills, Adam and
/// cross-entropy share their work between the calling thread and `threads - 1` helpers.
///
/// BLAS always runs single-threaded (set once when OpenBLAS loads): every BLAS call the library
/// makes is one thread's share of some work, and OpenBLAS's own threads, which spin for a while
/// after each call, would compete with the team's for the cores. The setting is the library's,
/// not a process-wide BLAS count that each call changes and restores, so callers on several
/// threads at once (two models, tests running in parallel) all see the same setting and their
/// results do not depend on each other.
public enum ThreadTeam {
    /// Threads to share work between (at least 1). Defaults to the cores this process may run on
    /// (its CPU affinity on Linux), or fewer when `OPENBLAS_NUM_THREADS` (else `OMP_NUM_THREADS`)
    /// asks for fewer, as OpenBLAS itself would. Calls that start afterwards use the new value.
    public static var threads: Int {
        get { ck_team_threads() }
        set { ck_team_set_threads(newValue) }   // values below 1 mean 1
    }

    /// The threads work started on this thread may share: 1 inside a part of the team's work
    /// (the team is busy there, and a nested split would only run inline), else `threads`.
    static var available: Int { ck_team_available() }
}

/// Threads for a matrix product of `m·n·k` multiply-adds: all `threads` from 2²⁰, where the work
/// pays for the hand-off, else one.
func productParts(_ m: Int, _ n: Int, _ k: Int, threads: Int) -> Int {
    m * n * k >= 1 << 20 ? max(1, threads) : 1
}

/// Runs `body(part)` for `part` in `0..<parts` on up to `parts` threads (inline for one part):
/// part 0 on the calling thread, the others on the helper threads of `ck_team_run`, which spin
/// between tasks so a hand-off costs little.
func runParts(_ parts: Int, _ body: @Sendable (Int) -> Void) {
    if parts <= 1 {
        body(0)
        return
    }
    withoutActuallyEscaping(body) { escapable in
        var task = PartTask(body: escapable)
        withUnsafeMutablePointer(to: &task) { pointer in
            ck_team_run(parts, { context, part in
                context!.assumingMemoryBound(to: PartTask.self).pointee.body(part)
            }, pointer)
        }
    }
}

/// Runs `body(step, part)` for every step in `0..<steps` and part in `0..<parts`, each step's
/// parts after all of the step before's, on up to `parts` threads (`ck_team_steps`): the threads
/// enter once and meet through a counter per step. Part p runs on the same thread at every step
/// when it can (part 0 on the calling thread), so it finds its slice of the weights in that
/// core's cache. With `workers` < `parts`, only parts `0..<workers` belong to a thread; the
/// rest are shared, each taken by whichever thread is first done with its own.
func runSteps(_ steps: Int, parts: Int, workers: Int? = nil, _ body: @Sendable (Int, Int) -> Void) {
    if parts <= 1 {
        for s in 0..<steps { body(s, 0) }
        return
    }
    withoutActuallyEscaping(body) { escapable in
        let task = StepTask(body: escapable)
        withExtendedLifetime(task) {
            ck_team_steps(steps, workers ?? parts, parts, { context, step, part in
                Unmanaged<StepTask>.fromOpaque(context!)._withUnsafeGuaranteedRef { $0.body(step, part) }
            }, Unmanaged.passUnretained(task).toOpaque())
        }
    }
}

/// The closure `runParts` hands to the C thread team.
private struct PartTask {
    let body: @Sendable (Int) -> Void
}

/// The closure `runSteps` hands to the C thread team.
private final class StepTask {
    let body: @Sendable (Int, Int) -> Void
    init(body: @escaping @Sendable (Int, Int) -> Void) { self.body = body }
}

/// Runs `body(range)` over slices covering `0..<count` (multiples of `quantum`) on `parts`
/// threads. With two threads and `balanced` the slices follow the speeds the two showed in
/// earlier runs (`ck_team_balanced_split`), so a core that a neighbour slows takes less;
/// otherwise they are equal. Pass `balanced` only where results cannot depend on the slicing
/// (our packed kernels compute each row alike in any block; BLAS may not), or the same seed
/// would no longer give the same run.
func runBalancedParts(_ parts: Int, count: Int, quantum: Int, balanced: Bool = true,
                      _ body: @Sendable (Range<Int>) -> Void) {
    guard parts == 2 && balanced else {
        runParts(parts) { p in body(WorkSplit.slice(p, of: parts, count: count, quantum: quantum)) }
        return
    }
    let first = ck_team_balanced_split(count, quantum)
    // Per part: the thread that ran it and when it finished.
    let record = UnsafeMutablePointer<Int>.allocate(capacity: 4)
    defer { record.deallocate() }
    record.initialize(repeating: -1, count: 4)
    let marks = PartMarks(record: record)
    let start = ck_now_ns()
    runSteps(1, parts: 2) { _, p in
        body(p == 0 ? 0..<first : first..<count)
        marks.record[2 * p] = ck_team_worker()
        marks.record[2 * p + 1] = ck_now_ns()
    }
    // Only a run where each thread did its own part says how fast each one is.
    if record[0] == 0 && record[2] == 1 {
        ck_team_balance_report(first, count, record[1] - start, record[3] - start)
    }
}

/// `runSteps` whose parts share `0..<count` (slices of multiples of `quantum`, e.g. the hidden
/// units of a step): `body(step, part, slice)`. With two threads and `balanced` (as for
/// `runBalancedParts`, only where results cannot depend on the slicing):
/// - with `sharing`, the last eighth of the quanta (at least one) are shared slices of one
///   quantum each, parts 2, 3, … (`body` sees a part ≥ `parts`), which either thread takes when
///   done with its own: they even out the threads' finishing times within each step when a
///   neighbour on the host slows one core for a while. Share only where a part's data does not
///   stay in its core's cache from step to step (weights streamed from L3 at every step), or
///   the thread that takes a shared slice reads it from further away;
/// - the threads' own slices (parts 0 and 1) are fixed for the whole run and follow the speeds the
///   threads showed before (`ck_team_balanced_split`): each adds up the time it computes at
///   every `timedStepInterval`-th step, and a run in which each thread did all of its own parts
///   reports those times, so the next run's slices equalize the two threads' own work.
func runBalancedSteps(_ steps: Int, parts: Int, count: Int, quantum: Int, balanced: Bool = true, sharing: Bool = false,
                      _ body: @Sendable (Int, Int, Range<Int>) -> Void) {
    guard parts == 2 && balanced else {
        runSteps(steps, parts: parts) { i, p in body(i, p, WorkSplit.slice(p, of: parts, count: count, quantum: quantum)) }
        return
    }
    let shared = sharing ? min(max(1, count / quantum / 8), max(count / quantum - 2, 0)) : 0
    let owned = count - shared * quantum
    let first = ck_team_balanced_split(owned, quantum)
    // Per own part: nanoseconds spent in `body`, and whether another thread ever ran it.
    let record = UnsafeMutablePointer<Int>.allocate(capacity: 4)
    defer { record.deallocate() }
    record.initialize(repeating: 0, count: 4)
    let marks = PartMarks(record: record)
    runSteps(steps, parts: 2 + shared, workers: 2) { i, p in
        let slice = p == 0 ? 0..<first : p == 1 ? first..<owned
            : owned + (p - 2) * quantum..<min(owned + (p - 1) * quantum, count)
        guard p < 2 && i % timedStepInterval == 0 else { return body(i, p, slice) }
        let start = ck_now_ns()
        body(i, p, slice)
        marks.record[2 * p] += ck_now_ns() - start
        if ck_team_worker() != p { marks.record[2 * p + 1] = 1 }
    }
    if record[1] == 0 && record[3] == 0 {
        ck_team_balance_report(first, owned, record[0], record[2])
    }
}

/// Every how many steps `runBalancedSteps` times the parts. Steps are alike, and each clock read
/// costs: at batch 1 (C3, steps of ~7 µs) reading it around every step took 2.4–4% of the run.
private let timedStepInterval = 4

/// Where the parts of `runBalancedParts` and `runBalancedSteps` note what they measured (each part
/// its own two slots).
private struct PartMarks: @unchecked Sendable {
    let record: UnsafeMutablePointer<Int>
}
