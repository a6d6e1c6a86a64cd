/// PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU`: a stack of recurrent layers over `[T, B, I]`
/// sequences (time-major), with the same parameter names, shapes, initialisation and numerics.
///
/// Per layer k and direction (suffix `""` or `"_reverse"`), with G = `kind.gateCount`:
/// `weight_ih_l{k}` `[G·H, I_k]`, `weight_hh_l{k}` `[G·H, H]`, `bias_ih_l{k}` `[G·H]`,
/// `bias_hh_l{k}` `[G·H]`; `I_0 = inputSize`, `I_k` = 2H (bidirectional concat) or H. The equations
/// are those of `RNNCell`, `LSTMCell`, `GRUCell`.
///
/// Initialisation order (as PyTorch's `reset_parameters` walks `parameters()`): for each layer,
/// the forward direction's `weight_ih, weight_hh, bias_ih, bias_hh`, then the reverse direction's,
/// each drawn row-major from U(-1/√H, 1/√H) of `rng`; then one more draw of `rng` seeds
/// `dropoutGenerator`.
///
/// Semantics (see `Recurrence`): inter-layer dropout on every layer's output but the last while
/// `training`; bidirectional outputs merged by `mergeMode` (the next layer reads the merged
/// output); `lengths` in any order, padded steps keep the state and output zeros, the reverse
/// direction starts at each sequence's own last element; the returned state is `h_n` (and `c_n`)
/// `[L·D, B, H]`, row `layer·D + direction`; truncated BPTT by passing `state.detached()` back in.
///
/// Each (layer, direction) runs either as one `FusedSequence.apply` node (`useFusedKernels`, the
/// default: whole-sequence forward and hand-written backward) or as the corresponding cell
/// (`RNNCell`, `LSTMCell`, `GRUCell`) stepped on the tape by the generic runner — the oracle for the
/// hand-written backward and gate kernels. Both read the same parameter Variables and share one
/// implementation of stacking, dropout, directions, merging and the state layout (`LayerStack`),
/// so they can be compared on identical weights. (Where the packed kernels run, both also share
/// the packed product kernel, `SequenceWeights`; its products are compared with BLAS in the tests.)
/// A bidirectional layer runs its two directions at the same time, one per thread, on either
/// path: one `FusedSequence.applyBothDirections` node, or on the tape as two `GraphBranches`.
public final class RecurrentLayer: Module, CustomStringConvertible {
    public let kind: CellKind
    public var inputSize: Int { stack.inputSize }
    public var hiddenSize: Int { stack.hiddenSize }
    public var numLayers: Int { stack.numLayers }
    public var bidirectional: Bool { stack.bidirectional }
    public var mergeMode: MergeMode { stack.mergeMode }
    public var dropout: Float { stack.dropout }
    /// Features per step of the output: 2H for bidirectional concat, else H.
    public var outputSize: Int { stack.outputSize }
    /// Inter-layer dropout applies only while training.
    public var training: Bool = true
    /// true: each (layer, direction) is one fused node; false: the cells stepped on the tape.
    public var useFusedKernels: Bool = true
    /// Draws the inter-layer dropout masks (save and restore it to resume a run exactly).
    public var dropoutGenerator: RandomGenerator

    let stack: LayerStack
    /// `parameters[layer][direction]` (direction 1 = reverse).
    let directionParameters: [[DirectionParameters]]

    public init(kind: CellKind, inputSize: Int, hiddenSize: Int, numLayers: Int = 1,
                bidirectional: Bool = false, mergeMode: MergeMode = .concat, dropout: Float = 0,
                rng: inout RandomGenerator) {
        let stack = LayerStack(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers,
                               bidirectional: bidirectional, mergeMode: mergeMode, dropout: dropout,
                               stateComponentCount: kind.hasCellState ? 2 : 1)
        let rows = kind.gateCount * hiddenSize
        var all: [[DirectionParameters]] = []
        for layer in 0..<numLayers {
            var directions: [DirectionParameters] = []
            for direction in 0..<stack.directions {
                let suffix = stack.suffix(layer: layer, reverse: direction == 1)
                func draw(_ name: String, _ shape: [Int]) -> Variable {
                    recurrentUniform(shape, hiddenSize: hiddenSize, name: name + suffix, rng: &rng)
                }
                let weightIH = draw("weight_ih", [rows, stack.inputSize(ofLayer: layer)])
                let weightHH = draw("weight_hh", [rows, hiddenSize])
                let biasIH = draw("bias_ih", [rows])
                let biasHH = draw("bias_hh", [rows])
                directions.append(DirectionParameters(weightIH: weightIH, weightHH: weightHH,
                                                      biasIH: biasIH, biasHH: biasHH))
            }
            all.append(directions)
        }
        self.kind = kind
        self.stack = stack
        self.directionParameters = all
        self.dropoutGenerator = RandomGenerator(seed: rng.next())
    }

    /// `weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, [the same with _reverse], weight_ih_l1, ...`
    public func namedParameters() -> [(String, Variable)] {
        directionParameters.flatMap { directions in
            directions.flatMap { p in [p.weightIH, p.weightHH, p.biasIH, p.biasHH].map { ($0.name, $0) } }
        }
    }

    /// `x` `[T, B, I]` → output `[T, B, outputSize]` (zeros at padded steps) and the final state
    /// (`h` and, for LSTM, `c`, each `[L·D, B, H]`). `initialState` nil means zeros; `lengths` nil
    /// means every sequence has all T steps.
    public func callAsFunction(_ x: Variable, initialState: RecurrentState? = nil,
                               lengths: [Int]? = nil) -> (output: Variable, state: RecurrentState) {
        run(x, initialState: initialState, lengths: lengths, training: training)
    }

    /// `callAsFunction` with dropout on or off explicitly, and optionally layer 0 reading `x`
    /// `[T, B, I']` through `firstLayerInputWeights` (one `[G·H, I']` per direction) instead of
    /// `weight_ih_l0`. The character language model folds its embedding into layer 0 this way:
    /// `x` one-hot `[T, B, V]`, weights `W_ih·Eᵀ`. With `firstLayerSymbols` (`x` one-hot, row
    /// `t·B + b` the unit vector of that symbol), a fused layer 0 in one direction gathers its
    /// input projections instead of multiplying by `x` (`FusedSequence.forward(…, symbols:)`).
    func run(_ x: Variable, firstLayerInputWeights: [Variable]? = nil, firstLayerSymbols: [Int]? = nil,
             initialState: RecurrentState?, lengths: [Int]?, training: Bool) -> (output: Variable, state: RecurrentState) {
        var layers = stack
        if let weights = firstLayerInputWeights {
            precondition(weights.count == stack.directions && x.value.rank == 3
                         && weights.allSatisfy { $0.shape == [kind.gateCount * hiddenSize, x.shape[2]] },
                         "recurrent layer: first-layer input weights must be \(stack.directions) × [\(kind.gateCount * hiddenSize), \(x.shape.last ?? 0)], got \(weights.map(\.shape))")
            layers = stack.withInputSize(x.shape[2])
        }
        let parameters = { (layer: Int, direction: Int) -> DirectionParameters in
            var p = self.directionParameters[layer][direction]
            if layer == 0, let weights = firstLayerInputWeights { p.weightIH = weights[direction] }
            return p
        }
        let together = useFusedKernels && FusedSequence.runsDirectionsTogether
        return layers(x, initialState: initialState, lengths: lengths, training: training,
                      dropoutGenerator: &dropoutGenerator,
                      runDirection: { layer, reverse, input, initial, lengths in
                          let p = parameters(layer, reverse ? 1 : 0)
                          return self.useFusedKernels
                              ? self.runFused(p, reverse: reverse, input, initial: initial, lengths: lengths,
                                              symbols: layer == 0 ? firstLayerSymbols : nil)
                              : self.runOnTape(p, reverse: reverse, input, initial: initial, lengths: lengths)
                      },
                      runBothDirections: together ? { layer, input, initials, lengths in
                          self.runFusedBothDirections([parameters(layer, 0), parameters(layer, 1)], input,
                                                      initials: initials, lengths: lengths)
                      } : nil,
                      runLayerSteps: { layer, steps, batch, input, initial, lengths, didOutput in
                          self.runOnTape(parameters(layer, 0), steps: steps, batch: batch, input: input, initial: initial,
                                         lengths: lengths, didOutput: didOutput)
                      },
                      concurrentCells: !useFusedKernels)
    }

    /// One direction as a single `FusedSequence.apply` node over the parameters `p`.
    func runFused(_ p: DirectionParameters, reverse: Bool, _ x: Variable, initial: [Variable]?,
                  lengths: [Int]?, symbols: [Int]? = nil) -> (output: Variable, final: [Variable]) {
        let zeros = { Variable(Tensor(zeros: [x.shape[1], self.hiddenSize])) }
        let h0 = initial?[0] ?? zeros()
        let c0 = kind.hasCellState ? (initial?[1] ?? zeros()) : nil
        let r = FusedSequence.apply(kind: kind, x: x, weightIH: p.weightIH, weightHH: p.weightHH,
                                    biasIH: p.biasIH, biasHH: p.biasHH, h0: h0, c0: c0,
                                    lengths: lengths, reverse: reverse, symbols: symbols)
        return (r.output, [r.hN] + (r.cN.map { [$0] } ?? []))
    }

    /// Both directions of a layer as one `FusedSequence.applyBothDirections` node, each direction
    /// on its own thread: the outputs side by side `[T, B, 2H]` and each direction's final state.
    func runFusedBothDirections(_ p: [DirectionParameters], _ x: Variable, initials: [[Variable]?],
                                lengths: [Int]?) -> (output: Variable, finals: [[Variable]]) {
        let zeros = { Variable(Tensor(zeros: [x.shape[1], self.hiddenSize])) }
        let h0 = initials.map { $0?[0] ?? zeros() }
        let c0 = kind.hasCellState ? initials.map { $0?[1] ?? zeros() } : nil
        let r = FusedSequence.applyBothDirections(kind: kind, x: x, parameters: p, h0: h0, c0: c0, lengths: lengths)
        return (r.output, (0..<2).map { d in [r.hN[d]] + (r.cN.map { [$0[d]] } ?? []) })
    }

    /// One direction as the cell of `kind` over the parameters `p`, stepped on the tape.
    func runOnTape(_ p: DirectionParameters, reverse: Bool, _ x: Variable, initial: [Variable]?,
                   lengths: [Int]?) -> (output: Variable, final: [Variable]) {
        runCell(tapeCell(p), over: x, initial: initial, lengths: lengths, reverse: reverse)
    }

    /// The forward direction on the tape, reading its inputs step by step (`LayerStack.RunLayerSteps`).
    func runOnTape(_ p: DirectionParameters, steps: Int, batch: Int, input: (Int) -> Variable, initial: [Variable]?,
                   lengths: [Int]?, didOutput: ((Int, Variable) -> Void)?) -> (output: Variable, final: [Variable]) {
        runCell(tapeCell(p), steps: steps, batch: batch, input: input, initial: initial, lengths: lengths,
                reverse: false, didOutput: didOutput)
    }

    /// The cell of `kind` over the parameters `p`.
    private func tapeCell(_ p: DirectionParameters) -> any RecurrentCell {
        switch kind {
        case .rnnTanh, .rnnReLU:
            return RNNCell(nonlinearity: kind == .rnnTanh ? .tanh : .relu, weightIH: p.weightIH,
                           weightHH: p.weightHH, biasIH: p.biasIH, biasHH: p.biasHH)
        case .lstm:
            return LSTMCell(weightIH: p.weightIH, weightHH: p.weightHH, biasIH: p.biasIH, biasHH: p.biasHH)
        case .gru:
            return GRUCell(weightIH: p.weightIH, weightHH: p.weightHH, biasIH: p.biasIH, biasHH: p.biasHH)
        }
    }

    public var description: String {
        var s: String
        switch kind {
        case .rnnTanh: s = "RNN(\(inputSize) => \(hiddenSize)"
        case .rnnReLU: s = "RNN(\(inputSize) => \(hiddenSize), relu"
        case .lstm: s = "LSTM(\(inputSize) => \(hiddenSize)"
        case .gru: s = "GRU(\(inputSize) => \(hiddenSize)"
        }
        if numLayers > 1 { s += ", \(numLayers) layers" }
        if bidirectional { s += ", bidirectional \(mergeMode.rawValue)" }
        if dropout > 0 { s += ", dropout \(dropout)" }
        return s + ")  # \(groupedDigits(parameterCount)) parameters"
    }
}
