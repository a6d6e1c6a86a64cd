import CKernels
import Foundation
import Testing
@testable import Recurrent

/// A plain scalar-loop RNN/LSTM/GRU in Double, one sequence at a time (the oracle for the fused
/// kernels). Each row b reads its own `lengths[b]` elements, front to back or back to front.
private struct ReferenceSequence {
    let kind: CellKind
    let T: Int, B: Int, I: Int, H: Int
    let lengths: [Int]
    let reverse: Bool

    /// Named inputs of the computation, all as flat Double arrays.
    struct Inputs {
        var x, wih, whh, bih, bhh, h0, c0: [Double]
    }

    func run(_ p: Inputs) -> (output: [Double], hN: [Double], cN: [Double]) {
        let G = kind.gateCount
        var output = [Double](repeating: 0, count: T * B * H)
        var hN = [Double](repeating: 0, count: B * H), cN = hN
        for b in 0..<B {
            var h = Array(p.h0[(b * H)..<(b * H + H)])
            var c = Array(p.c0[(b * H)..<(b * H + H)])
            let order = reverse ? Array((0..<lengths[b]).reversed()) : Array(0..<lengths[b])
            for t in order {
                var gi = [Double](repeating: 0, count: G * H), gh = gi
                for k in 0..<(G * H) {
                    var s = p.bih[k]
                    for i in 0..<I { s += p.wih[k * I + i] * p.x[(t * B + b) * I + i] }
                    gi[k] = s
                    var u = p.bhh[k]
                    for j in 0..<H { u += p.whh[k * H + j] * h[j] }
                    gh[k] = u
                }
                var hNew = h
                for j in 0..<H {
                    switch kind {
                    case .rnnTanh: hNew[j] = Foundation.tanh(gh[j] + gi[j])
                    case .rnnReLU: hNew[j] = max(0, gh[j] + gi[j])
                    case .lstm:
                        let i = sig(gh[j] + gi[j]), f = sig(gh[H + j] + gi[H + j])
                        let g = Foundation.tanh(gh[2 * H + j] + gi[2 * H + j]), o = sig(gh[3 * H + j] + gi[3 * H + j])
                        c[j] = f * c[j] + i * g
                        hNew[j] = o * Foundation.tanh(c[j])
                    case .gru:
                        let r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j])
                        let n = Foundation.tanh(gi[2 * H + j] + r * gh[2 * H + j])
                        hNew[j] = (1 - z) * n + z * h[j]
                    }
                }
                h = hNew
                for j in 0..<H { output[(t * B + b) * H + j] = h[j] }
            }
            for j in 0..<H { hN[b * H + j] = h[j]; cN[b * H + j] = c[j] }
        }
        return (output, hN, cN)
    }

    private func sig(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
}

private func uniform(_ n: Int, _ rng: inout RandomGenerator, _ scale: Float = 1) -> [Float] {
    (0..<n).map { _ in rng.uniform(-scale, scale) }
}

/// One test case: a cell kind, direction and batch lengths (nil: all full).
struct FusedCase: CustomTestStringConvertible, Sendable {
    let kind: CellKind
    let reverse: Bool
    let lengths: [Int]?
    let batch: Int
    var testDescription: String { "\(kind.rawValue) reverse=\(reverse) lengths=\(lengths.map { "\($0)" } ?? "full") B=\(batch)" }

    static let all: [FusedCase] = CellKind.allCases.flatMap { kind in
        [FusedCase(kind: kind, reverse: false, lengths: nil, batch: 4),
         FusedCase(kind: kind, reverse: true, lengths: nil, batch: 4),
         FusedCase(kind: kind, reverse: false, lengths: [5, 2, 0, 4], batch: 4),
         FusedCase(kind: kind, reverse: true, lengths: [5, 2, 0, 4], batch: 4),
         FusedCase(kind: kind, reverse: true, lengths: [3], batch: 1),
         FusedCase(kind: kind, reverse: true, lengths: [5, 2, 0, 4, 1, 3, 5, 5], batch: 8),
         FusedCase(kind: kind, reverse: false, lengths: nil, batch: 1)]
    }
}

@Suite struct FusedSequenceTests {
    /// Forward values and every gradient against the Double scalar reference; the reference's
    /// gradients are central differences of L = Σ wY⊙y + Σ wH⊙h_N + Σ wC⊙c_N (Double, ε = 1e-5).
    @Test(arguments: FusedCase.all)
    func matchesScalarReference(_ c: FusedCase) {
        let T = 5, B = c.batch, I = 3, H = 4, G = c.kind.gateCount
        var rng = RandomGenerator(seed: 17)
        let x = uniform(T * B * I, &rng), wih = uniform(G * H * I, &rng, 0.6), whh = uniform(G * H * H, &rng, 0.6)
        let bih = uniform(G * H, &rng, 0.5), bhh = uniform(G * H, &rng, 0.5)
        let h0 = uniform(B * H, &rng), c0 = uniform(B * H, &rng)
        let wY = uniform(T * B * H, &rng), wH = uniform(B * H, &rng), wC = uniform(B * H, &rng)
        let lstm = c.kind == .lstm

        let fused = FusedSequence.forward(
            kind: c.kind, x: Tensor(shape: [T, B, I], data: x), weightIH: Tensor(shape: [G * H, I], data: wih),
            weightHH: Tensor(shape: [G * H, H], data: whh), biasIH: Tensor(shape: [G * H], data: bih),
            biasHH: Tensor(shape: [G * H], data: bhh), h0: Tensor(shape: [B, H], data: h0),
            c0: lstm ? Tensor(shape: [B, H], data: c0) : nil, lengths: c.lengths, reverse: c.reverse,
            saveForBackward: true)
        let grads = FusedSequence.backward(fused.context!, dOutput: Tensor(shape: [T, B, H], data: wY),
                                           dhN: Tensor(shape: [B, H], data: wH),
                                           dcN: lstm ? Tensor(shape: [B, H], data: wC) : nil)

        let reference = ReferenceSequence(kind: c.kind, T: T, B: B, I: I, H: H,
                                          lengths: c.lengths ?? Array(repeating: T, count: B), reverse: c.reverse)
        let d: ([Float]) -> [Double] = { $0.map(Double.init) }
        var inputs = ReferenceSequence.Inputs(x: d(x), wih: d(wih), whh: d(whh), bih: d(bih), bhh: d(bhh),
                                              h0: d(h0), c0: lstm ? d(c0) : [Double](repeating: 0, count: B * H))
        let r = reference.run(inputs)
        #expect(maxDifference(fused.output.data, r.output) <= 1e-5)
        #expect(maxDifference(fused.hN.data, r.hN) <= 1e-5)
        if lstm { #expect(maxDifference(fused.cN!.data, r.cN) <= 1e-5) }
        // The same forward without saving (inference path, two alternating state slots).
        let inference = FusedSequence.forward(
            kind: c.kind, x: Tensor(shape: [T, B, I], data: x), weightIH: Tensor(shape: [G * H, I], data: wih),
            weightHH: Tensor(shape: [G * H, H], data: whh), biasIH: Tensor(shape: [G * H], data: bih),
            biasHH: Tensor(shape: [G * H], data: bhh), h0: Tensor(shape: [B, H], data: h0),
            c0: lstm ? Tensor(shape: [B, H], data: c0) : nil, lengths: c.lengths, reverse: c.reverse,
            saveForBackward: false)
        #expect(inference.output == fused.output && inference.hN == fused.hN && inference.cN == fused.cN)
        #expect(inference.context == nil)

        func loss(_ p: ReferenceSequence.Inputs) -> Double {
            let y = reference.run(p)
            var s = 0.0
            for i in 0..<y.output.count { s += Double(wY[i]) * y.output[i] }
            for i in 0..<y.hN.count { s += Double(wH[i]) * y.hN[i] }
            if lstm { for i in 0..<y.cN.count { s += Double(wC[i]) * y.cN[i] } }
            return s
        }
        func numeric(_ path: WritableKeyPath<ReferenceSequence.Inputs, [Double]>) -> [Double] {
            let eps = 1e-5
            return (0..<inputs[keyPath: path].count).map { i in
                let saved = inputs[keyPath: path][i]
                inputs[keyPath: path][i] = saved + eps
                let plus = loss(inputs)
                inputs[keyPath: path][i] = saved - eps
                let minus = loss(inputs)
                inputs[keyPath: path][i] = saved
                return (plus - minus) / (2 * eps)
            }
        }
        let checks: [(String, [Float], WritableKeyPath<ReferenceSequence.Inputs, [Double]>)] = [
            ("dx", grads.dx.data, \.x), ("dW_ih", grads.dWeightIH.data, \.wih), ("dW_hh", grads.dWeightHH.data, \.whh),
            ("db_ih", grads.dBiasIH.data, \.bih), ("db_hh", grads.dBiasHH.data, \.bhh), ("dh0", grads.dh0.data, \.h0),
        ] + (lstm ? [("dc0", grads.dc0!.data, \.c0)] : [])
        for (name, ours, path) in checks {
            let expected = numeric(path)
            let worst = zip(ours, expected).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-5, "\(name): worst scaled difference \(worst)")
        }
        if let lengths = c.lengths {
            // Padded steps get exactly zero input gradient.
            for b in 0..<B { for t in lengths[b]..<T { for i in 0..<I {
                #expect(grads.dx.data[(t * B + b) * I + i] == 0)
            } } }
        }
    }

    /// Finite differences through the tape node (`apply`) with every input requiring a gradient.
    @Test(arguments: CellKind.allCases)
    func applyPassesGradientCheck(_ kind: CellKind) {
        let T = 4, B = 3, I = 3, H = 4, G = kind.gateCount
        var rng = RandomGenerator(seed: 5)
        func parameter(_ shape: [Int], _ name: String, _ scale: Float = 0.5) -> Variable {
            Variable(rng.uniformTensor(shape, low: -scale, high: scale), requiresGrad: true, name: name)
        }
        let x = parameter([T, B, I], "x", 1), wih = parameter([G * H, I], "weight_ih"), whh = parameter([G * H, H], "weight_hh")
        let bih = parameter([G * H], "bias_ih"), bhh = parameter([G * H], "bias_hh")
        let h0 = parameter([B, H], "h0", 1), c0: Variable? = kind == .lstm ? parameter([B, H], "c0", 1) : nil
        for reverse in [false, true] {
            let r = gradientCheck([x, wih, whh, bih, bhh, h0] + (c0.map { [$0] } ?? [])) {
                let y = FusedSequence.apply(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                            h0: h0, c0: c0, lengths: [4, 1, 3], reverse: reverse)
                var loss = weightedSum(y.output) + weightedSum(y.hN, seed: 7)
                if let cN = y.cN { loss = loss + weightedSum(cN, seed: 8) }
                return loss
            }
            #expect(r.ratio <= 1, "reverse=\(reverse): \(r.worst)")
        }
    }

    /// Both directions run together (one thread each, writing and reading their halves of the
    /// side-by-side output in place) give the results and gradients of two separate `apply`
    /// calls joined by `concat`, with lengths, initial states and every input requiring a gradient;
    /// a finite-difference check covers the combined node's backward (the summed `dx`). At T = 40
    /// (360 rows) the weight gradients come in 4 chunks of rows that either thread may run.
    @Test(arguments: CellKind.allCases, [5, 40])
    func bothDirectionsMatchSeparateDirections(_ kind: CellKind, steps T: Int) {
        let B = 9, I = 6, H = 64, G = kind.gateCount
        var rng = RandomGenerator(seed: 31)
        func parameter(_ shape: [Int], _ scale: Float = 0.3) -> Variable {
            Variable(rng.uniformTensor(shape, low: -scale, high: scale), requiresGrad: true)
        }
        let x = parameter([T, B, I], 1)
        let weights = (0..<2).map { _ in
            DirectionParameters(weightIH: parameter([G * H, I]), weightHH: parameter([G * H, H]),
                                biasIH: parameter([G * H]), biasHH: parameter([G * H]))
        }
        let h0 = (0..<2).map { _ in parameter([B, H], 1) }
        let c0: [Variable]? = kind == .lstm ? (0..<2).map { _ in parameter([B, H], 1) } : nil
        let lengths = T == 5 ? [5, 1, 0, 3, 5, 2, 4, 5, 1] : [40, 1, 0, 23, 40, 2, 39, 40, 7]
        let all = [x] + weights.flatMap { [$0.weightIH, $0.weightHH, $0.biasIH, $0.biasHH] } + h0 + (c0 ?? [])
        /// The outputs side by side `[T, B, 2H]`, and per direction hN and (LSTM) cN.
        typealias Results = (output: Variable, hN: [Variable], cN: [Variable]?)
        func loss(_ r: Results) -> Variable {
            var total = weightedSum(r.output, seed: 10)
            for d in 0..<2 {
                total = total + weightedSum(r.hN[d], seed: UInt64(20 + d))
                if let cN = r.cN { total = total + weightedSum(cN[d], seed: UInt64(30 + d)) }
            }
            return total
        }
        func run(together: Bool) -> (values: [Tensor], grads: [Tensor]) {
            for v in all { v.zeroGrad() }
            let results: Results
            if together {
                results = FusedSequence.applyBothDirections(kind: kind, x: x, parameters: weights, h0: h0, c0: c0, lengths: lengths)
            } else {
                let each = (0..<2).map { d in
                    FusedSequence.apply(kind: kind, x: x, weightIH: weights[d].weightIH, weightHH: weights[d].weightHH,
                                        biasIH: weights[d].biasIH, biasHH: weights[d].biasHH, h0: h0[d], c0: c0?[d],
                                        lengths: lengths, reverse: d == 1)
                }
                results = (MergeMode.concat.merge(each[0].output, each[1].output), each.map(\.hN),
                           kind == .lstm ? each.map { $0.cN! } : nil)
            }
            loss(results).backward()
            let values = [results.output.value] + results.hN.map(\.value) + (results.cN?.map(\.value) ?? [])
            return (values, all.map { $0.grad! })
        }
        let separate = run(together: false), together = run(together: true)
        for (k, (a, b)) in zip(together.values + together.grads, separate.values + separate.grads).enumerated() {
            let scale = max(1, b.data.map(abs).max() ?? 0)
            #expect(a.shape == b.shape && a.maxAbsDifference(b) <= 1e-5 * scale,
                    "\(kind): result \(k) differs by \(a.maxAbsDifference(b))")
        }
        // ReLU's kink at 0 defeats central differences with this many units near it.
        if kind != .rnnReLU && T == 5 {
            let r = gradientCheck([x]) {
                loss(FusedSequence.applyBothDirections(kind: kind, x: x, parameters: weights, h0: h0, c0: c0, lengths: lengths))
            }
            #expect(r.ratio <= 1, "\(kind): \(r.worst)")
        }
    }

    /// Without recording, `apply` returns constants equal to `forward`'s results.
    @Test func applyWithoutGradientsBuildsNoGraph() {
        var rng = RandomGenerator(seed: 9)
        let x = Variable(rng.uniformTensor([3, 2, 3], low: -1, high: 1))
        let w = Variable(rng.uniformTensor([16, 3], low: -0.5, high: 0.5), requiresGrad: true)
        let u = Variable(rng.uniformTensor([16, 4], low: -0.5, high: 0.5), requiresGrad: true)
        let b = Variable(Tensor(zeros: [16]), requiresGrad: true)
        let h0 = Variable(Tensor(zeros: [2, 4]))
        let y = GradientMode.withoutGradients {
            FusedSequence.apply(kind: .lstm, x: x, weightIH: w, weightHH: u, biasIH: b, biasHH: b, h0: h0, c0: nil,
                                lengths: nil, reverse: false)
        }
        let direct = FusedSequence.forward(kind: .lstm, x: x.value, weightIH: w.value, weightHH: u.value, biasIH: b.value,
                                           biasHH: b.value, h0: h0.value, c0: nil, lengths: nil, reverse: false,
                                           saveForBackward: false)
        #expect(!y.output.requiresGrad && y.output.value == direct.output && y.cN?.value == direct.cN)
    }

    /// The packed product computes each row alike in any block of rows, a row alone included: the
    /// splits that follow the threads' speeds and the rows handed over mid-loop rely on it to
    /// keep every result's bits. Every block `[r0, r1)` of 13 rows, against the whole product,
    /// with a partial last panel, an odd panel count (a single panel after the pairs) and k past
    /// the pairs' limit, stored and accumulated.
    @Test func packedProductRowsAreAlikeInAnyBlock() {
        var rng = RandomGenerator(seed: 43)
        for (k, n) in [(5, 100), (384, 96), (2100, 64)] {
            let m = 13
            let a = rng.uniformTensor([m, k], low: -1, high: 1).data, b = rng.uniformTensor([k, n], low: -1, high: 1).data
            let start = rng.uniformTensor([m, n], low: -1, high: 1).data
            var packed = [Float](repeating: 0, count: ck_packed_size(k, n))
            ck_pack(k, n, b, n, 0, &packed)
            let panels = (n + 31) / 32
            for accumulate: Int32 in [0, 1] {
                var whole = start
                ck_gemm_packed(m, k, a, k, packed, 0, panels, n, &whole, n, accumulate)
                var differing: [String] = []
                for r0 in 0..<m {
                    for r1 in (r0 + 1)...m {
                        var block = start
                        a.withUnsafeBufferPointer { pa in
                            block.withUnsafeMutableBufferPointer { pc in
                                ck_gemm_packed(r1 - r0, k, pa.baseAddress! + r0 * k, k, packed, 0, panels, n,
                                               pc.baseAddress! + r0 * n, n, accumulate)
                            }
                        }
                        if block[(r0 * n)..<(r1 * n)] != whole[(r0 * n)..<(r1 * n)] { differing.append("\(r0)..<\(r1)") }
                    }
                }
                #expect(differing.isEmpty, "k=\(k) n=\(n) accumulate=\(accumulate): blocks \(differing.prefix(8)) differ")
            }
        }
    }

    /// Every thread split and both product back ends give the results of the single-threaded run.
    @Test(arguments: CellKind.allCases)
    func executionVariantsAgree(_ kind: CellKind) {
        let T = 3, I = 5, H = 64
        for (B, lengths) in [(5, [3, 1, 0, 2, 3] as [Int]?), (9, [3, 1, 0, 2, 3, 3, 1, 2, 3]), (1, nil)] {
            var rng = RandomGenerator(seed: 21)
            let data = RandomSequenceData(kind: kind, T: T, B: B, I: I, H: H, rng: &rng)
            let (x, wih, whh, bih, bhh, h0, c0, dy) = (data.x, data.wih, data.whh, data.bih, data.bhh, data.h0, data.c0, data.dy)
            let dhN = rng.uniformTensor([B, H], low: -1, high: 1)
            let dcN: Tensor? = kind == .lstm ? rng.uniformTensor([B, H], low: -1, high: 1) : nil
            for reverse in [false, true] {
                func run(_ execution: FusedSequence.Execution) -> [Tensor] {
                    let f = FusedSequence.forward(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                                  h0: h0, c0: c0, lengths: lengths, reverse: reverse, saveForBackward: true,
                                                  execution: execution)
                    let inference = FusedSequence.forward(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih,
                                                          biasHH: bhh, h0: h0, c0: c0, lengths: lengths, reverse: reverse,
                                                          saveForBackward: false, execution: execution)
                    #expect(inference.output == f.output && inference.hN == f.hN)
                    let g = FusedSequence.gradients(f.context!, dOutput: dy, dhN: dhN, dcN: dcN, inputGradient: true)
                    return [f.output, f.hN, f.cN ?? Tensor(zeros: [0]), g.dx!, g.dWeightIH, g.dWeightHH, g.dBiasIH,
                            g.dBiasHH, g.dh0, g.dc0 ?? Tensor(zeros: [0])]
                }
                let baseline = run(.init(split: WorkSplit.none, packedProducts: false))
                for split in [WorkSplit.none, .rows(parts: 2), .units(parts: 2)] {
                    for packed in [false, true] {
                        let results = run(.init(split: split, packedProducts: packed))
                        for (k, (a, b)) in zip(results, baseline).enumerated() {
                            let scale = max(1, b.data.map(abs).max() ?? 0)
                            #expect(a.maxAbsDifference(b) <= 1e-5 * scale,
                                    "B=\(B) reverse=\(reverse) \(split) packed=\(packed): result \(k) differs by \(a.maxAbsDifference(b))")
                        }
                    }
                }
            }
        }
    }

    /// A one-hot input given by its symbols (gathered projections, weight gradient by sums of
    /// rows) gives what the same input gives as a dense one-hot tensor, in every split.
    @Test(arguments: CellKind.allCases)
    func symbolInputsMatchOneHotInputs(_ kind: CellKind) {
        let T = 5, B = 12, V = 7, H = 64, G = kind.gateCount
        var rng = RandomGenerator(seed: 23)
        let symbols = (0..<(T * B)).map { ($0 * 5 + $0 / 3) % V }
        var oneHot = [Float](repeating: 0, count: T * B * V)
        for (r, s) in symbols.enumerated() { oneHot[r * V + s] = 1 }
        let x = Tensor(shape: [T, B, V], data: oneHot)
        let wih = rng.uniformTensor([G * H, V], low: -0.5, high: 0.5), whh = rng.uniformTensor([G * H, H], low: -0.3, high: 0.3)
        let bih = rng.uniformTensor([G * H], low: -0.3, high: 0.3), bhh = rng.uniformTensor([G * H], low: -0.3, high: 0.3)
        let h0 = rng.uniformTensor([B, H], low: -1, high: 1)
        let c0: Tensor? = kind == .lstm ? rng.uniformTensor([B, H], low: -1, high: 1) : nil
        let dy = rng.uniformTensor([T, B, H], low: -1, high: 1)
        let lengths = (0..<B).map { [T, 3, T, 0, 1, T][$0 % 6] }
        for reverse in [false, true] {
            for split in [WorkSplit.none, .rows(parts: 2), .units(parts: 2)] {
                func run(_ symbols: [Int]?) -> [Tensor] {
                    let f = FusedSequence.forward(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                                  h0: h0, c0: c0, lengths: lengths, reverse: reverse, saveForBackward: true,
                                                  execution: .init(split: split, packedProducts: true), symbols: symbols)
                    let g = FusedSequence.gradients(f.context!, dOutput: dy, dhN: nil, dcN: nil, inputGradient: false)
                    return [f.output, f.hN, f.cN ?? Tensor(zeros: [0]), g.dWeightIH, g.dWeightHH, g.dBiasIH, g.dBiasHH,
                            g.dh0, g.dc0 ?? Tensor(zeros: [0])]
                }
                let dense = run(nil), gathered = run(symbols)
                for (k, (a, b)) in zip(gathered, dense).enumerated() {
                    let scale = max(1, b.data.map(abs).max() ?? 0)
                    #expect(a.maxAbsDifference(b) <= 1e-5 * scale,
                            "\(kind) reverse=\(reverse) \(split): result \(k) differs by \(a.maxAbsDifference(b))")
                }
            }
        }
    }

    /// The rows and units splits and the whole-sequence products slice their work by the threads'
    /// measured speeds (`runBalancedParts`, `runBalancedSteps`): whatever the slices, every result
    /// must be the same to the bit, or the same seed would not give the same training run. At
    /// B = 5 a rows split's slices are 2 + 3 rows at a 30% share and 4 + 1 at 70%: a row alone.
    /// At H = 512 the weights are streamed (`StepProduct.streamsWeights`), so a units split also
    /// shares 2 of its 16 slices of units between the threads at every step.
    @Test(arguments: [WorkSplit.rows(parts: 2), .units(parts: 2)], [32, 5])
    func balancedSlicesLeaveResultsUnchanged(_ split: WorkSplit, _ B: Int) {
        let T = 4, I = 64, H = 512
        var rng = RandomGenerator(seed: 22)
        let data = RandomSequenceData(kind: .lstm, T: T, B: B, I: I, H: H, rng: &rng)
        let (x, wih, whh, bih, bhh, h0, c0, dy) = (data.x, data.wih, data.whh, data.bih, data.bhh, data.h0, data.c0, data.dy)
        func run(callerShare: Double, split: WorkSplit = split) -> [Tensor] {
            // Reports of a caller that takes 1 of 2 items and is slower (or faster) move its
            // share to the limit (30% or 70%). Tests running alongside may move it again, which
            // the results must not notice either.
            for _ in 0..<40 {
                ck_team_balance_report(1, 2, callerShare < 0.5 ? 1000 : 10, callerShare < 0.5 ? 10 : 1000)
            }
            let f = FusedSequence.forward(kind: .lstm, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                          h0: h0, c0: c0, lengths: nil, reverse: false, saveForBackward: true,
                                          execution: .init(split: split, packedProducts: true))
            let g = FusedSequence.gradients(f.context!, dOutput: dy, dhN: nil, dcN: nil, inputGradient: true)
            return [f.output, f.hN, f.cN!, g.dx!, g.dWeightIH, g.dWeightHH, g.dBiasIH, g.dBiasHH, g.dh0, g.dc0!]
        }
        let low = run(callerShare: 0.3), high = run(callerShare: 0.7), alone = run(callerShare: 0.5, split: .none)
        for (k, (a, b)) in zip(low, high).enumerated() {
            let same = a == b
            #expect(same, "result \(k) differs between slicings by \(a.maxAbsDifference(b))")
        }
        // One thread: all but the weight and bias gradients (sums over the rows, which one
        // thread runs in another order).
        for k in [0, 1, 2, 3, 8, 9] {
            let (a, b) = (low[k], alone[k])
            let same = a == b
            #expect(same, "result \(k) differs from one thread's by \(a.maxAbsDifference(b))")
        }
    }

    /// A time loop that hands half of its rows to another thread mid-sequence (`RowHandover`,
    /// as the two directions of a bidirectional layer do) gives the same bits as one that keeps
    /// them, wherever the cut falls: forward outputs and final states, and the gradients (the
    /// bias gradients are summed per half of the rows either way). A helper thread asks from the
    /// start of the owner's loop or after a delay that differs per attempt.
    @Test(arguments: [CellKind.lstm, .gru, .rnnTanh])
    func handedOverRowsLeaveResultsUnchanged(_ kind: CellKind) {
        let T = 120, B = 9, I = 16, H = 64
        var rng = RandomGenerator(seed: 41)
        let data = RandomSequenceData(kind: kind, T: T, B: B, I: I, H: H, rng: &rng)
        let (x, wih, whh, bih, bhh, h0, c0, dy) = (data.x, data.wih, data.whh, data.bih, data.bhh, data.h0, data.c0, data.dy)
        let lengths = [120, 1, 0, 17, 120, 119, 4, 120, 62]
        /// Runs the helper's `help()` on its own thread (running when `init` returns), from `delay`
        /// µs on, until it takes rows or `stop()`; `stop` returns the step it took them from.
        final class Helper: @unchecked Sendable {
            let lock = NSLock(), running = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
            var stopped = false, step: Int? = nil
            init(_ handover: RowHandover, delay: UInt32) {
                Thread.detachNewThread { [self] in
                    running.signal()
                    if delay > 0 { usleep(delay) }
                    while true {
                        if let s = handover.help() { lock.lock(); step = s; lock.unlock(); break }
                        lock.lock(); let done = stopped; lock.unlock()
                        if done { break }
                    }
                    finished.signal()
                }
                running.wait()
            }
            func stop() -> Int? {
                lock.lock(); stopped = true; lock.unlock()
                finished.wait()
                return step
            }
        }
        func run(delay: UInt32?) -> (results: [Tensor], cuts: [Int?]) {
            let forwardHandover = RowHandover()
            let forwardHelper = delay.map { Helper(forwardHandover, delay: $0) }
            var output = [Float](repeating: 0, count: T * B * H)
            let f = output.withUnsafeMutableBufferPointer {
                FusedSequence.run(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh, h0: h0, c0: c0,
                                  lengths: lengths, reverse: kind == .gru, saveForBackward: true, execution: .automatic,
                                  threads: 1, output: $0.baseAddress!, outputStride: H, handover: forwardHandover)
            }
            let forwardCut = forwardHelper?.stop()
            let backwardHandover = RowHandover()
            let backwardHelper = delay.map { Helper(backwardHandover, delay: $0) }
            let g = dy.data.withUnsafeBufferPointer {
                FusedSequence.gradients(f.context!, dOutput: ($0.baseAddress!, H), dhN: nil, dcN: nil, inputGradient: true,
                                        threads: 1, handover: (backwardHandover, RowHandover()))
            }
            let backwardCut = backwardHelper?.stop()
            let results = [Tensor(shape: [T, B, H], data: output), f.hN, f.cN ?? f.hN, g.dx!, g.dWeightIH, g.dWeightHH,
                           g.dBiasIH, g.dBiasHH, g.dh0, g.dc0 ?? g.dh0]
            return (results, [forwardCut, backwardCut])
        }
        let kept = run(delay: nil)
        var cuts: [Int] = []
        // Until rows have changed hands in 6 runs (a helper thread may not get a core in time
        // while other tests run), at most 40 runs.
        for attempt in 0..<40 where cuts.count < 6 {
            let delay: UInt32 = [0, 0, 50, 200][attempt % 4]
            let handed = run(delay: delay)
            cuts += handed.cuts.compactMap { $0 }
            for (k, (a, b)) in zip(handed.results, kept.results).enumerated() {
                #expect(a == b, "\(kind): result \(k) differs by \(a.maxAbsDifference(b)) with cuts at \(handed.cuts)")
            }
        }
        #expect(!cuts.isEmpty, "\(kind): no rows changed hands in 40 runs")
    }

    /// The split follows what each thread would stream per step: rows when the recurrent weights
    /// stay in a core's cache or each thread has 32 rows or more (C1, C2, the char-LM), units when
    /// few rows would each stream large weights (C4: 8 rows per thread, 16 MB of `W_hh`) or at
    /// batch size 1 (C3), one thread when the step is too small to share. With the tile kernel
    /// an inference loop of 8M multiply-adds a step or more (C1 LSTM, C2) takes units, so the
    /// tiles see the whole batch and each thread streams half the weights; training keeps rows.
    @Test func splitFollowsStreamedBytes() {
        let tilesUnits: WorkSplit = PackedMatrix.tilesAvailable ? .units(parts: 2) : .rows(parts: 2)
        #expect(WorkSplit.choose(batch: 32, hidden: 256, gates: 4, threads: 2) == tilesUnits)         // C1
        #expect(WorkSplit.choose(batch: 32, hidden: 256, gates: 4, threads: 2, training: true) == .rows(parts: 2))
        #expect(WorkSplit.choose(batch: 32, hidden: 256, gates: 3, threads: 2) == .rows(parts: 2))    // C1 GRU
        #expect(WorkSplit.choose(batch: 64, hidden: 512, gates: 4, threads: 2) == tilesUnits)         // C2
        #expect(WorkSplit.choose(batch: 64, hidden: 512, gates: 3, threads: 2) == tilesUnits)         // C2 GRU
        for gates in [1, 3, 4] {                                                                      // C2 training
            #expect(WorkSplit.choose(batch: 64, hidden: 512, gates: gates, threads: 2, training: true) == .rows(parts: 2))
        }
        #expect(WorkSplit.choose(batch: 16, hidden: 1024, gates: 4, threads: 2) == .units(parts: 2))  // C4
        #expect(WorkSplit.choose(batch: 32, hidden: 1024, gates: 4, threads: 2) == .units(parts: 2))  // 16 rows each
        #expect(WorkSplit.choose(batch: 1, hidden: 256, gates: 4, threads: 2) == .units(parts: 2))    // C3
        #expect(WorkSplit.choose(batch: 64, hidden: 512, gates: 4, threads: 4) == .units(parts: 4))   // 16 rows each
        #expect(WorkSplit.choose(batch: 4, hidden: 16, gates: 4, threads: 2) == .none)
    }

    /// A stepped task runs every part of every step exactly once, and no part of a step before all
    /// parts of the step before it have finished (parts claimed by whichever thread is free when
    /// a helper is late, one part, and the inline path for more parts than the kernel takes).
    @Test func steppedTaskKeepsStepOrder() {
        for (steps, parts) in [(300, 2), (200, 5), (50, 1), (20, 64)] {
            let runs = UnsafeMutablePointer<Int>.allocate(capacity: steps * parts)
            let ordered = UnsafeMutablePointer<Bool>.allocate(capacity: steps * parts)
            runs.initialize(repeating: 0, count: steps * parts)
            ordered.initialize(repeating: false, count: steps * parts)
            defer { runs.deallocate(); ordered.deallocate() }
            let r = UncheckedPointer(runs), o = UncheckedPointer(ordered)
            runSteps(steps, parts: parts) { s, p in
                o.pointer[s * parts + p] = s == 0 || (0..<parts).allSatisfy { r.pointer[(s - 1) * parts + $0] == 1 }
                r.pointer[s * parts + p] += 1
            }
            #expect((0..<steps * parts).allSatisfy { runs[$0] == 1 }, "\(steps) steps × \(parts) parts: a part ran twice or never")
            #expect((0..<steps * parts).allSatisfy { ordered[$0] }, "\(steps) steps × \(parts) parts: a part started early")
        }
    }

    /// Every piece of a `PiecePool` runs exactly once, whether the owners run on two threads at
    /// once (one of them slowed, so the other takes its pieces) or one after the other on one
    /// thread (the team running both parts itself), where nobody may wait for a later owner.
    @Test func piecePoolRunsEveryPieceOnce() {
        for together in [true, false] {
            let pool = PiecePool(owners: 2)
            let runs = UnsafeMutablePointer<Int>.allocate(capacity: 2 * 9)
            runs.initialize(repeating: 0, count: 2 * 9)
            defer { runs.deallocate() }
            let counter = UncheckedPointer(runs)
            let owner: @Sendable (Int) -> Void = { o in
                pool.start(owner: o)
                if o == 1 { usleep(20_000) }   // the second owner's own work takes longer
                let pieces: [() -> Void] = (0..<(o == 0 ? 3 : 9)).map { i in
                    { usleep(2_000); counter.pointer[o * 9 + i] += 1 }
                }
                pool.run(owner: o, pieces)
            }
            if together { runParts(2) { owner($0) } } else { owner(0); owner(1) }
            let expected = (0..<18).map { $0 < 3 || $0 >= 9 ? 1 : 0 }
            #expect((0..<18).map { runs[$0] } == expected, "together \(together): \((0..<18).map { runs[$0] })")
        }
    }

    /// The backward pass writes the gate gradients over the saved gates, so a second backward pass
    /// through the same forward pass stops with a message instead of returning wrong gradients.
    @Test func secondBackwardIsRefused() async {
        await #expect(processExitsWith: .failure) {
            let T = 3, B = 2, I = 4, H = 8
            let f = FusedSequence.forward(kind: .lstm, x: Tensor(zeros: [T, B, I]), weightIH: Tensor(zeros: [4 * H, I]),
                                          weightHH: Tensor(zeros: [4 * H, H]), biasIH: Tensor(zeros: [4 * H]),
                                          biasHH: Tensor(zeros: [4 * H]), h0: Tensor(zeros: [B, H]), c0: nil,
                                          lengths: nil, reverse: false, saveForBackward: true)
            _ = FusedSequence.backward(f.context!, dOutput: nil, dhN: nil, dcN: nil)
            _ = FusedSequence.backward(f.context!, dOutput: nil, dhN: nil, dcN: nil)
        }
    }

    /// The packed-panel product against a plain loop, for ragged sizes, both packings and modes.
    /// The last two shapes pack more than 1 MB, so the kernel prefetches each next panel and keeps
    /// all rows in one chunk (one row block prefetching a whole panel; three blocks sharing it).
    @Test func packedProductMatchesLoop() {
        var rng = RandomGenerator(seed: 4)
        for (m, n, k) in [(1, 1, 1), (3, 33, 5), (9, 64, 7), (13, 70, 31), (1, 96, 40), (17, 31, 2), (5, 64, 48),
                          (8, 300, 1000), (21, 290, 1000)] {
            for transposed in [false, true] {
                for accumulate in [false, true] {
                    let b = (0..<(n * k)).map { _ in rng.uniform(-1, 1) }   // B [k, n], or Wᵀ with W [n, k]
                    let a = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
                    let c0 = (0..<(m * n)).map { _ in rng.uniform(-1, 1) }
                    var packed = [Float](repeating: .nan, count: ck_packed_size(k, n))
                    ck_pack(k, n, b, transposed ? k : n, transposed ? 1 : 0, &packed)
                    var c = c0
                    ck_gemm_packed(m, k, a, k, packed, 0, (n + 31) / 32, n, &c, n, accumulate ? 1 : 0)
                    // Error relative to Σ|a·b| + |c0| (float rounding grows with the terms' sizes).
                    var worst: Double = 0
                    for i in 0..<m { for j in 0..<n {
                        var s: Double = accumulate ? Double(c0[i * n + j]) : 0
                        var size = abs(s)
                        for kk in 0..<k {
                            let term = Double(a[i * k + kk]) * Double(transposed ? b[j * k + kk] : b[kk * n + j])
                            s += term
                            size += abs(term)
                        }
                        worst = max(worst, abs(Double(c[i * n + j]) - s) / (1 + size))
                    } }
                    #expect(worst <= 1e-6, "m=\(m) n=\(n) k=\(k) transposed=\(transposed) accumulate=\(accumulate): \(worst)")
                }
            }
        }
    }

    /// The packed product over the same units of every gate (`groups` ranges of panels in one
    /// pass, 1.5 MB of panels, so each next panel is prefetched across the gate boundaries):
    /// the covered columns match a loop and the others are left alone; the panels taken last to
    /// first (`descending`, also over an odd number of panels) give the same bits.
    @Test func gatePanelRangesMatchLoop() {
        var rng = RandomGenerator(seed: 5)
        let G = 4, H = 128, k = 1000, m = 9, units = 32..<128
        let n = G * H
        let w = (0..<(n * k)).map { _ in rng.uniform(-1, 1) }          // W [n, k]
        let a = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
        var packed = [Float](repeating: .nan, count: ck_packed_size(k, n))
        ck_pack(k, n, w, k, 1, &packed)
        var c = [Float](repeating: 7, count: m * n), descending = c
        ck_gemm_panels(m, k, a, k, packed, 32, 32 * k, G, H / 32, units.lowerBound / 32, units.upperBound / 32,
                       n, &c, n, 0, 0)
        ck_gemm_panels(m, k, a, k, packed, 32, 32 * k, G, H / 32, units.lowerBound / 32, units.upperBound / 32,
                       n, &descending, n, 0, 1)
        #expect(c == descending, "the panels last to first changed the results")
        // An odd number of panels: ascending, the last goes alone; descending, the first.
        var odd = [Float](repeating: 7, count: m * n), oddDescending = odd
        ck_gemm_panels(m, k, a, k, packed, 32, 32 * k, 1, 0, 1, 4, n, &odd, n, 0, 0)
        ck_gemm_panels(m, k, a, k, packed, 32, 32 * k, 1, 0, 1, 4, n, &oddDescending, n, 0, 1)
        #expect(odd == oddDescending, "three panels last to first changed the results")
        var worst: Double = 0, untouched = true
        for i in 0..<m { for j in 0..<n {
            guard units.contains(j % H) else { untouched = untouched && c[i * n + j] == 7; continue }
            var s: Double = 0, size: Double = 0
            for kk in 0..<k { let t = Double(a[i * k + kk]) * Double(w[j * k + kk]); s += t; size += abs(t) }
            worst = max(worst, abs(Double(c[i * n + j]) - s) / (1 + size))
        } }
        #expect(worst <= 1e-6)
        #expect(untouched, "columns outside the units were written")
    }

    /// The matrix-vector kernel (dot products of rows, reduced 16 rows at a time) against a loop:
    /// row strides that are not multiples of 16 (unaligned loads) and strides that are, at every
    /// offset from a 64-byte boundary (aligned loads with the lanes outside each row masked; the
    /// floats around the rows are NaN, so a lane that leaked into a sum would show); one range of
    /// rows and two (rows left out stay untouched); and the same bits with the blocks and groups
    /// read last to first (`descending`).
    @Test func rowProductsMatchLoop() {
        var rng = RandomGenerator(seed: 8)
        let shapes = [(1, 1, 4), (15, 17, 20), (16, 16, 19), (33, 40, 43), (48, 7, 10),
                      (16, 16, 16), (32, 256, 256), (20, 33, 48), (17, 100, 112)]
        for (rows, k, ld) in shapes {
            for offset in (ld % 16 == 0 ? Array(0..<16) : [0]) {
                // A 64-byte aligned buffer (a Workspace), NaN everywhere but the rows' k values.
                let buffer = Workspace<Float>(count: offset + rows * ld + 16)
                buffer.pointer.update(repeating: .nan, count: buffer.count)
                let w = buffer.pointer + offset
                for r in 0..<rows { for kk in 0..<k { w[r * ld + kk] = rng.uniform(-1, 1) } }
                let x = (0..<k).map { _ in rng.uniform(-1, 1) }
                // All rows as one group, and (from 2 rows) two groups: the first and the last
                // `rows / 2` rows, which leaves a middle row out when `rows` is odd.
                let grouping = [(1, rows, 0)] + (rows >= 2 ? [(2, rows / 2, rows - rows / 2)] : [])
                for (groups, perGroup, stride) in grouping {
                    for accumulate in [false, true] {
                        let y0 = (0..<rows).map { _ in rng.uniform(-1, 1) }
                        var y = y0, descending = y0
                        ck_gemv_rows(groups, stride, perGroup, k, w, ld, x, &y, accumulate ? 1 : 0, 0)
                        ck_gemv_rows(groups, stride, perGroup, k, w, ld, x, &descending, accumulate ? 1 : 0, 1)
                        #expect(y == descending, "rows=\(rows) k=\(k) ld=\(ld) groups=\(groups): descending order changed the sums")
                        for r in 0..<rows {
                            let covered = (0..<groups).contains { r >= $0 * stride && r < $0 * stride + perGroup }
                            var s: Double = accumulate || !covered ? Double(y0[r]) : 0
                            if covered { for kk in 0..<k { s += Double(w[r * ld + kk]) * Double(x[kk]) } }
                            #expect(abs(Double(y[r]) - s) <= 1e-5,
                                    "rows=\(rows) k=\(k) ld=\(ld) offset=\(offset) groups=\(groups) row \(r): \(y[r]) vs \(s)")
                        }
                    }
                }
            }
        }
    }

    /// The whole-sequence products (split over one and two threads) against `matmul`.
    /// Row counts cover every path of `linear`: packed by rows (300), packed by columns (50),
    /// BLAS (2); the sizes are large enough for two threads to share the work.
    @Test(arguments: [(300, 96, 200), (50, 70, 400), (2, 4000, 128)])
    func sequenceProductsMatchMatmul(m: Int, n: Int, k: Int) {
        var rng = RandomGenerator(seed: 12)
        let a = rng.uniformTensor([m, k], low: -1, high: 1)
        let w = rng.uniformTensor([n, k], low: -1, high: 1), bias = rng.uniformTensor([n], low: -1, high: 1)
        let v = rng.uniformTensor([k, n], low: -1, high: 1)
        let u = rng.uniformTensor([m, n], low: -1, high: 1)
        var expectedLinear = matmul(a, w, transposeB: true)
        for i in 0..<m { for j in 0..<n { expectedLinear[i, j] += bias[j] } }
        let expectedProduct = matmul(a, v)
        let expectedGradient = matmul(a, u, transposeA: true)   // [k, n] = aᵀ·u
        for threads in [1, 2] {
            for packed in [false, true] {
                var linear = [Float](repeating: 0, count: m * n), product = linear
                var gradient = [Float](repeating: 0, count: k * n)
                a.data.withUnsafeBufferPointer { pa in w.data.withUnsafeBufferPointer { pw in v.data.withUnsafeBufferPointer { pv in
                bias.data.withUnsafeBufferPointer { pb in u.data.withUnsafeBufferPointer { pu in
                    linear.withUnsafeMutableBufferPointer {
                        SequenceMatmul.linear(m: m, n: n, k: k, a: pa.start, lda: k, weight: pw.start, bias: pb.start,
                                              out: $0.start, packed: packed, threads: threads)
                    }
                    product.withUnsafeMutableBufferPointer {
                        SequenceMatmul.multiply(m: m, n: n, k: k, a: pa.start, lda: k, weight: pv.start, out: $0.start,
                                                packed: packed, threads: threads)
                    }
                    gradient.withUnsafeMutableBufferPointer {
                        SequenceMatmul.multiplyTransposedLeft(m: k, n: n, k: m, a: pa.start, lda: k, b: pu.start, ldb: n,
                                                              out: $0.start, ldo: n, tiles: packed, threads: threads)
                    }
                } } } } }
                #expect(Tensor(shape: [m, n], data: linear).maxAbsDifference(expectedLinear) <= 1e-4)
                #expect(Tensor(shape: [m, n], data: product).maxAbsDifference(expectedProduct) <= 1e-4)
                #expect(Tensor(shape: [k, n], data: gradient).maxAbsDifference(expectedGradient) <= 1e-4)
            }
        }
    }

    /// The polynomial exp/sigmoid/tanh of the kernels against Double libm.
    @Test func vectorMathIsAccurate() {
        let n = 400_001
        let xs = (0..<n).map { Float(-20 + 40 * Double($0) / Double(n - 1)) }
        var ys = [Float](repeating: 0, count: n)
        func worst(_ f: (Double) -> Double) -> Double {
            zip(xs, ys).map { x, y in
                let e = f(Double(x))
                return abs(Double(y) - e) / max(abs(e), 1e-30)
            }.max()!
        }
        ck_sigmoid(n, xs, &ys)
        let sigmoidError = worst { 1 / (1 + Foundation.exp(-$0)) }
        ck_tanh(n, xs, &ys)
        let tanhError = worst { Foundation.tanh($0) }
        let wide = xs.map { $0 * 4 }   // [-80, 80]
        ck_exp(n, wide, &ys)
        let expError = zip(wide, ys).map { x, y in abs(Double(y) - Foundation.exp(Double(x))) / Foundation.exp(Double(x)) }.max()!
        #expect(sigmoidError <= 2e-7, "sigmoid max relative error \(sigmoidError)")
        #expect(tanhError <= 2e-7, "tanh max relative error \(tanhError)")
        #expect(expError <= 2e-7, "exp max relative error \(expError)")
        // Saturation and the ends of the clamp stay finite and ordered.
        var big = [Float](repeating: 0, count: 4)
        ck_tanh(4, [-100, 100, 0, -0.0], &big)
        #expect(big == [-1, 1, 0, 0])
        ck_sigmoid(2, [-200, 200], &big)
        #expect(big[0] >= 0 && big[0] < 1e-37 && big[1] == 1)
    }
}

private func maxDifference(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
}

/// A pointer the threads of a test task share (each writes its own elements).
struct UncheckedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Random data for one fused sequence, drawn in this order: `x [T, B, I]` in ±1, the weights and
/// biases in ±0.3, `h0 [B, H]` and (LSTM) `c0` in ±1, and the output gradient `dy [T, B, H]` in ±1.
private struct RandomSequenceData {
    let x: Tensor, wih: Tensor, whh: Tensor, bih: Tensor, bhh: Tensor, h0: Tensor, c0: Tensor?, dy: Tensor

    init(kind: CellKind, T: Int, B: Int, I: Int, H: Int, rng: inout RandomGenerator) {
        let GH = kind.gateCount * H
        x = rng.uniformTensor([T, B, I], low: -1, high: 1)
        wih = rng.uniformTensor([GH, I], low: -0.3, high: 0.3)
        whh = rng.uniformTensor([GH, H], low: -0.3, high: 0.3)
        bih = rng.uniformTensor([GH], low: -0.3, high: 0.3)
        bhh = rng.uniformTensor([GH], low: -0.3, high: 0.3)
        h0 = rng.uniformTensor([B, H], low: -1, high: 1)
        c0 = kind == .lstm ? rng.uniformTensor([B, H], low: -1, high: 1) : nil
        dy = rng.uniformTensor([T, B, H], low: -1, high: 1)
    }
}
