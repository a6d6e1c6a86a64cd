/// The Elman cell, PyTorch's `nn.RNNCell`:
///
///     h' = φ((W_hh h + b_hh) + (W_ih x + b_ih)),   φ = tanh or relu
///
/// Shapes: `x` `[B, I]`, `h` `[B, H]`; parameters `weight_ih` `[H, I]`, `weight_hh` `[H, H]`,
/// `bias_ih` `[H]`, `bias_hh` `[H]` (the sum is formed in PyTorch's order).
public final class RNNCell: RecurrentCell, CustomStringConvertible {
    /// The state is `h` `[B, H]`.
    public typealias State = Variable

    /// φ, the element-wise non-linearity.
    public enum Nonlinearity: String, Sendable, Codable, CaseIterable {
        case tanh, relu
    }

    public let nonlinearity: Nonlinearity
    public let weightIH: Variable
    public let weightHH: Variable
    public let biasIH: Variable
    public let biasHH: Variable
    public let inputSize: Int
    public let hiddenSize: Int

    /// A cell with PyTorch's default initialisation: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
    /// drawn in that order, each row-major from U(-1/√H, 1/√H).
    public convenience init(inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity = .tanh,
                            rng: inout RandomGenerator) {
        let (wih, whh, bih, bhh) = defaultCellParameters(gates: 1, inputSize: inputSize, hiddenSize: hiddenSize,
                                                         cell: "RNNCell", rng: &rng)
        self.init(nonlinearity: nonlinearity, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
    }

    /// A cell over existing parameters (shared, not copied): `[H, I]`, `[H, H]`, `[H]`, `[H]`.
    public init(nonlinearity: Nonlinearity, weightIH: Variable, weightHH: Variable,
                biasIH: Variable, biasHH: Variable) {
        (inputSize, hiddenSize) = validatedCellShapes(gates: 1, weightIH: weightIH, weightHH: weightHH,
                                                      biasIH: biasIH, biasHH: biasHH, cell: "RNNCell")
        self.nonlinearity = nonlinearity
        self.weightIH = weightIH
        self.weightHH = weightHH
        self.biasIH = biasIH
        self.biasHH = biasHH
    }

    public func namedParameters() -> [(String, Variable)] {
        [("weight_ih", weightIH), ("weight_hh", weightHH), ("bias_ih", biasIH), ("bias_hh", biasHH)]
    }

    public func zeroState(batchSize: Int) -> Variable {
        Variable(Tensor(zeros: [batchSize, hiddenSize]))
    }

    /// `x` `[B, I]`, `h` `[B, H]` → `h'` `[B, H]`.
    public func callAsFunction(_ x: Variable, _ h: Variable) -> Variable {
        let preactivation = linear(h, weight: weightHH, bias: biasHH) + linear(x, weight: weightIH, bias: biasIH)
        switch nonlinearity {
        case .tanh: return Recurrent.tanh(preactivation)
        case .relu: return relu(preactivation)
        }
    }

    public func output(of h: Variable) -> Variable { h }
    public func components(of h: Variable) -> [Variable] { [h] }
    public func state(from components: [Variable]) -> Variable { components[0] }

    public var description: String {
        cellSummary("RNNCell", inputSize, hiddenSize, detail: nonlinearity == .relu ? "relu" : nil,
                    parameters: parameterCount)
    }
}
