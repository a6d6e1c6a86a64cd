import CKernels
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
    // Rows are shared between the team's threads (from 2¹⁶ logits); the loss sums the rows' terms
    // in row order, as one thread would.
    var exponentials = [Float](repeating: 0, count: n * c)
    var inverseSums = [Float](repeating: 0, count: n)
    var rowLosses = [Double](repeating: 0, count: n)
    let counts = targets.map { $0 != ignoreIndex }
    let parts = n * c >= 1 << 16 ? max(1, min(ThreadTeam.available, n / 64)) : 1
    x.data.withUnsafeBufferPointer { xp in
    exponentials.withUnsafeMutableBufferPointer { e in
    inverseSums.withUnsafeMutableBufferPointer { inverse in
    rowLosses.withUnsafeMutableBufferPointer { losses in
    targets.withUnsafeBufferPointer { target in
    counts.withUnsafeBufferPointer { counted in
        let job = SoftmaxRows(x: xp.baseAddress!, classes: c, targets: target.baseAddress!, counted: counted.baseAddress!,
                              exponentials: e.baseAddress!, inverseSums: inverse.baseAddress!, losses: losses.baseAddress!)
        if parts == 1 { job.forward(rows: 0..<n) }
        else { runParts(parts) { p in job.forward(rows: WorkSplit.slice(p, of: parts, count: n)) } }
    } } } } } }
    var total: Double = 0
    var counted = 0
    for r in 0..<n where counts[r] {
        total += rowLosses[r]
        counted += 1
    }
    let loss: Double = reduction == .mean ? total / Double(counted) : total
    return Variable.record(Tensor(scalar: Float(loss)), parents: [logits]) { g in
        let scale = reduction == .mean ? g.scalar / Float(counted) : g.scalar
        var dx = [Float](repeating: 0, count: n * c)
        exponentials.withUnsafeBufferPointer { e in
        inverseSums.withUnsafeBufferPointer { inverse in
        targets.withUnsafeBufferPointer { target in
        counts.withUnsafeBufferPointer { countedRows in
        dx.withUnsafeMutableBufferPointer { d in
            let job = SoftmaxGradientRows(exponentials: e.baseAddress!, inverseSums: inverse.baseAddress!, classes: c,
                                          targets: target.baseAddress!, counted: countedRows.baseAddress!,
                                          scale: scale, dx: d.baseAddress!)
            if parts == 1 { job.run(rows: 0..<n) }
            else { runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: n)) } }
        } } } } }
        return [Tensor(shape: x.shape, data: dx)]
    }
}

/// One thread's rows of the cross-entropy forward pass: `e = exp(x - max)`, `1 / Σe`, and the
/// row's loss `max + log Σe - x_target` for counted rows.
private struct SoftmaxRows: @unchecked Sendable {
    let x: UnsafePointer<Float>, classes: Int
    let targets: UnsafePointer<Int>, counted: UnsafePointer<Bool>
    let exponentials: UnsafeMutablePointer<Float>, inverseSums: UnsafeMutablePointer<Float>
    let losses: UnsafeMutablePointer<Double>

    func forward(rows: Range<Int>) {
        let c = classes
        let shifted = UnsafeMutablePointer<Float>.allocate(capacity: c)
        defer { shifted.deallocate() }
        for r in rows {
            let row = r * c
            var m = -Float.infinity
            for j in 0..<c { m = max(m, x[row + j]) }
            for j in 0..<c { shifted[j] = x[row + j] - m }
            // The vectorized exp of the gate kernels (Cephes coefficients, ~1 ulp; arguments
            // below -87 give e^-87 instead of a smaller number, nothing next to the row's 1).
            ck_exp(c, shifted, exponentials + row)
            var s: Float = 0
            for j in 0..<c { s += exponentials[row + j] }
            inverseSums[r] = 1 / s
            if counted[r] { losses[r] = Double(m + logf(s) - x[row + targets[r]]) }
        }
    }
}

/// One thread's rows of the cross-entropy gradient: `s · (softmax(x_n) - onehot(t_n))` for
/// counted rows, zeros for ignored ones.
private struct SoftmaxGradientRows: @unchecked Sendable {
    let exponentials: UnsafePointer<Float>, inverseSums: UnsafePointer<Float>, classes: Int
    let targets: UnsafePointer<Int>, counted: UnsafePointer<Bool>
    let scale: Float
    let dx: UnsafeMutablePointer<Float>

    func run(rows: Range<Int>) {
        let c = classes
        for r in rows where counted[r] {
            let row = r * c
            let factor = inverseSums[r] * scale
            for j in 0..<c { dx[row + j] = exponentials[row + j] * factor }
            dx[row + targets[r]] -= scale
        }
    }
}
