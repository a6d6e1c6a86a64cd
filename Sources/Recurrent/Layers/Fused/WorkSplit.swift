/// How the time loop of a fused sequence is shared between threads.
///
/// - `rows`: each thread runs the whole time loop for its own batch rows. Rows never interact, so
///   there is no synchronisation inside the loop (one `runParts` per sequence). Each
///   thread streams all of `W_hh`, so this suits weights that fit in a core's cache, or
///   enough rows per thread that streaming them from L3 costs less than meeting every step.
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

    /// Rows per thread from which a rows split pays even for weights that do not stay cached.
    /// Each thread then streams all of a step's weights from L3 at every step, doing
    /// 2·rows multiply-add flops per 4-byte weight: 16 flops per byte at 32 rows, ~10 GB/s per
    /// core at the product's speed, well under the ~25 GB/s a core reads from L3 here. Paired
    /// against the units split at C2 (64 rows, H = 512, 2 threads), step ratios units/rows:
    /// LSTM training 1.08 fastest / 1.12 median, inference 1.04 / 1.06; GRU 1.09 / 1.01 and
    /// 1.11 / 1.12; RNN 1.12 / 1.14 and 1.14 / 1.19. At 8 rows per thread (C4, H = 1024) the
    /// stream bounds the step: LSTM inference 0.73.
    static let streamedRowsPerThread = 32

    /// Multiply-adds of a step's recurrent product from which a units split of an inference loop
    /// on the tile kernel beats a rows split.
    static let tileUnitsWork = 8_000_000

    /// Rows of the blocks the step products see: a rows split's slice, else the whole batch.
    func blockRows(batch: Int) -> Int {
        if case .rows(let parts) = self { return (batch + parts - 1) / parts }
        return batch
    }

    /// Chooses a split for `batch` rows, `hidden` units and `gates` gates, given `threads`, for
    /// an inference loop or the loops of a training step (`training`: a forward loop that saves
    /// for the backward one, and the backward loop).
    static func choose(batch: Int, hidden: Int, gates: Int, threads: Int, training: Bool = false) -> WorkSplit {
        let parts = threads
        let work = batch * gates * hidden * hidden   // multiply-adds of one step's recurrent product
        // Rows meet once per sequence, units once per step (~0.3 µs, plus the cost of splitting
        // the product): below these sizes one thread is faster.
        let rowsWorthIt = batch >= 2 * parts && work >= 65_536
        let unitsWorthIt = hidden % (32 * parts) == 0 && work >= 150_000
        guard parts > 1, rowsWorthIt || unitsWorthIt else { return .none }
        let weightBytes = gates * hidden * hidden * MemoryLayout<Float>.stride
        let rowsStreamWell = batch >= streamedRowsPerThread * parts
        // On the tile kernel (`PackedMatrix.kernel`: blocks of 32 rows or more) an inference
        // loop of 8M multiply-adds a step or more takes units: the whole batch stays on the
        // tiles (a rows split of 32 rows leaves 16 a thread, too few for them) and each thread
        // streams half of the weights, which the tiles' form makes 1.5x larger. Paired against
        // rows (fastest / median step): C1 LSTM (8.4M) 1.19 / 1.13; C2 LSTM (67M) 1.11 / 1.16
        // and 1.17 / 1.21, GRU 1.14 / 1.16, RNN 1.00 / 1.12. Below 8M units lost in the only
        // runs made (training steps): C1 GRU (6.3M) 0.98 / 0.95, RNN (2.1M) 0.84 / 0.86. A
        // training step keeps rows: C1 LSTM training with units in both loops 0.99 / 0.84, in
        // the forward loop only 0.95 / 0.96.
        let tilesTakeUnits = !training && work >= tileUnitsWork && PackedMatrix.kernel(rows: batch, k: hidden) == .tiles
        if tilesTakeUnits && unitsWorthIt { return .units(parts: parts) }
        if rowsWorthIt && (weightBytes <= cachedWeightBytes || rowsStreamWell || !unitsWorthIt) {
            return .rows(parts: parts)
        }
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
