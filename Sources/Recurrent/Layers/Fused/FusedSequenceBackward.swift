import CKernels

extension FusedSequence {
    /// Gradients of one fused sequence; `dx` is nil when it was not asked for.
    struct Gradients {
        var dx: Tensor?
        var dWeightIH: Tensor, dWeightHH: Tensor, dBiasIH: Tensor, dBiasHH: Tensor
        var dh0: Tensor, dc0: Tensor?
    }

    /// Back-propagation through time for a sequence run by `forward(…, saveForBackward: true)`,
    /// once per forward pass (it uses up the saved activations).
    ///
    /// `dOutput [T, B, H]`, `dhN`, `dcN [B, H]` are the gradients of the forward results (nil: zero).
    /// Returns `dx [T, B, I]`, the parameter gradients (shapes of the parameters), `dh0` and, for
    /// LSTM, `dc0` (both `[B, H]`). Padded steps contribute nothing.
    public static func backward(_ context: Context, dOutput: Tensor?, dhN: Tensor?, dcN: Tensor?)
        -> (dx: Tensor, dWeightIH: Tensor, dWeightHH: Tensor, dBiasIH: Tensor, dBiasHH: Tensor, dh0: Tensor, dc0: Tensor?) {
        let g = gradients(context, dOutput: dOutput, dhN: dhN, dcN: dcN, inputGradient: true)
        return (g.dx!, g.dWeightIH, g.dWeightHH, g.dBiasIH, g.dBiasHH, g.dh0, g.dc0)
    }

    /// The backward pass (once per forward pass: it overwrites the saved gates). Per step, in the
    /// reverse order of the forward: the gate gradients `dG_t [B, G·H]` (one kernel, which also
    /// sums the bias gradients, written over the step's saved gates) and
    /// `dh_{t-1} += dGh_t · W_hh` (one product). After the loop, one product for the weights,
    /// `[dW_ih | dW_hh] = dGᵀ·[X | H_prev]`, and one for `dX = dG·W_ih`. For GRU the hidden-side
    /// gradient `dGh` differs from `dG` in the n block (`dG_n ⊙ r`), so its weights take two products.
    static func gradients(_ ctx: Context, dOutput: Tensor?, dhN: Tensor?, dcN: Tensor?, inputGradient: Bool) -> Gradients {
        withTeamThreads { threads in
            gradients(ctx, dOutput: dOutput, dhN: dhN, dcN: dcN, inputGradient: inputGradient, threads: threads)
        }
    }

    static func gradients(_ ctx: Context, dOutput: Tensor?, dhN: Tensor?, dcN: Tensor?, inputGradient: Bool,
                          threads: Int) -> Gradients {
        let T = ctx.steps, B = ctx.batch, I = ctx.inputSize, H = ctx.hiddenSize
        let G = ctx.kind.gateCount, GH = G * H, BH = B * H
        if let dOutput { precondition(dOutput.shape == [T, B, H], "FusedSequence.backward: dOutput must be [\(T), \(B), \(H)], got \(dOutput.shape)") }
        if let dhN { precondition(dhN.shape == [B, H], "FusedSequence.backward: dhN must be [\(B), \(H)], got \(dhN.shape)") }
        if let dcN { precondition(ctx.kind == .lstm && dcN.shape == [B, H], "FusedSequence.backward: dcN must be [\(B), \(H)] (LSTM), got \(dcN.shape)") }

        let split = ctx.execution.split(batch: B, hidden: H, gates: G, threads: threads)
        let accumulators: Int
        if case .rows(let parts) = split { accumulators = parts } else { accumulators = 1 }
        // The gate gradients dG [T, B, G·H] replace the saved gates of the same shape (LSTM, GRU;
        // step t reads its gates before writing its gradients), which saves that much memory
        // (13 MB at T=100, B=32, H=256 LSTM) and leaves the context used up.
        precondition(!ctx.consumed, "FusedSequence.backward: this forward pass was already back-propagated "
                     + "(its saved activations are used up; run the forward pass again)")
        ctx.consumed = true
        let dGates = ctx.states.gates ?? Workspace<Float>(count: T * B * GH)
        let dHiddenGates: Workspace<Float>? = ctx.kind == .gru ? Workspace(count: T * B * GH) : nil
        let biasSums = Workspace<Float>(zeros: accumulators * GH)
        let hiddenBiasSums: Workspace<Float>? = ctx.kind == .gru ? Workspace(zeros: accumulators * GH) : nil
        let dh = Workspace<Float>(count: BH)
        if let dhN { dhN.data.withUnsafeBufferPointer { dh.pointer.update(from: $0.start, count: BH) } }
        else { dh.pointer.update(repeating: 0, count: BH) }
        let dc: Workspace<Float>? = ctx.kind == .lstm ? Workspace(count: BH) : nil
        if let dc {
            if let dcN { dcN.data.withUnsafeBufferPointer { dc.pointer.update(from: $0.start, count: BH) } }
            else { dc.pointer.update(repeating: 0, count: BH) }
        }

        ctx.weightHH.data.withUnsafeBufferPointer { whh in
            let body = { (dOut: UnsafePointer<Float>?) in
                let runner = BackwardRunner(
                    kind: ctx.kind, steps: T, batch: B, hidden: H, reverse: ctx.reverse, states: ctx.states,
                    product: StepProduct(weight: whh.start, gates: G, hidden: H, inputs: H, batch: B, forward: false, backward: T > 0,
                                             packed: ctx.execution.packedProducts, threads: threads),
                    balancesSlices: ctx.execution.packedProducts && StepProduct.packedKernelIsFast,
                    lengths: ctx.lengths?.pointer, dOutput: dOut, dh: dh.pointer, dc: dc?.pointer,
                    dGates: dGates.pointer, dHiddenGates: dHiddenGates?.pointer,
                    biasSums: biasSums.pointer, hiddenBiasSums: hiddenBiasSums?.pointer)
                runner.run(split)
            }
            if let dOutput { dOutput.data.withUnsafeBufferPointer { body($0.start) } } else { body(nil) }
        }

        // Whole-sequence products over the T·B rows.
        let rows = T * B
        let inputsAndStates = ctx.states.hiddenStorage.pointer, width = ctx.states.inputStateWidth
        var dWeightIH: [Float], dWeightHH: [Float]
        let packed = ctx.execution.packedProducts
        if let symbols = ctx.symbols {
            // One-hot inputs: dW_ih[:, v] sums the rows of dG whose symbol is v; only the states
            // were saved (width H).
            precondition(!inputGradient, "FusedSequence.backward: no input gradient for symbol inputs")
            dWeightIH = [Float](repeating: 0, count: GH * I)
            dWeightHH = [Float](repeating: 0, count: GH * H)
            dWeightIH.withUnsafeMutableBufferPointer {
                SequenceMatmul.symbolWeightGradient(rows: rows, symbols: symbols.pointer, symbolCount: I,
                                                    dG: dGates.pointer, columns: GH, out: $0.start, threads: threads)
            }
            dWeightHH.withUnsafeMutableBufferPointer {
                SequenceMatmul.multiplyTransposedLeft(m: GH, n: H, k: rows, a: (dHiddenGates ?? dGates).pointer, lda: GH,
                                                      b: inputsAndStates, ldb: width, out: $0.start, ldo: H,
                                                      threads: threads)
            }
        } else if let dHiddenGates {
            dWeightIH = [Float](repeating: 0, count: GH * I)
            dWeightHH = [Float](repeating: 0, count: GH * H)
            dWeightIH.withUnsafeMutableBufferPointer {
                SequenceMatmul.multiplyTransposedLeft(m: GH, n: I, k: rows, a: dGates.pointer, lda: GH,
                                                      b: inputsAndStates, ldb: width, out: $0.start, ldo: I, threads: threads)
            }
            dWeightHH.withUnsafeMutableBufferPointer {
                SequenceMatmul.multiplyTransposedLeft(m: GH, n: H, k: rows, a: dHiddenGates.pointer, lda: GH,
                                                      b: inputsAndStates + I, ldb: width, out: $0.start, ldo: H, threads: threads)
            }
        } else {
            let both = Workspace<Float>(count: GH * width)
            SequenceMatmul.multiplyTransposedLeft(m: GH, n: width, k: rows, a: dGates.pointer, lda: GH,
                                                  b: inputsAndStates, ldb: width, out: both.pointer, ldo: width, threads: threads)
            (dWeightIH, dWeightHH) = SequenceMatmul.splitColumns(both.pointer, rows: GH, left: I, right: H,
                                                                 threads: threads)
        }
        var dx: Tensor? = nil
        if inputGradient {
            let data = [Float](unsafeUninitializedCapacity: rows * I) { buf, n in
                ctx.weightIH.data.withUnsafeBufferPointer { wih in
                    SequenceMatmul.multiply(m: rows, n: I, k: GH, a: dGates.pointer, lda: GH, weight: wih.start,
                                            out: buf.start, packed: packed, threads: threads)
                }
                n = rows * I
            }
            dx = Tensor(shape: [T, B, I], data: data)
        }
        func summed(_ sums: Workspace<Float>) -> Tensor {
            var total = sums.array(from: 0, count: GH)
            for p in 1..<max(accumulators, 1) { for j in 0..<GH { total[j] += sums.pointer[p * GH + j] } }
            return Tensor(shape: [GH], data: total)
        }
        let dBiasIH = summed(biasSums)
        return Gradients(dx: dx,
                         dWeightIH: Tensor(shape: [GH, I], data: dWeightIH),
                         dWeightHH: Tensor(shape: [GH, H], data: dWeightHH),
                         dBiasIH: dBiasIH,
                         dBiasHH: hiddenBiasSums.map(summed) ?? dBiasIH,
                         dh0: Tensor(shape: [B, H], data: dh.array()),
                         dc0: dc.map { Tensor(shape: [B, H], data: $0.array()) })
    }
}

/// The backward time loop over raw pointers, shared by the threads of a `WorkSplit`.
struct BackwardRunner: @unchecked Sendable {
    let kind: CellKind
    let steps: Int, batch: Int, hidden: Int
    let reverse: Bool
    let states: SequenceStates
    let product: StepProduct
    /// Whether a units split may follow the threads' speeds (`product` is one of our packed
    /// kernels; see `ForwardRunner.balancesSlices`).
    let balancesSlices: Bool
    let lengths: UnsafeMutablePointer<Int32>?
    /// `[T, B, H]` or nil.
    let dOutput: UnsafePointer<Float>?
    /// `[B, H]` running dL/dh and dL/dc.
    let dh: UnsafeMutablePointer<Float>
    let dc: UnsafeMutablePointer<Float>?
    /// `[T, B, G·H]` input-side gate gradients; hidden side (GRU only; otherwise the same).
    let dGates: UnsafeMutablePointer<Float>
    let dHiddenGates: UnsafeMutablePointer<Float>?
    /// `[parts, G·H]` partial bias sums (one row per thread of a row split).
    let biasSums: UnsafeMutablePointer<Float>
    let hiddenBiasSums: UnsafeMutablePointer<Float>?

    func run(_ split: WorkSplit) {
        let T = steps, B = batch, H = hidden
        switch split {
        case .none:
            for i in 0..<T {
                let t = time(i)
                gates(t, rows: 0..<B, units: 0..<H, part: 0)
                propagate(t, rows: 0..<B, units: 0..<H)
            }
        case .rows(let parts):
            runParts(parts) { p in
                let rows = WorkSplit.slice(p, of: parts, count: B)
                for i in 0..<T {
                    let t = time(i)
                    gates(t, rows: rows, units: 0..<H, part: p)
                    propagate(t, rows: rows, units: 0..<H)
                }
            }
        case .units(let parts):
            // Step i's product needs every unit's gate gradients, so it runs at the start of the
            // next meeting, just before the same thread's units of step i+1.
            // Each unit's gradients (and bias sums) come from one thread, so the slices can follow
            // the threads' speeds.
            runBalancedSteps(T + 1, parts: parts, count: H, quantum: 32, balanced: balancesSlices) { i, _, units in
                if i > 0 { propagate(time(i - 1), rows: 0..<B, units: units) }
                if i < T { gates(time(i), rows: 0..<B, units: units, part: 0) }
            }
        }
    }

    /// The time index of the `i`-th step of the backward pass (the forward order reversed).
    @inline(__always) func time(_ i: Int) -> Int { reverse ? i : steps - 1 - i }

    /// Gate gradients of step `t` for a block; `part` selects the bias accumulator row.
    func gates(_ t: Int, rows: Range<Int>, units: Range<Int>, part: Int) {
        if rows.isEmpty || units.isEmpty { return }
        let B = batch, H = hidden, GH = kind.gateCount * H
        let ps = FusedSequence.previousSlot(t, reverse: reverse), ns = FusedSequence.nextSlot(t, reverse: reverse)
        let prev = states.hidden(ps), next = states.hidden(ns)
        let r0 = rows.lowerBound, j0 = units.lowerBound
        var block = ck_block(rows: rows.count, units: units.count, hidden: H, ldGate: GH, ldPrev: prev.stride,
                             ldNext: next.stride, t: t, lengths: lengths.map { UnsafePointer($0 + r0) })
        let dOut = dOutput.map { $0 + (t * B + r0) * H + j0 }
        let d = dh + r0 * H + j0
        let dg = dGates + (t * B + r0) * GH + j0
        let bias = biasSums + part * GH + j0
        switch kind {
        case .rnnTanh, .rnnReLU:
            ck_rnn_backward(&block, kind == .rnnReLU ? 1 : 0, next.pointer + r0 * next.stride + j0, dOut, d, dg, bias)
        case .lstm:
            ck_lstm_backward(&block, states.gates(t) + r0 * GH + j0, states.cell(ps) + r0 * H + j0,
                             states.cell(ns) + r0 * H + j0, dOut, d, dc! + r0 * H + j0, dg, bias)
        case .gru:
            ck_gru_backward(&block, states.gates(t) + r0 * GH + j0, states.newGate(t) + r0 * H + j0,
                            prev.pointer + r0 * prev.stride + j0, dOut, d, dg,
                            dHiddenGates! + (t * B + r0) * GH + j0, bias, hiddenBiasSums! + part * GH + j0)
        }
    }

    /// `dh_{t-1}[rows, units] += dGh_t[rows, :] · W_hh[:, units]`.
    func propagate(_ t: Int, rows: Range<Int>, units: Range<Int>) {
        let GH = kind.gateCount * hidden
        let r0 = rows.lowerBound
        product.backward(rows: rows.count, units: units, dG: (dHiddenGates ?? dGates) + (t * batch + r0) * GH,
                         dh: dh + r0 * hidden)
    }
}
