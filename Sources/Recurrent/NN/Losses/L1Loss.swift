/// Mean absolute error, PyTorch's `F.l1_loss`: `ℓ = reduce(|p - y|)` over all elements.
///
/// `prediction` and `target` have the same shape. Backward uses PyTorch's subgradient
/// `sign(p - y)` with `sign(0) = 0`: `dp = sign(p - y) · s`, with `s = dLoss / count` (`.mean`)
/// or `dLoss` (`.sum`).
public func l1Loss(_ prediction: Variable, _ target: Tensor, reduction: Reduction = .mean) -> Variable {
    precondition(prediction.shape == target.shape,
                 "l1Loss: prediction \(prediction.shape) and target \(target.shape) differ in shape")
    let difference = prediction.value - target
    var total: Double = 0
    for v in difference.data { total += Double(abs(v)) }
    let count = difference.count
    let loss = reduction == .mean ? total / Double(count) : total
    return Variable.record(Tensor(scalar: Float(loss)), parents: [prediction]) { g in
        let scale = reduction == .mean ? g.scalar / Float(count) : g.scalar
        return [difference.map { $0 > 0 ? scale : ($0 < 0 ? -scale : 0) }]
    }
}
