import Foundation
import Testing
@testable import Recurrent

/// A fresh temporary directory for one test.
func temporaryDirectory(_ name: String = #function) -> String {
    let base = FileManager.default.temporaryDirectory.path
    let dir = "\(base)/recurrent-tests-\(getpid())-\(name.filter { $0.isLetter || $0.isNumber })-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func expectError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing \"\(fragment)\"", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(fragment), "message was: \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Language model data")
struct LanguageModelDataTests {
    @Test func utf8DecodingMatchesSwift() throws {
        let text = "héllo, wörld — 𝄞 ok\n"
        let corpus = try TextCorpus.decode(bytes: Array(text.utf8), unit: .character, source: "t")
        #expect(corpus.symbols == text.unicodeScalars.map(\.value))
    }

    @Test func invalidUTF8NamesByteOffsetAndLine() {
        var bytes = Array("ab\ncd".utf8)
        bytes.append(0xFF)
        bytes += Array("ef".utf8)
        expectError("byte offset 5 (line 2)") { _ = try TextCorpus.decode(bytes: bytes, unit: .character, source: "x.txt") }
        // Overlong encoding of "/" and a lone surrogate are refused too.
        expectError("byte offset 1") { _ = try TextCorpus.decode(bytes: [0x41, 0xC0, 0xAF], unit: .character, source: "x") }
        expectError("byte offset 0") { _ = try TextCorpus.decode(bytes: [0xED, 0xA0, 0x80], unit: .character, source: "x") }
        // Truncated sequence at the end.
        expectError("byte offset 2") { _ = try TextCorpus.decode(bytes: [0x41, 0x42, 0xE2, 0x82], unit: .character, source: "x") }
    }

    @Test func binaryEmptyAndMissingFilesAreRefused() throws {
        let dir = temporaryDirectory()
        writeFile("\(dir)/bin", [0x7F, 0x45, 0x4C, 0x46, 0x00, 0x01])
        writeFile("\(dir)/empty", [])
        expectError("binary file (NUL byte at byte offset 4)") { _ = try TextCorpus.load(path: "\(dir)/bin") }
        expectError("is empty") { _ = try TextCorpus.load(path: "\(dir)/empty") }
        expectError("no such file") { _ = try TextCorpus.load(path: "\(dir)/missing") }
        expectError("is a directory") { _ = try TextCorpus.load(path: dir) }
        // Raw bytes are accepted with the byte unit.
        let raw = try TextCorpus.load(path: "\(dir)/bin", unit: .byte)
        #expect(raw.symbols == [0x7F, 0x45, 0x4C, 0x46, 0x00, 0x01])
        // Mostly control bytes without NUL is binary as well.
        expectError("control bytes") { _ = try TextCorpus.decode(bytes: [1, 2, 3, 65, 4, 5], unit: .character, source: "c") }
    }

    @Test func defaultCorpusReadsRegularFilesSkippingIndexesAndLinks() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
        writeFile("\(dir)/b", Array("second\n".utf8))
        writeFile("\(dir)/a", Array("first\n".utf8))
        writeFile("\(dir)/a.dat", [0, 0, 0, 1])
        writeFile("\(dir)/sub/c", Array("third\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/a.u8", withDestinationPath: "a")
        let corpus = try TextCorpus.loadDefault(directory: dir)
        #expect(corpus.symbols == "first\nsecond\nthird\n".unicodeScalars.map(\.value))
        expectError("apt-get install -y fortunes") { _ = try TextCorpus.loadDefault(directory: "\(dir)/nope") }
    }

    @Test func vocabularyIsSortedAndNamesUnknownCharacters() throws {
        let corpus = TextCorpus(symbols: "baca\n".unicodeScalars.map(\.value), unit: .character, source: "t")
        let vocab = Vocabulary(corpus: corpus)
        #expect(vocab.strings == ["\n", "a", "b", "c"])
        #expect(try vocab.encode(corpus) == [2, 1, 3, 1, 0])
        let other = TextCorpus(symbols: "ab\nxa".unicodeScalars.map(\.value), unit: .character, source: "other.txt")
        expectError("other.txt: 'x' (U+0078) at position 3 (line 2, column 1)") { _ = try vocab.encode(other) }
        // Round trip through the config form, including a character outside the basic plane.
        let wide = try Vocabulary(strings: ["a", "𝄞", "\n"], unit: .character)
        #expect(wide.index(of: 0x1D11E) == 1)
        #expect(try Vocabulary(strings: wide.strings, unit: .character) == wide)
        expectError("exactly one character") { _ = try Vocabulary(strings: ["ab"], unit: .character) }
        expectError("twice") { _ = try Vocabulary(strings: ["a", "a"], unit: .character) }
    }

    @Test func splitBoundariesAndParsing() throws {
        let r = CorpusSplit.standard.ranges(count: 1_115_394)
        #expect(r.train == 0..<1_003_854)
        #expect(r.validation == 1_003_854..<1_059_624)
        #expect(r.test == 1_059_624..<1_115_394)
        #expect(try CorpusSplit(parsing: "90,5,5") == CorpusSplit(train: 0.9, validation: 0.05, test: 0.05))
        let two = try CorpusSplit(parsing: "0.9,0.1")
        #expect(two.ranges(count: 1000).validation == 900..<1000)
        #expect(two.ranges(count: 1000).test.isEmpty)
        expectError("sum to 100") { _ = try CorpusSplit(parsing: "90,20,5") }
        expectError("TRAIN,VALID") { _ = try CorpusSplit(parsing: "ninety") }
    }

    @Test func streamsAreTimeMajorContiguousAndWrapAtEpochs() throws {
        // N = 21 symbols, B = 2, T = 3: S = 10 inputs per segment, 3 windows per first epoch.
        let text = Array(0..<21)
        var streams = try TrainingStreams(textCount: 21, batchSize: 2, windowLength: 3)
        var rng = RandomGenerator(seed: 1)
        var inputs: [Int] = [], targets: [Int] = []
        #expect(streams.next(text: text, inputs: &inputs, targets: &targets, generator: &rng))
        #expect(inputs == [0, 10, 1, 11, 2, 12])      // element t·B + b
        #expect(targets == [1, 11, 2, 12, 3, 13])
        #expect(!streams.next(text: text, inputs: &inputs, targets: &targets, generator: &rng))
        #expect(inputs == [3, 13, 4, 14, 5, 15])
        _ = streams.next(text: text, inputs: &inputs, targets: &targets, generator: &rng)
        #expect(inputs == [6, 16, 7, 17, 8, 18])
        #expect(targets == [7, 17, 8, 18, 9, 19])
        #expect(streams.epoch == 1)
        // The next epoch starts over (with a shift below T) and asks for a state reset.
        #expect(streams.next(text: text, inputs: &inputs, targets: &targets, generator: &rng))
        let shift = inputs[0]
        #expect(shift < 3 && inputs[1] == 10 + shift)
        expectError("shorter than one batch window") { _ = try TrainingStreams(textCount: 6, batchSize: 2, windowLength: 3) }
    }

    @Test func configurationRoundTripsAndRejectsBadFields() throws {
        let vocab = try Vocabulary(strings: ["\n", " ", "\"", "/", "a", "é"], unit: .character)
        let config = LanguageModelConfiguration(cell: .gru, embeddingSize: 8, hiddenSize: 16, numLayers: 2, vocabulary: vocab)
        let text = try config.jsonText()
        let back = try LanguageModelConfiguration.parse(Array(text.utf8), source: "config.json")
        #expect(back == config)
        #expect(try back.vocabulary() == vocab)
        #expect(back.cellKind == .gru)
        // A hand-written PyTorch-side config with only the required fields.
        let minimal = #"{"cell": "rnn", "nonlinearity": "relu", "embedding_size": 4, "hidden_size": 5, "num_layers": 1, "vocab": ["a", "b"]}"#
        let m = try LanguageModelConfiguration.parse(Array(minimal.utf8), source: "c.json")
        #expect(m.cellKind == .rnnReLU && m.unit == .character && m.formatVersion == 1)
        expectError("missing field 'hidden_size'") {
            _ = try LanguageModelConfiguration.parse(Array(#"{"cell":"lstm","embedding_size":4,"num_layers":1,"vocab":["a"]}"#.utf8), source: "c")
        }
        expectError("format version 7 is not supported") {
            _ = try LanguageModelConfiguration.parse(Array(#"{"format_version":7,"cell":"lstm"}"#.utf8), source: "c")
        }
        expectError("'cell' must be one of") {
            _ = try LanguageModelConfiguration.parse(Array(#"{"cell":"transformer","embedding_size":4,"hidden_size":4,"num_layers":1,"vocab":["a"]}"#.utf8), source: "c")
        }
        expectError("not valid JSON") { _ = try LanguageModelConfiguration.parse(Array("{".utf8), source: "c") }
    }

    @Test func jsonLinesEscapeAndFormat() {
        var j = JSONLine()
        j.add("text", "a\"b\\c\nd\u{1}")
        j.add("n", 3)
        j.add("x", 0.5)
        j.add("bad", Double.nan)
        j.add("none", nil as Double?)
        #expect(j.text == #"{"text":"a\"b\\c\nd\u0001","n":3,"x":0.5,"bad":null,"none":null}"#)
        let parsed = try? JSONSerialization.jsonObject(with: Data(j.text.utf8)) as? [String: Any]
        #expect(parsed?["text"] as? String == "a\"b\\c\nd\u{1}")
    }
}
