import Foundation

/// `config.json` of a checkpoint: what is needed to rebuild the model
/// `Embedding(V, E) → RNN/LSTM/GRU(E, H, L, batch_first) → Linear(H, V)` and map its indices to text.
///
/// Required: `cell` (`lstm`, `gru`, `rnn`), `embedding_size`, `hidden_size`, `num_layers`,
/// `vocab` (one-character strings in index order). Optional: `format_version` (1),
/// `nonlinearity` (`tanh` or `relu`, rnn only; default `tanh`), `unit` (`char` or `byte`;
/// default `char`), `dropout` (0; used in training only).
public struct LanguageModelConfiguration: Sendable, Equatable, Codable {
    /// The only checkpoint format this build reads and writes.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var cell: Cell
    public var nonlinearity: Nonlinearity
    public var embeddingSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var vocab: [String]
    public var unit: TextUnit
    public var dropout: Float

    public enum Cell: String, Sendable, Codable, CaseIterable { case lstm, gru, rnn }
    public enum Nonlinearity: String, Sendable, Codable, CaseIterable { case tanh, relu }

    public init(cell: Cell, nonlinearity: Nonlinearity = .tanh, embeddingSize: Int, hiddenSize: Int,
                numLayers: Int, vocabulary: Vocabulary, dropout: Float = 0) {
        self.formatVersion = LanguageModelConfiguration.currentFormatVersion
        self.cell = cell
        self.nonlinearity = nonlinearity
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.vocab = vocabulary.strings
        self.unit = vocabulary.unit
        self.dropout = dropout
    }

    /// The recurrence the layer runs.
    public var cellKind: CellKind {
        switch cell {
        case .lstm: return .lstm
        case .gru: return .gru
        case .rnn: return nonlinearity == .relu ? .rnnReLU : .rnnTanh
        }
    }

    public func vocabulary() throws -> Vocabulary { try Vocabulary(strings: vocab, unit: unit) }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", cell, nonlinearity, embeddingSize = "embedding_size",
             hiddenSize = "hidden_size", numLayers = "num_layers", vocab, unit, dropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func required<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ what: String) throws -> T {
            guard c.contains(key) else { throw RecurrentError.invalidCheckpoint("config.json: missing field '\(key.rawValue)' (\(what))") }
            do { return try c.decode(T.self, forKey: key) } catch {
                throw RecurrentError.invalidCheckpoint("config.json: field '\(key.rawValue)' must be \(what)")
            }
        }
        func optional<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ what: String) throws -> T? {
            guard c.contains(key) else { return nil }
            do { return try c.decode(T.self, forKey: key) } catch {
                throw RecurrentError.invalidCheckpoint("config.json: field '\(key.rawValue)' must be \(what)")
            }
        }
        formatVersion = try optional(.formatVersion, Int.self, "an integer") ?? LanguageModelConfiguration.currentFormatVersion
        guard formatVersion == LanguageModelConfiguration.currentFormatVersion else {
            throw RecurrentError.invalidCheckpoint(
                "config.json: checkpoint format version \(formatVersion) is not supported (this build reads version \(LanguageModelConfiguration.currentFormatVersion))")
        }
        cell = try required(.cell, Cell.self, "one of \"lstm\", \"gru\", \"rnn\"")
        nonlinearity = try optional(.nonlinearity, Nonlinearity.self, "\"tanh\" or \"relu\"") ?? .tanh
        embeddingSize = try required(.embeddingSize, Int.self, "a positive integer")
        hiddenSize = try required(.hiddenSize, Int.self, "a positive integer")
        numLayers = try required(.numLayers, Int.self, "a positive integer")
        vocab = try required(.vocab, [String].self, "an array of one-character strings")
        unit = try optional(.unit, TextUnit.self, "\"char\" or \"byte\"") ?? .character
        dropout = try optional(.dropout, Float.self, "a number in [0, 1)") ?? 0
        for (name, v) in [("embedding_size", embeddingSize), ("hidden_size", hiddenSize), ("num_layers", numLayers)] where v <= 0 {
            throw RecurrentError.invalidCheckpoint("config.json: field '\(name)' must be a positive integer, got \(v)")
        }
        guard !vocab.isEmpty else { throw RecurrentError.invalidCheckpoint("config.json: 'vocab' is empty") }
        if nonlinearity == .relu && cell != .rnn {
            throw RecurrentError.invalidCheckpoint("config.json: 'nonlinearity' applies to cell \"rnn\" only, not \"\(cell.rawValue)\"")
        }
        _ = try vocabulary()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(cell, forKey: .cell)
        if cell == .rnn { try c.encode(nonlinearity, forKey: .nonlinearity) }
        try c.encode(embeddingSize, forKey: .embeddingSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(unit, forKey: .unit)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(vocab, forKey: .vocab)
    }

    /// Pretty-printed JSON with sorted keys.
    public func jsonText() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
    }

    /// Reads `config.json` text.
    public static func parse(_ bytes: [UInt8], source: String) throws -> LanguageModelConfiguration {
        do {
            return try JSONDecoder().decode(LanguageModelConfiguration.self, from: Data(bytes))
        } catch let e as RecurrentError {
            throw RecurrentError.invalidCheckpoint("\(source): \(e.description.replacingOccurrences(of: "config.json: ", with: ""))")
        } catch {
            throw RecurrentError.invalidCheckpoint("\(source) is not valid JSON")
        }
    }
}
