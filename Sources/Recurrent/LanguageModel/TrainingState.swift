import Foundation

/// `state.json` of a checkpoint: where training stands, so `--resume` continues exactly.
///
/// Together with `optimizer.safetensors` (the optimizer's buffers and step counts) and
/// `carried_state.safetensors` (the recurrent state carried into the next window) it pins
/// everything a run depends on: the step, the position of the streams, every random generator,
/// the best validation loss so far and the options.
struct TrainingState: Codable, Equatable {
    var formatVersion = LanguageModelConfiguration.currentFormatVersion
    /// Steps completed.
    var step: Int
    /// Validation loss of these weights (nats/char), if they were validated.
    var validationLoss: Double?
    var bestValidationLoss: Double?
    var bestStep: Int?
    var streams: TrainingStreams
    /// Draws the epoch shifts of the streams.
    var streamGenerator: GeneratorState
    /// Inter-layer dropout masks of the recurrent layer.
    var layerDropoutGenerator: GeneratorState
    /// Dropout mask before the head.
    var outputDropoutGenerator: GeneratorState
    /// Training seconds so far (steps and validations).
    var elapsed: Double
    /// Symbols trained on so far.
    var trainedCharacters: Int
    var options: TrainingOptions
    var corpus: CorpusRecord

    /// The text a run was trained on.
    struct CorpusRecord: Codable, Equatable {
        /// The file, or nil for the default corpus.
        var path: String?
        var description: String
        var count: Int
        var fingerprint: String
    }

    /// A generator's four words as hex strings (JSON numbers lose bits above 2⁵³).
    struct GeneratorState: Codable, Equatable {
        var words: [String]
        init(_ g: RandomGenerator) { words = g.state.map { String($0, radix: 16) } }
        func generator() throws -> RandomGenerator {
            let w = words.compactMap { UInt64($0, radix: 16) }
            guard w.count == 4 else { throw RecurrentError.invalidCheckpoint("state.json: a random generator state needs 4 hex words") }
            return RandomGenerator(state: w)
        }
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    func jsonText() throws -> String {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
    }

    static func read(_ path: String) throws -> TrainingState {
        let bytes = try FileSystem.readRegularFile(path)
        struct Version: Decodable { var formatVersion: Int? }
        guard let version = try? decoder().decode(Version.self, from: Data(bytes)) else {
            throw RecurrentError.invalidCheckpoint("\(path) is not valid JSON")
        }
        guard version.formatVersion == LanguageModelConfiguration.currentFormatVersion else {
            throw RecurrentError.invalidCheckpoint(
                "\(path): checkpoint format version \(version.formatVersion.map(String.init) ?? "(missing)") is not supported "
                + "(this build reads version \(LanguageModelConfiguration.currentFormatVersion))")
        }
        do {
            return try decoder().decode(TrainingState.self, from: Data(bytes))
        } catch {
            throw RecurrentError.invalidCheckpoint("\(path) is damaged or incomplete (\(error))")
        }
    }
}
