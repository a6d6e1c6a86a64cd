/// Writes text with a model, one symbol at a time: reads a prime, then repeatedly samples the
/// next symbol from `softmax(logits / τ)` (filtered by top-k / top-p) and feeds it back.
public struct TextGenerator {
    public let model: CharacterLanguageModel
    public let options: SamplingOptions
    public var generator: RandomGenerator
    var state: RecurrentState?
    var logits: [Float]

    /// Reads `prime` (symbol indices, at least one) from a zero state.
    public init(model: CharacterLanguageModel, prime: [Int], options: SamplingOptions, seed: UInt64) {
        precondition(!prime.isEmpty, "TextGenerator: the prime needs at least one symbol")
        self.model = model
        self.options = options
        generator = RandomGenerator(seed: seed)
        let (out, final) = model.predict(prime, steps: prime.count, batch: 1, state: nil)
        let v = model.vocabulary.count
        logits = Array(out.data[((prime.count - 1) * v)..<(prime.count * v)])
        state = final
    }

    /// The prime used when none is given: a newline if the vocabulary has one, else its first symbol.
    public static func defaultPrime(_ vocabulary: Vocabulary) -> [Int] {
        [vocabulary.index(of: 0x0A) ?? 0]
    }

    /// Samples the next symbol and advances the model past it.
    public mutating func next() -> Int {
        let index = Sampler.sample(logits: logits, options: options, generator: &generator)
        let (out, final) = model.predict([index], steps: 1, batch: 1, state: state)
        logits = out.data
        state = final
        return index
    }

    /// `count` symbols as text (characters; bytes are decoded as UTF-8 with replacement).
    public mutating func text(count: Int) -> String {
        let indices = (0..<count).map { _ in next() }
        return TextGenerator.decode(indices, vocabulary: model.vocabulary)
    }

    /// Indices → text. For a byte vocabulary the bytes are decoded as UTF-8 (invalid sequences
    /// become U+FFFD).
    public static func decode(_ indices: [Int], vocabulary: Vocabulary) -> String {
        if vocabulary.unit == .byte {
            return String(decoding: indices.map { UInt8(vocabulary.symbols[$0]) }, as: UTF8.self)
        }
        var s = String.UnicodeScalarView()
        for i in indices { s.append(Unicode.Scalar(vocabulary.symbols[i])!) }
        return String(s)
    }
}
