import CKernels

extension FusedSequence {
    /// Runs one direction over the whole sequence.
    ///
    /// - Parameters: `x [T, B, I]`, `weightIH [G·H, I]`, `weightHH [G·H, H]`, `biasIH`, `biasHH`
    ///   `[G·H]`, `h0 [B, H]`, `c0 [B, H]` (LSTM; nil means zeros), `lengths` (B values in 0...T,
    ///   nil means all T).
    /// - Returns: `output [T, B, H]` (zeros at padded steps), the final state `hN [B, H]`
    ///   (`cN` for LSTM), and the saved activations when `saveForBackward`.
    public static func forward(kind: CellKind, x: Tensor, weightIH: Tensor, weightHH: Tensor,
                               biasIH: Tensor, biasHH: Tensor, h0: Tensor, c0: Tensor?,
                               lengths: [Int]?, reverse: Bool, saveForBackward: Bool)
        -> (output: Tensor, hN: Tensor, cN: Tensor?, context: Context?) {
        forward(kind: kind, x: x, weightIH: weightIH, weightHH: weightHH, biasIH: biasIH, biasHH: biasHH, h0: h0,
                c0: c0, lengths: lengths, reverse: reverse, saveForBackward: saveForBackward, execution: .automatic)
    }

    /// `symbols` (T·B indices in `0..<I`, time-major): `x` is one-hot, row `t·B + b` the unit
    /// vector of `symbols[t·B + b]`, and is not read. Each step then gathers its input projections
    /// `W_ih[:, s] + b_ih` from a table instead of multiplying by `x` (the character model's
    /// folded embedding: no product of width I, no inputs saved beside the states, and a weight
    /// gradient that sums rows of `dG` instead of a product with `x`); no input gradient.
    static func forward(kind: CellKind, x: Tensor, weightIH: Tensor, weightHH: Tensor,
                        biasIH: Tensor, biasHH: Tensor, h0: Tensor, c0: Tensor?,
                        lengths: [Int]?, reverse: Bool, saveForBackward: Bool, execution: Execution,
                        symbols: [Int]? = nil)
        -> (output: Tensor, hN: Tensor, cN: Tensor?, context: Context?) {
        forward(kind: kind, x: x, weightIH: weightIH, weightHH: weightHH, biasIH: biasIH, biasHH: biasHH, h0: h0,
                c0: c0, lengths: lengths, reverse: reverse, saveForBackward: saveForBackward, execution: execution,
                threads: ThreadTeam.available, symbols: symbols)
    }

    static func forward(kind: CellKind, x: Tensor, weightIH: Tensor, weightHH: Tensor,
                        biasIH: Tensor, biasHH: Tensor, h0: Tensor, c0: Tensor?,
                        lengths: [Int]?, reverse: Bool, saveForBackward: Bool, execution: Execution,
                        threads: Int, symbols: [Int]? = nil)
        -> (output: Tensor, hN: Tensor, cN: Tensor?, context: Context?) {
        precondition(x.rank == 3, "FusedSequence: x must be [T, B, I], got \(x.shape)")
        precondition(h0.rank == 2, "FusedSequence: h0 must be [B, H], got \(h0.shape)")
        let count = x.shape[0] * x.shape[1] * h0.shape[1]
        var final: (hN: Tensor, cN: Tensor?, context: Context?)? = nil
        let output = [Float](unsafeUninitializedCapacity: max(count, 1)) { out, initialized in
            final = run(kind: kind, x: x, weightIH: weightIH, weightHH: weightHH, biasIH: biasIH, biasHH: biasHH,
                        h0: h0, c0: c0, lengths: lengths, reverse: reverse, saveForBackward: saveForBackward,
                        execution: execution, threads: threads, symbols: symbols,
                        output: out.baseAddress!, outputStride: h0.shape[1])
            initialized = count
        }
        return (Tensor(shape: [x.shape[0], x.shape[1], h0.shape[1]], data: output), final!.hN, final!.cN, final!.context)
    }

    /// `forward` writing the output into `output`, row `t·B + b` of `[T, B, H]` at
    /// `output + (t·B + b)·outputStride` (a stride of 2H puts two directions side by side).
    /// With `handover` and one thread, another thread that finishes its own work first may take
    /// half of the rows for the rest of the sequence (`RowHandover`).
    static func run(kind: CellKind, x: Tensor, weightIH: Tensor, weightHH: Tensor,
                    biasIH: Tensor, biasHH: Tensor, h0: Tensor, c0: Tensor?,
                    lengths: [Int]?, reverse: Bool, saveForBackward: Bool, execution: Execution,
                    threads: Int, symbols: [Int]? = nil, output: UnsafeMutablePointer<Float>, outputStride: Int,
                    handover: RowHandover? = nil)
        -> (hN: Tensor, cN: Tensor?, context: Context?) {
        precondition(x.rank == 3, "FusedSequence: x must be [T, B, I], got \(x.shape)")
        _ = HeapSetup.done
        let T = x.shape[0], B = x.shape[1], I = x.shape[2]
        precondition(h0.rank == 2 && h0.shape[0] == B, "FusedSequence: h0 must be [B=\(B), H], got \(h0.shape)")
        let H = h0.shape[1], G = kind.gateCount, GH = G * H, BH = B * H
        precondition(weightIH.shape == [GH, I], "FusedSequence: weightIH must be [\(GH), \(I)], got \(weightIH.shape)")
        precondition(weightHH.shape == [GH, H], "FusedSequence: weightHH must be [\(GH), \(H)], got \(weightHH.shape)")
        precondition(biasIH.shape == [GH] && biasHH.shape == [GH],
                     "FusedSequence: biases must be [\(GH)], got \(biasIH.shape) and \(biasHH.shape)")
        if let c0 { precondition(kind == .lstm && c0.shape == [B, H], "FusedSequence: c0 must be [B, H] and LSTM only, got \(c0.shape)") }
        let lengthBuffer = lengths.map { l -> Workspace<Int32> in
            precondition(l.count == B && l.allSatisfy { $0 >= 0 && $0 <= T },
                         "FusedSequence: lengths must be \(B) values in 0...\(T), got \(l)")
            return Workspace(l.map { Int32($0) })
        }
        let symbolBuffer = symbols.map { list -> Workspace<Int32> in
            precondition(list.count == T * B, "FusedSequence: \(list.count) symbols for \(T) steps × \(B) rows")
            if let bad = list.firstIndex(where: { $0 < 0 || $0 >= I }) {
                preconditionFailure("FusedSequence: symbol \(list[bad]) at position \(bad) is outside 0..<\(I)")
            }
            return Workspace(list.map { Int32($0) })
        }
        let gathered = symbolBuffer != nil && T > 0

        // Batches of 8 rows or more take their input projections step by step inside the loop
        // (no [T, B, G·H] buffer to write and read back); smaller batches project all steps in one
        // product first. RNN and LSTM steps take both products as one, [x_t | h_{t-1}]·[W_ih | W_hh]ᵀ
        // (K = I + H): one pass over the output and one gate input fewer (GRU needs W_hn·h apart).
        let stepProjection = !gathered && B >= 8 && execution.packedProducts && StepProduct.packedKernelIsFast
        let combined = stepProjection && kind != .gru && T > 0
        let states = SequenceStates(kind: kind, steps: T, batch: B, inputSize: gathered ? 0 : I, hidden: H,
                                    reverse: reverse, saved: saveForBackward, inputsBesideStates: combined)
        let first = reverse ? T : 0, last = reverse ? 0 : T
        let start = states.hidden(first)
        h0.data.withUnsafeBufferPointer { ck_copy_rows(B, H, $0.start, H, start.pointer, start.stride) }
        if kind == .lstm {
            if let c0 {
                c0.data.withUnsafeBufferPointer { states.cell(first).update(from: $0.start, count: BH) }
            } else {
                states.cell(first).update(repeating: 0, count: BH)
            }
        }
        let projections = Workspace<Float>(count: (combined ? 0 : stepProjection || gathered ? 1 : T) * B * GH)
        // Gathered inputs: the table `[I, G·H]` of every symbol's projection, `W_ih[:, v] + b_ih`
        // (exactly `x·W_ihᵀ + b_ih` for a one-hot x).
        let inputTable: Workspace<Float>? = gathered ? Workspace(count: I * GH) : nil
        if let inputTable {
            weightIH.data.withUnsafeBufferPointer { w in
                biasIH.data.withUnsafeBufferPointer { b in
                    for v in 0..<I { for g in 0..<GH { inputTable.pointer[v * GH + g] = w[g * I + v] + b[g] } }
                }
            }
        }
        let hiddenProduct = Workspace<Float>(count: B * GH)
        let split = execution.split(batch: B, hidden: H, gates: G, threads: threads, training: saveForBackward)
        // A units split of a short sequence at a small batch projects its own units of all steps
        // in the loop's parallel region (from 4 rows, where packing W_ih pays; below, BLAS),
        // each thread packing its own panels of W_ihᵀ first, or, for inference, with W_ihᵀ
        // packed by an earlier call (`PackedWeightCache`).
        var unitsProjection: PackedMatrix? = nil
        var packsProjection = true
        if case .units = split, !stepProjection, !gathered, T * B >= 4, execution.packedProducts,
           StepProduct.packedKernelIsFast {
            let kernel = PackedMatrix.kernel(rows: T * B, k: I)
            if !saveForBackward, let kept = PackedWeightCache.shared.transposed(weightIH, kernel: kernel) {
                unitsProjection = kept
                packsProjection = false
            } else {
                unitsProjection = PackedMatrix(k: I, n: GH, kernel: kernel)
            }
        }

        let savedInputsInParts: Bool
        if saveForBackward, !gathered, case .rows = split { savedInputsInParts = true } else { savedInputsInParts = false }

        do {
            x.data.withUnsafeBufferPointer { px in
            weightIH.data.withUnsafeBufferPointer { wih in
            weightHH.data.withUnsafeBufferPointer { whh in
            biasIH.data.withUnsafeBufferPointer { bih in
            biasHH.data.withUnsafeBufferPointer { bhh in
                if saveForBackward {
                    // The inputs are saved beside the states for the weight gradient; a rows split
                    // copies each thread's rows in its own part (`ForwardRunner.copiesSavedInputs`).
                    if !savedInputsInParts && !gathered {
                        ck_copy_rows(T * B, I, px.start, I, states.hiddenStorage.pointer, states.inputStateWidth)
                    }
                } else if combined {
                    // The first step's input beside its state; each step copies the next one's.
                    let t0 = reverse ? T - 1 : 0
                    ck_copy_rows(B, I, px.start + t0 * B * I, I, states.inputs(first), states.inputStateWidth)
                }
                if !stepProjection && unitsProjection == nil && !gathered {
                    // XP = X·W_ihᵀ + b_ih for all steps at once.
                    SequenceMatmul.linear(m: T * B, n: GH, k: I, a: px.start, lda: I, weight: wih.start, bias: bih.start,
                                          out: projections.pointer, packed: execution.packedProducts, threads: threads)
                }
                let runner = ForwardRunner(
                    kind: kind, steps: T, batch: B, inputSize: I, hidden: H, reverse: reverse, states: states,
                    product: combined
                        ? StepProduct(inputWeight: wih.start, hiddenWeight: whh.start, gates: G, hidden: H, inputs: I,
                                      blockRows: split.blockRows(batch: B), threads: threads)
                        : StepProduct(weight: whh.start, gates: G, hidden: H, inputs: H, batch: B,
                                      blockRows: split.blockRows(batch: B), forward: T > 0, backward: false,
                                      packed: execution.packedProducts, threads: threads),
                    combined: combined,
                    inputProduct: stepProjection && !combined && T > 0
                        ? StepProduct(weight: wih.start, gates: G, hidden: H, inputs: I, batch: B,
                                      blockRows: split.blockRows(batch: B), forward: true, backward: false, packed: true,
                                      threads: threads)
                        : nil,
                    input: px.start, copiesSavedInputs: savedInputsInParts,
                    balancesSlices: execution.computesRowsAlike,
                    symbols: symbolBuffer.map { UnsafePointer($0.pointer) }, inputTable: inputTable.map { UnsafePointer($0.pointer) },
                    weightIH: wih.start,
                    packedIH: unitsProjection, packsIH: packsProjection,
                    lengths: lengthBuffer?.pointer, projections: projections.pointer,
                    hiddenProduct: hiddenProduct.pointer, biasIH: bih.start, biasHH: bhh.start, output: output,
                    outputStride: outputStride,
                    handover: execution.computesRowsAlike ? handover : nil)
                runner.run(split)
                withExtendedLifetime((unitsProjection, inputTable)) {}
            } } } } }
        }

        let end = states.hidden(last)
        var hN = [Float](repeating: 0, count: BH)
        hN.withUnsafeMutableBufferPointer { ck_copy_rows(B, H, end.pointer, end.stride, $0.start, H) }
        let cN = kind == .lstm ? Tensor(shape: [B, H], data: Array(UnsafeBufferPointer(start: states.cell(last), count: BH))) : nil
        let context = saveForBackward
            ? Context(kind: kind, steps: T, batch: B, inputSize: I, hiddenSize: H, reverse: reverse,
                      lengths: lengthBuffer, weightIH: weightIH, weightHH: weightHH, states: states,
                      execution: execution, symbols: symbolBuffer)
            : nil
        return (Tensor(shape: [B, H], data: hN), cN, context)
    }
}

/// The forward time loop over raw pointers, shared by the threads of a `WorkSplit`.
struct ForwardRunner: @unchecked Sendable {
    let kind: CellKind
    let steps: Int, batch: Int, inputSize: Int, hidden: Int
    let reverse: Bool
    let states: SequenceStates
    /// `h_{t-1}·W_hhᵀ`, or with `combined` `[x_t | h_{t-1}]·[W_ih | W_hh]ᵀ`.
    let product: StepProduct
    /// Whether `product` includes the input projection (`states` keeps each step's input beside
    /// the state it reads; without saving, each step copies the next step's input there).
    let combined: Bool
    /// `x_t·W_ihᵀ` step by step, or nil when `projections` holds all steps' projections.
    let inputProduct: StepProduct?
    /// `[T, B, I]`.
    let input: UnsafePointer<Float>
    /// Whether each part of a rows split first copies its rows of every step's input beside the
    /// saved states (`[T, B, I + H]`), so the copy (4 MB at T=128, B=32, I=256) is shared too.
    let copiesSavedInputs: Bool
    /// Whether the rows or units of a split may follow the threads' speeds (`runBalancedParts`;
    /// `Execution.computesRowsAlike`).
    let balancesSlices: Bool
    /// Gathered inputs (`forward(…, symbols:)`): the step's symbols `[T·B]` and the table
    /// `[I, G·H]` of their projections `W_ih[:, v] + b_ih`; nil otherwise.
    let symbols: UnsafePointer<Int32>?
    let inputTable: UnsafePointer<Float>?
    /// `W_ih [G·H, I]`.
    let weightIH: UnsafePointer<Float>
    /// `W_ihᵀ` packed, or room for it, when each thread of a units split projects its own units
    /// of all steps into `projections` at its first step (`SequenceMatmul.linearUnits`, without
    /// `b_ih`, which the gate kernel then adds); else nil.
    let packedIH: PackedMatrix?
    /// Whether each thread packs its own panels of `packedIH` first (not when it comes packed).
    let packsIH: Bool
    let lengths: UnsafeMutablePointer<Int32>?
    /// With `inputProduct`: `[B, G·H]` scratch for `x_t·W_ihᵀ`; otherwise `[T, B, G·H]` input
    /// projections `x_t·W_ihᵀ + b_ih` of all steps (`x_t·W_ihᵀ` with `packedIH`).
    let projections: UnsafeMutablePointer<Float>
    /// `[B, G·H]` scratch for `h_{t-1}·W_hhᵀ`.
    let hiddenProduct: UnsafeMutablePointer<Float>
    let biasIH: UnsafePointer<Float>
    let biasHH: UnsafePointer<Float>
    /// `[T, B, H]`, row `t·B + b` at `output + (t·B + b)·outputStride`.
    let output: UnsafeMutablePointer<Float>
    let outputStride: Int
    /// For a loop on one thread (`.none`) beside another thread's loop: half of the rows may go
    /// to that thread when it is done first (only with our packed kernels, whose rows come out
    /// alike in any block); nil otherwise.
    let handover: RowHandover?

    func run(_ split: WorkSplit) {
        let T = steps, B = batch, H = hidden
        switch split {
        case .none:
            loop(rows: 0..<B, handover: handover)
        case .rows(let parts):
            // Rows do not interact, so the slices can follow the threads' speeds.
            runBalancedParts(parts, count: B, quantum: 2, balanced: balancesSlices) { rows in
                if copiesSavedInputs && !rows.isEmpty {
                    let width = states.inputStateWidth
                    for t in 0..<T {
                        let first = t * B + rows.lowerBound
                        ck_copy_rows(rows.count, inputSize, input + first * inputSize, inputSize,
                                     states.hiddenStorage.pointer + first * width, width)
                    }
                }
                loop(rows: rows, handover: nil)
            }
        case .units(let parts):
            // Each unit's results are the same whichever thread computes it, so the slices can
            // follow the threads' speeds.
            runBalancedSteps(T, parts: parts, count: H, quantum: 32, balanced: balancesSlices,
                             sharing: product.streamsWeights) { i, p, units in
                if i == 0, let packedIH {
                    // Without b_ih, which the gate kernel adds: no fill of the projections
                    // to add the product to.
                    SequenceMatmul.linearUnits(m: T * B, k: inputSize, gates: kind.gateCount, hidden: H, units: units,
                                               a: input, lda: inputSize, weight: weightIH, bias: nil,
                                               packed: packedIH, packs: packsIH, out: projections)
                }
                step(time(i), rows: 0..<B, units: units)
                // Step i reads the other slot, so this slot's input part is free to fill (by
                // the threads' own parts; a shared part has p ≥ parts).
                if p < parts { copyNextInput(i, rows: WorkSplit.slice(p, of: parts, count: B)) }
            }
        }
    }

    /// The whole time loop for `rows`. With `handover` the second half of the rows may go to
    /// another thread from any step on (`RowHandover.handOver`).
    func loop(rows: Range<Int>, handover: RowHandover?) {
        let T = steps, H = hidden
        guard let handover, rows.count >= 2 else {
            for i in 0..<T {
                step(time(i), rows: rows, units: 0..<H)
                copyNextInput(i, rows: rows)
            }
            return
        }
        let half = rows.lowerBound + rows.count / 2
        let given = half..<rows.upperBound
        var own = rows
        handover.begin()
        for i in 0..<T {
            if own == rows && handover.isAsked(remaining: T - i) {
                own = rows.lowerBound..<half
                handover.handOver(atStep: i) { from in
                    for j in from..<T {
                        step(time(j), rows: given, units: 0..<H)
                        copyNextInput(j, rows: given)
                    }
                }
            }
            step(time(i), rows: own, units: 0..<H)
            copyNextInput(i, rows: own)
        }
        handover.end()
    }

    /// The time index of the `i`-th processed step.
    @inline(__always) func time(_ i: Int) -> Int { reverse ? steps - 1 - i : i }

    /// Without saved states, copies the input of the step after the `i`-th (rows `rows`) beside
    /// the state the `i`-th step writes, which that step reads (combined products only).
    func copyNextInput(_ i: Int, rows: Range<Int>) {
        guard combined, !states.saved, i + 1 < steps, !rows.isEmpty else { return }
        let t = time(i)
        ck_copy_rows(rows.count, inputSize, input + (time(i + 1) * batch + rows.lowerBound) * inputSize, inputSize,
                     states.inputs(FusedSequence.nextSlot(t, reverse: reverse)) + rows.lowerBound * states.inputStateWidth,
                     states.inputStateWidth)
    }

    /// Step `t` for a block of rows and units: the products, then the gate kernel.
    func step(_ t: Int, rows: Range<Int>, units: Range<Int>) {
        if rows.isEmpty || units.isEmpty { return }
        let B = batch, H = hidden, GH = kind.gateCount * H
        let ps = FusedSequence.previousSlot(t, reverse: reverse), ns = FusedSequence.nextSlot(t, reverse: reverse)
        let prev = states.hidden(ps), next = states.hidden(ns)
        let r0 = rows.lowerBound, j0 = units.lowerBound
        // The input side: nil when `product` includes it, else x_t·W_ihᵀ (+ b_ih when precomputed
        // or gathered).
        let xp: UnsafePointer<Float>?
        if combined {
            // [x_t | h_{t-1}] rows: the input sits just before the state.
            product.forward(rows: rows.count, units: units, a: prev.pointer + r0 * prev.stride - inputSize,
                            lda: prev.stride, out: hiddenProduct + r0 * GH, descending: t % 2 == 1)
            xp = nil
        } else {
            if let symbols, let inputTable {
                // Each row's projection from the table, for the block's units of every gate.
                for r in rows {
                    let source = inputTable + Int(symbols[t * B + r]) * GH, target = projections + r * GH
                    for g in 0..<kind.gateCount {
                        (target + g * H + j0).update(from: source + g * H + j0, count: units.count)
                    }
                }
                xp = UnsafePointer(projections + r0 * GH + j0)
            } else if let inputProduct {
                inputProduct.forward(rows: rows.count, units: units, a: input + (t * B + r0) * inputSize,
                                     lda: inputSize, out: projections + r0 * GH)
                xp = UnsafePointer(projections + r0 * GH + j0)
            } else {
                xp = UnsafePointer(projections + (t * B + r0) * GH + j0)
            }
            product.forward(rows: rows.count, units: units, a: prev.pointer + r0 * prev.stride, lda: prev.stride,
                            out: hiddenProduct + r0 * GH, descending: t % 2 == 1)
        }
        var block = ck_block(rows: rows.count, units: units.count, hidden: H, ldGate: GH, ldPrev: prev.stride,
                             ldNext: next.stride, ldOut: outputStride, t: t, lengths: lengths.map { UnsafePointer($0 + r0) })
        let gh = hiddenProduct + r0 * GH + j0, bh = biasHH + j0
        // b_ih is added here unless the precomputed projections include it.
        let bi: UnsafePointer<Float>? = inputProduct != nil || combined || packedIH != nil ? biasIH + j0 : nil
        let hp = prev.pointer + r0 * prev.stride + j0, hn = next.pointer + r0 * next.stride + j0
        let out = output + (t * B + r0) * outputStride + j0
        switch kind {
        case .rnnTanh, .rnnReLU:
            ck_rnn_forward(&block, kind == .rnnReLU ? 1 : 0, gh, bh, bi, xp, hp, hn, out)
        case .lstm:
            ck_lstm_forward(&block, gh, bh, bi, xp, hp, states.cell(ps) + r0 * H + j0, hn, states.cell(ns) + r0 * H + j0,
                            out, states.gates(t) + r0 * GH + j0)
        case .gru:
            ck_gru_forward(&block, gh, bh, bi, xp, hp, hn, out, states.gates(t) + r0 * GH + j0,
                           states.newGate(t) + r0 * H + j0)
        }
    }
}
