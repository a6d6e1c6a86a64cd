/// Any `RecurrentCell` as a full recurrent layer over `[T, B, I]` sequences: stacked layers,
/// bidirectional with a merge mode, inter-layer dropout, an optional initial state, the final
/// state in PyTorch's `h_n` layout `[L·D, B, H]` (row `layer·D + direction`), and
/// variable-length batches.
///
/// Variable lengths: `lengths[b]` (any order, no sorting) is the number of valid steps of
/// sequence b. Steps t ≥ lengths[b] leave row b's state unchanged and output zeros; the reverse
/// direction reads t = T-1 ... 0 with the same rule, so it starts at each sequence's own last
/// element and its `h_n` is its state after reading element 0.
///
/// Truncated BPTT: pass `state.detached()` from one call as `initialState` of the next.
///
/// Parameters are the cells' own, named like PyTorch's layers: cell parameter `weight_ih` of layer
/// k becomes `weight_ih_l{k}`, or `weight_ih_l{k}_reverse` for the reverse direction; for each layer
/// the forward cell's parameters come before the reverse cell's. A `Recurrence<LSTMCell>` thus has
/// the same state-dict keys as `nn.LSTM` and `RecurrentLayer(kind: .lstm)`.
public final class Recurrence<Cell: RecurrentCell>: Module, CustomStringConvertible {
    /// `cells[layer][direction]` (direction 1 = reverse).
    public let cells: [[Cell]]
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
    /// Whether cells of different layers and directions may step at the same time on different
    /// threads (when two are available): a bidirectional layer's two directions, forward and
    /// backward (`GraphBranches`), and a unidirectional stack's layers as a wavefront in the
    /// forward pass (layer k+1 reads step t of layer k as soon as it is computed; not while
    /// inter-layer dropout is on). The results are the same up to float rounding either way.
    /// Set it to false if cells share mutable state of their own (a cell's step may read its
    /// parameters, but two cells must not, say, append to one array).
    public var concurrentCells: Bool = true
    /// Draws the inter-layer dropout masks (save and restore it to resume a run exactly).
    public var dropoutGenerator: RandomGenerator

    let stack: LayerStack

    /// Builds the cells with `makeCell(I_k, &rng)` in PyTorch's parameter order (layer 0 forward,
    /// layer 0 reverse, layer 1 forward, ...), where `I_0 = inputSize` and `I_k` is the merged
    /// output size of the layer below; then seeds `dropoutGenerator` with one more draw of `rng`.
    public init(inputSize: Int, numLayers: Int = 1, bidirectional: Bool = false, mergeMode: MergeMode = .concat,
                dropout: Float = 0, rng: inout RandomGenerator,
                makeCell: (_ inputSize: Int, _ rng: inout RandomGenerator) -> Cell) {
        precondition(numLayers > 0, "Recurrence: numLayers must be positive, got \(numLayers)")
        var cells: [[Cell]] = []
        var layerInput = inputSize
        var hidden = 0
        for _ in 0..<numLayers {
            let layer = (0..<(bidirectional ? 2 : 1)).map { _ in makeCell(layerInput, &rng) }
            for cell in layer {
                precondition(cell.inputSize == layerInput,
                             "Recurrence: makeCell was asked for input size \(layerInput) but built one for \(cell.inputSize)")
                precondition(hidden == 0 || cell.hiddenSize == hidden,
                             "Recurrence: every cell needs the same hidden size, got \(hidden) and \(cell.hiddenSize)")
                hidden = cell.hiddenSize
            }
            cells.append(layer)
            layerInput = bidirectional ? mergeMode.mergedSize(hiddenSize: hidden) : hidden
        }
        self.cells = cells
        self.stack = LayerStack(inputSize: inputSize, hiddenSize: hidden, numLayers: numLayers,
                                bidirectional: bidirectional, mergeMode: mergeMode, dropout: dropout,
                                stateComponentCount: cells[0][0].stateComponentCount)
        self.dropoutGenerator = RandomGenerator(seed: rng.next())
    }

    public func namedParameters() -> [(String, Variable)] {
        var out: [(String, Variable)] = []
        for (layer, directionCells) in cells.enumerated() {
            for (direction, cell) in directionCells.enumerated() {
                let suffix = stack.suffix(layer: layer, reverse: direction == 1)
                out += cell.namedParameters().map { ($0.0 + suffix, $0.1) }
            }
        }
        return out
    }

    /// `x` `[T, B, I]` → output `[T, B, outputSize]` (zeros at padded steps) and the final state
    /// (components `[L·D, B, H]`). `initialState` nil means zeros; `lengths` nil means all T.
    public func callAsFunction(_ x: Variable, initialState: RecurrentState? = nil,
                               lengths: [Int]? = nil) -> (output: Variable, state: RecurrentState) {
        stack(x, initialState: initialState, lengths: lengths, training: training,
              dropoutGenerator: &dropoutGenerator,
              runDirection: { layer, reverse, input, initial, lengths in
                  runCell(self.cells[layer][reverse ? 1 : 0], over: input, initial: initial, lengths: lengths,
                          reverse: reverse)
              },
              runLayerSteps: { layer, steps, batch, input, initial, lengths, didOutput in
                  runCell(self.cells[layer][0], steps: steps, batch: batch, input: input, initial: initial,
                          lengths: lengths, reverse: false, didOutput: didOutput)
              },
              concurrentCells: concurrentCells)
    }

    public var description: String {
        var s = "Recurrence<\(Cell.self)>(\(inputSize) => \(hiddenSize)"
        if numLayers > 1 { s += ", \(numLayers) layers" }
        if bidirectional { s += ", bidirectional \(mergeMode.rawValue)" }
        if dropout > 0 { s += ", dropout \(dropout)" }
        return s + ")  # \(groupedDigits(parameterCount)) parameters"
    }
}
