/// The recurrent stack of a `CharacterLanguageModel` with the embedding folded into the first
/// layer's input weights, an exact rewrite that saves most of the first layer's input work when
/// the vocabulary is smaller than the embedding (V < E).
///
/// Layer 0 reads `x_t = E[s_t]` and computes `x_t · W_ihᵀ`. With `M = W_ih · Eᵀ` `[G·H, V]`,
/// that product is row `s_t` of `M`ᵀ, i.e. `onehot(s_t) · Mᵀ`: the layer runs on one-hot inputs
/// `[T, B, V]` with input weights `M`. The products then have width V instead of E, and the
/// backward needs no gradient for the input (the one-hot is a constant); `dM` flows back to
/// `W_ih` (`dM · E`) and to `E` (`dMᵀ · W_ih`) through the tape. Layers above run as in
/// `RecurrentLayer` (one fused node per layer, inter-layer dropout from its generator).
struct FoldedEmbeddingStack {
    let kind: CellKind
    let layers: Int
    let hidden: Int
    let vocabularySize: Int
    let embeddingSize: Int
    /// `(weight_ih, weight_hh, bias_ih, bias_hh)` of each layer.
    let parameters: [(Variable, Variable, Variable, Variable)]

    init(rnn: RecurrentLayer, vocabularySize: Int, embeddingSize: Int) {
        let byName = Dictionary(uniqueKeysWithValues: rnn.namedParameters())
        kind = rnn.kind
        layers = rnn.numLayers
        hidden = rnn.hiddenSize
        self.vocabularySize = vocabularySize
        self.embeddingSize = embeddingSize
        parameters = (0..<rnn.numLayers).map { k in
            (byName["weight_ih_l\(k)"]!, byName["weight_hh_l\(k)"]!, byName["bias_ih_l\(k)"]!, byName["bias_hh_l\(k)"]!)
        }
    }

    /// Whether folding costs fewer operations for `rows` = T·B inputs: the one-hot product
    /// (width V) plus forming M (E·V per gate row) against the embedding product (width E).
    func pays(rows: Int) -> Bool {
        vocabularySize < embeddingSize && rows * (embeddingSize - vocabularySize) > embeddingSize * vocabularySize
    }

    /// `inputs` `T·B` time-major indices → output `[T, B, H]` and the final state `[L, B, H]`.
    func callAsFunction(_ inputs: [Int], steps: Int, batch: Int, embedding: Variable, state: RecurrentState?,
                        training: Bool, dropout: Float, dropoutGenerator: inout RandomGenerator)
        -> (output: Variable, state: RecurrentState) {
        let v = vocabularySize
        var oneHot = [Float](repeating: 0, count: steps * batch * v)
        for (row, symbol) in inputs.enumerated() { oneHot[row * v + symbol] = 1 }
        var x = Variable(Tensor(shape: [steps, batch, v], data: oneHot))
        let initialH = state.map { unstack($0.h) }
        let initialC = state?.c.map { unstack($0) }
        let zeros = Variable(Tensor(zeros: [batch, hidden]))
        var finalH: [Variable] = [], finalC: [Variable] = []
        for k in 0..<layers {
            let (wih, whh, bih, bhh) = parameters[k]
            let weightIH = k == 0 ? matmul(wih, embedding, transposeB: true) : wih   // M = W_ih·Eᵀ [G·H, V]
            let r = FusedSequence.apply(kind: kind, x: x, weightIH: weightIH, weightHH: whh, biasIH: bih, biasHH: bhh,
                                        h0: initialH?[k] ?? zeros,
                                        c0: kind.hasCellState ? (initialC?[k] ?? zeros) : nil,
                                        lengths: nil, reverse: false)
            x = training && dropout > 0 && k < layers - 1
                ? Dropout(probability: dropout)(r.output, training: true, rng: &dropoutGenerator) : r.output
            finalH.append(r.hN)
            if let c = r.cN { finalC.append(c) }
        }
        return (x, RecurrentState(h: stack(finalH), c: finalC.isEmpty ? nil : stack(finalC)))
    }
}
