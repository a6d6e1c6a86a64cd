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
}
