/// Inverted dropout, PyTorch's `nn.Dropout`: in training each element is zeroed with probability
/// `p` and the survivors are scaled by `1 / (1 - p)`, so the expected value is unchanged and
/// evaluation is the identity.
///
/// `y = x ⊙ m`, `m_i = 1/(1-p)` with probability `1-p`, else `0`. The mask is drawn from the
/// caller's generator (one uniform per element, row-major), so a run is reproducible.
public struct Dropout: Sendable {
    /// `p` in `[0, 1]` (`p = 1` zeroes everything, as in PyTorch).
    public let probability: Float

    public init(probability: Float) {
        precondition(probability >= 0 && probability <= 1,
                     "Dropout: probability must be in [0, 1], got \(probability)")
        self.probability = probability
    }

    /// Any shape → the same shape. Returns `x` itself when not training or when `p = 0`.
    public func callAsFunction(_ x: Variable, training: Bool, rng: inout RandomGenerator) -> Variable {
        guard training && probability > 0 else { return x }
        let keep = 1 - probability
        let scale: Float = keep > 0 ? 1 / keep : 0
        var mask = [Float](repeating: 0, count: x.value.count)
        for i in 0..<mask.count where rng.nextUniform() < keep { mask[i] = scale }
        return multiplyByConstant(x, Tensor(shape: x.shape, data: mask))
    }
}
