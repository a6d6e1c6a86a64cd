#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Recurrent

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write text with a trained character-level model; characters stream to stdout as they are produced.")

    @Option(help: "Checkpoint directory, or a run directory (uses its best checkpoint).") var checkpoint: String
    @Option(help: "Text to start from (printed first). Default: a newline, not printed.") var prime: String?
    @Option(help: "Characters to generate (default 500).") var length = 500
    @Option(help: "Sampling temperature > 0 (default 1).") var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "Sample among the k most likely characters only.") var topK: Int?
    @Option(name: .customLong("top-p"), help: "Sample among the most likely characters whose probability reaches p.") var topP: Float?
    @Flag(help: "Always take the most likely character.") var argmax = false
    @Option(help: "Random seed (default: a new one each run).") var seed: UInt64?
    @Option(help: "Threads (default 1: one character at a time does not parallelize).") var threads = 1

    func run() throws {
        guard length >= 0 else { throw ValidationError("--length must be ≥ 0") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP, argmax: argmax)
        try options.validate()
        ThreadTeam.threads = threads
        let model = try LanguageModelCheckpoint.loadModel(checkpoint)
        let vocabulary = model.vocabulary
        let primeIndices: [Int]
        if let prime {
            guard !prime.isEmpty else { throw ValidationError("--prime must not be empty") }
            primeIndices = try vocabulary.encode(text: prime)
        } else {
            primeIndices = TextGenerator.defaultPrime(vocabulary)
        }
        var generator = TextGenerator(model: model, prime: primeIndices, options: options,
                                      seed: seed ?? UInt64.random(in: 0...UInt64.max))
        let output = StreamingOutput(unit: vocabulary.unit)
        if let prime { output.write(Array(prime.utf8)) }
        var last: UInt32 = prime?.unicodeScalars.last?.value ?? 0x0A
        for _ in 0..<length {
            let index = generator.next()
            last = vocabulary.symbols[index]
            output.write(symbol: last)
        }
        if isatty(STDOUT_FILENO) != 0 && last != 0x0A { output.write([0x0A]) }
    }
}

/// Writes symbols to stdout as they come, flushing after each: characters as UTF-8, bytes as
/// themselves.
struct StreamingOutput {
    let unit: TextUnit

    func write(symbol: UInt32) {
        if unit == .byte {
            write([UInt8(symbol)])
        } else {
            write(Array(String(Character(Unicode.Scalar(symbol)!)).utf8))
        }
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
        fflush(stdout)
    }
}
