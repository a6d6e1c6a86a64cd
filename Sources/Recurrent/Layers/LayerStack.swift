/// The layer-and-direction structure of a recurrent stack, shared by every way of running one
/// direction (a cell stepped on the tape, or one fused node): layers in sequence, both
/// directions, merging, inter-layer dropout, the initial state split out of `[L·D, B, H]` and the
/// final state laid back into it (row `layer·D + direction`).
///
/// For layer k with input `x_k` `[T, B, I_k]` (`x_0` = the input):
///
///     y_k = merge(run(k, forward, x_k), run(k, reverse, x_k))      (or run(k, forward, x_k))
///     x_{k+1} = dropout(y_k)    (training and p > 0 only; never after the last layer)
///
/// so `I_0` = input size and `I_k` = `mergeMode.mergedSize(H)` (2H for concat, H otherwise) when
/// bidirectional, H when not.
struct LayerStack {
    /// Runs one direction of one layer: `x` `[T, B, I_k]`, its initial state components (`[B, H]`
    /// each; nil for zeros) and the lengths → output `[T, B, H]` (zeros at padded steps) and the
    /// state components after the last processed step.
    typealias RunDirection = (_ layer: Int, _ reverse: Bool, _ x: Variable, _ initial: [Variable]?,
                              _ lengths: [Int]?) -> (output: Variable, final: [Variable])
    /// Runs both directions of one bidirectional layer at once (same arguments, with the initial
    /// states of the forward then the reverse direction) → their outputs side by side,
    /// `[y_f | y_r]` `[T, B, 2H]`, and their final state components in that order.
    typealias RunBothDirections = (_ layer: Int, _ x: Variable, _ initial: [[Variable]?], _ lengths: [Int]?)
        -> (output: Variable, finals: [[Variable]])

    let inputSize: Int
    let hiddenSize: Int
    let numLayers: Int
    let bidirectional: Bool
    let mergeMode: MergeMode
    let dropout: Float
    /// Components of the state: 1 (h) or 2 (h, c) for the built-in cells.
    let stateComponentCount: Int

    init(inputSize: Int, hiddenSize: Int, numLayers: Int, bidirectional: Bool, mergeMode: MergeMode,
         dropout: Float, stateComponentCount: Int) {
        precondition(inputSize > 0 && hiddenSize > 0 && numLayers > 0,
                     "recurrent layer: sizes and layer count must be positive, got input \(inputSize), hidden \(hiddenSize), layers \(numLayers)")
        precondition(dropout >= 0 && dropout <= 1, "recurrent layer: dropout must be in [0, 1], got \(dropout)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.mergeMode = mergeMode
        self.dropout = dropout
        self.stateComponentCount = stateComponentCount
    }

    /// The same stack with layer 0 reading `inputSize` features.
    func withInputSize(_ inputSize: Int) -> LayerStack {
        LayerStack(inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bidirectional: bidirectional,
                   mergeMode: mergeMode, dropout: dropout, stateComponentCount: stateComponentCount)
    }

    /// D: 2 when bidirectional, else 1.
    var directions: Int { bidirectional ? 2 : 1 }

    /// Features per step of every layer's output.
    var outputSize: Int { bidirectional ? mergeMode.mergedSize(hiddenSize: hiddenSize) : hiddenSize }

    /// `I_k`, the input features of layer k.
    func inputSize(ofLayer layer: Int) -> Int { layer == 0 ? inputSize : outputSize }

    /// PyTorch's name suffix of a (layer, direction): `_l0`, `_l0_reverse`, `_l1`, ...
    func suffix(layer: Int, reverse: Bool) -> String { "_l\(layer)" + (reverse ? "_reverse" : "") }

    /// Runs the forward direction of one layer step by step: `input(t)` gives step t's input
    /// `[B, I_k]` (called in step order; the layer below may still be computing later steps),
    /// `didOutput(t, y_t)` receives each step's output `[B, H]` as soon as it is computed.
    /// Arguments: layer, T, B, input, initial state components (nil for zeros), lengths,
    /// didOutput (nil when no layer reads the steps).
    typealias RunLayerSteps = (_ layer: Int, _ steps: Int, _ batch: Int, _ input: (Int) -> Variable,
                               _ initial: [Variable]?, _ lengths: [Int]?, _ didOutput: ((Int, Variable) -> Void)?)
        -> (output: Variable, final: [Variable])

    /// Runs the stack over `x` `[T, B, I]` → output `[T, B, outputSize]` and the final state.
    /// A bidirectional layer runs its two directions with `runBothDirections` when given, else
    /// with `runDirection`, one after the other or, with `concurrentCells`, at the same time on
    /// two threads (`GraphBranches`). With `concurrentCells` and `runLayerSteps`, a unidirectional
    /// stack runs its layers as a wavefront on two threads (`runWavefront`). Either way the
    /// closures must then be safe to call from two threads at once.
    func callAsFunction(_ x: Variable, initialState: RecurrentState?, lengths: [Int]?, training: Bool,
                        dropoutGenerator: inout RandomGenerator,
                        runDirection: RunDirection,
                        runBothDirections: RunBothDirections? = nil,
                        runLayerSteps: RunLayerSteps? = nil,
                        concurrentCells: Bool = false) -> (output: Variable, state: RecurrentState) {
        precondition(x.value.rank == 3 && x.shape[2] == inputSize,
                     "recurrent layer: input must be [T, B, \(inputSize)], got \(x.shape)")
        let (steps, batch) = (x.shape[0], x.shape[1])
        precondition(steps > 0, "recurrent layer: empty sequence (T = 0)")
        if let lengths {
            precondition(lengths.count == batch && lengths.allSatisfy { $0 >= 0 && $0 <= steps },
                         "recurrent layer: need \(batch) lengths in 0...\(steps), got \(lengths)")
        }
        let stateRows = numLayers * directions
        if let initialState {
            precondition(initialState.components.count == stateComponentCount,
                         "recurrent layer: initial state has \(initialState.components.count) components, the cell needs \(stateComponentCount)")
            for component in initialState.components {
                precondition(component.shape == [stateRows, batch, hiddenSize],
                             "recurrent layer: initial state must be [\(stateRows), \(batch), \(hiddenSize)], got \(component.shape)")
            }
        }
        // Each component of the initial state, split into its [B, H] rows layer·D + direction.
        let initialRows: [[Variable]]? = initialState.map { state in
            state.components.map { component in unstack(component) }
        }

        var finals: [[Variable]] = []   // [layer·D + direction][component]
        func appendFinal(_ final: [Variable]) {
            precondition(final.count == stateComponentCount,
                         "recurrent layer: a direction returned \(final.count) state components")
            finals.append(final)
        }
        var layerInput = x
        // The layers of a unidirectional stack at the same time, or each layer in turn.
        if concurrentCells, let runLayerSteps, directions == 1, numLayers > 1, !(training && dropout > 0),
           ThreadTeam.available >= 2 {
            let wavefront = runWavefront(x, initialRows: initialRows, lengths: lengths, runLayerSteps)
            wavefront.finals.forEach(appendFinal)
            layerInput = wavefront.output
        } else {
            for layer in 0..<numLayers {
                let initials = (0..<directions).map { direction in
                    initialRows.map { rows in rows.map { $0[layer * directions + direction] } }
                }
                var y: Variable
                if directions == 2, let runBothDirections {
                    let both = runBothDirections(layer, layerInput, initials, lengths)
                    precondition(both.output.shape == [steps, batch, 2 * hiddenSize] && both.finals.count == 2,
                                 "recurrent layer: both directions returned output \(both.output.shape) and \(both.finals.count) states")
                    both.finals.forEach(appendFinal)
                    y = mergeMode.merge(sideBySide: both.output)
                } else {
                    // Each direction's output, then its final state components.
                    func run(_ direction: Int) -> [Variable] {
                        let (output, final) = runDirection(layer, direction == 1, layerInput, initials[direction], lengths)
                        precondition(output.shape == [steps, batch, hiddenSize],
                                     "recurrent layer: a direction returned output \(output.shape)")
                        return [output] + final
                    }
                    let results = directions == 2 && concurrentCells
                        ? GraphBranches.run(2, run) : (0..<directions).map(run)
                    results.forEach { appendFinal(Array($0.dropFirst())) }
                    y = results.count == 2 ? mergeMode.merge(results[0][0], results[1][0]) : results[0][0]
                }
                if training && dropout > 0 && layer < numLayers - 1 {
                    y = Dropout(probability: dropout)(y, training: true, rng: &dropoutGenerator)
                }
                layerInput = y
            }
        }
        let state = RecurrentState(components: (0..<stateComponentCount).map { k in
            stack(finals.map { $0[k] })
        })
        return (layerInput, state)
    }
}
