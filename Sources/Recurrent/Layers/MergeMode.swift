/// How a bidirectional layer combines its forward output `y_f` and reverse output `y_r`
/// (`[T, B, H]` each) into what it emits — and what the next layer reads:
///
///     concat:  [y_f | y_r]          [T, B, 2H]   (PyTorch's only mode)
///     sum:     y_f + y_r            [T, B, H]
///     mean:    (y_f + y_r) · 0.5    [T, B, H]
///     product: y_f ⊙ y_r            [T, B, H]
public enum MergeMode: String, Sendable, Codable, CaseIterable {
    case concat, sum, mean, product

    /// Features per step after merging two directions of `hiddenSize` each.
    public func mergedSize(hiddenSize: Int) -> Int { self == .concat ? 2 * hiddenSize : hiddenSize }

    /// Combines `forward` and `reverse`, both `[T, B, H]`.
    func merge(_ forward: Variable, _ reverse: Variable) -> Variable {
        precondition(forward.shape == reverse.shape && forward.value.rank == 3,
                     "merge: directions have shapes \(forward.shape) and \(reverse.shape)")
        switch self {
        case .concat:
            let (t, b, h) = (forward.shape[0], forward.shape[1], forward.shape[2])
            let joined = concatColumns([reshape(forward, [t * b, h]), reshape(reverse, [t * b, h])])
            return reshape(joined, [t, b, 2 * h])
        case .sum: return forward + reverse
        case .mean: return (forward + reverse) * 0.5
        case .product: return forward * reverse
        }
    }

    /// Combines the two directions' outputs given side by side, `[y_f | y_r]` `[T, B, 2H]` (as
    /// a fused bidirectional layer emits them).
    func merge(sideBySide y: Variable) -> Variable {
        precondition(y.value.rank == 3 && y.shape[2] % 2 == 0, "merge: side-by-side outputs have shape \(y.shape)")
        if self == .concat { return y }
        let (t, b, h) = (y.shape[0], y.shape[1], y.shape[2] / 2)
        let rows = reshape(y, [t * b, 2 * h])
        return merge(reshape(columns(rows, 0..<h), [t, b, h]), reshape(columns(rows, h..<(2 * h)), [t, b, h]))
    }
}
