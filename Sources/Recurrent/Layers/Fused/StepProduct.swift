import CKernels

/// The per-step products of a fused sequence with one weight matrix `W [G·H, K]` (`W_hh` with
/// K = H, or `W_ih` with K = I), on a block of batch rows and hidden units:
/// forward `out = A·Wᵀ` (`h_{t-1}·W_hhᵀ`, `x_t·W_ihᵀ`) and backward `dh += dG·W_hh`.
///
/// Where the packed kernels run (AVX-512, or AVX2 with FMA: `ck_packed_gemm_is_fast`), `W` is packed once per sequence (`PackedMatrix`: for
/// the multiply-add kernel, or for the bf16 matrix units from 32 rows) so each step streams it
/// with no per-call packing; for a batch of one row the forward product reads `W` in place (dot
/// products, `ck_gemv_rows`) and so does the backward one (as 32-column panels), which costs no
/// packing. Otherwise the platform BLAS runs (`gemv` for one row).
final class StepProduct: @unchecked Sendable {
    let gates: Int, hidden: Int, inputs: Int
    /// Row-major `W [G·H, K]` (valid while the owner keeps the tensor alive).
    let weight: UnsafePointer<Float>
    /// `Wᵀ` packed as a `[K × G·H]` right-hand side (forward), or nil.
    let packedTransposed: PackedMatrix?
    /// `W` packed as a `[G·H × K]` right-hand side (backward), or nil.
    let packed: PackedMatrix?
    /// Forward products of one row use `ck_gemv_rows` on the unpacked weights.
    let rowProducts: Bool
    /// Backward products read `W` in place as 32-column panels (one row, K a multiple of 32).
    let inPlaceBackward: Bool

    static let packedKernelIsFast = ck_packed_gemm_is_fast() != 0

    /// Whether half of `W` (one thread's share in a units split of two) is `CK_STREAMED_BYTES`
    /// (1 MB) or more, so each step streams it from L3 whichever thread reads it rather than
    /// finding it in a core's L2 (where the packed kernels also prefetch panels): then slices of
    /// the units may move between the threads from step to step (`runBalancedSteps(sharing:)`).
    var streamsWeights: Bool { gates * hidden * inputs * MemoryLayout<Float>.size / 2 >= Int(CK_STREAMED_BYTES) }

    /// Prepares the forward and/or backward products for a batch of `batch` rows, in blocks of
    /// `blockRows` (default: the batch) rows, which choose the packed kernel; packs `W` when
    /// `packed` (and the packed kernels run).
    init(weight: UnsafePointer<Float>, gates: Int, hidden: Int, inputs: Int, batch: Int, blockRows: Int? = nil,
         forward: Bool, backward: Bool, packed usePacked: Bool, threads: Int = 1) {
        let fast = usePacked && Self.packedKernelIsFast
        self.weight = weight
        self.gates = gates
        self.hidden = hidden
        self.inputs = inputs
        let GH = gates * hidden, K = inputs
        rowProducts = fast && batch == 1
        inPlaceBackward = fast && backward && batch == 1 && K % 32 == 0
        if fast && forward && batch > 1 {
            let p = PackedMatrix(k: K, n: GH, kernel: PackedMatrix.kernel(rows: blockRows ?? batch, k: K))
            Self.pack(columns: GH, threads: threads) { columns in
                p.pack(rows: K, columns: columns, from: weight, ldb: K, transposed: true)
            }
            packedTransposed = p
        } else {
            packedTransposed = nil
        }
        if fast && backward && !inPlaceBackward {
            let p = PackedMatrix(k: GH, n: K, kernel: PackedMatrix.kernel(rows: blockRows ?? batch, k: GH))
            Self.pack(columns: K, threads: threads) { columns in
                p.pack(rows: GH, columns: columns, from: weight, ldb: K, transposed: false)
            }
            packed = p
        } else {
            packed = nil
        }
    }

    /// The forward product of `[x_t | h_{t-1}]` rows with `[W_ih | W_hh]ᵀ` in one pass
    /// (`inputs` = I is the width of `W_ih [G·H, I]`; the product's K is I + H), packed as the
    /// upper and lower rows of the same panels, for blocks of `blockRows` rows. For the packed
    /// kernels only; `weight` is `W_hh`, which this product does not read in place.
    init(inputWeight: UnsafePointer<Float>, hiddenWeight: UnsafePointer<Float>, gates: Int, hidden H: Int,
         inputs I: Int, blockRows: Int, threads: Int = 1) {
        precondition(Self.packedKernelIsFast, "StepProduct: combined products need the packed kernels")
        let GH = gates * H, K = I + H
        weight = hiddenWeight
        self.gates = gates
        hidden = H
        inputs = K
        rowProducts = false
        inPlaceBackward = false
        let p = PackedMatrix(k: K, n: GH, kernel: PackedMatrix.kernel(rows: blockRows, k: K))
        Self.pack(columns: GH, threads: threads) { columns in
            p.pack(rows: I, columns: columns, from: inputWeight, ldb: I, transposed: true)
            p.pack(rows: H, at: I, columns: columns, from: hiddenWeight, ldb: H, transposed: true)
        }
        packedTransposed = p
        packed = nil
    }

    /// Runs `body(columns)` over slices of whole 32-column panels of `0..<columns`,
    /// shared between the team's threads from 4 panels per thread (in a char-LM training step,
    /// the 0.36 ms before layer 1's loop, mostly packing its 2 MB of weights, ran on one thread
    /// while the other waited).
    static func pack(columns: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let panels = (columns + 31) / 32
        let parts = max(1, min(threads, panels / 4))
        withoutActuallyEscaping(body) { body in
            let job = PackJob(body: body)
            runParts(parts) { part in
                let slice = WorkSplit.slice(part, of: parts, count: panels)
                let c0 = slice.lowerBound * 32, c1 = min(slice.upperBound * 32, columns)
                if c1 > c0 { job.body(c0..<c1) }
            }
        }
    }

    /// `out[r, g·H + j] = Σ_k a[r, k] · W[g·H + j, k]` for rows `0..<rows` (pointers at the
    /// block's first row) and units `units` of every gate; `out` has row stride G·H. A slice of
    /// units must start and end on multiples of 32 (or cover all units). `descending` reads the
    /// weights last to first (the rows of a one-row product, `ck_gemv_rows`, else the packed
    /// panels; the same results): alternated step by step, each step starts on the weights the
    /// step before read last, still in L1 (one row) or L2 (packed weights streamed from L3).
    func forward(rows: Int, units: Range<Int>, a: UnsafePointer<Float>, lda: Int, out: UnsafeMutablePointer<Float>,
                 descending: Bool = false) {
        let H = hidden, GH = gates * hidden, K = inputs
        if rows == 0 || units.isEmpty { return }
        let all = units.count == H
        if rowProducts && rows == 1 {
            if all {
                ck_gemv_rows(1, 0, GH, K, weight, K, a, out, 0, descending ? 1 : 0)
            } else {
                // The same units of every gate: one pass over G ranges of rows.
                let first = units.lowerBound
                ck_gemv_rows(gates, H, units.count, K, weight + first * K, K, a, out + first, 0, descending ? 1 : 0)
            }
            return
        }
        if let packedTransposed {
            if all {
                packedTransposed.multiply(m: rows, a: a, lda: lda, panels: PackedMatrix.panels(0..<GH), out: out,
                                          ldc: GH, accumulate: false, descending: descending)
            } else {
                // The same units of every gate: one pass over G ranges of panels.
                assert(H % 32 == 0, "a slice of units needs gates that start on a panel")
                packedTransposed.multiply(m: rows, a: a, lda: lda, panels: PackedMatrix.panels(units), groups: gates,
                                          groupStride: H / 32, out: out, ldc: GH, accumulate: false,
                                          descending: descending)
            }
            return
        }
        if all {
            if rows == 1 {
                BLAS.gemv(trans: false, m: GH, n: K, a: weight, lda: K, x: a, beta: 0, y: out)
            } else {
                BLAS.gemm(transA: false, transB: true, m: rows, n: GH, k: K, a: a, lda: lda,
                          b: weight, ldb: K, beta: 0, c: out, ldc: GH)
            }
            return
        }
        for g in 0..<gates {
            let col = g * H + units.lowerBound
            BLAS.gemm(transA: false, transB: true, m: rows, n: units.count, k: K, a: a, lda: lda,
                      b: weight + col * K, ldb: K, beta: 0, c: out + col, ldc: GH)
        }
    }

    /// `dh[r, j] += Σ_k dG[r, k] · W[k, j]` for rows `0..<rows` (pointers at the block's first
    /// row) and columns `units` of `W` (32-aligned slices). `dG` has row stride G·H, `dh` row
    /// stride K. `descending` as for `forward`: the packed panels last to first (the same sums).
    func backward(rows: Int, units: Range<Int>, dG: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>,
                  descending: Bool = false) {
        let GH = gates * hidden, K = inputs
        if rows == 0 || units.isEmpty { return }
        if inPlaceBackward {
            ck_gemm_panels(rows, GH, dG, GH, weight, K, 32, 1, 0, units.lowerBound / 32, (units.upperBound + 31) / 32,
                           K, dh, K, 1, descending ? 1 : 0)
            return
        }
        if let packed {
            packed.multiply(m: rows, a: dG, lda: GH, panels: PackedMatrix.panels(units), out: dh, ldc: K,
                            accumulate: true, descending: descending)
            return
        }
        if rows == 1 {
            BLAS.gemv(trans: true, m: GH, n: units.count, a: weight + units.lowerBound, lda: K, x: dG, beta: 1,
                      y: dh + units.lowerBound)
        } else {
            BLAS.gemm(transA: false, transB: false, m: rows, n: units.count, k: GH, a: dG, lda: GH,
                      b: weight + units.lowerBound, ldb: K, beta: 1, c: dh + units.lowerBound, ldc: K)
        }
    }
}

/// The packing work `StepProduct.pack` hands to the team (each part packs its own panels).
private struct PackJob: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}
