import CKernels

/// How the time loop of a fused sequence is shared between threads.
///
/// - `rows`: each thread runs the whole time loop for its own batch rows. Rows never interact, so
///   there is no synchronisation inside the loop (one `runParts` per sequence). Each
///   thread streams all of `W_hh`, so this suits weights that fit in a core's cache.
/// - `units`: each step is shared by hidden units (each thread owns units `j0..<j1` of every
///   gate, so it can apply the gates right after its part of the product); the threads meet once
///   per step. Each thread streams only its part of `W_hh`: suits large H and batch size 1.
/// - `none`: one thread.
enum WorkSplit: Equatable {
    case none
    case rows(parts: Int)
    case units(parts: Int)

    /// Bytes of packed recurrent weights one core can keep cached while it runs the whole loop.
    static let cachedWeightBytes = 1_572_864

    /// Chooses a split for `batch` rows, `hidden` units and `gates` gates, given `threads`.
    static func choose(batch: Int, hidden: Int, gates: Int, threads: Int) -> WorkSplit {
        let parts = threads
        let work = batch * gates * hidden * hidden   // multiply-adds of one step's recurrent product
        // Rows meet once per sequence, units once per step (~0.3 µs, plus the cost of splitting
        // the product): below these sizes one thread is faster.
        let rowsWorthIt = batch >= 2 * parts && work >= 65_536
        let unitsWorthIt = hidden % (32 * parts) == 0 && work >= 150_000
        guard parts > 1, rowsWorthIt || unitsWorthIt else { return .none }
        let weightBytes = gates * hidden * hidden * MemoryLayout<Float>.stride
        if rowsWorthIt && (weightBytes <= cachedWeightBytes || !unitsWorthIt) { return .rows(parts: parts) }
        return .units(parts: parts)
    }

    /// The `part`-th of `parts` nearly equal slices of `0..<count`, each a multiple of `quantum`
    /// (except where `count` is not).
    static func slice(_ part: Int, of parts: Int, count: Int, quantum: Int = 1) -> Range<Int> {
        let blocks = (count + quantum - 1) / quantum
        let lo = part * blocks / parts, hi = (part + 1) * blocks / parts
        return min(lo * quantum, count)..<min(hi * quantum, count)
    }
}

/// Runs `body(threads)` where `threads` is the thread count set for BLAS (`BLAS.threads`, the
/// library's thread setting), while BLAS itself runs single-threaded: the fused kernels share
/// their work between their own threads (`runParts`), so BLAS calls made inside those parts must
/// not start threads of their own, and OpenBLAS's threads, which spin for a while after each
/// call, must not compete with them for the cores.
func withFusedThreads<R>(_ body: (Int) -> R) -> R {
    let threads = BLAS.threads
    if threads > 1 { BLAS.threads = 1 }
    defer { if threads > 1 { BLAS.threads = threads } }
    return body(threads)
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
/// core's cache.
func runSteps(_ steps: Int, parts: Int, _ body: @Sendable (Int, Int) -> Void) {
    if parts <= 1 {
        for s in 0..<steps { body(s, 0) }
        return
    }
    withoutActuallyEscaping(body) { escapable in
        var task = StepTask(body: escapable)
        withUnsafeMutablePointer(to: &task) { pointer in
            ck_team_steps(steps, parts, { context, step, part in
                context!.assumingMemoryBound(to: StepTask.self).pointee.body(step, part)
            }, pointer)
        }
    }
}

/// The closure `runParts` hands to the C thread team.
private struct PartTask {
    let body: @Sendable (Int) -> Void
}

/// The closure `runSteps` hands to the C thread team.
private struct StepTask {
    let body: @Sendable (Int, Int) -> Void
}
