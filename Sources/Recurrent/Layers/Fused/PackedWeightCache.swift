import Foundation

/// Input weights `W_ihᵀ` packed for the projections of inference loops, kept from call to call.
///
/// A units split of a short sequence at a small batch (C3: T = 50, B = 1, I = 128, H = 256)
/// projects all of its steps at once with `W_ih` packed (`SequenceMatmul.linearUnits`), each
/// thread its own units. Packed anew at every call, the packing took ~5% of the time of C3 LSTM
/// inference (perf, AMD EPYC, AVX2) and pushed part of each thread's `W_hh` out of its L2
/// before the loop. Kept here: C3 LSTM inference 1.05 / 1.07 times as fast (fastest / median
/// step, 24 paired rounds), GRU 1.05 / 1.07 (10).
///
/// An entry is used only for the very storage it was packed from: it holds the weight tensor,
/// so that storage can be neither freed nor written in place while the entry lives (writing to
/// the weight moves it to new storage, which is packed anew), as in `SequenceWeights`. Training
/// steps do not use the cache (their weights change at every step). At most `capacity` entries
/// of at most `maximumBytes` each (so at most 32 MB packed, beside the weights they hold, which
/// cost nothing more while their layers hold them too); the least recently used goes first.
final class PackedWeightCache: @unchecked Sendable {
    static let shared = PackedWeightCache()

    /// Entries kept: the input weights of both directions of a few layers.
    let capacity = 8
    /// Largest packed matrix kept (a larger one is packed at each call, as before).
    let maximumBytes = 4 << 20

    private struct Entry {
        let weight: Tensor
        let kernel: PackedMatrix.Kernel
        let packed: PackedMatrix
    }

    private let lock = NSLock()
    /// Least recently used first.
    private var entries: [Entry] = []
    /// Matrices packed since the program started (for tests).
    private(set) var packCount = 0

    /// `weightᵀ` (`weight [N, K]` row-major) packed as a `[K × N]` right-hand side for `kernel`,
    /// all of its columns; nil when it is larger than `maximumBytes`.
    func transposed(_ weight: Tensor, kernel: PackedMatrix.Kernel) -> PackedMatrix? {
        precondition(weight.rank == 2, "PackedWeightCache: a weight must be [N, K], got \(weight.shape)")
        let n = weight.shape[0], k = weight.shape[1]
        if n * k * MemoryLayout<Float>.size > maximumBytes || n * k == 0 { return nil }
        if let packed = lookUp(weight, kernel: kernel) { return packed }
        let packed = PackedMatrix(k: k, n: n, kernel: kernel)
        weight.data.withUnsafeBufferPointer { w in
            let source = w.baseAddress!
            StepProduct.pack(columns: n, threads: ThreadTeam.available) { columns in
                packed.pack(rows: k, columns: columns, from: source, ldb: k, transposed: true)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        packCount += 1
        if let index = index(of: weight, kernel: kernel) {
            return entries[index].packed   // another thread packed it meanwhile
        }
        entries.append(Entry(weight: weight, kernel: kernel, packed: packed))
        if entries.count > capacity { entries.removeFirst() }
        return packed
    }

    private func lookUp(_ weight: Tensor, kernel: PackedMatrix.Kernel) -> PackedMatrix? {
        lock.lock()
        defer { lock.unlock() }
        guard let index = index(of: weight, kernel: kernel) else { return nil }
        let entry = entries.remove(at: index)
        entries.append(entry)
        return entry.packed
    }

    /// The entry packed from `weight`'s very storage for `kernel` (the caller holds `lock`).
    private func index(of weight: Tensor, kernel: PackedMatrix.Kernel) -> Int? {
        entries.firstIndex { $0.weight.sharesStorage(with: weight) && $0.kernel == kernel }
    }
}
