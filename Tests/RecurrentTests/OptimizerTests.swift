import Foundation
import Testing
@testable import Recurrent

/// PyTorch's update rules (torch/optim/*.py, single-tensor code) written out plainly for one
/// scalar parameter in Double: given θ₀ and the gradient of each step, θ after each step.
enum ReferenceUpdate {
    static func sgd(_ theta0: Double, _ grads: [Double], lr: Double, momentum: Double = 0,
                    dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0) -> [Double] {
        var theta = theta0
        var buffer: Double? = nil
        return grads.map { g0 in
            var g = g0 + weightDecay * theta
            if momentum != 0 {
                buffer = buffer.map { momentum * $0 + (1 - dampening) * g } ?? g
                g = nesterov ? g + momentum * buffer! : buffer!
            }
            theta -= lr * g
            return theta
        }
    }

    static func adam(_ theta0: Double, _ grads: [Double], lr: Double, beta1: Double = 0.9, beta2: Double = 0.999,
                     eps: Double = 1e-8, weightDecay: Double = 0, decoupled: Bool = false) -> [Double] {
        var theta = theta0, m = 0.0, v = 0.0
        return grads.enumerated().map { k, g0 in
            let t = Double(k + 1)
            var g = g0
            if decoupled { theta *= 1 - lr * weightDecay } else { g += weightDecay * theta }
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            let mHat = m / (1 - pow(beta1, t))
            theta -= lr * mHat / ((v / (1 - pow(beta2, t))).squareRoot() + eps)
            return theta
        }
    }

    static func rmsprop(_ theta0: Double, _ grads: [Double], lr: Double, alpha: Double = 0.99, eps: Double = 1e-8,
                        weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false) -> [Double] {
        var theta = theta0, v = 0.0, gAvg = 0.0, b = 0.0
        return grads.map { g0 in
            let g = g0 + weightDecay * theta
            v = alpha * v + (1 - alpha) * g * g
            var a: Double
            if centered {
                gAvg = alpha * gAvg + (1 - alpha) * g
                a = (v - gAvg * gAvg).squareRoot()
            } else {
                a = v.squareRoot()
            }
            a += eps
            if momentum > 0 {
                b = momentum * b + g / a
                theta -= lr * b
            } else {
                theta -= lr * g / a
            }
            return theta
        }
    }

    static func adagrad(_ theta0: Double, _ grads: [Double], lr: Double, lrDecay: Double = 0, weightDecay: Double = 0,
                        initialAccumulator: Double = 0, eps: Double = 1e-10) -> [Double] {
        var theta = theta0, s = initialAccumulator
        return grads.enumerated().map { k, g0 in
            let g = g0 + weightDecay * theta
            let rate = lr / (1 + Double(k) * lrDecay)
            s += g * g
            theta -= rate * g / (s.squareRoot() + eps)
            return theta
        }
    }
}

/// Two small parameters and three steps of fixed pseudo-random gradients.
struct OptimizerScenario {
    let initial: [Tensor]
    let grads: [[Tensor]]   // [step][parameter]

    init(seed: UInt64, steps: Int = 3) {
        var rng = RandomGenerator(seed: seed)
        let start = [rng.uniformTensor([2, 2], low: -1, high: 1), rng.uniformTensor([3], low: -1, high: 1)]
        var perStep: [[Tensor]] = []
        for _ in 0..<steps { perStep.append(start.map { rng.uniformTensor($0.shape, low: -2, high: 2) }) }
        initial = start
        grads = perStep
    }

    func makeParameters() -> [Variable] { initial.map { Variable($0, requiresGrad: true) } }

    /// Runs the optimizer and compares every element after every step with `reference`.
    func check(_ make: ([Variable]) -> any Optimizer, tolerance: Double = 2e-6,
               reference: (Double, [Double]) -> [Double]) {
        let params = makeParameters()
        let optimizer = make(params)
        var trajectories: [[Float]] = []
        for stepGrads in grads {
            for (p, g) in zip(params, stepGrads) { p.grad = g }
            optimizer.step()
            trajectories.append(params.flatMap(\.value.data))
        }
        var flat = 0
        for (i, p0) in initial.enumerated() {
            for j in 0..<p0.count {
                let expected = reference(Double(p0.data[j]), grads.map { Double($0[i].data[j]) })
                for (k, e) in expected.enumerated() {
                    let actual = Double(trajectories[k][flat])
                    #expect(abs(actual - e) <= tolerance * (1 + abs(e)),
                            "parameter \(i) element \(j) step \(k + 1): \(actual) vs reference \(e)")
                }
                flat += 1
            }
        }
    }
}

@Suite struct OptimizerUpdateTests {
    @Test func sgdHandComputed() {
        let p = Variable(Tensor(shape: [1], data: [1]), requiresGrad: true)
        let sgd = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9)
        p.grad = Tensor(shape: [1], data: [0.5])
        sgd.step()   // buffer = 0.5, θ = 1 - 0.05
        #expect(abs(p.value.data[0] - 0.95) < 1e-7)
        sgd.step()   // buffer = 0.9·0.5 + 0.5 = 0.95, θ = 0.95 - 0.095
        #expect(abs(p.value.data[0] - 0.855) < 1e-7)
        #expect(sgd.stepCount == 2)
    }

    @Test func sgdVariants() {
        let s = OptimizerScenario(seed: 1)
        s.check({ SGD(parameters: $0, learningRate: 0.1) }) { ReferenceUpdate.sgd($0, $1, lr: 0.1) }
        s.check({ SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, dampening: 0.1) }) {
            ReferenceUpdate.sgd($0, $1, lr: 0.1, momentum: 0.9, dampening: 0.1)
        }
        s.check({ SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01) }) {
            ReferenceUpdate.sgd($0, $1, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01)
        }
    }

    @Test func adamFirstStepMovesByTheRate() {
        // m̂₁ = g, v̂₁ = g², so θ₁ = θ₀ - lr · g / (|g| + ε).
        let p = Variable(Tensor(shape: [2], data: [1, -1]), requiresGrad: true)
        let adam = Adam(parameters: [p], learningRate: 0.01)
        p.grad = Tensor(shape: [2], data: [0.3, -4])
        adam.step()
        #expect(abs(p.value.data[0] - 0.99) < 1e-6)
        #expect(abs(p.value.data[1] - -0.99) < 1e-6)
    }

    @Test func adamAndAdamW() {
        let s = OptimizerScenario(seed: 2)
        s.check({ Adam(parameters: $0, learningRate: 0.01) }) { ReferenceUpdate.adam($0, $1, lr: 0.01) }
        s.check({ Adam(parameters: $0, learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1) }) {
            ReferenceUpdate.adam($0, $1, lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1)
        }
        s.check({ AdamW(parameters: $0, learningRate: 0.01) }) {
            ReferenceUpdate.adam($0, $1, lr: 0.01, weightDecay: 0.01, decoupled: true)
        }
        s.check({ AdamW(parameters: $0, learningRate: 0.05, beta1: 0.3, weightDecay: 0.5) }) {   // lerp weight ≥ 0.5
            ReferenceUpdate.adam($0, $1, lr: 0.05, beta1: 0.3, weightDecay: 0.5, decoupled: true)
        }
    }

    /// Large parameters take the vectorized kernel in slices shared between threads (from
    /// `Adam.elementsPerPart` elements per thread): every element, including those at the seams
    /// of the slices and the vector remainders, must follow PyTorch's rule.
    @Test(arguments: [(0.9, 0.0, false), (0.3, 0.1, false), (0.9, 0.05, true)])
    func adamOnLargeParametersFollowsTheRuleEverywhere(beta1: Double, weightDecay: Double, decoupled: Bool) {
        var rng = RandomGenerator(seed: 11)
        let sizes = [100_003, 7, 65_536]
        let params = sizes.map { Variable(rng.uniformTensor([$0], low: -1, high: 1), requiresGrad: true) }
        let initial = params.map { $0.value.data }
        let lr: Float = 0.01, b1 = Float(beta1), wd = Float(weightDecay)
        let adam: Adam = decoupled
            ? AdamW(parameters: params, learningRate: lr, beta1: b1, weightDecay: wd)
            : Adam(parameters: params, learningRate: lr, beta1: b1, weightDecay: wd)
        var grads = sizes.map { _ in [[Float]]() }
        for _ in 1...3 {
            for (i, p) in params.enumerated() {
                p.grad = rng.uniformTensor([sizes[i]], low: -2, high: 2)
                grads[i].append(p.grad!.data)
            }
            adam.step()
        }
        for i in sizes.indices {
            let far = (0..<sizes[i]).filter { j in
                let expected = ReferenceUpdate.adam(Double(initial[i][j]), grads[i].map { Double($0[j]) },
                                                    lr: Double(lr), beta1: Double(b1), weightDecay: Double(wd),
                                                    decoupled: decoupled).last!
                return abs(Double(params[i].value.data[j]) - expected) > 2e-6 * max(1, abs(expected))
            }
            #expect(far.count == 0, "parameter \(i): \(far.count) of \(sizes[i]) elements off the rule, first at \(far.first ?? -1)")
        }
    }

    @Test func rmsprop() {
        let s = OptimizerScenario(seed: 3)
        s.check({ RMSprop(parameters: $0, learningRate: 0.01) }) { ReferenceUpdate.rmsprop($0, $1, lr: 0.01) }
        s.check({ RMSprop(parameters: $0, learningRate: 0.01, alpha: 0.9, weightDecay: 0.1, momentum: 0.9, centered: true) },
                tolerance: 1e-5) {
            ReferenceUpdate.rmsprop($0, $1, lr: 0.01, alpha: 0.9, weightDecay: 0.1, momentum: 0.9, centered: true)
        }
    }

    @Test func adagrad() {
        let s = OptimizerScenario(seed: 4)
        s.check({ Adagrad(parameters: $0, learningRate: 0.1) }) { ReferenceUpdate.adagrad($0, $1, lr: 0.1) }
        s.check({ Adagrad(parameters: $0, learningRate: 0.1, learningRateDecay: 0.01, weightDecay: 0.01,
                          initialAccumulatorValue: 0.1) }) {
            ReferenceUpdate.adagrad($0, $1, lr: 0.1, lrDecay: 0.01, weightDecay: 0.01, initialAccumulator: 0.1)
        }
    }

    @Test func parametersWithoutGradientAreSkippedAndKeepTheirOwnStep() {
        let a = Variable(Tensor(shape: [1], data: [1]), requiresGrad: true)
        let b = Variable(Tensor(shape: [1], data: [2]), requiresGrad: true)
        let adam = Adam(parameters: [a, b], learningRate: 0.1)
        a.grad = Tensor(shape: [1], data: [1])
        adam.step()
        #expect(b.value.data[0] == 2)
        b.grad = Tensor(shape: [1], data: [5])
        adam.step()
        // b's first update is bias-corrected as step 1: θ - lr · g/(|g| + ε).
        #expect(abs(b.value.data[0] - 1.9) < 1e-6)
        let state = adam.stateDict()
        #expect(state["step"]?.scalar == 2 && state["param.0.step"]?.scalar == 2 && state["param.1.step"]?.scalar == 1)
    }
}

@Suite struct OptimizerStateTests {
    static let makers: [(String, @Sendable ([Variable]) -> any Optimizer)] = [
        ("SGD", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
        ("Adam", { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }),
        ("AdamW", { AdamW(parameters: $0, learningRate: 0.01) }),
        ("RMSprop", { RMSprop(parameters: $0, learningRate: 0.01, momentum: 0.5, centered: true) }),
        ("Adagrad", { Adagrad(parameters: $0, learningRate: 0.1, learningRateDecay: 0.1) }),
    ]

    @Test(arguments: 0..<5)
    func resumedRunContinuesExactly(maker: Int) throws {
        let (name, make) = OptimizerStateTests.makers[maker]
        let s = OptimizerScenario(seed: 7, steps: 5)
        let original = s.makeParameters()
        let optimizer = make(original)
        for k in 0..<2 {
            for (p, g) in zip(original, s.grads[k]) { p.grad = g }
            optimizer.step()
        }
        let resumedParams = original.map { Variable($0.value, requiresGrad: true) }
        let resumed = make(resumedParams)
        try resumed.loadStateDict(optimizer.stateDict())
        let freshParams = original.map { Variable($0.value, requiresGrad: true) }
        let fresh = make(freshParams)
        #expect(resumed.stepCount == 2)
        for k in 2..<5 {
            for group in [original, resumedParams, freshParams] {
                for (p, g) in zip(group, s.grads[k]) { p.grad = g }
            }
            optimizer.step()
            resumed.step()
            fresh.step()
        }
        for (a, b) in zip(original, resumedParams) { #expect(a.value == b.value, "\(name)") }
        // Without the state the trajectory differs, so the comparison above can fail.
        #expect(zip(original, freshParams).contains { $0.value != $1.value }, "\(name)")
    }

    @Test func loadRejectsForeignOrInconsistentState() throws {
        let params = OptimizerScenario(seed: 8).makeParameters()
        let adam = Adam(parameters: params)
        for p in params { p.grad = Tensor(repeating: 1, shape: p.shape) }
        adam.step()
        let good = adam.stateDict()
        #expect(good.keys.sorted() == ["param.0.exp_avg", "param.0.exp_avg_sq", "param.0.step",
                                       "param.1.exp_avg", "param.1.exp_avg_sq", "param.1.step", "step"])

        func message(_ edit: (inout [String: Tensor]) -> Void) -> String {
            var state = good
            edit(&state)
            do { try Adam(parameters: params).loadStateDict(state); return "accepted" } catch { return "\(error)" }
        }
        #expect(message { $0["param.0.momentum_buffer"] = Tensor(zeros: [2, 2]) }.contains("unexpected key 'param.0.momentum_buffer'"))
        #expect(message { $0["param.2.exp_avg"] = Tensor(zeros: [3]) }.contains("names parameter 2"))
        #expect(message { $0["param.1.exp_avg"] = Tensor(zeros: [4]) }.contains("has shape [4]"))
        #expect(message { $0["param.1.exp_avg_sq"] = nil }.contains("missing 'param.1.exp_avg_sq'"))
        #expect(message { $0["step"] = nil }.contains("missing 'step'"))
        #expect(message { $0["step"] = Tensor(scalar: 1.5) }.contains("whole number"))
        #expect(message { _ in } == "accepted")
    }
}

@Suite struct GradientClippingTests {
    @Test func clipsToMaxNormAndReturnsNormBeforeClipping() {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true)
        let b = Variable(Tensor(zeros: [1]), requiresGrad: true)
        let unused = Variable(Tensor(zeros: [3]), requiresGrad: true)
        a.grad = Tensor(shape: [2], data: [3, 4])
        b.grad = Tensor(shape: [1], data: [12])
        let norm = clipGradientNorm([a, b, unused], maxNorm: 6.5)
        #expect(abs(norm - 13) < 1e-5)
        let scale: Float = 6.5 / (13 + 1e-6)
        #expect(a.grad!.maxAbsDifference(Tensor(shape: [2], data: [3 * scale, 4 * scale])) < 1e-6)
        #expect(abs(b.grad!.data[0] - 12 * scale) < 1e-6)
        #expect(unused.grad == nil)
    }

    @Test func leavesGradientsAloneUnderTheLimit() {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true)
        a.grad = Tensor(shape: [2], data: [3, 4])
        #expect(abs(clipGradientNorm([a], maxNorm: 5.1) - 5) < 1e-6)
        #expect(a.grad == Tensor(shape: [2], data: [3, 4]))
        // At exactly the limit the 1e-6 makes the scale < 1, as in PyTorch.
        _ = clipGradientNorm([a], maxNorm: 5)
        #expect(a.grad != Tensor(shape: [2], data: [3, 4]))
        #expect(clipGradientNorm([Variable(Tensor(zeros: [1]), requiresGrad: true)], maxNorm: 1) == 0)
    }

    @Test func clampsValues() {
        let a = Variable(Tensor(zeros: [4]), requiresGrad: true)
        a.grad = Tensor(shape: [4], data: [-7, -2, 0.5, 9])
        clipGradientValue([a, Variable(Tensor(zeros: [1]), requiresGrad: true)], limit: 5)
        #expect(a.grad == Tensor(shape: [4], data: [-5, -2, 0.5, 5]))
    }
}

@Suite struct LearningRateScheduleTests {
    func close(_ a: Float, _ b: Double) -> Bool { abs(Double(a) - b) <= 1e-7 * max(1, abs(b)) }

    @Test func stepAndExponentialDecay() {
        let step = StepDecay(stepSize: 3, gamma: 0.5)
        #expect([0, 2, 3, 5, 6, 9].map { step.learningRate(at: $0, base: 0.1) } == [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])
        let exponential = ExponentialDecay(gamma: 0.9)
        #expect(close(exponential.learningRate(at: 0, base: 2), 2))
        #expect(close(exponential.learningRate(at: 3, base: 2), 2 * 0.729))
        #expect(ConstantRate().learningRate(at: 1000, base: 0.3) == 0.3)
    }

    @Test func cosineAnnealingClosedForm() {
        let cosine = CosineAnnealing(totalSteps: 10, minimum: 0.001)
        #expect(close(cosine.learningRate(at: 0, base: 0.1), 0.1))
        #expect(close(cosine.learningRate(at: 5, base: 0.1), (0.1 + 0.001) / 2))
        #expect(close(cosine.learningRate(at: 10, base: 0.1), 0.001))
        #expect(close(cosine.learningRate(at: 3, base: 0.1), 0.001 + 0.099 * (1 + cos(Double.pi * 0.3)) / 2))
        #expect(close(cosine.learningRate(at: 20, base: 0.1), 0.1))   // periodic like PyTorch's closed form
    }

    @Test func linearWarmupThenDelegates() {
        let warmup = LinearWarmup(steps: 4)
        #expect([0, 1, 2, 4, 100].map { warmup.learningRate(at: $0, base: 0.8) } == [0, 0.2, 0.4, 0.8, 0.8])
        let started = LinearWarmup(steps: 4, startFactor: 0.5)
        #expect(close(started.learningRate(at: 0, base: 0.8), 0.4))
        #expect(close(started.learningRate(at: 2, base: 0.8), 0.6))
        let chained = LinearWarmup(steps: 4, then: CosineAnnealing(totalSteps: 10))
        #expect(close(chained.learningRate(at: 4, base: 0.8), 0.8))
        #expect(close(chained.learningRate(at: 9, base: 0.8), 0.4))
        #expect(close(chained.learningRate(at: 14, base: 0.8), 0))
    }
}
