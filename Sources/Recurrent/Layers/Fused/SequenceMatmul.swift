import CKernels

/// The whole-sequence matrix products of a fused sequence (input projections, weight and input
/// gradients), over all T·B rows at once and shared between threads.
///
/// With the packed kernels (AVX-512, or AVX2 with FMA) the right-hand side is packed once and each thread takes a slice of
/// rows; otherwise (and for the weight gradient) each thread runs single-threaded BLAS on its
/// slice. Callers pass the threads available to them (`ThreadTeam.available`).
enum SequenceMatmul {
    /// `out[m, n] = bias + A[m, k]·Wᵀ` for `W [n, k]` (row-major; `bias [n]` added to every row,
    /// then the product, as PyTorch's `addmm` does). `out` has row stride n.
    ///
    /// With the packed kernels: from 256 rows `Wᵀ` is packed once and each thread takes a slice
    /// of rows; from 4 rows (`x·W_ihᵀ` of a short sequence at batch size 1) each thread packs and
    /// multiplies its own slice of the output columns. Below that BLAS runs, each thread on a
    /// slice of the columns. (Measured on one thread's half of a 1024 × 128 `W`: BLAS 4.5 µs
    /// against 11 µs for 1 row, 28 against 14 µs for 4 rows, 47 against 31 µs for 32 rows.)
    static func linear(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, packed usePacked: Bool,
                       threads: Int) {
        if m == 0 || n == 0 { return }
        let fast = usePacked && StepProduct.packedKernelIsFast
        guard fast && m >= 256 else {
            let packed = fast && m >= 4 ? PackedMatrix(k: k, n: n, kernel: PackedMatrix.kernel(rows: m, k: k)) : nil
            let job = ColumnJob(m: m, n: n, k: k, a: a, lda: lda, weight: weight, bias: bias, out: out,
                                packed: packed)
            let quantum = packed == nil ? 16 : 32
            let parts = min(productParts(m, n, k, threads: threads), max(1, (n + quantum - 1) / quantum))
            runParts(parts) { p in job.run(columns: WorkSplit.slice(p, of: parts, count: n, quantum: quantum)) }
            return
        }
        packedRows(m: m, n: n, k: k, a: a, lda: lda, bias: bias, out: out, threads: threads) {
            $0.pack(rows: k, columns: 0..<n, from: weight, ldb: k, transposed: true)
        }
    }

    /// One thread's share of `out[m, G·H] = [bias +] A[m, k]·Wᵀ` for `W [G·H, k]`: the columns of
    /// hidden units `units` in each of the `gates` gates. For the input projections of all steps
    /// these are the units the thread owns in a `units` split of the time loop, so it can run in
    /// the same parallel region as the loop, with no meeting between the two; with one gate
    /// (`hidden` = n) it is a plain slice of columns. With `packs`, first packs those rows of `W`
    /// into their panels of `packed` (`Wᵀ`, `[k × G·H]`, shared by the threads); without, `packed`
    /// holds all of `Wᵀ` already. `units` must start on a multiple of 32, and so must `hidden`
    /// with more than one gate.
    static func linearUnits(m: Int, k: Int, gates: Int, hidden H: Int, units: Range<Int>,
                            a: UnsafePointer<Float>, lda: Int, weight: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, packed: PackedMatrix, packs: Bool = true,
                            out: UnsafeMutablePointer<Float>) {
        if m == 0 || units.isEmpty { return }
        let GH = gates * H, j0 = units.lowerBound
        for g in 0..<gates {
            let first = g * H + j0
            if packs { packed.pack(rows: k, columns: first..<first + units.count, from: weight, ldb: k, transposed: true) }
            if let bias { ck_copy_rows(m, units.count, bias + first, 0, out + first, GH) }
        }
        packed.multiply(m: m, a: a, lda: lda, panels: PackedMatrix.panels(units), groups: gates,
                        groupStride: gates > 1 ? H / 32 : 0, out: out, ldc: GH, accumulate: bias != nil)
    }

    /// `out[m, n] = A[m, k]·W` for `W [k, n]` row-major. `out` has row stride n.
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, weight: UnsafePointer<Float>,
                         out: UnsafeMutablePointer<Float>, packed usePacked: Bool, threads: Int) {
        if m == 0 || n == 0 { return }
        guard usePacked && StepProduct.packedKernelIsFast else {
            let job = BLASRowJob(a: a, lda: lda, b: weight, k: k, n: n, out: out)
            let parts = min(productParts(m, n, k, threads: threads), max(1, m / 8))
            runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: m, quantum: 8)) }
            return
        }
        packedRows(m: m, n: n, k: k, a: a, lda: lda, bias: nil, out: out, threads: threads) {
            $0.pack(rows: k, columns: 0..<n, from: weight, ldb: n, transposed: false)
        }
    }

    /// `out[m, n] = [bias +] A[m, k]·B` with B `[k, n]` packed once by `pack`, each thread on a
    /// slice of the rows.
    private static func packedRows(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                   bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, threads: Int,
                                   pack: (PackedMatrix) -> Void) {
        let parts = productParts(m, n, k, threads: threads)
        let packed = PackedMatrix(k: k, n: n, kernel: PackedMatrix.kernel(rows: m / parts, k: k))
        pack(packed)
        let job = RowJob(a: a, lda: lda, packed: packed, n: n, out: out, bias: bias)
        runBalancedParts(parts, count: m, quantum: 8) { job.run(rows: $0) }
    }

    /// `out[m, n] = Aᵀ·B` for `A [k, m]` and `B [k, n]` row-major (strides lda, ldb): the weight
    /// gradient `dW = dGᵀ·X` summed over all T·B rows. `out` has row stride ldo. Each thread
    /// takes a slice of the rows of `out`, so it reads only its columns of A (`dG`, the larger
    /// operand) where a split by columns had every thread pack all of it (4–8% faster C1 training
    /// in paired runs). With `tiles` (and the tile kernel available) B is packed for the tile
    /// kernel in passes of `PackedMatrix.termsPerPass` rows, the threads sharing the packing of
    /// each, and the slices follow the threads' speeds; otherwise each thread runs BLAS.
    static func multiplyTransposedLeft(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                       b: UnsafePointer<Float>, ldb: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
                                       tiles: Bool, threads: Int) {
        if m == 0 || n == 0 { return }
        let parts = min(productParts(m, n, k, threads: threads), max(1, m / 16))
        if tiles && PackedMatrix.kernel(rows: m / parts, k: k) == .tiles {
            // B in chunks of the rows the tile kernel sums in one pass, each packed by both
            // threads and then multiplied into `out` (the same sums as one call over all rows,
            // for a chunk's packed B instead of all of it: 6 MB instead of 39 at C2).
            let panels = (n + 31) / 32, packParts = min(parts, panels)
            for k0 in stride(from: 0, to: k, by: PackedMatrix.termsPerPass) {
                let kc = min(PackedMatrix.termsPerPass, k - k0)
                let job = TileTransposedLeftJob(packed: PackedMatrix(k: kc, n: n, kernel: .tiles), a: a + k0 * lda,
                                                lda: lda, b: b + k0 * ldb, ldb: ldb, out: out, ldo: ldo,
                                                accumulate: k0 > 0)
                runParts(packParts) { p in job.pack(panels: WorkSplit.slice(p, of: packParts, count: panels)) }
                runBalancedParts(parts, count: m, quantum: 32) { job.run(rows: $0) }
            }
            return
        }
        let job = TransposedLeftJob(n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, out: out, ldo: ldo)
        runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: m, quantum: 16)) }
    }
}

extension SequenceMatmul {
    /// `out[c, v] = Σ_{r : symbols[r] = v} dG[r, c]` for `dG [rows, columns]`, `out [columns,
    /// symbolCount]`: the weight gradient `dGᵀ·X` for one-hot rows of X, as sums of rows instead of
    /// a product. Each thread sums a slice of the columns over all rows in order, so the result
    /// does not depend on the thread count.
    static func symbolWeightGradient(rows: Int, symbols: UnsafePointer<Int32>, symbolCount: Int,
                                     dG: UnsafePointer<Float>, columns: Int, out: UnsafeMutablePointer<Float>,
                                     threads: Int) {
        if rows == 0 || columns == 0 || symbolCount == 0 { return }
        let job = SymbolSumJob(rows: rows, symbols: symbols, symbolCount: symbolCount, dG: dG, columns: columns, out: out)
        let parts = min(productParts(rows, columns, 1, threads: threads), max(1, columns / 16))
        runParts(parts) { p in job.run(columns: WorkSplit.slice(p, of: parts, count: columns, quantum: 16)) }
    }

    /// The first `left` and the last `right` columns of `source [rows, left + right]` as two new
    /// row-major arrays (`[dW_ih | dW_hh]` into the two parameters' gradients; see `copyRows`).
    static func splitColumns(_ source: UnsafePointer<Float>, rows: Int, left: Int, right: Int,
                             threads: Int) -> ([Float], [Float]) {
        let width = left + right
        func columns(_ first: Int, _ count: Int) -> [Float] {
            [Float](unsafeUninitializedCapacity: rows * count) { out, initialized in
                if rows * count > 0 {
                    copyRows(rows, count, from: source + first, width, to: out.baseAddress!, count, threads: threads)
                }
                initialized = rows * count
            }
        }
        return (columns(0, left), columns(left, right))
    }
}

/// One thread's columns of `SequenceMatmul.symbolWeightGradient`.
private struct SymbolSumJob: @unchecked Sendable {
    let rows: Int
    let symbols: UnsafePointer<Int32>, symbolCount: Int
    let dG: UnsafePointer<Float>, columns: Int
    let out: UnsafeMutablePointer<Float>

    func run(columns range: Range<Int>) {
        if range.isEmpty { return }
        let width = range.count, c0 = range.lowerBound, V = symbolCount
        // Sums by symbol `[V, width]`, then transposed into `out`.
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: V * width)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0, count: V * width)
        for r in 0..<rows {
            let target = sums + Int(symbols[r]) * width, source = dG + r * columns + c0
            for j in 0..<width { target[j] += source[j] }
        }
        for j in 0..<width { for v in 0..<V { out[(c0 + j) * V + v] = sums[v * width + j] } }
    }
}

/// One thread's rows of `out = [bias +] A·B` against a packed B.
private struct RowJob: @unchecked Sendable {
    let a: UnsafePointer<Float>, lda: Int
    let packed: PackedMatrix, n: Int
    let out: UnsafeMutablePointer<Float>
    let bias: UnsafePointer<Float>?

    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        let r0 = rows.lowerBound
        if let bias { ck_fill_rows(rows.count, n, bias, out + r0 * n) }
        packed.multiply(m: rows.count, a: a + r0 * lda, lda: lda, panels: PackedMatrix.panels(0..<n), out: out + r0 * n,
                        ldc: n, accumulate: bias != nil)
    }
}

/// One thread's rows of `out = A·B` with BLAS.
private struct BLASRowJob: @unchecked Sendable {
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, k: Int, n: Int
    let out: UnsafeMutablePointer<Float>

    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        let r0 = rows.lowerBound
        BLAS.gemm(transA: false, transB: false, m: rows.count, n: n, k: k, a: a + r0 * lda, lda: lda,
                  b: b, ldb: n, beta: 0, c: out + r0 * n, ldc: n)
    }
}

/// One thread's columns of `out = bias + A·Wᵀ`. With `packed`, `linearUnits` with one gate: the
/// thread packs the 32-column panels of `Wᵀ` it needs (rows of `W`) into its part of `packed` and
/// runs the packed kernel (`columns` then starts on a multiple of 32); otherwise BLAS runs.
private struct ColumnJob: @unchecked Sendable {
    let m: Int, n: Int, k: Int
    let a: UnsafePointer<Float>, lda: Int
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
    let packed: PackedMatrix?

    func run(columns: Range<Int>) {
        if columns.isEmpty { return }
        if let packed {
            SequenceMatmul.linearUnits(m: m, k: k, gates: 1, hidden: n, units: columns, a: a, lda: lda,
                                       weight: weight, bias: bias, packed: packed, out: out)
            return
        }
        let c0 = columns.lowerBound
        ck_copy_rows(m, columns.count, bias + c0, 0, out + c0, n)
        BLAS.gemm(transA: false, transB: true, m: m, n: columns.count, k: k, a: a, lda: lda,
                  b: weight + c0 * k, ldb: k, beta: 1, c: out + c0, ldc: n)
    }
}

/// The packing and one thread's rows of `out = Aᵀ·B` on the tile kernel.
struct TileTransposedLeftJob: @unchecked Sendable {
    let packed: PackedMatrix
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, ldb: Int
    let out: UnsafeMutablePointer<Float>, ldo: Int
    /// Add to `out` instead of storing (the chunks after the first).
    var accumulate = false

    /// Packs the 32-column panels `panels` of B.
    func pack(panels: Range<Int>) {
        let columns = panels.lowerBound * 32..<min(panels.upperBound * 32, packed.n)
        if !columns.isEmpty {
            packed.pack(rows: packed.k, columns: columns, from: b, ldb: ldb, transposed: false)
        }
    }

    /// Rows `rows` of `out` (columns `rows` of A).
    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        packed.multiply(m: rows.count, a: a + rows.lowerBound, lda: lda, transposedA: true,
                        panels: PackedMatrix.panels(0..<packed.n), out: out + rows.lowerBound * ldo, ldc: ldo,
                        accumulate: accumulate)
    }
}

/// One thread's rows of `out = Aᵀ·B` with BLAS.
private struct TransposedLeftJob: @unchecked Sendable {
    let n: Int, k: Int
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, ldb: Int
    let out: UnsafeMutablePointer<Float>, ldo: Int

    /// Rows `rows` of `out` (columns `rows` of A).
    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        BLAS.gemm(transA: true, transB: false, m: rows.count, n: n, k: k, a: a + rows.lowerBound, lda: lda,
                  b: b, ldb: ldb, beta: 0, c: out + rows.lowerBound * ldo, ldc: ldo)
    }
}
