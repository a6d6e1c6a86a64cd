import Testing
@testable import Recurrent

/// `linear` inside a sequence's scope multiplies by weights packed once (`SequenceWeights`).
@Suite struct SequenceWeightsTests {
    /// Two products with one weight in a scope (the second reuses the packing) against the same
    /// two through BLAS: the values and the gradients of x, W and b. One row (read in place,
    /// backward in place when K is a multiple of 32), odd sizes, and products shared between
    /// threads (32 × 384 × 1024).
    @Test(arguments: [(1, 256, 1024), (1, 100, 70), (5, 64, 96), (32, 384, 1024), (7, 130, 100)])
    func packedLinearMatchesBLAS(rows: Int, inputs: Int, outputs: Int) {
        var rng = RandomGenerator(seed: 5)
        let xs = (0..<2).map { _ in Variable(rng.uniformTensor([rows, inputs], low: -1, high: 1), requiresGrad: true) }
        let w = Variable(rng.uniformTensor([outputs, inputs], low: -1, high: 1), requiresGrad: true)
        let b = Variable(rng.uniformTensor([outputs], low: -1, high: 1), requiresGrad: true)
        let cs = (0..<2).map { _ in rng.uniformTensor([rows, outputs], low: -1, high: 1) }
        func run(packed: Bool) -> [Tensor] {
            for v in xs + [w, b] { v.grad = nil }
            let ys = packed ? SequenceWeights.during { xs.map { linear($0, weight: w, bias: b) } }
                            : xs.map { linear($0, weight: w, bias: b) }
            (sum(Variable(cs[0]) * ys[0]) + sum(Variable(cs[1]) * ys[1])).backward()
            return ys.map(\.value) + (xs + [w, b]).map { $0.grad ?? Tensor(zeros: [0]) }
        }
        let blas = run(packed: false), packed = run(packed: true)
        let names = ["y0", "y1", "dx0", "dx1", "dW", "db"]
        for (name, (p, q)) in zip(names, zip(packed, blas)) {
            #expect(p.shape == q.shape, "\(name): \(p.shape) against \(q.shape)")
            guard p.shape == q.shape else { continue }
            let scale = max(1, q.data.map { abs($0) }.max() ?? 0)
            let worst = p.maxAbsDifference(q)
            #expect(worst <= 2e-6 * scale * Float(max(inputs, outputs)).squareRoot(), "\(name): off by \(worst) (scale \(scale))")
        }
    }

    /// A weight written to inside a scope is packed again: the second product must use the new
    /// values.
    @Test func writtenWeightIsPackedAgain() {
        var rng = RandomGenerator(seed: 6)
        let x = Variable(rng.uniformTensor([4, 64], low: -1, high: 1))
        let w = Variable(rng.uniformTensor([96, 64], low: -1, high: 1), requiresGrad: true)
        let (before, after) = SequenceWeights.during { () -> (Tensor, Tensor) in
            let first = linear(x, weight: w, bias: nil).value
            w.value.data.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= 2 } }
            return (first, linear(x, weight: w, bias: nil).value)
        }
        let plain = matmul(x.value, w.value, transposeB: true)
        #expect(after.maxAbsDifference(plain) < 1e-4)
        #expect(after.maxAbsDifference(before * 2) < 1e-4)
    }

    /// Parameters are packed (`matmul` with a transposed right side and `linear` share one
    /// entry); a computed matrix and a constant are not, and every product still has BLAS's value.
    @Test func onlyParametersArePacked() {
        var rng = RandomGenerator(seed: 8)
        let x = Variable(rng.uniformTensor([6, 64], low: -1, high: 1), requiresGrad: true)
        let w = Variable(rng.uniformTensor([96, 64], low: -1, high: 1), requiresGrad: true)
        let constant = Variable(rng.uniformTensor([40, 64], low: -1, high: 1))
        let plain = [matmul(x.value, w.value, transposeB: true), matmul(x.value, w.value, transposeB: true),
                     matmul(x.value, (w.value * 2).slice(0..<32), transposeB: true),
                     matmul(x.value, constant.value, transposeB: true)]
        let (values, packed) = SequenceWeights.during { () -> ([Tensor], [Int]) in
            let scope = SequenceWeights.current
            var counts: [Int] = []
            var values: [Tensor] = []
            values.append(matmul(x, w, transposeB: true).value); counts.append(scope?.packedCount ?? 0)
            values.append(linear(x, weight: w, bias: nil).value); counts.append(scope?.packedCount ?? 0)
            let computed = w * 2
            values.append(columns(matmul(x, computed, transposeB: true), 0..<32).value); counts.append(scope?.packedCount ?? 0)
            values.append(matmul(x, constant, transposeB: true).value); counts.append(scope?.packedCount ?? 0)
            return (values, counts)
        }
        #expect(!StepProduct.packedKernelIsFast || packed == [1, 1, 1, 1])
        for (v, p) in zip(values, plain) { #expect(v.maxAbsDifference(p) < 1e-4) }
    }

    /// The packed products are shared between threads by 32-unit slices, each element computed
    /// alike on any thread: on the team and on one thread (inside a team part) the values and
    /// the input gradient are bit for bit the same, for a block of rows and for one row (read in
    /// place, shared from 512 KB of weights).
    @Test(arguments: [32, 1]) func sharedProductsMatchOneThreadBitForBit(rows: Int) {
        var rng = RandomGenerator(seed: 7)
        let job = ProductRun(x: Variable(rng.uniformTensor([rows, 384], low: -1, high: 1), requiresGrad: true),
                             w: Variable(rng.uniformTensor([1024, 384], low: -1, high: 1), requiresGrad: true),
                             c: rng.uniformTensor([rows, 1024], low: -1, high: 1))
        let shared = job.run()
        let result = UncheckedPointer(UnsafeMutablePointer<[Tensor]>.allocate(capacity: 1))
        result.pointer.initialize(to: [])
        defer { result.pointer.deinitialize(count: 1); result.pointer.deallocate() }
        runParts(2) { part in if part == 0 { result.pointer.pointee = job.run() } }
        let alone = result.pointer.pointee
        #expect(ThreadTeam.threads < 2 || alone == shared)
        #expect(alone.count == 2)
    }
}

/// One packed product and its input gradient, to run on the team or inside a team part.
private final class ProductRun: @unchecked Sendable {
    let x: Variable, w: Variable, c: Tensor
    init(x: Variable, w: Variable, c: Tensor) { (self.x, self.w, self.c) = (x, w, c) }

    func run() -> [Tensor] {
        x.grad = nil
        w.grad = nil
        let y = SequenceWeights.during { linear(x, weight: w, bias: nil) }
        sum(Variable(c) * y).backward()
        return [y.value, x.grad!]
    }
}
