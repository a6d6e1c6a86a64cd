/// Mean squared error, PyTorch's `F.mse_loss`: `ℓ = reduce((p - y)²)` over all elements.
///
/// `prediction` and `target` have the same shape. Backward: `dp = 2 (p - y) · s`, with
/// `s = dLoss / count` (`.mean`) or `dLoss` (`.sum`).
public func mseLoss(_ prediction: Variable, _ target: Tensor, reduction: Reduction = .mean) -> Variable {
    precondition(prediction.shape == target.shape,
                 "mseLoss: prediction \(prediction.shape) and target \(target.shape) differ in shape")
    let difference = prediction.value - target
    let total = Double(Tensor.sumOfSquares(difference.data))
    let count = difference.count
    let loss = reduction == .mean ? total / Double(count) : total
    return Variable.record(Tensor(scalar: Float(loss)), parents: [prediction]) { g in
        let scale = reduction == .mean ? g.scalar / Float(count) : g.scalar
        return [difference * (2 * scale)]
    }
}
