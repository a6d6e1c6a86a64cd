/// Rescales gradients so that their global L2 norm is at most `maxNorm`, PyTorch's
/// `torch.nn.utils.clip_grad_norm_` (norm type 2).
///
/// `‖g‖ = sqrt(Σ_p ‖g_p‖²)` over every parameter with a gradient (nil gradients are skipped);
/// `c = maxNorm / (‖g‖ + 1e-6)`; every gradient is multiplied by `c` only when `c < 1`.
/// Returns `‖g‖` before clipping (0 when no parameter has a gradient). A non-finite norm is
/// returned as is and leaves the gradients unchanged, so the caller can detect it.
@discardableResult
public func clipGradientNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
    precondition(maxNorm >= 0, "clipGradientNorm: maxNorm must be non-negative, got \(maxNorm)")
    var squares: Double = 0
    for p in parameters {
        guard let g = p.grad else { continue }
        let norm = Tensor.sumOfSquares(g.data).squareRoot()   // per-tensor norm in float32, as PyTorch
        squares += Double(norm) * Double(norm)
    }
    let total = Float(squares.squareRoot())
    let coefficient = maxNorm / (total + 1e-6)
    if coefficient < 1 {
        for p in parameters where p.grad != nil {
            p.grad!.data.withUnsafeMutableBufferPointer { g in
                for j in 0..<g.count { g[j] *= coefficient }
            }
        }
    }
    return total
}

/// Clamps every gradient element to `[-limit, limit]`, PyTorch's `torch.nn.utils.clip_grad_value_`
/// (char-rnn's "grad clip 5"). Nil gradients are skipped.
public func clipGradientValue(_ parameters: [Variable], limit: Float) {
    precondition(limit >= 0, "clipGradientValue: limit must be non-negative, got \(limit)")
    for p in parameters where p.grad != nil {
        p.grad!.data.withUnsafeMutableBufferPointer { g in
            for j in 0..<g.count { g[j] = min(max(g[j], -limit), limit) }
        }
    }
}
