#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Mean cross-entropy of a model's predictions: nats per character, with bits per character
/// (`nats / ln 2`) and perplexity (`e^nats`).
public struct LanguageModelLoss: Sendable, Equatable {
    /// Σ −ln p(s_{i+1} | s_0 … s_i) over the predicted characters.
    public var totalNats: Double
    /// Characters predicted (every character but the first of each stream).
    public var characters: Int

    public var nats: Double { totalNats / Double(max(characters, 1)) }
    public var bitsPerCharacter: Double { nats / 0.693_147_180_559_945_3 }
    public var perplexity: Double { exp(nats) }
}

/// Measures how well a model predicts a text.
public enum LanguageModelEvaluation {
    /// Reads `text` (symbol indices) as `streams` contiguous pieces in parallel, each from a zero
    /// state with the state carried from chunk to chunk, so that every symbol but the first is
    /// predicted exactly once, from all the symbols before it in its piece.
    ///
    /// With one stream this is the `recurrent eval` definition: the whole text from the start,
    /// each character predicted from all that precede it. More streams run faster (batched) and
    /// lose the context at the `streams − 1` cuts. `shouldStop` is checked between chunks (a
    /// stopped evaluation returns what was measured so far).
    public static func evaluate(_ model: CharacterLanguageModel, text: [Int], streams requested: Int = 1,
                                chunkLength: Int = 256, shouldStop: () -> Bool = { false }) -> LanguageModelLoss {
        let predictions = text.count - 1
        guard predictions > 0 else { return LanguageModelLoss(totalNats: 0, characters: 0) }
        let s = max(1, min(requested, predictions))
        // Stream k predicts positions start[k] ..< start[k] + length[k].
        let base = predictions / s, extra = predictions % s
        var start = [Int](repeating: 0, count: s), length = [Int](repeating: 0, count: s)
        var position = 0
        for k in 0..<s {
            start[k] = position
            length[k] = base + (k < extra ? 1 : 0)
            position += length[k]
        }
        let longest = length.max()!
        var state: RecurrentState?
        var total = 0.0
        var counted = 0
        var inputs = [Int](), targets = [Int]()
        var offset = 0
        while offset < longest {
            if shouldStop() { break }
            let t = min(chunkLength, longest - offset)
            inputs = [Int](repeating: 0, count: t * s)
            targets = [Int](repeating: -1, count: t * s)
            for k in 0..<s {
                for step in 0..<t where offset + step < length[k] {
                    let i = start[k] + offset + step
                    inputs[step * s + k] = text[i]
                    targets[step * s + k] = text[i + 1]
                }
            }
            let (logits, final) = model.predict(inputs, steps: t, batch: s, state: state)
            let (nats, n) = summedCrossEntropy(logits, targets: targets)
            total += nats
            counted += n
            state = final
            offset += t
        }
        return LanguageModelLoss(totalNats: total, characters: counted)
    }

    /// Σ (logsumexp(x_n) − x_{n, t_n}) over rows whose target is not negative, in Double.
    static func summedCrossEntropy(_ logits: Tensor, targets: [Int]) -> (nats: Double, count: Int) {
        let c = logits.shape[logits.rank - 1]
        var total = 0.0
        var count = 0
        logits.data.withUnsafeBufferPointer { x in
            for (r, target) in targets.enumerated() where target >= 0 {
                let row = r * c
                var m = -Float.infinity
                for j in 0..<c { m = max(m, x[row + j]) }
                var sum = 0.0
                for j in 0..<c { sum += Double(expf(x[row + j] - m)) }
                total += Double(m) + log(sum) - Double(x[row + target])
                count += 1
            }
        }
        return (total, count)
    }
}
