/// Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW` (Loshchilov & Hutter): before
/// the Adam update every parameter with a gradient is shrunk, `θ ← θ(1 - γλ)`, and `λθ` is NOT
/// added to the gradient. Default `λ = 0.01`. Everything else (and the state keys) as `Adam`.
public final class AdamW: Adam {
    public init(parameters: [Variable], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        super.init(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
                   epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: true)
    }
}
