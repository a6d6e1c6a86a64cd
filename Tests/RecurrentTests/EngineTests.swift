import Testing
@testable import Recurrent

@Suite struct TensorTests {
    @Test func matmulMatchesNaive() {
        var rng = RandomGenerator(seed: 1)
        let a = rng.uniformTensor([3, 5], low: -1, high: 1)
        let b = rng.uniformTensor([4, 5], low: -1, high: 1)
        let c = matmul(a, b, transposeB: true)
        for i in 0..<3 { for j in 0..<4 {
            var s: Float = 0
            for k in 0..<5 { s += a[i, k] * b[j, k] }
            #expect(abs(c[i, j] - s) < 1e-5)
        } }
    }

    /// Products from 2²⁰ multiply-adds are shared between threads by rows of C (or by columns when
    /// C has fewer rows): every element of every transpose combination must match the naive sum.
    @Test(arguments: [(300, 70, 64), (40, 300, 96)])
    func largeMatmulMatchesNaiveInEveryLayout(m: Int, n: Int, k: Int) {
        var rng = RandomGenerator(seed: 2)
        let a = rng.uniformTensor([m, k], low: -1, high: 1), b = rng.uniformTensor([k, n], low: -1, high: 1)
        func transposed(_ t: Tensor) -> Tensor {
            let r = t.shape[0], c = t.shape[1]
            return Tensor(shape: [c, r], data: (0..<(r * c)).map { t.data[($0 % r) * c + $0 / r] })
        }
        let at = transposed(a), bt = transposed(b)
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += a[i, p] * b[p, j] }
            expected[i * n + j] = s
        } }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let c = matmul(ta ? at : a, tb ? bt : b, transposeA: ta, transposeB: tb)
            #expect(c.shape == [m, n])
            let far = (0..<(m * n)).filter { abs(c.data[$0] - expected[$0]) > 1e-4 }
            #expect(far.count == 0, "transposeA \(ta), transposeB \(tb): \(far.count) elements differ, first at \(far.first ?? -1)")
        }
    }

    /// From 256K floats a sum adds two halves (on two threads) and a fill is shared between
    /// threads: small integers sum exactly in any order, so the total must be exact, and every
    /// element of a fill must hold the value.
    @Test func largeSumsAndFillsCoverEveryElement() {
        let count = 300_001
        let values = (0..<count).map { Float($0 % 4) }
        let exact = (0..<count).reduce(0) { $0 + $1 % 4 }
        #expect(Tensor.sum(values) == Float(exact))
        let filled = Tensor(repeating: 3, shape: [count])
        let wrong = filled.data.filter { $0 != 3 }.count
        #expect(wrong == 0)
    }

    /// Copies from 256K floats share their rows between threads: concatenating and slicing
    /// columns (and their gradients) must place every element, at uneven widths and an odd row
    /// count (2101 × 130 floats and more per copy).
    @Test func largeColumnCopiesPlaceEveryElement() {
        let rows = 2101, widths = [130, 131]
        let parts = widths.enumerated().map { i, w in
            Variable(Tensor(shape: [rows, w], data: (0..<(rows * w)).map { Float(i * 1_000_000 + $0) }), requiresGrad: true)
        }
        let joined = concatColumns(parts)
        #expect(joined.shape == [rows, 261])
        let misplaced = (0..<(rows * 261)).filter { e in
            let r = e / 261, c = e % 261
            let expected = c < 130 ? Float(r * 130 + c) : Float(1_000_000 + r * 131 + c - 130)
            return joined.value.data[e] != expected
        }
        let count = misplaced.count, first = misplaced.first ?? -1
        #expect(count == 0, "\(count) elements misplaced, first at \(first)")
        let right = columns(joined, 130..<261)
        let sliced = right.value == parts[1].value
        #expect(sliced)
        // d/dx of Σ weights ⊙ columns: the weights, routed back to the second part only.
        let weights = Tensor(shape: [rows, 131], data: (0..<(rows * 131)).map { Float($0 % 7) })
        sum(right * Variable(weights)).backward()
        let routed = parts[1].grad == weights, zero = parts[0].grad == Tensor(zeros: [rows, 130])
        #expect(routed && zero)
    }
}

@Suite struct AutodiffTests {
    @Test func elementwiseAndMatmulGradients() {
        var rng = RandomGenerator(seed: 3)
        let x = Variable(rng.uniformTensor([3, 4], low: -1, high: 1), requiresGrad: true, name: "x")
        let w = Variable(rng.uniformTensor([5, 4], low: -1, high: 1), requiresGrad: true, name: "w")
        let b = Variable(rng.uniformTensor([5], low: -1, high: 1), requiresGrad: true, name: "b")
        let r = gradientCheck([x, w, b]) {
            let h = linear(x, weight: w, bias: b)
            let a = concatColumns([sigmoid(columns(h, 0..<2)), tanh(columns(h, 2..<4)), relu(columns(h, 4..<5))])
            let s = selectRows([true, false, true], a * a, oneMinus(a))
            return weightedSum(stack([s, exp(s) * 0.5]))
        }
        #expect(r.ratio <= 1, "\(r.worst)")
    }

    /// A weight read at many steps gets its gradient terms `g_tᵀ·x_t` formed as stacked products
    /// (`PendingGradient`, 256 rows at a time for this shape): 84 steps of 32 rows (ten full
    /// stacks and a remainder of four steps), beside a dense term and products from `matmul` on
    /// either side, must sum to the gradient computed term by term in Double.
    @Test func unformedProductTermsSumToTheGradient() {
        var rng = RandomGenerator(seed: 4)
        let steps = 84, rows = 32, inputs = 5, outputs = 6
        let w = Variable(rng.uniformTensor([outputs, inputs], low: -1, high: 1), requiresGrad: true, name: "w")
        let b = Variable(rng.uniformTensor([outputs], low: -1, high: 1), requiresGrad: true, name: "b")
        let xs = (0..<steps).map { _ in rng.uniformTensor([rows, inputs], low: -1, high: 1) }
        let cs = (0..<steps).map { _ in rng.uniformTensor([rows, outputs], low: -1, high: 1) }
        let dense = rng.uniformTensor([outputs, inputs], low: -1, high: 1)
        let u = rng.uniformTensor([3, outputs], low: -1, high: 1)
        let v = rng.uniformTensor([inputs, 7], low: -1, high: 1), cv = rng.uniformTensor([outputs, 7], low: -1, high: 1)
        // L = Σ_t Σ c_t ⊙ (x_t·Wᵀ + b) + Σ dense ⊙ W + Σ (u·W) + Σ cv ⊙ (W·v)
        var loss = sum(Variable(dense) * w) + sum(matmul(Variable(u), w)) + sum(Variable(cv) * matmul(w, Variable(v)))
        for t in 0..<steps { loss = loss + sum(Variable(cs[t]) * linear(Variable(xs[t]), weight: w, bias: b)) }
        loss.backward()
        var expected = [Double](repeating: 0, count: outputs * inputs)
        for o in 0..<outputs { for i in 0..<inputs {
            var s = Double(dense[o, i])
            for r in 0..<3 { s += Double(u[r, o]) }
            for j in 0..<7 { s += Double(cv[o, j]) * Double(v[i, j]) }
            for t in 0..<steps { for r in 0..<rows { s += Double(cs[t][r, o]) * Double(xs[t][r, i]) } }
            expected[o * inputs + i] = s
        } }
        let grad = w.grad?.data ?? []
        #expect(grad.count == expected.count)
        // Float32 sums of ~2700 terms: errors relative to the largest element (~36) of ~1e-6; a
        // missing or doubled step (32 terms, ~2) would be ~5e-2.
        let scale = expected.map { abs($0) }.max() ?? 1
        let worst = zip(grad, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(worst / scale < 1e-5, "worst error \(worst) against the largest element \(scale)")
    }

    /// Column slices send their gradient as blocks added into their columns: blocks and a dense
    /// gradient of the same matrix, in either order, must sum exactly (small integers).
    @Test func columnBlocksAddIntoTheirColumns() {
        let x = Variable(Tensor(shape: [3, 6], data: (0..<18).map { Float($0) }), requiresGrad: true)
        let dense = Tensor(shape: [3, 6], data: (0..<18).map { Float($0 % 5) })
        let left = Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6]), right = Tensor(shape: [3, 3], data: (0..<9).map { Float(10 * $0) })
        var expected = dense
        for r in 0..<3 {
            for j in 0..<2 { expected[r, j] += left[r, j] + left[r, j] }
            for j in 0..<3 { expected[r, 3 + j] += right[r, j] }
        }
        for denseFirst in [true, false] {
            x.grad = nil
            let d = sum(x * Variable(dense))
            let blocks = sum(columns(x, 0..<2) * Variable(left)) + sum(columns(x, 3..<6) * Variable(right))
                + sum(columns(x, 0..<2) * Variable(left))
            (denseFirst ? d + blocks : blocks + d).backward()
            #expect(x.grad == expected, "dense first: \(denseFirst)")
        }
    }

    @Test func multipleOutputNodeRoutesEachGradient() {
        let x = Variable(Tensor(shape: [2], data: [1, 2]), requiresGrad: true)
        let outs = Variable.recordMultiple([x.value * 2, x.value * 3], parents: [x]) { g in
            [(g[0] ?? Tensor(zeros: [2])) * 2 + (g[1] ?? Tensor(zeros: [2])) * 3]
        }
        sum(outs[0] + outs[1] * 10).backward()
        #expect(x.grad == Tensor(shape: [2], data: [32, 32]))
    }
}

@Suite struct MachinePeakTests {
    /// The benchmark's "fraction of peak" divides by this: it must be a real rate (a zero, NaN or
    /// absurd value would come from a broken timer or FLOP count). Any CPU of the last twenty
    /// years does more than 1 GFLOP/s on one thread; none does 100 TFLOP/s.
    @Test func peakIsAPlausibleRate() {
        let peak = MachinePeak.gflops(threads: 1, bursts: 2)
        #expect(peak.isFinite && peak > 1 && peak < 100_000, "measured \(peak) GFLOP/s")
    }
}
