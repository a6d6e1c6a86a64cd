import CKernels
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

    /// Elements per thread from which a parameter's update is shared between the team's threads.
    static let elementsPerPart = 32_768

    public func step() {
        state.stepCount += 1
        let rate = decimalDouble(learningRate)
        let b1 = decimalDouble(beta1), b2 = decimalDouble(beta2)
        let shrinks = decoupledWeightDecay && weightDecay != 0
        var constants = ck_adam_constants(
            lerpWeight: Float(1 - b1), beta2: beta2, squareWeight: Float(1 - b2), correction2Root: 0,
            epsilon: epsilon, negativeStepSize: 0, coupledDecay: decoupledWeightDecay ? 0 : weightDecay,
            shrink: shrinks ? Float(1 - rate * decimalDouble(weightDecay)) : 1)
        let threads = ThreadTeam.available
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            precondition(grad.shape == p.shape, "Adam: gradient \(grad.shape) for parameter \(i) of shape \(p.shape)")
            state.steps[i] += 1
            let t = Double(state.steps[i])
            let correction1 = 1 - pow(b1, t)
            let correction2 = 1 - pow(b2, t)
            constants.negativeStepSize = Float(-(rate / correction1))
            constants.correction2Root = Float(correction2.squareRoot())
            var m = state.take(0, i, orCreate: Tensor(zeros: p.shape))
            var v = state.take(1, i, orCreate: Tensor(zeros: p.shape))
            let n = grad.count
            let parts = min(threads, max(1, n / Self.elementsPerPart))
            let c = constants
            grad.data.withUnsafeBufferPointer { gp in
                m.data.withUnsafeMutableBufferPointer { mp in
                    v.data.withUnsafeMutableBufferPointer { vp in
                        p.value.data.withUnsafeMutableBufferPointer { theta in
                            let job = AdamJob(theta: theta.baseAddress!, grad: gp.baseAddress!, m: mp.baseAddress!,
                                              v: vp.baseAddress!, constants: c)
                            runParts(parts) { part in
                                job.run(WorkSplit.slice(part, of: parts, count: n, quantum: 16))
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

/// One thread's slice of an Adam update (`ck_adam_update`).
private struct AdamJob: @unchecked Sendable {
    let theta: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let constants: ck_adam_constants

    func run(_ range: Range<Int>) {
        if range.isEmpty { return }
        let j = range.lowerBound
        withUnsafePointer(to: constants) { ck_adam_update(range.count, theta + j, grad + j, m + j, v + j, $0) }
    }
}
