/// The long short-term memory cell, PyTorch's `nn.LSTMCell` (gate rows `i, f, g, o`):
///
///     gates = (W_hh h + b_hh) + (W_ih x + b_ih)              [B, 4H]
///     i = σ(gates_i)   f = σ(gates_f)   g = tanh(gates_g)   o = σ(gates_o)
///     c' = f ⊙ c + i ⊙ g
///     h' = o ⊙ tanh(c')
///
/// Shapes: `x` `[B, I]`, `h`, `c` `[B, H]`; parameters `weight_ih` `[4H, I]`, `weight_hh` `[4H, H]`,
/// `bias_ih` `[4H]`, `bias_hh` `[4H]`.
public final class LSTMCell: RecurrentCell, CustomStringConvertible {
    /// Hidden state `h` and cell state `c`, both `[B, H]`.
    public struct State {
        public var h: Variable
        public var c: Variable
        public init(h: Variable, c: Variable) {
            precondition(h.shape == c.shape, "LSTMCell.State: h \(h.shape) and c \(c.shape) differ")
            self.h = h
            self.c = c
        }
    }

    public let weightIH: Variable
    public let weightHH: Variable
    public let biasIH: Variable
    public let biasHH: Variable
    public let inputSize: Int
    public let hiddenSize: Int

    /// A cell with PyTorch's default initialisation: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
    /// drawn in that order, each row-major from U(-1/√H, 1/√H).
    public convenience init(inputSize: Int, hiddenSize: Int, rng: inout RandomGenerator) {
        let (wih, whh, bih, bhh) = defaultCellParameters(gates: 4, inputSize: inputSize, hiddenSize: hiddenSize,
                                                         cell: "LSTMCell", rng: &rng)
        self.init(weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh)
    }

    /// A cell over existing parameters (shared, not copied): `[4H, I]`, `[4H, H]`, `[4H]`, `[4H]`.
    public init(weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable) {
        (inputSize, hiddenSize) = validatedCellShapes(gates: 4, weightIH: weightIH, weightHH: weightHH,
                                                      biasIH: biasIH, biasHH: biasHH, cell: "LSTMCell")
        self.weightIH = weightIH
        self.weightHH = weightHH
        self.biasIH = biasIH
        self.biasHH = biasHH
    }

    public func namedParameters() -> [(String, Variable)] {
        [("weight_ih", weightIH), ("weight_hh", weightHH), ("bias_ih", biasIH), ("bias_hh", biasHH)]
    }

    public func zeroState(batchSize: Int) -> State {
        let zero = Variable(Tensor(zeros: [batchSize, hiddenSize]))
        return State(h: zero, c: zero)
    }

    /// `x` `[B, I]`, `(h, c)` `[B, H]` each → `(h', c')`.
    public func callAsFunction(_ x: Variable, _ state: State) -> State {
        let n = hiddenSize
        let gates = linear(state.h, weight: weightHH, bias: biasHH) + linear(x, weight: weightIH, bias: biasIH)
        let i = sigmoid(columns(gates, 0..<n))
        let f = sigmoid(columns(gates, n..<(2 * n)))
        let g = tanh(columns(gates, (2 * n)..<(3 * n)))
        let o = sigmoid(columns(gates, (3 * n)..<(4 * n)))
        let c = f * state.c + i * g
        return State(h: o * tanh(c), c: c)
    }

    public func output(of state: State) -> Variable { state.h }
    public func components(of state: State) -> [Variable] { [state.h, state.c] }
    public func state(from components: [Variable]) -> State { State(h: components[0], c: components[1]) }

    public var description: String { cellSummary("LSTMCell", inputSize, hiddenSize, parameters: parameterCount) }
}
