/// RMSprop, PyTorch's `torch.optim.RMSprop`.
///
/// For each parameter `θ` with gradient `g` (α smoothing, μ momentum, λ weight decay, γ rate):
/// ```
/// g ← g + λθ                                 (λ ≠ 0)
/// v ← αv + (1 - α)g²
/// ḡ ← ḡ + (1 - α)(g - ḡ)                     (centered)
/// a ← √(v - ḡ²) + ε   (centered)   or   a ← √v + ε
/// b ← μb + g / a;  θ ← θ - γb                (μ > 0)
/// θ ← θ - γ g / a                            (μ = 0)
/// ```
/// State: `param.<i>.step`, `param.<i>.square_avg` (v), `param.<i>.momentum_buffer` (b, μ > 0),
/// `param.<i>.grad_avg` (ḡ, centered).
public final class RMSprop: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public let alpha: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let momentum: Float
    public let centered: Bool
    var state: OptimizerState

    static let bufferNames = ["square_avg", "momentum_buffer", "grad_avg"]

    public init(parameters: [Variable], learningRate: Float = 1e-2, alpha: Float = 0.99,
                epsilon: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) {
        precondition(learningRate >= 0, "RMSprop: learning rate must be non-negative, got \(learningRate)")
        precondition(alpha >= 0, "RMSprop: alpha must be non-negative, got \(alpha)")
        precondition(epsilon >= 0, "RMSprop: epsilon must be non-negative, got \(epsilon)")
        precondition(weightDecay >= 0, "RMSprop: weight decay must be non-negative, got \(weightDecay)")
        precondition(momentum >= 0, "RMSprop: momentum must be non-negative, got \(momentum)")
        self.parameters = parameters
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        state = OptimizerState(parameterCount: parameters.count, bufferNames: RMSprop.bufferNames,
                               tracksParameterSteps: true)
    }

    public var stepCount: Int { state.stepCount }

    public func step() {
        state.stepCount += 1
        let negativeRate = -learningRate
        let decay = weightDecay
        let a = alpha
        let complement = Float(1 - decimalDouble(alpha))
        let eps = epsilon
        let mu = momentum
        let usesMomentum = momentum > 0
        let isCentered = centered
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            precondition(grad.shape == p.shape, "RMSprop: gradient \(grad.shape) for parameter \(i) of shape \(p.shape)")
            state.steps[i] += 1
            let empty = Tensor(zeros: [0])
            var squareAverage = state.take(0, i, orCreate: Tensor(zeros: p.shape))
            var buffer = usesMomentum ? state.take(1, i, orCreate: Tensor(zeros: p.shape)) : empty
            var gradientAverage = isCentered ? state.take(2, i, orCreate: Tensor(zeros: p.shape)) : empty
            let n = grad.count
            grad.data.withUnsafeBufferPointer { gp in
                squareAverage.data.withUnsafeMutableBufferPointer { v in
                    buffer.data.withUnsafeMutableBufferPointer { b in
                        gradientAverage.data.withUnsafeMutableBufferPointer { gAvg in
                            p.value.data.withUnsafeMutableBufferPointer { theta in
                                for j in 0..<n {
                                    var g = gp[j]
                                    if decay != 0 { g = g + decay * theta[j] }
                                    v[j] = v[j] * a
                                    v[j] = v[j] + complement * g * g
                                    var average: Float
                                    if isCentered {
                                        gAvg[j] = complement < 0.5 ? gAvg[j] + complement * (g - gAvg[j])
                                                                   : g - (g - gAvg[j]) * (1 - complement)
                                        average = (v[j] + -1 * gAvg[j] * gAvg[j]).squareRoot()
                                    } else {
                                        average = v[j].squareRoot()
                                    }
                                    average = average + eps
                                    if usesMomentum {
                                        b[j] = b[j] * mu
                                        b[j] = b[j] + g / average
                                        theta[j] = theta[j] + negativeRate * b[j]
                                    } else {
                                        theta[j] = theta[j] + negativeRate * g / average
                                    }
                                }
                            }
                        }
                    }
                }
            }
            state.store(0, i, squareAverage)
            if usesMomentum { state.store(1, i, buffer) }
            if isCentered { state.store(2, i, gradientAverage) }
        }
    }

    public func stateDict() -> [String: Tensor] { state.encoded() }

    public func loadStateDict(_ dict: [String: Tensor]) throws {
        let usesMomentum = momentum > 0, isCentered = centered
        state = try OptimizerState.decoded(dict, parameters: parameters, bufferNames: RMSprop.bufferNames,
                                           tracksParameterSteps: true) { _, step in
            guard step > 0 else { return [] }
            return ["square_avg"] + (usesMomentum ? ["momentum_buffer"] : []) + (isCentered ? ["grad_avg"] : [])
        }
    }
}
