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
        precondition(x.rank == 3, "FusedSequence: x must be [T, B, I], got \(x.shape)")
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

        // Without saving, two state slots alternate (step t reads slot t&1 and writes the other).
        let slots = saveForBackward ? T + 1 : 2
        @inline(__always) func slot(_ i: Int) -> Int { saveForBackward ? i : i & 1 }
        let states = Workspace<Float>(count: slots * BH)
        let cells: Workspace<Float>? = kind == .lstm ? Workspace(count: slots * BH) : nil
        let savedSteps = saveForBackward ? T : 1
        let gates: Workspace<Float>? = G > 1 ? Workspace(count: savedSteps * B * GH) : nil
        let newGate: Workspace<Float>? = kind == .gru ? Workspace(count: savedSteps * BH) : nil
        let projections = Workspace<Float>(count: T * B * GH)
        let hiddenProduct = Workspace<Float>(count: B * GH)

        let first = reverse ? T : 0, last = reverse ? 0 : T
        h0.data.withUnsafeBufferPointer { states.pointer.advanced(by: slot(first) * BH).update(from: $0.start, count: BH) }
        if let cells {
            if let c0 {
                c0.data.withUnsafeBufferPointer { cells.pointer.advanced(by: slot(first) * BH).update(from: $0.start, count: BH) }
            } else {
                cells.pointer.advanced(by: slot(first) * BH).update(repeating: 0, count: BH)
            }
        }

        let output = [Float](unsafeUninitializedCapacity: T * BH) { out, initialized in
            x.data.withUnsafeBufferPointer { px in
            weightIH.data.withUnsafeBufferPointer { wih in
            weightHH.data.withUnsafeBufferPointer { whh in
            biasIH.data.withUnsafeBufferPointer { bih in
            biasHH.data.withUnsafeBufferPointer { bhh in
                // XP = X·W_ihᵀ + b_ih for all steps at once.
                let xp = projections.pointer
                ck_fill_rows(T * B, GH, bih.start, xp)
                BLAS.gemm(transA: false, transB: true, m: T * B, n: GH, k: I, a: px.start, lda: I,
                          b: wih.start, ldb: I, beta: 1, c: xp, ldc: GH)
                let lp = lengthBuffer?.pointer
                let gh = hiddenProduct.pointer
                for step in 0..<T {
                    let t = reverse ? T - 1 - step : step
                    let hp = states.pointer + slot(previousSlot(t, reverse: reverse)) * BH
                    let hn = states.pointer + slot(nextSlot(t, reverse: reverse)) * BH
                    // GH = h_{t-1}·W_hhᵀ (bias added in the kernel, after the product, as PyTorch does).
                    if B == 1 {
                        BLAS.gemv(trans: false, m: GH, n: H, a: whh.start, lda: H, x: hp, beta: 0, y: gh)
                    } else {
                        BLAS.gemm(transA: false, transB: true, m: B, n: GH, k: H, a: hp, lda: H,
                                  b: whh.start, ldb: H, beta: 0, c: gh, ldc: GH)
                    }
                    let xpt = xp + t * B * GH
                    let ot = out.start + t * BH
                    let gateStep = saveForBackward ? t : 0
                    switch kind {
                    case .rnnTanh, .rnnReLU:
                        ck_rnn_forward(B, H, kind == .rnnReLU ? 1 : 0, gh, bhh.start, xpt, hp, hn, ot, lp, t)
                    case .lstm:
                        let cp = cells!.pointer + slot(previousSlot(t, reverse: reverse)) * BH
                        let cn = cells!.pointer + slot(nextSlot(t, reverse: reverse)) * BH
                        ck_lstm_forward(B, H, gh, bhh.start, xpt, hp, cp, hn, cn, ot,
                                        gates!.pointer + gateStep * B * GH, lp, t)
                    case .gru:
                        ck_gru_forward(B, H, gh, bhh.start, xpt, hp, hn, ot,
                                       gates!.pointer + gateStep * B * GH, newGate!.pointer + gateStep * BH, lp, t)
                    }
                }
            } } } } }
            initialized = T * BH
        }

        let hN = Tensor(shape: [B, H], data: Array(UnsafeBufferPointer(start: states.pointer + slot(last) * BH, count: BH)))
        let cN = cells.map { Tensor(shape: [B, H], data: Array(UnsafeBufferPointer(start: $0.pointer + slot(last) * BH, count: BH))) }
        let context = saveForBackward
            ? Context(kind: kind, steps: T, batch: B, inputSize: I, hiddenSize: H, reverse: reverse,
                      lengths: lengthBuffer, x: x, weightIH: weightIH, weightHH: weightHH,
                      states: states, cells: cells, gates: gates, hiddenNewGate: newGate)
            : nil
        return (Tensor(shape: [T, B, H], data: output), hN, cN, context)
    }
}
