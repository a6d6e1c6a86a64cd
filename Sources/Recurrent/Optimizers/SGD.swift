/// Stochastic gradient descent with optional momentum, PyTorch's `torch.optim.SGD`.
///
/// For each parameter `θ` with gradient `g` (μ momentum, τ dampening, λ weight decay, γ rate):
/// ```
/// g ← g + λθ                                   (λ ≠ 0)
/// b ← g  on the first step,  else b ← μb + (1 - τ)g   (μ ≠ 0)
/// g ← g + μb  (Nesterov)   or   g ← b
/// θ ← θ - γg
/// ```
/// State: `param.<i>.momentum_buffer` (only with momentum, after the parameter's first update).
public final class SGD: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public let momentum: Float
    public let dampening: Float
    public let nesterov: Bool
    public let weightDecay: Float
    var state: OptimizerState

    static let bufferNames = ["momentum_buffer"]

    public init(parameters: [Variable], learningRate: Float = 1e-3, momentum: Float = 0,
                dampening: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(learningRate >= 0, "SGD: learning rate must be non-negative, got \(learningRate)")
        precondition(momentum >= 0, "SGD: momentum must be non-negative, got \(momentum)")
        precondition(weightDecay >= 0, "SGD: weight decay must be non-negative, got \(weightDecay)")
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "SGD: Nesterov momentum requires momentum > 0 and zero dampening (got momentum \(momentum), dampening \(dampening))")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        state = OptimizerState(parameterCount: parameters.count, bufferNames: SGD.bufferNames,
                               tracksParameterSteps: false)
    }

    public var stepCount: Int { state.stepCount }

    public func step() {
        state.stepCount += 1
        let negativeRate = -learningRate
        let decay = weightDecay
        let mu = momentum
        let gradientWeight = Float(1 - decimalDouble(dampening))
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            precondition(grad.shape == p.shape, "SGD: gradient \(grad.shape) for parameter \(i) of shape \(p.shape)")
            let n = grad.count
            let first = state.buffers[0][i] == nil
            var buffer = mu != 0 ? state.take(0, i, orCreate: Tensor(zeros: p.shape)) : Tensor(zeros: [0])
            grad.data.withUnsafeBufferPointer { gp in
                buffer.data.withUnsafeMutableBufferPointer { b in
                    p.value.data.withUnsafeMutableBufferPointer { theta in
                        for j in 0..<n {
                            var g = gp[j]
                            if decay != 0 { g = g + decay * theta[j] }
                            if mu != 0 {
                                b[j] = first ? g : b[j] * mu + gradientWeight * g
                                g = nesterov ? g + mu * b[j] : b[j]
                            }
                            theta[j] = theta[j] + negativeRate * g
                        }
                    }
                }
            }
            if mu != 0 { state.store(0, i, buffer) }
        }
    }

    public func stateDict() -> [String: Tensor] { state.encoded() }

    public func loadStateDict(_ dict: [String: Tensor]) throws {
        state = try OptimizerState.decoded(dict, parameters: parameters, bufferNames: SGD.bufferNames,
                                           tracksParameterSteps: false) { _, _ in [] }
    }
}
