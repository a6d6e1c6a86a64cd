/// How a loss combines its per-element terms into one scalar (PyTorch's `reduction=`).
public enum Reduction: String, Sendable, CaseIterable {
    /// Average over the counted terms.
    case mean
    /// Sum of the terms.
    case sum
}
