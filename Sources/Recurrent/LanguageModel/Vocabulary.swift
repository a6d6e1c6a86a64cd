/// The symbols a character-level model knows, in index order (index = row of `embedding.weight`
/// and of `head.weight`).
///
/// Built from a corpus it is the sorted set of its symbols (the order of Python's
/// `sorted(set(text))`). In `config.json` it is an array of one-character strings.
public struct Vocabulary: Sendable, Equatable {
    public let unit: TextUnit
    /// Scalar values (or bytes), ascending when built from a corpus; any order when loaded.
    public let symbols: [UInt32]
    /// Index of each symbol: a dense table below U+10000, a dictionary above.
    private let basicPlane: [Int32]
    private let otherPlanes: [UInt32: Int32]

    public init(symbols: [UInt32], unit: TextUnit) throws {
        self.unit = unit
        self.symbols = symbols
        var table = [Int32](repeating: -1, count: 0x10000)
        var rest: [UInt32: Int32] = [:]
        for (i, s) in symbols.enumerated() {
            if unit == .byte && s > 0xFF {
                throw RecurrentError.invalidCheckpoint("byte vocabulary entry \(i) is U+\(String(s, radix: 16, uppercase: true)), above U+00FF")
            }
            let seen = s < 0x10000 ? table[Int(s)] >= 0 : rest[s] != nil
            if seen { throw RecurrentError.invalidCheckpoint("vocabulary lists \(Vocabulary.describe(s)) twice") }
            if s < 0x10000 { table[Int(s)] = Int32(i) } else { rest[s] = Int32(i) }
        }
        basicPlane = table
        otherPlanes = rest
    }

    /// The sorted distinct symbols of a corpus.
    public init(corpus: TextCorpus) {
        var present = [Bool](repeating: false, count: 0x10000)
        var high = Set<UInt32>()
        for s in corpus.symbols {
            if s < 0x10000 { present[Int(s)] = true } else { high.insert(s) }
        }
        let symbols = (0..<0x10000).filter { present[$0] }.map { UInt32($0) } + high.sorted()
        // Distinct by construction.
        try! self.init(symbols: symbols, unit: corpus.unit)
    }

    /// From the `vocab` array of `config.json`: each entry must be exactly one Unicode scalar
    /// (for a byte vocabulary, one scalar ≤ U+00FF standing for that byte).
    public init(strings: [String], unit: TextUnit) throws {
        var symbols: [UInt32] = []
        for (i, s) in strings.enumerated() {
            let scalars = Array(s.unicodeScalars)
            guard scalars.count == 1 else {
                throw RecurrentError.invalidCheckpoint(
                    "vocab entry \(i) is \"\(s)\" (\(scalars.count) Unicode scalars); each entry must be exactly one character")
            }
            symbols.append(scalars[0].value)
        }
        try self.init(symbols: symbols, unit: unit)
    }

    public var count: Int { symbols.count }

    /// The `config.json` form: one one-character string per index.
    public var strings: [String] { symbols.map { String(Character(Unicode.Scalar($0)!)) } }

    /// Index of a symbol, or nil if unknown.
    @inline(__always) public func index(of symbol: UInt32) -> Int? {
        if symbol < 0x10000 {
            let i = basicPlane[Int(symbol)]
            return i >= 0 ? Int(i) : nil
        }
        return otherPlanes[symbol].map(Int.init)
    }

    /// Indices of every symbol of a corpus (built once per run). A symbol the vocabulary does
    /// not know is an error naming it and its position.
    public func encode(_ corpus: TextCorpus) throws -> [Int] {
        guard corpus.unit == unit else {
            throw RecurrentError.invalidArgument(
                "the model reads \(unit == .byte ? "bytes" : "characters") but '\(corpus.source)' was read as \(corpus.unit == .byte ? "bytes" : "characters")")
        }
        var out = [Int](repeating: 0, count: corpus.count)
        for (i, s) in corpus.symbols.enumerated() {
            guard let k = index(of: s) else {
                let (line, column) = corpus.lineAndColumn(of: i)
                throw RecurrentError.invalidArgument(
                    "\(corpus.source): \(Vocabulary.describe(s)) at position \(i) (line \(line), column \(column)) "
                    + "is not in the model's vocabulary of \(count) \(unit == .byte ? "bytes" : "characters")")
            }
            out[i] = k
        }
        return out
    }

    /// Indices of the symbols of a string (a prime). Unknown characters are an error.
    public func encode(text: String) throws -> [Int] {
        let symbols: [UInt32] = unit == .byte ? text.utf8.map { UInt32($0) } : text.unicodeScalars.map(\.value)
        return try encode(TextCorpus(symbols: symbols, unit: unit, source: "the prime text"))
    }

    /// The text of one symbol (a byte becomes its Latin-1 character when decoded alone; use
    /// `decodeBytes` to rebuild byte-level text).
    public func string(at index: Int) -> String { String(Character(Unicode.Scalar(symbols[index])!)) }

    /// A readable name for a symbol in messages: `'x' (U+0078)`, `newline (U+000A)`.
    public static func describe(_ s: UInt32) -> String {
        let hex = "U+" + String(repeating: "0", count: max(0, 4 - String(s, radix: 16).count)) + String(s, radix: 16, uppercase: true)
        switch s {
        case 0x0A: return "newline (\(hex))"
        case 0x09: return "tab (\(hex))"
        case 0x20: return "space (\(hex))"
        case 0..<0x20, 0x7F: return "control character \(hex)"
        default:
            guard let u = Unicode.Scalar(s) else { return hex }
            return "'\(Character(u))' (\(hex))"
        }
    }
}
