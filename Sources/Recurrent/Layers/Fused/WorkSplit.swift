import Dispatch

/// How the time loop of a fused sequence is shared between threads.
///
/// - `rows`: each thread runs the whole time loop for its own batch rows. Rows never interact, so
///   there is no synchronisation inside the loop (one `concurrentPerform` per sequence). Each
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
        // Below ~64K multiply-adds per step the threads' meeting costs more than it saves.
        guard parts > 1, batch * gates * hidden * hidden >= 65_536 else { return .none }
        let unitsPossible = hidden % (32 * parts) == 0
        let weightBytes = gates * hidden * hidden * MemoryLayout<Float>.stride
        if batch >= 2 * parts && (weightBytes <= cachedWeightBytes || !unitsPossible) { return .rows(parts: parts) }
        if unitsPossible { return .units(parts: parts) }
        return batch >= parts ? .rows(parts: parts) : .none
    }

    /// The `part`-th of `parts` nearly equal slices of `0..<count`, each a multiple of `quantum`
    /// (except where `count` is not).
    static func slice(_ part: Int, of parts: Int, count: Int, quantum: Int = 1) -> Range<Int> {
        let blocks = (count + quantum - 1) / quantum
        let lo = part * blocks / parts, hi = (part + 1) * blocks / parts
        return min(lo * quantum, count)..<min(hi * quantum, count)
    }
}

/// Runs `body(part)` for `part` in `0..<parts` on up to `parts` threads (inline for one part).
@inline(__always)
func runParts(_ parts: Int, _ body: @Sendable (Int) -> Void) {
    if parts <= 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }
}
