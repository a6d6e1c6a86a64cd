import Foundation
import Testing
@testable import Recurrent

@Suite struct CrossEntropyTests {
    /// log-softmax cross-entropy of one row in Double.
    func reference(_ row: [Float], _ target: Int) -> Double {
        let m = Double(row.max()!)
        let total: Double = row.reduce(0.0) { (s: Double, x: Float) -> Double in s + exp(Double(x) - m) }
        let lse: Double = m + log(total)
        return lse - Double(row[target])
    }

    @Test func valueMatchesLogSoftmaxAndIsStable() {
        let logits = Tensor(shape: [3, 4], data: [1, 2, 3, 4, -1, 0, 0.5, 2, 1000, 0, -1000, 999])
        let targets = [3, 0, 3]
        var expected = 0.0
        for r in 0..<3 { expected += reference(Array(logits.data[(r * 4)..<(r * 4 + 4)]), targets[r]) }
        let summed = crossEntropy(logits: Variable(logits), targets: targets, reduction: .sum).value.scalar
        let mean = crossEntropy(logits: Variable(logits), targets: targets).value.scalar
        #expect(abs(Double(summed) - expected) < 1e-4)
        #expect(abs(Double(mean) - expected / 3) < 1e-4)
        #expect(summed.isFinite)
    }

    @Test(arguments: [Reduction.mean, .sum])
    func gradientsWithIgnoredTargets(reduction: Reduction) {
        var rng = RandomGenerator(seed: 60)
        let logits = Variable(rng.uniformTensor([5, 4], low: -2, high: 2), requiresGrad: true, name: "logits")
        let targets = [1, -100, 3, 0, -100]
        let r = gradientCheck([logits]) {
            crossEntropy(logits: logits, targets: targets, ignoreIndex: -100, reduction: reduction) * 1.5
        }
        #expect(r.ratio <= 1, "\(r.worst)")
        // Ignored rows get no gradient; the mean counts only the 3 kept rows.
        let g = logits.grad!
        #expect(g.data[4..<8].allSatisfy { $0 == 0 } && g.data[16..<20].allSatisfy { $0 == 0 })
        let kept = crossEntropy(logits: Variable(Tensor(shape: [3, 4], data: Array(logits.value.data[0..<4] + logits.value.data[8..<16]))),
                                targets: [1, 3, 0], reduction: reduction).value.scalar
        let withIgnored = crossEntropy(logits: Variable(logits.value), targets: targets, ignoreIndex: -100,
                                       reduction: reduction).value.scalar
        #expect(abs(kept - withIgnored) < 1e-6)
    }

    /// From 2¹⁶ logits the rows are shared between threads: every row's loss term and gradient
    /// must still be there, ignored rows included.
    @Test func manyRowsMatchTheReferenceRowByRow() {
        var rng = RandomGenerator(seed: 62)
        let rows = 1_500, classes = 65
        let logits = Variable(rng.uniformTensor([rows, classes], low: -4, high: 4), requiresGrad: true)
        let targets = (0..<rows).map { $0 % 7 == 3 ? -100 : ($0 * 31) % classes }
        let loss = crossEntropy(logits: logits, targets: targets, ignoreIndex: -100, reduction: .sum)
        loss.backward()
        var expected = 0.0
        var worstGradient = 0.0
        for r in 0..<rows {
            let row = Array(logits.value.data[(r * classes)..<((r + 1) * classes)])
            let m = Double(row.max()!)
            let total = row.reduce(0.0) { $0 + exp(Double($1) - m) }
            for j in 0..<classes {
                let softmax = exp(Double(row[j]) - m) / total
                let want = targets[r] == -100 ? 0 : softmax - (j == targets[r] ? 1 : 0)
                worstGradient = max(worstGradient, abs(Double(logits.grad!.data[r * classes + j]) - want))
            }
            if targets[r] != -100 { expected += reference(row, targets[r]) }
        }
        #expect(abs(Double(loss.value.scalar) - expected) < 1e-6 * expected)
        #expect(worstGradient < 1e-6)
    }

    @Test func gradientIsSoftmaxMinusOneHot() {
        let logits = Variable(Tensor(shape: [1, 3], data: [0, 0, 0]), requiresGrad: true)
        crossEntropy(logits: logits, targets: [1]).backward()
        let third: Float = 1.0 / 3
        #expect(logits.grad!.maxAbsDifference(Tensor(shape: [1, 3], data: [third, third - 1, third])) < 1e-6)
    }

    @Test func allIgnoredGivesNaNAndZeroGradientLikePyTorch() {
        let logits = Variable(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]), requiresGrad: true)
        let loss = crossEntropy(logits: logits, targets: [0, 0], ignoreIndex: 0)
        #expect(loss.value.scalar.isNaN)
        loss.backward()
        #expect(logits.grad == Tensor(zeros: [2, 3]))
    }

    @Test func leadingAxesAreFlattened() {
        var rng = RandomGenerator(seed: 61)
        let logits = rng.uniformTensor([2, 3, 4], low: -1, high: 1)
        let targets = [0, 1, 2, 3, 2, 1]
        let a = crossEntropy(logits: Variable(logits), targets: targets).value
        let b = crossEntropy(logits: Variable(logits.reshaped([6, 4])), targets: targets).value
        #expect(a == b)
    }
}

@Suite struct RegressionLossTests {
    @Test func mseValueAndGradients() {
        var rng = RandomGenerator(seed: 70)
        let p = Variable(rng.uniformTensor([3, 4], low: -1, high: 1), requiresGrad: true, name: "p")
        let t = rng.uniformTensor([3, 4], low: -1, high: 1)
        let expected = zip(p.value.data, t.data).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        #expect(abs(Double(mseLoss(p, t, reduction: .sum).value.scalar) - expected) < 1e-5)
        #expect(abs(Double(mseLoss(p, t).value.scalar) - expected / 12) < 1e-6)
        for reduction in Reduction.allCases {
            let r = gradientCheck([p]) { mseLoss(p, t, reduction: reduction) }
            #expect(r.ratio <= 1, "\(reduction): \(r.worst)")
        }
    }

    @Test func l1ValueAndGradients() {
        // Differences of at least 0.1 in size, so the finite-difference step never crosses the kink.
        let p = Variable(Tensor(shape: [2, 3], data: [0.5, -0.3, 1.2, 0.1, -1.0, 0.4]), requiresGrad: true, name: "p")
        let t = Tensor(shape: [2, 3], data: [0.2, 0.3, 1.0, -0.2, -0.5, 0.6])
        let expected: Float = 0.3 + 0.6 + 0.2 + 0.3 + 0.5 + 0.2
        #expect(abs(l1Loss(p, t, reduction: .sum).value.scalar - expected) < 1e-5)
        #expect(abs(l1Loss(p, t).value.scalar - expected / 6) < 1e-6)
        for reduction in Reduction.allCases {
            let r = gradientCheck([p]) { l1Loss(p, t, reduction: reduction) }
            #expect(r.ratio <= 1, "\(reduction): \(r.worst)")
        }
    }

    @Test func l1SubgradientAtZeroIsZero() {
        let p = Variable(Tensor(shape: [3], data: [1, 2, 3]), requiresGrad: true)
        l1Loss(p, Tensor(shape: [3], data: [1, 0, 5]), reduction: .sum).backward()
        #expect(p.grad == Tensor(shape: [3], data: [0, 1, -1]))
    }
}
