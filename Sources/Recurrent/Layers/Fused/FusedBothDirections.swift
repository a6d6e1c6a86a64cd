/// Both directions of a bidirectional layer as one node of the autodiff tape, run at the same time.
///
/// The two directions read the same input `x [T, B, I]` and are independent until their outputs
/// are merged, so with two threads each direction runs on its own thread over all B rows, forward
/// and backward: no meeting per step or per sequence between them, each core keeps its own
/// direction's `W_hh` (and `W_ih`) in cache, and each thread's products see all B rows instead of
/// half. Each direction writes its output straight into its half of the side-by-side output
/// `[y_f | y_r]` and reads its output gradient from there, so no copies join or split them.
/// When one core runs slower, the thread that finishes its time loop first takes half of the
/// other direction's rows for the rest of that loop (`RowHandover`), and after the backward time
/// loops the weight gradients (in fixed chunks of the rows) and input gradients of both
/// directions are pieces of a `PiecePool`, so the other core takes over part of the slower one's
/// products too. The results are those of two `FusedSequence.apply` calls up to float rounding
/// (the same kernels; the halves of the rows sum the bias gradients, and the chunks the weight
/// gradients, in another order); `dx` is the sum of the two directions' input gradients.
extension FusedSequence {
    /// Whether `applyBothDirections` pays: two or three threads (one per direction; with four or
    /// more, splitting each direction between all threads in turn keeps every core busy).
    static var runsDirectionsTogether: Bool {
        let threads = ThreadTeam.available
        return threads >= 2 && threads < 4
    }

    /// - Parameters: `x [T, B, I]`; `parameters`, `h0` (`[B, H]` each) and `c0` (LSTM) for the
    ///   forward then the reverse direction; `lengths` as in `forward`.
    /// - Returns: the outputs side by side, `[y_f | y_r]` `[T, B, 2H]` (PyTorch's bidirectional
    ///   output), and per direction (forward, reverse) `hN` and (LSTM) `cN` `[B, H]`.
    static func applyBothDirections(kind: CellKind, x: Variable, parameters: [DirectionParameters],
                                    h0: [Variable], c0: [Variable]?, lengths: [Int]?)
        -> (output: Variable, hN: [Variable], cN: [Variable]?) {
        precondition(parameters.count == 2 && h0.count == 2 && (c0?.count ?? 2) == 2,
                     "FusedSequence.applyBothDirections: needs two directions")
        precondition(x.value.rank == 3 && h0[0].value.rank == 2,
                     "FusedSequence.applyBothDirections: x must be [T, B, I] and h0 [B, H], got \(x.shape) and \(h0[0].shape)")
        var parents = [x]
        for p in parameters { parents += [p.weightIH, p.weightHH, p.biasIH, p.biasHH] }
        parents += h0
        if let c0 { parents += c0 }
        let recording = GradientMode.isEnabled && parents.contains { $0.requiresGrad }
        let T = x.shape[0], B = x.shape[1], H = h0[0].shape[1], count = T * B * 2 * H
        var finals: [(hN: Tensor, cN: Tensor?, context: Context?)] = []
        let output = [Float](unsafeUninitializedCapacity: max(count, 1)) { out, initialized in
            let sideBySide = out.baseAddress!
            let handovers = [RowHandover(), RowHandover()]
            finals = inParallel(2) { d in
                let final = run(kind: kind, x: x.value, weightIH: parameters[d].weightIH.value,
                                weightHH: parameters[d].weightHH.value, biasIH: parameters[d].biasIH.value,
                                biasHH: parameters[d].biasHH.value, h0: h0[d].value, c0: c0?[d].value, lengths: lengths,
                                reverse: d == 1, saveForBackward: recording, execution: .automatic, threads: 1,
                                output: sideBySide + d * H, outputStride: 2 * H, handover: handovers[d])
                handovers[1 - d].help()
                return final
            }
            initialized = count
        }
        let outputValue = Tensor(shape: [T, B, 2 * H], data: output)
        let hasCell = finals[0].cN != nil
        guard recording, let forwardContext = finals[0].context, let reverseContext = finals[1].context else {
            return (Variable(outputValue), finals.map { Variable($0.hN) }, hasCell ? finals.map { Variable($0.cN!) } : nil)
        }
        let contexts = [forwardContext, reverseContext]
        // Values: the output, hN per direction, then (LSTM) cN per direction.
        var values = [outputValue] + finals.map(\.hN)
        if hasCell { values += finals.map { $0.cN! } }
        let inputGradient = x.requiresGrad
        let hasC0 = c0 != nil
        let outputs = Variable.recordMultiple(values, parents: parents) { g in
            // Each direction's weight (and input) gradients after its time loop are pieces either
            // thread may run, so the thread that finishes its loop first takes some of the other's.
            let pool = PiecePool(owners: 2)
            let handovers = [RowHandover(), RowHandover()]
            let backward = { (dOutput: UnsafePointer<Float>?) in
                inParallel(2) { d in
                    gradients(contexts[d], dOutput: dOutput.map { ($0 + d * H, 2 * H) }, dhN: g[1 + d],
                              dcN: hasCell ? g[3 + d] : nil, inputGradient: inputGradient, threads: 1,
                              sharing: (pool, d), handover: (handovers[d], handovers[1 - d]))
                }
            }
            let grads = g[0].map { dy in dy.data.withUnsafeBufferPointer { backward($0.baseAddress) } } ?? backward(nil)
            var perParent: [Tensor?] = [inputGradient ? grads[0].dx! + grads[1].dx! : nil]
            for d in 0..<2 { perParent += [grads[d].dWeightIH, grads[d].dWeightHH, grads[d].dBiasIH, grads[d].dBiasHH] }
            perParent += [grads[0].dh0, grads[1].dh0]
            if hasC0 { perParent += [grads[0].dc0, grads[1].dc0] }
            return perParent
        }
        return (outputs[0], [outputs[1], outputs[2]], hasCell ? [outputs[3], outputs[4]] : nil)
    }

    /// `body(0..<parts)` on up to `parts` threads, results in order.
    private static func inParallel<R>(_ parts: Int, _ body: (Int) -> R) -> [R] {
        let slots = UnsafeMutablePointer<R>.allocate(capacity: parts)
        defer { slots.deinitialize(count: parts); slots.deallocate() }
        withoutActuallyEscaping(body) { body in
            let job = ParallelJob(body: body, slots: slots)
            runParts(parts) { p in job.run(p) }
        }
        return Array(UnsafeBufferPointer(start: slots, count: parts))
    }
}

/// One part of `inParallel`: each part writes only its own slot.
private struct ParallelJob<R>: @unchecked Sendable {
    let body: (Int) -> R
    let slots: UnsafeMutablePointer<R>
    func run(_ part: Int) { (slots + part).initialize(to: body(part)) }
}
