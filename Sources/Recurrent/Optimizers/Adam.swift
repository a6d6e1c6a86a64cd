#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam, PyTorch's `torch.optim.Adam` (without AMSGrad); `AdamW` is the same with decoupled decay.
///
/// For each parameter `θ` with gradient `g`, at its step `t` (γ rate, λ weight decay):
/// ```
/// g ← g + λθ                        (Adam, λ ≠ 0)      θ ← θ(1 - γλ)   (AdamW)
/// m ← m + (1 - β₁)(g - m)           (lerp toward g)
/// v ← β₂v + (1 - β₂)g²
/// θ ← θ - (γ / (1 - β₁ᵗ)) · m / (√v / √(1 - β₂ᵗ) + ε)
/// ```
/// The bias corrections and the step size are computed in Double, as PyTorch does in Python.
/// State: `param.<i>.step`, `param.<i>.exp_avg` (m), `param.<i>.exp_avg_sq` (v).
public class Adam: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    /// AdamW's rule: decay the parameter directly instead of adding `λθ` to the gradient.
    public let decoupledWeightDecay: Bool
    var state: OptimizerState

    static let bufferNames = ["exp_avg", "exp_avg_sq"]

    public convenience init(parameters: [Variable], learningRate: Float = 1e-3, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.init(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
                  epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: false)
    }

    init(parameters: [Variable], learningRate: Float, beta1: Float, beta2: Float, epsilon: Float,
         weightDecay: Float, decoupledWeightDecay: Bool) {
        let name = decoupledWeightDecay ? "AdamW" : "Adam"
        precondition(learningRate >= 0, "\(name): learning rate must be non-negative, got \(learningRate)")
        precondition(beta1 >= 0 && beta1 < 1, "\(name): beta1 must be in [0, 1), got \(beta1)")
        precondition(beta2 >= 0 && beta2 < 1, "\(name): beta2 must be in [0, 1), got \(beta2)")
        precondition(epsilon >= 0, "\(name): epsilon must be non-negative, got \(epsilon)")
        precondition(weightDecay >= 0, "\(name): weight decay must be non-negative, got \(weightDecay)")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        state = OptimizerState(parameterCount: parameters.count, bufferNames: Adam.bufferNames,
                               tracksParameterSteps: true)
    }

    public var stepCount: Int { state.stepCount }

    public func step() {
        state.stepCount += 1
        let rate = decimalDouble(learningRate)
        let b1 = decimalDouble(beta1), b2 = decimalDouble(beta2)
        let lerpWeight = Float(1 - b1)
        let lerpComplement = 1 - lerpWeight
        let b2f = beta2
        let squareWeight = Float(1 - b2)
        let eps = epsilon
        let coupledDecay: Float = decoupledWeightDecay ? 0 : weightDecay
        let shrink = Float(1 - rate * decimalDouble(weightDecay))
        let shrinks = decoupledWeightDecay && weightDecay != 0
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            precondition(grad.shape == p.shape, "Adam: gradient \(grad.shape) for parameter \(i) of shape \(p.shape)")
            state.steps[i] += 1
            let t = Double(state.steps[i])
            let correction1 = 1 - pow(b1, t)
            let correction2 = 1 - pow(b2, t)
            let negativeStepSize = Float(-(rate / correction1))
            let correction2Root = Float(correction2.squareRoot())
            var m = state.take(0, i, orCreate: Tensor(zeros: p.shape))
            var v = state.take(1, i, orCreate: Tensor(zeros: p.shape))
            let n = grad.count
            grad.data.withUnsafeBufferPointer { gp in
                m.data.withUnsafeMutableBufferPointer { mp in
                    v.data.withUnsafeMutableBufferPointer { vp in
                        p.value.data.withUnsafeMutableBufferPointer { theta in
                            for j in 0..<n {
                                if shrinks { theta[j] = theta[j] * shrink }
                                var g = gp[j]
                                if coupledDecay != 0 { g = g + coupledDecay * theta[j] }
                                mp[j] = lerpWeight < 0.5 ? mp[j] + lerpWeight * (g - mp[j])
                                                         : g - (g - mp[j]) * lerpComplement
                                vp[j] = vp[j] * b2f
                                vp[j] = vp[j] + squareWeight * g * g
                                let denominator = vp[j].squareRoot() / correction2Root + eps
                                theta[j] = theta[j] + negativeStepSize * mp[j] / denominator
                            }
                        }
                    }
                }
            }
            state.store(0, i, m)
            state.store(1, i, v)
        }
    }

    public func stateDict() -> [String: Tensor] { state.encoded() }

    public func loadStateDict(_ dict: [String: Tensor]) throws {
        state = try OptimizerState.decoded(dict, parameters: parameters, bufferNames: Adam.bufferNames,
                                           tracksParameterSteps: true) { _, step in
            step > 0 ? Adam.bufferNames : []
        }
    }
}
