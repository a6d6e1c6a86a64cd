/// Runs one cell over a sequence in one direction, step by step on the tape (the autodiff
/// differentiates through every step): the generic "run one direction" of `LayerStack`.
///
/// `x` `[T, B, I]`; `initial`: the state components `[B, H]` (nil: `cell.zeroState`);
/// `lengths`: B values in 0...T (nil: all T). Forward visits t = 0 ... T-1, reverse t = T-1 ... 0.
/// At a step t with t ≥ lengths[b], row b keeps its state and outputs zeros (`selectRows`, so that
/// step sends no gradient into the row either); the reverse direction therefore starts each
/// sequence at its own last element. Returns the outputs `[T, B, H]` (each at its own t) and the
/// state components after the last step.
///
/// The weights the cell passes to `linear` are packed once for all steps (`SequenceWeights`).
func runCell<Cell: RecurrentCell>(_ cell: Cell, over x: Variable, initial: [Variable]?, lengths: [Int]?,
                                  reverse: Bool) -> (output: Variable, final: [Variable]) {
    _ = HeapSetup.done
    precondition(x.value.rank == 3 && x.shape[2] == cell.inputSize,
                 "runCell: input must be [T, B, \(cell.inputSize)], got \(x.shape)")
    let inputs = unstack(x)
    return runCell(cell, steps: x.shape[0], batch: x.shape[1], input: { inputs[$0] }, initial: initial,
                   lengths: lengths, reverse: reverse)
}

/// `runCell` reading step t's input `[B, I]` from `input(t)` (called once per step, in the order
/// the steps run: another layer may still be producing the later ones), and handing each step's
/// output `[B, H]` to `didOutput(t, y_t)` as soon as it is computed.
func runCell<Cell: RecurrentCell>(_ cell: Cell, steps: Int, batch: Int, input: (Int) -> Variable,
                                  initial: [Variable]?, lengths: [Int]?, reverse: Bool,
                                  didOutput: ((Int, Variable) -> Void)? = nil) -> (output: Variable, final: [Variable]) {
    _ = HeapSetup.done
    return SequenceWeights.during {
        var state = initial.map { cell.state(from: $0) } ?? cell.zeroState(batchSize: batch)
        let zeros = Variable(Tensor(zeros: [batch, cell.hiddenSize]))
        var outputs = [Variable](repeating: zeros, count: steps)
        for t in (reverse ? Array((0..<steps).reversed()) : Array(0..<steps)) {
            defer { didOutput?(t, outputs[t]) }
            let x = input(t)
            precondition(x.shape == [batch, cell.inputSize],
                         "runCell: step \(t)'s input must be [\(batch), \(cell.inputSize)], got \(x.shape)")
            guard let lengths else {
                state = cell(x, state)
                outputs[t] = cell.output(of: state)
                continue
            }
            let active = lengths.map { t < $0 }
            if !active.contains(true) { continue }   // every row padded: state unchanged, output zeros
            let next = cell(x, state)
            if active.contains(false) {
                let kept = zip(cell.components(of: next), cell.components(of: state)).map { new, old in
                    selectRows(active, new, old)
                }
                outputs[t] = selectRows(active, cell.output(of: next), zeros)
                state = cell.state(from: kept)
            } else {
                outputs[t] = cell.output(of: next)
                state = next
            }
        }
        return (stack(outputs), cell.components(of: state))
    }
}
