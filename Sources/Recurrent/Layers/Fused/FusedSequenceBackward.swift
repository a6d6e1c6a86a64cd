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
        let T = ctx.steps, B = ctx.batch, H = ctx.hiddenSize
        if let dOutput { precondition(dOutput.shape == [T, B, H], "FusedSequence.backward: dOutput must be [\(T), \(B), \(H)], got \(dOutput.shape)") }
        let threads = ThreadTeam.available
        if let dOutput {
            return dOutput.data.withUnsafeBufferPointer {
                gradients(ctx, dOutput: ($0.start, H), dhN: dhN, dcN: dcN, inputGradient: inputGradient, threads: threads)
            }
        }
        return gradients(ctx, dOutput: nil, dhN: dhN, dcN: dcN, inputGradient: inputGradient, threads: threads)
    }

    /// `dOutput`: row `t·B + b` of `dL/d output [T, B, H]` at `pointer + (t·B + b)·stride`.
    /// With `sharing`, the whole-sequence products after the time loop (the weight gradients, in
    /// fixed chunks of the T·B rows summed in order, and `dx`) go to the pool as `owner`'s pieces,
    /// which the other owners' threads may run (each owner single-threaded, `threads` 1).
    /// With `handover` (one thread, beside another direction's loop), another thread that
    /// finishes its own loop first may take half of the rows for the rest of this loop, and this
    /// thread, once its loop is done, takes some of the rows of `handover.other`'s loop
    /// (`RowHandover`); the bias gradients are then summed per half of the rows, so the results
    /// do not depend on whether or where the rows changed hands.
    static func gradients(_ ctx: Context, dOutput: (pointer: UnsafePointer<Float>, stride: Int)?, dhN: Tensor?,
                          dcN: Tensor?, inputGradient: Bool,
                          threads: Int, sharing: (pool: PiecePool, owner: Int)? = nil,
                          handover: (own: RowHandover, other: RowHandover)? = nil) -> Gradients {
        let T = ctx.steps, B = ctx.batch, I = ctx.inputSize, H = ctx.hiddenSize
        let G = ctx.kind.gateCount, GH = G * H, BH = B * H
        if let dhN { precondition(dhN.shape == [B, H], "FusedSequence.backward: dhN must be [\(B), \(H)], got \(dhN.shape)") }
        if let dcN { precondition(ctx.kind == .lstm && dcN.shape == [B, H], "FusedSequence.backward: dcN must be [\(B), \(H)] (LSTM), got \(dcN.shape)") }

        if let sharing { sharing.pool.start(owner: sharing.owner) }
        let split = ctx.execution.split(batch: B, hidden: H, gates: G, threads: threads, training: true)
        let ownHandover = split == .none && B >= 2 && ctx.execution.computesRowsAlike ? handover?.own : nil
        let accumulators: Int
        if case .rows(let parts) = split { accumulators = parts } else { accumulators = ownHandover == nil ? 1 : 2 }
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
            let runner = BackwardRunner(
                kind: ctx.kind, steps: T, batch: B, hidden: H, reverse: ctx.reverse, states: ctx.states,
                product: StepProduct(weight: whh.start, gates: G, hidden: H, inputs: H, batch: B,
                                     blockRows: split.blockRows(batch: B), forward: false, backward: T > 0,
                                     packed: ctx.execution.packedProducts, threads: threads),
                balancesSlices: ctx.execution.computesRowsAlike,
                lengths: ctx.lengths?.pointer, dOutput: dOutput?.pointer, dOutputStride: dOutput?.stride ?? H,
                dh: dh.pointer, dc: dc?.pointer, dGates: dGates.pointer, dHiddenGates: dHiddenGates?.pointer,
                biasSums: biasSums.pointer, hiddenBiasSums: hiddenBiasSums?.pointer)
            if let ownHandover { runner.run(handingOver: ownHandover) } else { runner.run(split) }
        }
        handover?.other.help()

        // Whole-sequence products over the T·B rows.
        let rows = T * B
        let inputsAndStates = ctx.states.hiddenStorage.pointer, width = ctx.states.inputStateWidth
        var dWeightIH: [Float], dWeightHH: [Float]
        var dx: Tensor? = nil
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
                                                      tiles: packed, threads: threads)
            }
            if let sharing { sharing.pool.run(owner: sharing.owner, []) }   // none of its own; helps the other owner
        } else if let sharing {
            (dWeightIH, dWeightHH, dx) = sharedProducts(ctx, sharing: sharing, dGates: dGates, dHiddenGates: dHiddenGates,
                                                        inputGradient: inputGradient)
        } else if let dHiddenGates {
            dWeightIH = [Float](repeating: 0, count: GH * I)
            dWeightHH = [Float](repeating: 0, count: GH * H)
            dWeightIH.withUnsafeMutableBufferPointer {
                SequenceMatmul.multiplyTransposedLeft(m: GH, n: I, k: rows, a: dGates.pointer, lda: GH,
                                                      b: inputsAndStates, ldb: width, out: $0.start, ldo: I, tiles: packed,
                                                      threads: threads)
            }
            dWeightHH.withUnsafeMutableBufferPointer {
                SequenceMatmul.multiplyTransposedLeft(m: GH, n: H, k: rows, a: dHiddenGates.pointer, lda: GH,
                                                      b: inputsAndStates + I, ldb: width, out: $0.start, ldo: H, tiles: packed,
                                                      threads: threads)
            }
        } else {
            let both = Workspace<Float>(count: GH * width)
            SequenceMatmul.multiplyTransposedLeft(m: GH, n: width, k: rows, a: dGates.pointer, lda: GH,
                                                  b: inputsAndStates, ldb: width, out: both.pointer, ldo: width, tiles: packed,
                                                  threads: threads)
            (dWeightIH, dWeightHH) = SequenceMatmul.splitColumns(both.pointer, rows: GH, left: I, right: H,
                                                                 threads: threads)
        }
        if inputGradient && sharing == nil {
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

extension FusedSequence {
    /// The whole-sequence products of `gradients` as pieces of `sharing.pool` (see there): each
    /// weight gradient `dGᵀ·X` in up to 4 chunks of the T·B rows, each into its own `[G·H, n]`
    /// partial (single-threaded BLAS or tile kernel, so a chunk gives the same result on any thread), the
    /// partials then summed in chunk order; `dx` as one piece.
    private static func sharedProducts(_ ctx: Context, sharing: (pool: PiecePool, owner: Int), dGates: Workspace<Float>,
                                       dHiddenGates: Workspace<Float>?, inputGradient: Bool)
        -> (dWeightIH: [Float], dWeightHH: [Float], dx: Tensor?) {
        let T = ctx.steps, B = ctx.batch, I = ctx.inputSize, H = ctx.hiddenSize
        let GH = ctx.kind.gateCount * H, rows = T * B
        let inputsAndStates = ctx.states.hiddenStorage.pointer, width = ctx.states.inputStateWidth
        let packed = ctx.execution.packedProducts
        // The products: [dW_ih | dW_hh] at once, or (GRU) each with its own gate gradients.
        var products: [ChunkedWeightGradient] = []
        if let dHiddenGates {
            products.append(ChunkedWeightGradient(m: GH, n: I, rows: rows, a: dGates.pointer, b: inputsAndStates, ldb: width,
                                                  tiles: packed))
            products.append(ChunkedWeightGradient(m: GH, n: H, rows: rows, a: dHiddenGates.pointer, b: inputsAndStates + I,
                                                  ldb: width, tiles: packed))
        } else {
            products.append(ChunkedWeightGradient(m: GH, n: width, rows: rows, a: dGates.pointer, b: inputsAndStates, ldb: width,
                                                  tiles: packed))
        }
        var pieces: [() -> Void] = products.flatMap { product in (0..<product.chunks).map { c in { product.run(chunk: c) } } }
        let dx: Workspace<Float>? = inputGradient ? Workspace(count: rows * I) : nil
        if let dx {
            pieces.append {
                ctx.weightIH.data.withUnsafeBufferPointer { wih in
                    SequenceMatmul.multiply(m: rows, n: I, k: GH, a: dGates.pointer, lda: GH, weight: wih.start,
                                            out: dx.pointer, packed: packed, threads: 1)
                }
            }
        }
        sharing.pool.run(owner: sharing.owner, pieces)
        let dWeightIH: [Float], dWeightHH: [Float]
        if products.count == 2 {
            dWeightIH = products[0].sum()
            dWeightHH = products[1].sum()
        } else {
            let both = products[0].sum()
            (dWeightIH, dWeightHH) = both.withUnsafeBufferPointer {
                SequenceMatmul.splitColumns($0.start, rows: GH, left: I, right: H, threads: 1)
            }
        }
        return (dWeightIH, dWeightHH, dx.map { Tensor(shape: [T, B, I], data: $0.array()) })
    }
}

/// A weight gradient `out [m, n] = Aᵀ·B` over `rows` rows (`A [rows, m]` with row stride m,
/// `B [rows, n]` with row stride ldb) in fixed chunks of the rows: chunk c goes into its own
/// partial, and `sum` adds the partials in chunk order, so the result does not depend on which
/// thread ran which chunk. Up to 4 chunks of at least 64 rows, as long as the partials together
/// take no more memory than `A`.
private final class ChunkedWeightGradient: @unchecked Sendable {
    let m: Int, n: Int, rows: Int
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int
    let chunks: Int
    let partials: Workspace<Float>
    /// Whether the chunks run on the tile kernel (each packs its rows of B) instead of BLAS.
    let tiles: Bool

    init(m: Int, n: Int, rows: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int, tiles: Bool) {
        self.m = m; self.n = n; self.rows = rows; self.a = a; self.b = b; self.ldb = ldb
        chunks = [4, 2].first { $0 * n <= rows && rows / $0 >= 64 } ?? 1
        self.tiles = tiles && PackedMatrix.kernel(rows: m, k: rows / chunks) == .tiles
        partials = Workspace(count: chunks * m * n)
    }

    func run(chunk c: Int) {
        let slice = WorkSplit.slice(c, of: chunks, count: rows)
        let out = partials.pointer + c * m * n
        guard !slice.isEmpty, m > 0, n > 0 else { out.update(repeating: 0, count: m * n); return }
        if tiles {
            let packed = PackedMatrix(k: slice.count, n: n, kernel: .tiles)
            let job = TileTransposedLeftJob(packed: packed, a: a + slice.lowerBound * m, lda: m,
                                            b: b + slice.lowerBound * ldb, ldb: ldb, out: out, ldo: n)
            job.pack(panels: 0..<(n + 31) / 32)
            job.run(rows: 0..<m)
            return
        }
        BLAS.gemm(transA: true, transB: false, m: m, n: n, k: slice.count, a: a + slice.lowerBound * m, lda: m,
                  b: b + slice.lowerBound * ldb, ldb: ldb, beta: 0, c: out, ldc: n)
    }

    /// Σ of the partials, in chunk order.
    func sum() -> [Float] {
        let count = m * n, p = partials.pointer
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            let o = out.baseAddress!
            o.update(from: p, count: count)
            for c in 1..<max(chunks, 1) {
                let q = p + c * count
                for i in 0..<count { o[i] += q[i] }
            }
            initialized = count
        }
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
    /// `[T, B, H]` (row `t·B + b` at `dOutput + (t·B + b)·dOutputStride`) or nil.
    let dOutput: UnsafePointer<Float>?
    let dOutputStride: Int
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
            runBalancedSteps(T + 1, parts: parts, count: H, quantum: 32, balanced: balancesSlices,
                             sharing: product.streamsWeights) { i, _, units in
                if i > 0 { propagate(time(i - 1), rows: 0..<B, units: units) }
                if i < T { gates(time(i), rows: 0..<B, units: units, part: 0) }
            }
        }
    }

    /// The loop on one thread, whose second half of the rows may go to another thread
    /// (`RowHandover`) from any step on; each half sums its bias gradients into its own row of
    /// `biasSums` (parts 0 and 1), whoever runs it.
    func run(handingOver handover: RowHandover) {
        let T = steps, B = batch, H = hidden
        let kept = 0..<(B / 2), given = (B / 2)..<B
        var all = true
        handover.begin()
        for i in 0..<T {
            let t = time(i)
            if all && handover.isAsked(remaining: T - i) {
                all = false
                handover.handOver(atStep: i) { from in
                    for j in from..<T {
                        gates(time(j), rows: given, units: 0..<H, part: 1)
                        propagate(time(j), rows: given, units: 0..<H)
                    }
                }
            }
            gates(t, rows: kept, units: 0..<H, part: 0)
            if all { gates(t, rows: given, units: 0..<H, part: 1) }
            propagate(t, rows: all ? 0..<B : kept, units: 0..<H)
        }
        handover.end()
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
                             ldNext: next.stride, ldOut: dOutputStride, t: t, lengths: lengths.map { UnsafePointer($0 + r0) })
        let dOut = dOutput.map { $0 + (t * B + r0) * dOutputStride + j0 }
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
                         dh: dh + r0 * hidden, descending: t % 2 == 1)
    }
}
