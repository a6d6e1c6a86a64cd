import Testing
@testable import Recurrent

/// Inference loops keep `W_ihᵀ` packed from call to call (`PackedWeightCache`).
@Suite struct PackedWeightCacheTests {
    /// A units split of a short sequence at batch 1 projects with the kept `W_ihᵀ` when it infers
    /// and packs its own when it trains: both give the same bits, also after the weight is written
    /// between calls (new storage, packed anew; a stale entry would give the old weight's output).
    @Test(arguments: [CellKind.lstm, .gru])
    func keptProjectionsFollowTheWeight(_ kind: CellKind) {
        guard StepProduct.packedKernelIsFast else { return }
        let T = 6, B = 1, I = 32, H = 64, G = kind.gateCount
        var rng = RandomGenerator(seed: 31)
        var wih = rng.uniformTensor([G * H, I], low: -0.5, high: 0.5)
        let x = rng.uniformTensor([T, B, I], low: -1, high: 1)
        let whh = rng.uniformTensor([G * H, H], low: -0.3, high: 0.3)
        let bih = rng.uniformTensor([G * H], low: -0.3, high: 0.3), bhh = rng.uniformTensor([G * H], low: -0.3, high: 0.3)
        let h0 = rng.uniformTensor([B, H], low: -1, high: 1)
        func run(_ wih: Tensor, training: Bool) -> (Tensor, Tensor) {
            let f = FusedSequence.forward(kind: kind, x: x, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                          h0: h0, c0: nil, lengths: nil, reverse: false, saveForBackward: training,
                                          execution: .init(split: .units(parts: 2), packedProducts: true))
            return (f.output, f.hN)
        }
        for round in 0..<3 {
            let trained = run(wih, training: true)
            for _ in 0..<2 {   // the first call may pack, the second finds it kept
                let inferred = run(wih, training: false)
                #expect(inferred.0 == trained.0 && inferred.1 == trained.1,
                        "round \(round): inference differs from training by \(inferred.0.maxAbsDifference(trained.0))")
            }
            wih.data.withUnsafeMutableBufferPointer { w in for i in w.indices where i % 7 == round { w[i] += 0.25 } }
        }
    }

    /// The same storage gives the same packed matrix; a written copy, or a matrix pushed out by
    /// `capacity` newer ones, is packed anew; one over `maximumBytes` is not kept. Every packed
    /// matrix multiplies as `Wᵀ`.
    @Test func entriesAreKeptPerStorage() {
        guard StepProduct.packedKernelIsFast else { return }
        let cache = PackedWeightCache()
        var rng = RandomGenerator(seed: 32)
        var w = rng.uniformTensor([96, 40], low: -1, high: 1)
        let a = rng.uniformTensor([3, 40], low: -1, high: 1)
        func product(_ p: PackedMatrix) -> Tensor {
            var out = [Float](repeating: 0, count: 3 * 96)
            a.data.withUnsafeBufferPointer { pa in
                out.withUnsafeMutableBufferPointer { po in
                    p.multiply(m: 3, a: pa.baseAddress!, lda: 40, panels: PackedMatrix.panels(0..<96), out: po.baseAddress!,
                               ldc: 96, accumulate: false)
                }
            }
            return Tensor(shape: [3, 96], data: out)
        }
        func expectProduct(_ p: PackedMatrix?, _ weight: Tensor, _ what: String) {
            guard let p else { Issue.record("\(what): not kept"); return }
            let worst = product(p).maxAbsDifference(matmul(a, weight, transposeB: true))
            #expect(worst < 1e-5, "\(what): off by \(worst)")
        }
        let first = cache.transposed(w, kernel: .fma)
        expectProduct(first, w, "first")
        #expect(cache.transposed(w, kernel: .fma) === first)
        #expect(cache.packCount == 1)
        let kept = w
        w.data[5] += 1   // copy on write: `kept` and the entry keep the old storage
        let written = cache.transposed(w, kernel: .fma)
        #expect(written !== first && cache.packCount == 2)
        expectProduct(written, w, "written")
        #expect(cache.transposed(kept, kernel: .fma) === first)
        let others = (0..<cache.capacity).map { _ in rng.uniformTensor([96, 40], low: -1, high: 1) }
        for other in others { expectProduct(cache.transposed(other, kernel: .fma), other, "other") }
        let again = cache.transposed(kept, kernel: .fma)
        #expect(again !== first, "the least recently used entry should have gone")
        expectProduct(again, kept, "packed again")
        let large = Tensor(zeros: [cache.maximumBytes / 4 / 32 + 1, 32])
        #expect(cache.transposed(large, kernel: .fma) == nil)
    }
}
