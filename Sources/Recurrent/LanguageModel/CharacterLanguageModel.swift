/// A character-level language model, the PyTorch module
/// `Embedding(V, E) → RNN/LSTM/GRU(E, H, L, batch_first=True) → Linear(H, V)`:
///
///     x_t = E[s_t]                    (embedding row of symbol s_t)
///     h_t = recurrence(x_t, h_{t-1})  (L stacked layers, state carried between windows)
///     logits_t = W_head h_t + b_head  (V scores for symbol t+1)
///
/// Parameter keys are those of that module's `state_dict`: `embedding.weight` `[V, E]`,
/// `rnn.weight_ih_l{k}` `[G·H, I_k]`, `rnn.weight_hh_l{k}` `[G·H, H]`, `rnn.bias_ih_l{k}`,
/// `rnn.bias_hh_l{k}` `[G·H]`, `head.weight` `[V, H]`, `head.bias` `[V]`.
/// Initialisation is PyTorch's default: embedding N(0, 1), recurrent and head weights and biases
/// U(−1/√H, 1/√H).
///
/// Data runs time-major inside (`[T, B, ·]`, element `t·B + b`); batch-first PyTorch code sees the
/// same numbers transposed.
///
/// When the vocabulary is smaller than the embedding (V < E), long inputs fold the embedding into
/// layer 0, an exact rewrite with fewer operations: layer 0 computes `x_t · W_ihᵀ` with
/// `x_t = E[s_t]`, which is `onehot(s_t) · Mᵀ` for `M = W_ih · Eᵀ` `[G·H, V]`; so the layer runs on
/// one-hot inputs `[T, B, V]` with input weights M, its products have width V instead of E, it
/// needs no input gradient, and `dM` flows back to `W_ih` and `E` through the tape. A fused
/// layer 0 goes further: it gathers each step's column of M by symbol (no product with the
/// one-hot input at all) and sums rows of its gate gradients into `dM`.
public final class CharacterLanguageModel: Module {
    public let configuration: LanguageModelConfiguration
    public let vocabulary: Vocabulary
    public let embedding: Embedding
    public let rnn: RecurrentLayer
    public let head: Linear
    /// Dropout before the head (training only), `configuration.dropout`.
    let outputDropout: Dropout
    /// Whether long inputs may fold the embedding into layer 0 (tests turn it off to compare).
    var allowsFolding = true

    public init(configuration: LanguageModelConfiguration, rng: inout RandomGenerator) throws {
        self.configuration = configuration
        vocabulary = try configuration.vocabulary()
        let v = vocabulary.count, e = configuration.embeddingSize, h = configuration.hiddenSize
        embedding = Embedding(count: v, dimension: e, rng: &rng)
        rnn = RecurrentLayer(kind: configuration.cellKind, inputSize: e, hiddenSize: h,
                             numLayers: configuration.numLayers, dropout: configuration.dropout, rng: &rng)
        head = Linear(inputSize: h, outputSize: v, rng: &rng)
        let bound = 1 / Float(h).squareRoot()
        head.weight.value = rng.uniformTensor([v, h], low: -bound, high: bound)
        head.bias!.value = rng.uniformTensor([v], low: -bound, high: bound)
        outputDropout = Dropout(probability: configuration.dropout)
    }

    public func namedParameters() -> [(String, Variable)] {
        prefixed("embedding", embedding) + prefixed("rnn", rnn) + prefixed("head", head)
    }

    /// Whether dropout is active (training) or not (evaluation, sampling).
    public var training: Bool {
        get { rnn.training }
        set { rnn.training = newValue }
    }

    /// `inputs` `T·B` symbol indices, time-major (element `t·B + b`) → logits `[T·B, V]` in the
    /// same order, and the state after the last step (`[L, B, H]` each). `state` nil: zeros.
    /// `dropoutGenerator` draws the output-dropout mask while training.
    public func callAsFunction(_ inputs: [Int], steps: Int, batch: Int, state: RecurrentState?,
                               dropoutGenerator: inout RandomGenerator) -> (logits: Variable, state: RecurrentState) {
        forward(inputs, steps: steps, batch: batch, state: state, training: training, dropoutGenerator: &dropoutGenerator)
    }

    /// Inference (evaluation, sampling, cell activations): the same function without dropout and
    /// without recording, on values.
    public func predict(_ inputs: [Int], steps: Int, batch: Int, state: RecurrentState?) -> (logits: Tensor, state: RecurrentState) {
        var unused = RandomGenerator(seed: 0)
        let (logits, final) = GradientMode.withoutGradients {
            forward(inputs, steps: steps, batch: batch, state: state, training: false, dropoutGenerator: &unused)
        }
        return (logits.value, final)
    }

    /// Whether folding the embedding into layer 0 costs fewer operations for `rows` = T·B inputs:
    /// the one-hot product (width V) plus forming M (E·V per gate row) against width E.
    func foldingPays(rows: Int) -> Bool {
        let v = vocabulary.count, e = configuration.embeddingSize
        return v < e && rows * (e - v) > e * v
    }

    func forward(_ inputs: [Int], steps: Int, batch: Int, state: RecurrentState?, training: Bool,
                 dropoutGenerator: inout RandomGenerator) -> (logits: Variable, state: RecurrentState) {
        let rows = steps * batch
        precondition(inputs.count == rows, "CharacterLanguageModel: \(inputs.count) inputs for \(steps) steps × \(batch) rows")
        let output: Variable, final: RecurrentState
        if allowsFolding && foldingPays(rows: rows) {
            let v = vocabulary.count
            var oneHot = [Float](repeating: 0, count: rows * v)
            for (row, symbol) in inputs.enumerated() { oneHot[row * v + symbol] = 1 }
            let m = matmul(rnn.directionParameters[0][0].weightIH, embedding.weight, transposeB: true)   // [G·H, V]
            (output, final) = rnn.run(Variable(Tensor(shape: [steps, batch, v], data: oneHot)),
                                      firstLayerInputWeights: [m], firstLayerSymbols: inputs, initialState: state,
                                      lengths: nil, training: training)
        } else {
            let x = reshape(embedding(inputs), [steps, batch, configuration.embeddingSize])
            (output, final) = rnn.run(x, initialState: state, lengths: nil, training: training)
        }
        var features = reshape(output, [rows, configuration.hiddenSize])
        features = outputDropout(features, training: training, rng: &dropoutGenerator)
        return (head(features), final)
    }
}
