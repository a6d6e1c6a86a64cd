#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Recurrent

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a character-level model on a text file: nats and bits per character, perplexity.",
        discussion: """
        The model reads FILE from the start with a zero state, carrying its state through the whole file, \
        and predicts each character from all that precede it; the loss is the mean cross-entropy over \
        every character but the first.
        """)

    @Option(help: "Checkpoint directory, or a run directory (uses its best checkpoint).") var checkpoint: String
    @Option(help: "Text file to measure.") var data: String
    @Flag(help: "End stdout with one JSON object (loss, bits_per_char, perplexity, characters).") var json = false
    @Option(help: "Characters per forward pass (memory vs. speed; the result does not depend on it).") var chunk = 1024
    @Option(help: "Threads to share the work between (default: the cores this process may use).") var threads: Int?

    func run() throws {
        guard chunk > 0 else { throw ValidationError("--chunk must be positive") }
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be positive") }
            ThreadTeam.threads = threads
        }
        let model = try LanguageModelCheckpoint.loadModel(checkpoint)
        let corpus = try TextCorpus.load(path: data, unit: model.vocabulary.unit)
        let text = try model.vocabulary.encode(corpus)
        guard text.count >= 2 else {
            throw RecurrentError.invalidFile("'\(data)' has \(text.count) character; evaluation needs at least 2 (the first is only context)")
        }
        let started = monotonicSeconds()
        let loss = LanguageModelEvaluation.evaluate(model, text: text, streams: 1, chunkLength: chunk)
        let seconds = monotonicSeconds() - started
        if json {
            var j = JSONLine()
            j.add("loss", loss.nats)
            j.add("bits_per_char", loss.bitsPerCharacter)
            j.add("perplexity", loss.perplexity)
            j.add("characters", loss.characters)
            j.add("file", data)
            j.add("checkpoint", try LanguageModelCheckpoint.resolve(checkpoint))
            j.add("seconds", (seconds * 1000).rounded() / 1000)
            print(j.text)
        } else {
            print("\(data): \(format(loss.nats)) nats/char, \(format(loss.bitsPerCharacter)) bits/char, "
                  + "perplexity \(format(loss.perplexity)) over \(loss.characters) characters")
        }
    }

    func format(_ x: Double) -> String {
        let r = (x * 10_000).rounded() / 10_000
        var s = "\(r)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            s += String(repeating: "0", count: max(0, 4 - decimals))
        }
        return s
    }
}
