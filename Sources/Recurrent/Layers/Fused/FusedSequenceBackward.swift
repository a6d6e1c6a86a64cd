import CKernels

extension FusedSequence {
    /// Gradients of one fused sequence; `dx` is nil when it was not asked for.
    struct Gradients {
        var dx: Tensor?
        var dWeightIH: Tensor, dWeightHH: Tensor, dBiasIH: Tensor, dBiasHH: Tensor
        var dh0: Tensor, dc0: Tensor?
    }

    /// Back-propagation through time for a sequence run by `forward(…, saveForBackward: true)`.
    ///
    /// `dOutput [T, B, H]`, `dhN`, `dcN [B, H]` are the gradients of the forward results (nil: zero).
    /// Returns `dx [T, B, I]`, the parameter gradients (shapes of the parameters), `dh0` and, for
    /// LSTM, `dc0` (both `[B, H]`). Padded steps contribute nothing.
    public static func backward(_ context: Context, dOutput: Tensor?, dhN: Tensor?, dcN: Tensor?)
        -> (dx: Tensor, dWeightIH: Tensor, dWeightHH: Tensor, dBiasIH: Tensor, dBiasHH: Tensor, dh0: Tensor, dc0: Tensor?) {
        let g = gradients(context, dOutput: dOutput, dhN: dhN, dcN: dcN, inputGradient: true)
        return (g.dx!, g.dWeightIH, g.dWeightHH, g.dBiasIH, g.dBiasHH, g.dh0, g.dc0)
    }

    /// The backward pass. Per step, in the reverse order of the forward: the gate gradients
    /// `dG_t [B, G·H]` (one kernel) and `dh_{t-1} += dG_t · W_hh` (one product). After the loop,
    /// one product each: `dW_ih = dGᵀ·X`, `dW_hh = dGhᵀ·H_prev`, `dX = dG·W_ih`; biases are column
    /// sums. For GRU the hidden-side gradient `dGh` differs from `dG` in the n block (`dG_n ⊙ r`).
    static func gradients(_ ctx: Context, dOutput: Tensor?, dhN: Tensor?, dcN: Tensor?, inputGradient: Bool) -> Gradients {
        let T = ctx.steps, B = ctx.batch, I = ctx.inputSize, H = ctx.hiddenSize
        let G = ctx.kind.gateCount, GH = G * H, BH = B * H
        let reverse = ctx.reverse
        if let dOutput { precondition(dOutput.shape == [T, B, H], "FusedSequence.backward: dOutput must be [\(T), \(B), \(H)], got \(dOutput.shape)") }
        if let dhN { precondition(dhN.shape == [B, H], "FusedSequence.backward: dhN must be [\(B), \(H)], got \(dhN.shape)") }
        if let dcN { precondition(ctx.kind == .lstm && dcN.shape == [B, H], "FusedSequence.backward: dcN must be [\(B), \(H)] (LSTM), got \(dcN.shape)") }

        let dGates = Workspace<Float>(count: T * B * GH)
        let dHiddenGates: Workspace<Float>? = ctx.kind == .gru ? Workspace(count: T * B * GH) : nil
        let dhSide = dHiddenGates ?? dGates
        var dh = dhN?.data ?? [Float](repeating: 0, count: BH)
        var dc: [Float]? = ctx.kind == .lstm ? (dcN?.data ?? [Float](repeating: 0, count: BH)) : nil
        let lp = ctx.lengths?.pointer
        let states = ctx.states.pointer

        ctx.weightHH.data.withUnsafeBufferPointer { whh in
        dh.withUnsafeMutableBufferPointer { pdh in
            let dhp = pdh.start
            func run(_ dOut: UnsafePointer<Float>?, _ dcp: UnsafeMutablePointer<Float>?) {
                for step in 0..<T {
                    let t = reverse ? step : T - 1 - step
                    let prev = previousSlot(t, reverse: reverse), next = nextSlot(t, reverse: reverse)
                    let dOutT = dOut.map { $0 + t * BH }
                    let dgt = dGates.pointer + t * B * GH
                    switch ctx.kind {
                    case .rnnTanh, .rnnReLU:
                        ck_rnn_backward(B, H, ctx.kind == .rnnReLU ? 1 : 0, states + next * BH, dOutT, dhp, dgt, lp, t)
                    case .lstm:
                        let cells = ctx.cells!.pointer
                        ck_lstm_backward(B, H, ctx.gates!.pointer + t * B * GH, cells + prev * BH, cells + next * BH,
                                         dOutT, dhp, dcp, dgt, lp, t)
                    case .gru:
                        ck_gru_backward(B, H, ctx.gates!.pointer + t * B * GH, ctx.hiddenNewGate!.pointer + t * BH,
                                        states + prev * BH, dOutT, dhp, dgt, dhSide.pointer + t * B * GH, lp, t)
                    }
                    // dh_{t-1} += dGh_t · W_hh
                    let dght = dhSide.pointer + t * B * GH
                    if B == 1 {
                        BLAS.gemv(trans: true, m: GH, n: H, a: whh.start, lda: H, x: dght, beta: 1, y: dhp)
                    } else {
                        BLAS.gemm(transA: false, transB: false, m: B, n: H, k: GH, a: dght, lda: GH,
                                  b: whh.start, ldb: H, beta: 1, c: dhp, ldc: H)
                    }
                }
            }
            func withOutputGradient(_ dcp: UnsafeMutablePointer<Float>?) {
                if let dOutput {
                    dOutput.data.withUnsafeBufferPointer { run($0.start, dcp) }
                } else {
                    run(nil, dcp)
                }
            }
            if dc != nil {
                dc!.withUnsafeMutableBufferPointer { withOutputGradient($0.start) }
            } else {
                withOutputGradient(nil)
            }
        } }

        // Whole-sequence products.
        let rows = T * B
        let dWeightIH = [Float](unsafeUninitializedCapacity: GH * I) { buf, n in
            ctx.x.data.withUnsafeBufferPointer { px in
                BLAS.gemm(transA: true, transB: false, m: GH, n: I, k: rows, a: dGates.pointer, lda: GH,
                          b: px.start, ldb: I, beta: 0, c: buf.start, ldc: I)
            }
            n = GH * I
        }
        let hiddenInputs = states + (reverse ? BH : 0)   // H_prev [T, B, H]
        let dWeightHH = [Float](unsafeUninitializedCapacity: GH * H) { buf, n in
            BLAS.gemm(transA: true, transB: false, m: GH, n: H, k: rows, a: dhSide.pointer, lda: GH,
                      b: hiddenInputs, ldb: H, beta: 0, c: buf.start, ldc: H)
            n = GH * H
        }
        var dx: Tensor? = nil
        if inputGradient {
            let data = [Float](unsafeUninitializedCapacity: rows * I) { buf, n in
                ctx.weightIH.data.withUnsafeBufferPointer { wih in
                    BLAS.gemm(transA: false, transB: false, m: rows, n: I, k: GH, a: dGates.pointer, lda: GH,
                              b: wih.start, ldb: I, beta: 0, c: buf.start, ldc: I)
                }
                n = rows * I
            }
            dx = Tensor(shape: [T, B, I], data: data)
        }
        var dBiasIH = [Float](repeating: 0, count: GH)
        dBiasIH.withUnsafeMutableBufferPointer { ck_add_column_sums(rows, GH, dGates.pointer, $0.start) }
        var dBiasHH = dBiasIH
        if let dHiddenGates {
            dBiasHH = [Float](repeating: 0, count: GH)
            dBiasHH.withUnsafeMutableBufferPointer { ck_add_column_sums(rows, GH, dHiddenGates.pointer, $0.start) }
        }
        return Gradients(dx: dx,
                         dWeightIH: Tensor(shape: [GH, I], data: dWeightIH),
                         dWeightHH: Tensor(shape: [GH, H], data: dWeightHH),
                         dBiasIH: Tensor(shape: [GH], data: dBiasIH),
                         dBiasHH: Tensor(shape: [GH], data: dBiasHH),
                         dh0: Tensor(shape: [B, H], data: dh),
                         dc0: dc.map { Tensor(shape: [B, H], data: $0) })
    }
}
