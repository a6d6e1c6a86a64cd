extension CharacterLanguageModel {
    /// Inference on values alone (evaluation, sampling, cell activations): the same function as
    /// `callAsFunction` without dropout, computed with `FusedSequence.forward` on tensors, so it
    /// records nothing and saves no activations (and never touches the global `GradientMode`).
    ///
    /// `inputs` `T·B` time-major indices → logits `[T·B, V]` and the state after the last step
    /// (`h`, `c` `[L, B, H]`); `state` nil means zeros.
    public func predict(_ inputs: [Int], steps: Int, batch: Int, state: RecurrentState?) -> (logits: Tensor, state: RecurrentState) {
        let rows = steps * batch
        precondition(inputs.count == rows, "CharacterLanguageModel: \(inputs.count) inputs for \(steps) steps × \(batch) rows")
        let v = vocabulary.count, e = configuration.embeddingSize, h = configuration.hiddenSize
        let kind = configuration.cellKind
        var x: Tensor
        var firstWeights: Tensor
        let (wih0, _, _, _) = folded.parameters[0]
        if folded.pays(rows: rows) {
            var oneHot = [Float](repeating: 0, count: rows * v)
            for (r, symbol) in inputs.enumerated() { oneHot[r * v + symbol] = 1 }
            x = Tensor(shape: [steps, batch, v], data: oneHot)
            firstWeights = matmul(wih0.value, embedding.weight.value, transposeB: true)   // W_ih·Eᵀ [G·H, V]
        } else {
            var gathered = [Float](repeating: 0, count: rows * e)
            embedding.weight.value.data.withUnsafeBufferPointer { table in
                gathered.withUnsafeMutableBufferPointer { out in
                    for (r, symbol) in inputs.enumerated() {
                        (out.baseAddress! + r * e).update(from: table.baseAddress! + symbol * e, count: e)
                    }
                }
            }
            x = Tensor(shape: [steps, batch, e], data: gathered)
            firstWeights = wih0.value
        }
        let zeros = Tensor(zeros: [batch, h])
        func row(_ t: Tensor?, _ k: Int) -> Tensor? { t.map { Tensor(shape: [batch, h], data: Array($0.data[(k * batch * h)..<((k + 1) * batch * h)])) } }
        var finalH: [Float] = [], finalC: [Float] = []
        for k in 0..<folded.layers {
            let (wih, whh, bih, bhh) = folded.parameters[k]
            let r = FusedSequence.forward(kind: kind, x: x, weightIH: k == 0 ? firstWeights : wih.value, weightHH: whh.value,
                                          biasIH: bih.value, biasHH: bhh.value, h0: row(state?.h.value, k) ?? zeros,
                                          c0: kind.hasCellState ? (row(state?.c?.value, k) ?? zeros) : nil,
                                          lengths: nil, reverse: false, saveForBackward: false)
            x = r.output
            finalH += r.hN.data
            if let c = r.cN { finalC += c.data }
        }
        var logits = matmul(x.reshaped([rows, h]), head.weight.value, transposeB: true)
        head.bias!.value.data.withUnsafeBufferPointer { b in
            logits.data.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows { for j in 0..<v { out[r * v + j] += b[j] } }
            }
        }
        let shape = [folded.layers, batch, h]
        return (logits, RecurrentState(h: Variable(Tensor(shape: shape, data: finalH)),
                                       c: kind.hasCellState ? Variable(Tensor(shape: shape, data: finalC)) : nil))
    }
}
