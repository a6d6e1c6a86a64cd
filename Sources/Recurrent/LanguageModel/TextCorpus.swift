import Foundation

/// A training text as a sequence of symbols: Unicode scalar values (`.character`) or bytes
/// (`.byte`), with the name of where it came from for messages.
///
/// Loading checks what would otherwise fail late or silently: a missing or empty file, a binary
/// file (NUL bytes or mostly control bytes), text that is not UTF-8 (the message gives the byte
/// offset and line of the first bad sequence).
public struct TextCorpus: Sendable, Equatable {
    public let unit: TextUnit
    /// Scalar values (`.character`) or byte values (`.byte`), in file order.
    public let symbols: [UInt32]
    /// A path or a description (`fortunes (43 files under /usr/share/games/fortunes)`).
    public let source: String

    public init(symbols: [UInt32], unit: TextUnit, source: String) {
        self.symbols = symbols
        self.unit = unit
        self.source = source
    }

    public var count: Int { symbols.count }

    /// Reads and validates one file.
    public static func load(path: String, unit: TextUnit = .character) throws -> TextCorpus {
        try decode(bytes: FileSystem.readRegularFile(path), unit: unit, source: path)
    }

    /// Validates and decodes bytes already read.
    public static func decode(bytes: [UInt8], unit: TextUnit, source: String) throws -> TextCorpus {
        guard !bytes.isEmpty else { throw RecurrentError.invalidFile("'\(source)' is empty: a corpus needs text") }
        if unit == .byte { return TextCorpus(symbols: bytes.map { UInt32($0) }, unit: .byte, source: source) }
        if let nul = bytes.firstIndex(of: 0) {
            throw RecurrentError.invalidFile(
                "'\(source)' looks like a binary file (NUL byte at byte offset \(nul)); "
                + "train on text, or pass --bytes to model raw bytes")
        }
        let controls = bytes.reduce(0) { $0 + (isBinaryControl($1) ? 1 : 0) }
        if controls * 10 > bytes.count {
            throw RecurrentError.invalidFile(
                "'\(source)' looks like a binary file (\(controls) of \(bytes.count) bytes are control bytes); "
                + "train on text, or pass --bytes to model raw bytes")
        }
        switch UTF8Validation.decode(bytes) {
        case .success(let scalars):
            return TextCorpus(symbols: scalars, unit: .character, source: source)
        case .failure(let bad):
            let line = bytes[..<bad.offset].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            throw RecurrentError.invalidFile(
                "'\(source)' is not valid UTF-8: byte 0x\(String(bad.byte, radix: 16, uppercase: true)) "
                + "at byte offset \(bad.offset) (line \(line)) does not start a valid sequence; "
                + "convert it (iconv -t UTF-8) or pass --bytes to model raw bytes")
        }
    }

    /// Control bytes that do not occur in ordinary text (tab, newlines, form feed, backspace and
    /// escape do).
    static func isBinaryControl(_ b: UInt8) -> Bool {
        b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0B && b != 0x0C && b != 0x0D && b != 0x08 && b != 0x1B
    }

    /// Where the `fortunes` package installs its text on Debian and Ubuntu.
    public static let defaultDirectory = "/usr/share/games/fortunes"

    /// The default corpus: every regular file under `directory` (recursively, by sorted path),
    /// skipping symbolic links and `.dat` index files, concatenated.
    public static func loadDefault(directory: String = defaultDirectory, unit: TextUnit = .character) throws -> TextCorpus {
        guard FileSystem.isDirectory(directory) else {
            throw RecurrentError.invalidFile(
                "no --data given and the default corpus is missing: \(directory) does not exist. "
                + "Install it with `sudo apt-get install -y fortunes` (Debian/Ubuntu) or pass --data FILE")
        }
        let files = FileSystem.regularFiles(under: directory).filter { !$0.hasSuffix(".dat") }
        var bytes = [UInt8]()
        for file in files { bytes += try FileSystem.readRegularFile(file) }
        guard !files.isEmpty, !bytes.isEmpty else {
            throw RecurrentError.invalidFile("the default corpus \(directory) holds no text files; pass --data FILE")
        }
        return try decode(bytes: bytes, unit: unit,
                          source: "\(directory) (\(files.count) files, \(bytes.count) bytes)")
    }

    /// FNV-1a over the symbols: identifies the text a run was trained on.
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for s in symbols {
            h = (h ^ UInt64(s)) &* 0x0000_0100_0000_01B3
        }
        return String(h, radix: 16)
    }

    /// Line and column (1-based) of symbol `index`, for messages.
    public func lineAndColumn(of index: Int) -> (line: Int, column: Int) {
        var line = 1, lineStart = 0
        for i in 0..<min(index, symbols.count) where symbols[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return (line, index - lineStart + 1)
    }
}
