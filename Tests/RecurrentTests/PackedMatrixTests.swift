import Testing
@testable import Recurrent

/// The packed products, above all the tile kernel (fp32 products on the bf16 matrix units from
/// three-part splits), against a Float64 oracle and against the generic path.
@Suite struct PackedMatrixTests {
    /// One product case: `C[m × n] (+)= A·B` over the panels `panels`, B packed in two pieces of
    /// k (as `[W_ih | W_hh]ᵀ` is), from `W [n × k]` (transposed) or `B [k × n]`.
    struct Case: CustomTestStringConvertible, Sendable {
        let m, k, n: Int
        var panels: Range<Int>? = nil
        var groups = 1, groupStride = 0
        var accumulate = false, transposedB = true, transposedA = false
        var testDescription: String {
            "\(m)×\(k)×\(n) groups \(groups) acc \(accumulate) Bᵀ \(transposedB) Aᵀ \(transposedA)"
        }
    }

    /// Edges of every kind: rows not a multiple of 16 or 32 (and under 16), k not a multiple of
    /// 32 and past one 1024-chunk, columns not a multiple of 32, slices of panels in several
    /// groups, accumulation, and A read transposed (the weight gradients).
    static let cases: [Case] = [
        Case(m: 64, k: 512, n: 256),
        Case(m: 37, k: 100, n: 75),
        Case(m: 37, k: 100, n: 75, accumulate: true, transposedB: false),
        Case(m: 5, k: 33, n: 40, panels: 1..<2, accumulate: true),
        Case(m: 130, k: 300, n: 256, panels: 0..<1, groups: 4, groupStride: 2),
        Case(m: 40, k: 2100, n: 70),
        Case(m: 64, k: 1500, n: 96, transposedB: false, transposedA: true),
        Case(m: 45, k: 130, n: 40, accumulate: true, transposedB: false, transposedA: true),
    ]

    /// Each element is within 1e-6 of Σ|a·b| (plus |c₀| when accumulating) of the Float64 sum, and
    /// the columns outside the panels are untouched. Keeping fewer than the six part products
    /// (a two-part split errs by ~2⁻¹⁶ ≈ 1.5e-5 of |a·b|) fails this; fp32 itself errs by
    /// ~6e-8 here.
    @Test(.enabled(if: PackedMatrix.tilesAvailable), arguments: cases)
    func tileProductsHaveFP32Accuracy(_ c: Case) {
        var rng = RandomGenerator(seed: UInt64(c.m * 7 + c.k))
        let lda = c.transposedA ? c.m + 3 : c.k + 5
        let a = (0..<(c.transposedA ? c.k : c.m) * lda).map { _ in rng.uniform(-1, 1) }
        // Values of every size, so the parts of small and large ones are both exercised.
        let w = (0..<c.n * c.k).map { i in rng.uniform(-1, 1) * (i % 5 == 0 ? 1e-3 : 3) }
        let c0 = (0..<c.m * c.n).map { _ in rng.uniform(-1, 1) }
        let packed = PackedMatrix(k: c.k, n: c.n, kernel: .tiles)
        let k1 = c.k / 3
        w.withUnsafeBufferPointer { pw in
            if c.transposedB {   // W [n × k]
                packed.pack(rows: k1, columns: 0..<c.n, from: pw.start, ldb: c.k, transposed: true)
                packed.pack(rows: c.k - k1, at: k1, columns: 0..<c.n, from: pw.start + k1, ldb: c.k, transposed: true)
            } else {             // B [k × n], packed in two column slices as well
                let half = (c.n / 2 + 31) / 32 * 32
                for columns in [0..<min(half, c.n), min(half, c.n)..<c.n] {
                    packed.pack(rows: k1, columns: columns, from: pw.start, ldb: c.n, transposed: false)
                    packed.pack(rows: c.k - k1, at: k1, columns: columns, from: pw.start + k1 * c.n, ldb: c.n,
                                transposed: false)
                }
            }
        }
        let panels = c.panels ?? 0..<(c.n + 31) / 32
        var out = c0
        a.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                packed.multiply(m: c.m, a: pa.start, lda: lda, transposedA: c.transposedA, panels: panels,
                                groups: c.groups, groupStride: c.groupStride, out: po.start, ldc: c.n,
                                accumulate: c.accumulate)
            }
        }
        var worst = 0.0, touchedOutside = 0
        for i in 0..<c.m {
            for j in 0..<c.n {
                let inside = (0..<c.groups).contains { g in panels.contains(j / 32 - g * c.groupStride) }
                if !inside {
                    if out[i * c.n + j] != c0[i * c.n + j] { touchedOutside += 1 }
                    continue
                }
                var sum = c.accumulate ? Double(c0[i * c.n + j]) : 0, scale = abs(sum)
                for kk in 0..<c.k {
                    let av = Double(c.transposedA ? a[kk * lda + i] : a[i * lda + kk])
                    let bv = Double(c.transposedB ? w[j * c.k + kk] : w[kk * c.n + j])
                    sum += av * bv
                    scale += abs(av * bv)
                }
                worst = max(worst, abs(Double(out[i * c.n + j]) - sum) / scale)
            }
        }
        #expect(worst <= 1e-6, "worst error \(worst) of Σ|a·b|")
        #expect(touchedOutside == 0)
    }

    /// A row's result does not depend on the block it is computed in, nor a column's on the
    /// panels beside it (what lets rows change threads mid-loop and slices follow the threads'
    /// speeds): blocks of 16, 8, 40 and 16 rows, and two slices of panels, give the bits of one
    /// call, and so do the panels taken last to first.
    @Test(.enabled(if: PackedMatrix.tilesAvailable))
    func tileRowsAndColumnsComeOutAlike() {
        var rng = RandomGenerator(seed: 5)
        let m = 80, k = 300, n = 128
        let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }
        let w = (0..<n * k).map { _ in rng.uniform(-1, 1) }
        let packed = PackedMatrix(k: k, n: n, kernel: .tiles)
        w.withUnsafeBufferPointer { packed.pack(rows: k, columns: 0..<n, from: $0.start, ldb: k, transposed: true) }
        var whole = [Float](repeating: 0, count: m * n), blocks = whole
        a.withUnsafeBufferPointer { pa in
            whole.withUnsafeMutableBufferPointer { po in
                packed.multiply(m: m, a: pa.start, lda: k, panels: 0..<4, out: po.start, ldc: n, accumulate: false)
            }
            blocks.withUnsafeMutableBufferPointer { po in
                var r0 = 0
                for (index, rows) in [16, 8, 40, 16].enumerated() {
                    let panels = index % 2 == 0 ? [0..<1, 1..<4] : [0..<3, 3..<4]
                    for p in panels {
                        packed.multiply(m: rows, a: pa.start + r0 * k, lda: k, panels: p, out: po.start + r0 * n, ldc: n,
                                        accumulate: false)
                    }
                    r0 += rows
                }
            }
        }
        #expect(zip(whole, blocks).filter { $0 != $1 }.isEmpty, "results differ by block")
        var descending = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            descending.withUnsafeMutableBufferPointer {
                packed.multiply(m: m, a: pa.start, lda: k, panels: 0..<4, groups: 1, out: $0.start, ldc: n,
                                accumulate: false, descending: true)
            }
        }
        #expect(descending == whole, "the panels last to first changed the results")
    }

    /// A weight gradient `Aᵀ·B` over 2500 rows, packed and multiplied in passes of 1024 rows
    /// shared by two threads (`SequenceMatmul.multiplyTransposedLeft`), gives the bits of one call
    /// over all rows, and is within 1e-6 of Σ|a·b| of the Float64 sums (4.4e-7 measured) with
    /// positive terms. Summed as one chain of 6·k tile additions instead of a sum of passes it
    /// erred by 1.5e-6 and failed.
    @Test(.enabled(if: PackedMatrix.tilesAvailable))
    func weightGradientInPassesMatchesOneCall() {
        var rng = RandomGenerator(seed: 9)
        let m = 96, n = 80, k = 2500
        // Positive terms: the sums only grow, the case where a long chain of additions loses most.
        let a = (0..<k * m).map { _ in rng.uniform(0, 1) }, b = (0..<k * n).map { _ in rng.uniform(0, 1) }
        var passes = [Float](repeating: 0, count: m * n), whole = passes
        let packed = PackedMatrix(k: k, n: n, kernel: .tiles)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                passes.withUnsafeMutableBufferPointer {
                    SequenceMatmul.multiplyTransposedLeft(m: m, n: n, k: k, a: pa.start, lda: m, b: pb.start, ldb: n,
                                                          out: $0.start, ldo: n, tiles: true, threads: 2)
                }
                packed.pack(rows: k, columns: 0..<n, from: pb.start, ldb: n, transposed: false)
                whole.withUnsafeMutableBufferPointer {
                    packed.multiply(m: m, a: pa.start, lda: m, transposedA: true, panels: 0..<(n + 31) / 32,
                                    out: $0.start, ldc: n, accumulate: false)
                }
            }
        }
        #expect(zip(passes, whole).filter { $0 != $1 }.isEmpty, "passes differ from one call")
        var worst = 0.0
        for i in stride(from: 0, to: m, by: 5) {
            for j in stride(from: 0, to: n, by: 3) {
                var sum = 0.0, scale = 0.0
                for r in 0..<k {
                    let p = Double(a[r * m + i]) * Double(b[r * n + j])
                    sum += p
                    scale += abs(p)
                }
                worst = max(worst, abs(Double(passes[i * n + j]) - sum) / scale)
            }
        }
        #expect(worst <= 1e-6, "worst error \(worst) of Σ|a·b|")
    }

    /// The kernel is chosen by block rows and k: the tiles from 32 rows and k = 128.
    @Test func kernelFollowsRowsAndTerms() {
        #expect(PackedMatrix.kernel(rows: 16, k: 1024) == .fma)
        #expect(PackedMatrix.kernel(rows: 64, k: 64) == .fma)
        #expect(PackedMatrix.kernel(rows: 32, k: 128) == (PackedMatrix.tilesAvailable ? .tiles : .fma))
    }

    /// A fused LSTM and GRU whose products run on the tiles (32 rows, k ≥ 128: the step products,
    /// input projections, weight gradients and input gradient) agree with the generic path,
    /// which multiplies with BLAS, in outputs and every gradient (and, at 32 rows and H = 256,
    /// the LSTM's inference, whose loop is split by units, against the same generic path).
    @Test(arguments: [(CellKind.lstm, 64, 128), (.gru, 64, 128), (.lstm, 32, 256)])
    func fusedLayerOnTilesMatchesTheGenericPath(kind: CellKind, batch: Int, hidden: Int) {
        var rng = RandomGenerator(seed: 77)
        let layer = RecurrentLayer(kind: kind, inputSize: 160, hiddenSize: hidden, numLayers: 2, rng: &rng)
        let x = randomVariable([4, batch, 160], &rng, name: "x")
        let s0 = randomInitialState(layer, batch: batch, &rng)
        func run(fused: Bool) -> [Tensor] {
            layer.useFusedKernels = fused
            let inputs = layer.parameters + [x] + s0.components
            for v in inputs { v.grad = nil }
            let (y, state) = layer(x, initialState: s0)
            outputAndStateLoss(y, state).backward()
            return [y.value] + state.components.map(\.value) + inputs.map { $0.grad! }
        }
        func infer(fused: Bool) -> [Tensor] {
            layer.useFusedKernels = fused
            let (y, state) = GradientMode.withoutGradients { layer(x, initialState: s0) }
            return [y.value] + state.components.map(\.value)
        }
        let generic = run(fused: false) + infer(fused: false), fused = run(fused: true) + infer(fused: true)
        for (i, (a, b)) in zip(generic, fused).enumerated() {
            let scale = max(a.data.map { abs($0) }.max() ?? 0, 1e-3)
            #expect(a.maxAbsDifference(b) <= 2e-5 * scale, "\(kind) tensor \(i): \(a.maxAbsDifference(b)) of \(scale)")
        }
    }
}
