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
/// same numbers transposed. When the vocabulary is smaller than the embedding, long inputs run
/// through `FoldedEmbeddingStack` (the same function, computed with fewer operations).
public final class CharacterLanguageModel: Module {
    public let configuration: LanguageModelConfiguration
    public let vocabulary: Vocabulary
    public let embedding: Embedding
    public let rnn: RecurrentLayer
    public let head: Linear
    /// Dropout before the head (training only), `configuration.dropout`.
    let outputDropout: Dropout
    /// The same stack with the embedding folded into layer 0 (used when it is cheaper).
    let folded: FoldedEmbeddingStack
    /// Whether `callAsFunction` may use `folded` (tests turn it off to compare both paths).
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
        folded = FoldedEmbeddingStack(rnn: rnn, vocabularySize: v, embeddingSize: e)
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
        precondition(inputs.count == steps * batch, "CharacterLanguageModel: \(inputs.count) inputs for \(steps) steps × \(batch) rows")
        let output: Variable, final: RecurrentState
        if allowsFolding && folded.pays(rows: steps * batch) {
            (output, final) = folded(inputs, steps: steps, batch: batch, embedding: embedding.weight, state: state,
                                     training: training, dropout: configuration.dropout,
                                     dropoutGenerator: &rnn.dropoutGenerator)
        } else {
            let x = reshape(embedding(inputs), [steps, batch, configuration.embeddingSize])
            (output, final) = rnn(x, initialState: state)
        }
        var features = reshape(output, [steps * batch, configuration.hiddenSize])
        features = outputDropout(features, training: training, rng: &dropoutGenerator)
        return (head(features), final)
    }
}
