/// The gated recurrent unit, PyTorch's `nn.GRUCell` (gate rows `r, z, n`; the reset gate scales
/// the recurrent term after its matrix product, bias included):
///
///     gi = W_ih x + b_ih   gh = W_hh h + b_hh                  [B, 3H], split r | z | n
///     r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)
///     n = tanh(gi_n + r ⊙ gh_n)
///     h' = (h - n) ⊙ z + n                                     (= (1 - z) ⊙ n + z ⊙ h)
///
/// Shapes: `x` `[B, I]`, `h` `[B, H]`; parameters `weight_ih` `[3H, I]`, `weight_hh` `[3H, H]`,
/// `bias_ih` `[3H]`, `bias_hh` `[3H]`.
public final class GRUCell: RecurrentCell, CustomStringConvertible {
    /// The state is `h` `[B, H]`.
    public typealias State = Variable

    public let weightIH: Variable
    public let weightHH: Variable
    public let biasIH: Variable
    public let biasHH: Variable
    public let inputSize: Int
    public let hiddenSize: Int

    /// A cell with PyTorch's default initialisation: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
    /// drawn in that order, each row-major from U(-1/√H, 1/√H).
    public convenience init(inputSize: Int, hiddenSize: Int, rng: inout RandomGenerator) {
        let (wih, whh, bih, bhh) = defaultCellParameters(gates: 3, inputSize: inputSize, hiddenSize: hiddenSize,
                                                         cell: "GRUCell", rng: &rng)
        self.init(weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
    }

    /// A cell over existing parameters (shared, not copied): `[3H, I]`, `[3H, H]`, `[3H]`, `[3H]`.
    public init(weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable) {
        (inputSize, hiddenSize) = validatedCellShapes(gates: 3, weightIH: weightIH, weightHH: weightHH,
                                                      biasIH: biasIH, biasHH: biasHH, cell: "GRUCell")
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
        let n = hiddenSize
        let gi = linear(x, weight: weightIH, bias: biasIH)
        let gh = linear(h, weight: weightHH, bias: biasHH)
        let r = sigmoid(columns(gi, 0..<n) + columns(gh, 0..<n))
        let z = sigmoid(columns(gi, n..<(2 * n)) + columns(gh, n..<(2 * n)))
        let candidate = tanh(columns(gi, (2 * n)..<(3 * n)) + r * columns(gh, (2 * n)..<(3 * n)))
        return (h - candidate) * z + candidate
    }

    public func output(of h: Variable) -> Variable { h }
    public func components(of h: Variable) -> [Variable] { [h] }
    public func state(from components: [Variable]) -> Variable { components[0] }

    public var description: String { cellSummary("GRUCell", inputSize, hiddenSize, parameters: parameterCount) }
}
