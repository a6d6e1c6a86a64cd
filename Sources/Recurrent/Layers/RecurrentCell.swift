/// One step of a recurrence, as a value you can call by hand: `state' = cell(x_t, state)`.
///
/// A cell maps an input row batch `x` `[B, I]` and a state to the next state, built only from the
/// differentiable operations on `Variable` (so the autodiff supplies the backward). Its state is
/// one or more `[B, H]` matrices — `h` for RNN and GRU, `(h, c)` for LSTM — and `output(of:)`
/// reads the `[B, H]` row batch the layer emits at each step (`h`).
///
/// `Recurrence` runs any cell over a `[T, B, I]` sequence — stacked layers, both directions,
/// inter-layer dropout, variable lengths, PyTorch's `h_n` layout — using only this protocol, so a
/// new recurrence needs nothing but a cell. For example an LSTM with coupled input and forget
/// gates (Greff et al., "LSTM: A Search Space Odyssey"): gates `i, g, o` (G = 3) and `f = 1 - i`,
///
///     [i | g | o] = (W_hh h + b_hh) + (W_ih x + b_ih)      (then σ, tanh, σ)
///     c' = (1 - i) ⊙ c + i ⊙ g ;  h' = o ⊙ tanh(c')
///
/// ```swift
/// final class CoupledLSTMCell: RecurrentCell {
///     struct State { var h: Variable; var c: Variable }
///     let inputSize: Int, hiddenSize: Int
///     let weightIH, weightHH, biasIH, biasHH: Variable      // [3H, I], [3H, H], [3H], [3H]
///
///     init(inputSize: Int, hiddenSize: Int, rng: inout RandomGenerator) {
///         (self.inputSize, self.hiddenSize) = (inputSize, hiddenSize)
///         let k = 1 / Float(hiddenSize).squareRoot()
///         func parameter(_ shape: [Int]) -> Variable {
///             Variable(rng.uniformTensor(shape, low: -k, high: k), requiresGrad: true)
///         }
///         weightIH = parameter([3 * hiddenSize, inputSize])
///         weightHH = parameter([3 * hiddenSize, hiddenSize])
///         biasIH = parameter([3 * hiddenSize])
///         biasHH = parameter([3 * hiddenSize])
///     }
///     func namedParameters() -> [(String, Variable)] {
///         [("weight_ih", weightIH), ("weight_hh", weightHH), ("bias_ih", biasIH), ("bias_hh", biasHH)]
///     }
///     func zeroState(batchSize: Int) -> State {
///         let zero = Variable(Tensor(zeros: [batchSize, hiddenSize]))
///         return State(h: zero, c: zero)
///     }
///     func callAsFunction(_ x: Variable, _ s: State) -> State {
///         let H = hiddenSize
///         let gates = linear(s.h, weight: weightHH, bias: biasHH) + linear(x, weight: weightIH, bias: biasIH)
///         let i = sigmoid(columns(gates, 0..<H))
///         let g = tanh(columns(gates, H..<2 * H))
///         let o = sigmoid(columns(gates, 2 * H..<3 * H))
///         let c = oneMinus(i) * s.c + i * g
///         return State(h: o * tanh(c), c: c)
///     }
///     func output(of s: State) -> Variable { s.h }
///     func components(of s: State) -> [Variable] { [s.h, s.c] }
///     func state(from components: [Variable]) -> State { State(h: components[0], c: components[1]) }
/// }
///
/// var rng = RandomGenerator(seed: 0)
/// let rnn = Recurrence(inputSize: 8, numLayers: 2, bidirectional: true, rng: &rng) { inputSize, rng in
///     CoupledLSTMCell(inputSize: inputSize, hiddenSize: 16, rng: &rng)
/// }
/// let (y, state) = rnn(x, lengths: [5, 3, 7])   // x [7, 3, 8] → y [7, 3, 32]; state.h, state.c [4, 3, 16]
/// ```
///
/// (The test suite runs this very cell through `Recurrence` with a finite-difference check.)
///
/// Rules the runner relies on: `components(of:)` returns the state as `[B, H]` matrices in a fixed
/// order, `h` first (it masks each of them row by row for padded steps and lays them out as
/// `h_n`, `c_n`, ... `[L·D, B, H]`); `state(from:)` inverts it; `zeroState` is the state PyTorch
/// uses when no initial state is given. Cells of different layers and directions are stepped at
/// the same time on different threads (`Recurrence.concurrentCells`), so a step may read its own
/// parameters but must not change state another cell shares.
public protocol RecurrentCell: Module {
    associatedtype State

    /// I: features of each input row.
    var inputSize: Int { get }
    /// H: features of the output and of each state component.
    var hiddenSize: Int { get }

    /// The all-zero state for `batchSize` rows.
    func zeroState(batchSize: Int) -> State

    /// One step: input `x` `[B, I]` and the state before the step → the state after it.
    func callAsFunction(_ x: Variable, _ state: State) -> State

    /// What the layer emits at a step, `[B, H]` (the hidden state `h`).
    func output(of state: State) -> Variable

    /// The state as `[B, H]` matrices in a fixed order, `h` first (`[h]` or `[h, c]`).
    func components(of state: State) -> [Variable]

    /// Inverse of `components(of:)`.
    func state(from components: [Variable]) -> State
}

extension RecurrentCell {
    /// How many `[B, H]` matrices make up the state (1 for RNN/GRU, 2 for LSTM).
    public var stateComponentCount: Int { components(of: zeroState(batchSize: 1)).count }
}

/// PyTorch's default initialisation of a recurrent weight or bias: U(-1/√H, 1/√H).
func recurrentUniform(_ shape: [Int], hiddenSize: Int, name: String,
                      rng: inout RandomGenerator) -> Variable {
    let bound = 1 / Float(hiddenSize).squareRoot()
    return Variable(rng.uniformTensor(shape, low: -bound, high: bound), requiresGrad: true, name: name)
}

/// PyTorch's default cell initialisation: `weight_ih [G·H, I]`, `weight_hh [G·H, H]`, `bias_ih [G·H]`,
/// `bias_hh [G·H]`, drawn in that order, each row-major from U(-1/√H, 1/√H).
func defaultCellParameters(gates: Int, inputSize: Int, hiddenSize h: Int, cell: String,
                           rng: inout RandomGenerator) -> (Variable, Variable, Variable, Variable) {
    precondition(inputSize > 0 && h > 0, "\(cell): sizes must be positive, got \(inputSize), \(h)")
    let wih = recurrentUniform([gates * h, inputSize], hiddenSize: h, name: "weight_ih", rng: &rng)
    let whh = recurrentUniform([gates * h, h], hiddenSize: h, name: "weight_hh", rng: &rng)
    let bih = recurrentUniform([gates * h], hiddenSize: h, name: "bias_ih", rng: &rng)
    let bhh = recurrentUniform([gates * h], hiddenSize: h, name: "bias_hh", rng: &rng)
    return (wih, whh, bih, bhh)
}

/// Checks the four parameters of a cell with G gates and returns (I, H).
func validatedCellShapes(gates: Int, weightIH: Variable, weightHH: Variable,
                         biasIH: Variable, biasHH: Variable, cell: String) -> (inputSize: Int, hiddenSize: Int) {
    precondition(weightHH.value.rank == 2 && weightHH.shape[1] > 0 && weightHH.shape[0] == gates * weightHH.shape[1],
                 "\(cell): weight_hh must be [\(gates)·H, H], got \(weightHH.shape)")
    let h = weightHH.shape[1]
    precondition(weightIH.value.rank == 2 && weightIH.shape[0] == gates * h,
                 "\(cell): weight_ih must be [\(gates * h), I], got \(weightIH.shape)")
    precondition(biasIH.shape == [gates * h] && biasHH.shape == [gates * h],
                 "\(cell): biases must be [\(gates * h)], got \(biasIH.shape) and \(biasHH.shape)")
    return (weightIH.shape[1], h)
}

/// Flux-style summary: `LSTMCell(10 => 20)  # 2_560 parameters`, `RNNCell(3 => 4, relu)  # 36 parameters`.
func cellSummary(_ name: String, _ inputSize: Int, _ hiddenSize: Int, detail: String? = nil,
                 parameters: Int) -> String {
    "\(name)(\(inputSize) => \(hiddenSize)\(detail.map { ", " + $0 } ?? ""))  # \(groupedDigits(parameters)) parameters"
}

/// `2560` → `2_560`.
func groupedDigits(_ n: Int) -> String {
    let digits = Array(String(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append("_") }
        out.append(ch)
    }
    return out
}
