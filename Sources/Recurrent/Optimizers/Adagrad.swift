/// Adagrad, PyTorch's `torch.optim.Adagrad`.
///
/// For each parameter `θ` with gradient `g`, at its step `t` (γ rate, η rate decay, λ weight decay):
/// ```
/// g ← g + λθ                      (λ ≠ 0)
/// γ_t = γ / (1 + (t - 1)η)
/// s ← s + g²                      (s starts at the initial accumulator value)
/// θ ← θ - γ_t g / (√s + ε)
/// ```
/// State: `param.<i>.step`, `param.<i>.sum` (s; created for every parameter at construction,
/// as PyTorch does).
public final class Adagrad: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public let learningRateDecay: Float
    public let weightDecay: Float
    public let initialAccumulatorValue: Float
    public let epsilon: Float
    var state: OptimizerState

    static let bufferNames = ["sum"]

    public init(parameters: [Variable], learningRate: Float = 1e-2, learningRateDecay: Float = 0,
                weightDecay: Float = 0, initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10) {
        precondition(learningRate >= 0, "Adagrad: learning rate must be non-negative, got \(learningRate)")
        precondition(learningRateDecay >= 0, "Adagrad: learning rate decay must be non-negative, got \(learningRateDecay)")
        precondition(weightDecay >= 0, "Adagrad: weight decay must be non-negative, got \(weightDecay)")
        precondition(initialAccumulatorValue >= 0,
                     "Adagrad: initial accumulator value must be non-negative, got \(initialAccumulatorValue)")
        precondition(epsilon >= 0, "Adagrad: epsilon must be non-negative, got \(epsilon)")
        self.parameters = parameters
        self.learningRate = learningRate
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        state = OptimizerState(parameterCount: parameters.count, bufferNames: Adagrad.bufferNames,
                               tracksParameterSteps: true)
        for (i, p) in parameters.enumerated() {
            state.store(0, i, Tensor(repeating: initialAccumulatorValue, shape: p.shape))
        }
    }

    public var stepCount: Int { state.stepCount }

    public func step() {
        state.stepCount += 1
        let rate = decimalDouble(learningRate)
        let rateDecay = decimalDouble(learningRateDecay)
        let decay = weightDecay
        let eps = epsilon
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            precondition(grad.shape == p.shape, "Adagrad: gradient \(grad.shape) for parameter \(i) of shape \(p.shape)")
            state.steps[i] += 1
            let negativeRate = Float(-(rate / (1 + Double(state.steps[i] - 1) * rateDecay)))
            var sum = state.take(0, i, orCreate: Tensor(repeating: initialAccumulatorValue, shape: p.shape))
            let n = grad.count
            grad.data.withUnsafeBufferPointer { gp in
                sum.data.withUnsafeMutableBufferPointer { s in
                    p.value.data.withUnsafeMutableBufferPointer { theta in
                        for j in 0..<n {
                            var g = gp[j]
                            if decay != 0 { g = g + decay * theta[j] }
                            s[j] = s[j] + g * g
                            theta[j] = theta[j] + negativeRate * g / (s[j].squareRoot() + eps)
                        }
                    }
                }
            }
            state.store(0, i, sum)
        }
    }

    public func stateDict() -> [String: Tensor] { state.encoded() }

    public func loadStateDict(_ dict: [String: Tensor]) throws {
        state = try OptimizerState.decoded(dict, parameters: parameters, bufferNames: Adagrad.bufferNames,
                                           tracksParameterSteps: true) { _, _ in Adagrad.bufferNames }
    }
}
