#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy, PyTorch's `F.cross_entropy(logits, targets, ignore_index=, reduction=)`,
/// as ONE tape node.
///
/// `logits` `[N, C]` (or `[..., C]`: leading axes are flattened to `N` rows — note PyTorch puts the
/// class axis second for such inputs; here it is always last), `targets` `N` class indices.
/// For each row `n` with `t_n ≠ ignoreIndex`:
/// `ℓ_n = logsumexp(x_n) - x_{n, t_n}`, computed stably as `m + log Σ_j e^{x_nj - m}`, `m = max_j x_nj`.
/// `.mean` divides the sum by the number of rows that are not ignored (as PyTorch: if every row
/// is ignored the loss is NaN and the gradient is zero); `.sum` returns the sum.
///
/// Backward (hand-written): `dx_n = s · (softmax(x_n) - onehot(t_n))` for counted rows, `0` for
/// ignored rows, where `s = dLoss` (`.sum`) or `dLoss / count` (`.mean`).
public func crossEntropy(logits: Variable, targets: [Int], ignoreIndex: Int? = nil,
                         reduction: Reduction = .mean) -> Variable {
    precondition(logits.value.rank >= 2 && logits.shape.last! > 0,
                 "crossEntropy: expected logits [N, C] with C > 0, got \(logits.shape)")
    let c = logits.shape.last!
    let n = logits.value.count / c
    precondition(targets.count == n,
                 "crossEntropy: \(targets.count) targets for \(n) rows of logits \(logits.shape)")
    for (position, t) in targets.enumerated() where t != ignoreIndex {
        precondition(t >= 0 && t < c,
                     "crossEntropy: target \(t) at position \(position) is out of range for \(c) classes (0..<\(c))")
    }
    let x = logits.value
    // e_nj = exp(x_nj - m_n) is kept for the backward pass: softmax(x_n)_j = e_nj / Σ_j e_nj.
    var exponentials = [Float](repeating: 0, count: n * c)
    var inverseSums = [Float](repeating: 0, count: n)
    var total: Double = 0
    var counted = 0
    x.data.withUnsafeBufferPointer { xp in
        exponentials.withUnsafeMutableBufferPointer { e in
            for r in 0..<n {
                let row = r * c
                var m = -Float.infinity
                for j in 0..<c { m = max(m, xp[row + j]) }
                var s: Float = 0
                for j in 0..<c {
                    e[row + j] = expf(xp[row + j] - m)
                    s += e[row + j]
                }
                inverseSums[r] = 1 / s
                if targets[r] != ignoreIndex {
                    total += Double(m + logf(s) - xp[row + targets[r]])
                    counted += 1
                }
            }
        }
    }
    let loss: Double = reduction == .mean ? total / Double(counted) : total
    return Variable.record(Tensor(scalar: Float(loss)), parents: [logits]) { g in
        let scale = reduction == .mean ? g.scalar / Float(counted) : g.scalar
        var dx = [Float](repeating: 0, count: n * c)
        exponentials.withUnsafeBufferPointer { e in
            dx.withUnsafeMutableBufferPointer { d in
                for r in 0..<n where targets[r] != ignoreIndex {
                    let row = r * c
                    let factor = inverseSums[r] * scale
                    for j in 0..<c { d[row + j] = e[row + j] * factor }
                    d[row + targets[r]] -= scale
                }
            }
        }
        return [Tensor(shape: x.shape, data: dx)]
    }
}
