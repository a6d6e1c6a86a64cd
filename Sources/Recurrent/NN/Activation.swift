/// A parameter-free element-wise non-linearity as a `Layer` (PyTorch's `nn.Tanh`, `nn.ReLU`,
/// `nn.Sigmoid`), for use inside a `Sequential`. It owns no keys, so like PyTorch it leaves a gap in
/// a `Sequential`'s numbering (`0.weight`, `2.weight`).
public final class Activation: Layer {
    public enum Function: String, Sendable, CaseIterable {
        /// `tanh(x)`
        case tanh
        /// `max(x, 0)`
        case relu
        /// `σ(x) = 1 / (1 + e^{-x})`
        case sigmoid
    }

    public let function: Function

    public init(_ function: Function) { self.function = function }

    public func namedParameters() -> [(String, Variable)] { [] }

    public func callAsFunction(_ x: Variable) -> Variable {
        switch function {
        case .tanh: return Recurrent.tanh(x)
        case .relu: return relu(x)
        case .sigmoid: return sigmoid(x)
        }
    }
}
