/// Inter-layer dropout as in PyTorch's `nn.LSTM(dropout: p)`: every element of a layer's output
/// (all but the last layer's, in training only) is kept with probability 1 - p and scaled by
/// 1 / (1 - p), else zeroed. The mask is drawn element by element in row-major order:
/// keep when `rng.nextUniform() < 1 - p`.
func interLayerDropout(_ x: Variable, probability p: Float, rng: inout RandomGenerator) -> Variable {
    precondition(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got \(p)")
    let keep = 1 - p
    let scale: Float = keep > 0 ? 1 / keep : 0
    var mask = Tensor(zeros: x.shape)
    for i in 0..<mask.count { mask.data[i] = rng.nextUniform() < keep ? scale : 0 }
    return multiplyByConstant(x, mask)
}
