/// A fully connected layer, PyTorch's `nn.Linear`: `y = x · Wᵀ + b`.
///
/// Shapes: `x` `[..., I]` (any rank ≥ 1; leading axes are flattened to `N` rows and restored on
/// the output), `W` `[O, I]`, `b` `[O]`, `y` `[..., O]`. Keys `weight`, `bias`.
///
/// Initialisation differs from PyTorch's default ON PURPOSE (our spec): the weight is drawn
/// Xavier/Glorot uniform, `W ~ U(-a, a)` with `a = sqrt(6 / (I + O))`, and the bias starts at zero.
/// PyTorch's `nn.Linear` uses Kaiming-uniform weights and `U(-1/sqrt(I), 1/sqrt(I))` biases;
/// load a PyTorch state dict to get identical values.
public final class Linear: Layer {
    public let inputSize: Int
    public let outputSize: Int
    /// `[O, I]`
    public let weight: Variable
    /// `[O]`, or nil for `bias: false`.
    public let bias: Variable?

    public init(inputSize: Int, outputSize: Int, bias: Bool = true, rng: inout RandomGenerator) {
        precondition(inputSize > 0 && outputSize > 0,
                     "Linear: sizes must be positive, got inputSize \(inputSize), outputSize \(outputSize)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        let bound = (6 / Float(inputSize + outputSize)).squareRoot()
        weight = Variable(rng.uniformTensor([outputSize, inputSize], low: -bound, high: bound),
                          requiresGrad: true, name: "weight")
        self.bias = bias ? Variable(Tensor(zeros: [outputSize]), requiresGrad: true, name: "bias") : nil
    }

    public func namedParameters() -> [(String, Variable)] {
        if let bias { return [("weight", weight), ("bias", bias)] }
        return [("weight", weight)]
    }

    /// `[..., I] → [..., O]`.
    public func callAsFunction(_ x: Variable) -> Variable {
        precondition(x.value.rank >= 1 && x.shape.last == inputSize,
                     "Linear: expected input [..., \(inputSize)], got \(x.shape)")
        if x.value.rank == 2 { return linear(x, weight: weight, bias: bias) }
        let leading = Array(x.shape.dropLast())
        let rows = leading.reduce(1, *)
        let y = linear(reshape(x, [rows, inputSize]), weight: weight, bias: bias)
        return reshape(y, leading + [outputSize])
    }
}
