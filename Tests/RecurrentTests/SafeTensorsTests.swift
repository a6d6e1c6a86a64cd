import Foundation
import Testing
@testable import Recurrent

/// A fresh directory under the system's temporary directory.
func makeTemporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Bytes of a safetensors file: the header length (declared, or the true one), the header, the data.
func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var length = (declaredLength ?? UInt64(h.count)).littleEndian
    return withUnsafeBytes(of: &length) { Array($0) } + h + data
}

func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

@Suite struct SafeTensorsTests {
    @Test func roundTripWithMetadata() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        var rng = RandomGenerator(seed: 90)
        let tensors: [String: Tensor] = [
            "rnn.weight_ih_l0": rng.uniformTensor([8, 3], low: -1, high: 1),
            "head.bias": rng.uniformTensor([5], low: -1, high: 1),
            "scalar": Tensor(scalar: -0.0),
            "empty": Tensor(zeros: [0, 4]),
            "ünïcode \"quoted\"\n": Tensor(shape: [2], data: [.infinity, -.greatestFiniteMagnitude]),
        ]
        let metadata = ["format": "pt", "config": "{\"hidden\": 8}", "tab\there": "ok"]
        try SafeTensors.write(tensors, metadata: metadata, to: path)
        let loaded = try SafeTensors.read(path: path)
        #expect(loaded.tensors == tensors)
        #expect(loaded.tensors["scalar"]!.data[0].sign == .minus)
        #expect(loaded.metadata == metadata)

        // Overwriting replaces the file and leaves no temporary file behind.
        try SafeTensors.write(["x": Tensor(scalar: 1)], to: path)
        let again = try SafeTensors.read(path: path)
        #expect(again.tensors == ["x": Tensor(scalar: 1)] && again.metadata.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.safetensors"])
    }

    @Test func layoutMatchesPythonSafetensors() {
        // What safetensors.torch.save_file writes for {"b": [[1,2,3]], "a": [0.5]} with metadata
        // {"format": "pt"}: compact JSON, metadata first, names sorted, spaces to a multiple of 8.
        let bytes = SafeTensors.encode(["b": Tensor(shape: [1, 3], data: [1, 2, 3]), "a": Tensor(shape: [1], data: [0.5])],
                                       metadata: ["format": "pt"])
        let json = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1,3],"data_offsets":[4,16]}}"#
        let padded = json + String(repeating: " ", count: (8 - json.utf8.count % 8) % 8)
        #expect(bytes == safetensorsBytes(header: padded, data: littleEndianBytes([0.5, 1, 2, 3])))
        #expect((bytes.count - 16) % 8 == 0)
    }

    @Test func convertsHalfBFloatAndDoubleToFloat() throws {
        let half: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00, 0x3555]   // 1, -2, 2⁻²⁴, 65504, inf, ≈1/3
        let bfloat: [UInt16] = [0x3F80, 0xC0A0]                                 // 1, -5
        let double: [Double] = [0.1, -1e300]
        var data: [UInt8] = []
        for h in half { data += withUnsafeBytes(of: h.littleEndian) { Array($0) } }
        for b in bfloat { data += withUnsafeBytes(of: b.littleEndian) { Array($0) } }
        for d in double { data += withUnsafeBytes(of: d.bitPattern.littleEndian) { Array($0) } }
        let header = #"{"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},"d":{"dtype":"F64","shape":[2,1],"data_offsets":[16,32]}}"#
        let t = try SafeTensors.decode(safetensorsBytes(header: header, data: data), source: "mixed").tensors
        #expect(t["h"]!.data == [1, -2, 0x1p-24, 65504, .infinity, 0.333251953125])
        #expect(t["b"]!.data == [1, -5])
        #expect(t["d"]! == Tensor(shape: [2, 1], data: [0.1, -.infinity]))
    }

    struct Malformed: Sendable, CustomStringConvertible {
        let description: String
        let bytes: [UInt8]
        let expected: String
    }

    static let entry = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    static let eight = littleEndianBytes([1, 2])

    static let malformed: [Malformed] = [
        Malformed(description: "shorter than 8 bytes", bytes: [1, 0, 0], expected: "file is 3 bytes, too short"),
        Malformed(description: "header length past the end",
                  bytes: safetensorsBytes(header: "{}", declaredLength: 1 << 40), expected: "header length 1099511627776 is larger than the 2 bytes"),
        Malformed(description: "header length overflowing Int",
                  bytes: safetensorsBytes(header: "{}", declaredLength: .max), expected: "is larger than"),
        Malformed(description: "invalid UTF-8", bytes: safetensorsBytes(header: "{\"\u{FF}\":1}").map { $0 == 0xC3 ? 0xFF : $0 },
                  expected: "not valid UTF-8"),
        Malformed(description: "invalid JSON", bytes: safetensorsBytes(header: "{\"t\": {"), expected: "not valid JSON"),
        Malformed(description: "trailing garbage", bytes: safetensorsBytes(header: "{} x"), expected: "not valid JSON"),
        Malformed(description: "not an object", bytes: safetensorsBytes(header: "[1, 2]"), expected: "not a JSON object"),
        Malformed(description: "duplicate key", bytes: safetensorsBytes(header: "{\(entry),\(entry)}", data: eight),
                  expected: "duplicate key \"t\""),
        Malformed(description: "deep nesting", bytes: safetensorsBytes(header: String(repeating: "[", count: 100_000)),
                  expected: "nesting deeper than"),
        Malformed(description: "missing dtype",
                  bytes: safetensorsBytes(header: #"{"t":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight), expected: "tensor 't' has no 'dtype'"),
        Malformed(description: "missing shape",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","data_offsets":[0,8]}}"#, data: eight), expected: "tensor 't' has no 'shape'"),
        Malformed(description: "missing data_offsets",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[2]}}"#, data: eight), expected: "tensor 't' has no 'data_offsets'"),
        Malformed(description: "unsupported dtype",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: eight),
                  expected: "tensor 't' has dtype I64"),
        Malformed(description: "negative dimension",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                  expected: "negative dimension -2"),
        Malformed(description: "fractional dimension",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: eight),
                  expected: "holds 2.5, which is not a 64-bit integer"),
        Malformed(description: "huge shape",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: eight),
                  expected: "is too large"),
        Malformed(description: "offsets past the data",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: eight),
                  expected: "run past the 8 bytes of data"),
        Malformed(description: "reversed offsets",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
                  expected: "invalid data_offsets [8, 0]"),
        Malformed(description: "offsets not matching the shape",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                  expected: "span 8 bytes, but F32 shape [3] needs 12"),
        Malformed(description: "overlapping tensors",
                  bytes: safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
                  expected: "overlap tensor 'a'"),
        Malformed(description: "gap between tensors",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
                  expected: "4 unused bytes before tensor 't'"),
        Malformed(description: "data left over",
                  bytes: safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight),
                  expected: "4 bytes of data after the last tensor"),
        Malformed(description: "metadata value not a string",
                  bytes: safetensorsBytes(header: #"{"__metadata__":{"epoch":3}}"#), expected: "metadata value for 'epoch' is not a string"),
        Malformed(description: "entry not an object",
                  bytes: safetensorsBytes(header: #"{"t":[1]}"#), expected: "entry for tensor 't' is not an object"),
        Malformed(description: "lone surrogate escape",
                  bytes: safetensorsBytes(header: #"{"\ud800":{}}"#), expected: "unpaired surrogate"),
    ]

    @Test(arguments: SafeTensorsTests.malformed)
    func rejectsMalformedFiles(_ bad: Malformed) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bad.safetensors"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bad.bytes)))
        let error = #expect(throws: RecurrentError.self) { try SafeTensors.read(path: path) }
        guard case .invalidFile(let message)? = error else {
            Issue.record("expected invalidFile, got \(String(describing: error))")
            return
        }
        #expect(message.hasPrefix(path + ": "), "\(message)")
        #expect(message.contains(bad.expected), "\(message)")
    }

    @Test func acceptsWhatTheReferenceAccepts() throws {
        // Whitespace and field order are free; an escaped name decodes; an empty file is valid.
        let header = "{ \"a\\u00e9\" : { \"data_offsets\" : [0, 8], \"shape\" : [1, 2], \"dtype\" : \"F32\", \"extra\": null } }   "
        let t = try SafeTensors.decode(safetensorsBytes(header: header, data: littleEndianBytes([3, 4])), source: "ok").tensors
        #expect(t == ["aé": Tensor(shape: [1, 2], data: [3, 4])])
        #expect(try SafeTensors.decode(safetensorsBytes(header: "{}"), source: "empty").tensors.isEmpty)
    }

    @Test func missingFileAndReservedNameAreReported() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: RecurrentError.self) { try SafeTensors.read(path: dir + "/absent.safetensors") }
        #expect(throws: RecurrentError.self) { try SafeTensors.write(["__metadata__": Tensor(scalar: 1)], to: dir + "/x.safetensors") }
        #expect(throws: RecurrentError.self) { try SafeTensors.write(["a": Tensor(scalar: 1)], to: dir + "/no/such/dir/x.safetensors") }
    }
}
