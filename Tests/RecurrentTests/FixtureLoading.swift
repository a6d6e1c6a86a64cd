import Foundation
import Testing
@testable import Recurrent

/// One PyTorch reference file from Tests/RecurrentTests/Fixtures (written by
/// scripts/make_fixtures.py; its header documents every key).
///
/// Keys without a dot are parameters under their PyTorch names; `input.*`, `output.*`,
/// `upstream.*` and `grad.*` hold the rest. Integers (lengths, targets) are stored as F32.
struct Fixture {
    let name: String
    let tensors: [String: Tensor]
    let metadata: [String: String]

    /// Loads `<name>.safetensors` from the test bundle's Fixtures folder.
    init(_ name: String) throws {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw RecurrentError.invalidFile("test bundle has no Fixtures folder")
        }
        let path = folder.appendingPathComponent(name + ".safetensors").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        (tensors, metadata) = try Fixture.parseSafeTensors([UInt8](bytes), source: path)
        self.name = name
    }

    /// The tensor stored under `key`; a missing key is a broken fixture, so it stops the test.
    subscript(key: String) -> Tensor {
        guard let t = tensors[key] else { preconditionFailure("\(name): no tensor '\(key)'") }
        return t
    }

    /// The parameters (the dot-free keys), ready for `loadStateDict`.
    var parameters: [String: Tensor] { tensors.filter { !$0.key.contains(".") } }

    /// A tensor of whole numbers stored as F32, as Ints.
    func integers(_ key: String) -> [Int] { self[key].data.map { Int($0) } }

    /// A metadata value parsed as a Float (`"0.01"`, `"1e-08"`).
    func float(_ key: String) -> Float {
        guard let s = metadata[key], let v = Float(s) else {
            preconditionFailure("\(name): metadata '\(key)' missing or not a number")
        }
        return v
    }

    /// A metadata value written by Python's repr of a bool (`"True"` / `"False"`).
    func bool(_ key: String) -> Bool {
        guard let s = metadata[key], s == "True" || s == "False" else {
            preconditionFailure("\(name): metadata '\(key)' missing or not a bool")
        }
        return s == "True"
    }

    /// safetensors: u64 little-endian header length N, N bytes of JSON header, then raw
    /// little-endian data; only F32 tensors occur in the fixtures.
    private static func parseSafeTensors(_ bytes: [UInt8], source: String)
        throws -> ([String: Tensor], [String: String])
    {
        guard bytes.count >= 8 else { throw RecurrentError.invalidFile("\(source): too short") }
        var headerLength = 0
        for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
        guard 8 + headerLength <= bytes.count,
              let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)]))
                as? [String: Any]
        else { throw RecurrentError.invalidFile("\(source): bad header") }
        let dataStart = 8 + headerLength
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32",
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int],
                  offsets.count == 2, offsets[1] - offsets[0] == 4 * shape.reduce(1, *),
                  dataStart + offsets[1] <= bytes.count
            else { throw RecurrentError.invalidFile("\(source): bad entry '\(key)'") }
            var data = [Float](repeating: 0, count: shape.reduce(1, *))
            for i in data.indices {
                let p = dataStart + offsets[0] + 4 * i
                let bits = UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8
                    | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24
                data[i] = Float(bitPattern: bits)
            }
            tensors[key] = Tensor(shape: shape, data: data)
        }
        return (tensors, metadata)
    }
}

/// Relative tolerance on values a forward pass (or an optimizer step) produced.
let outputTolerance: Float = 1e-5
/// Relative tolerance on gradients.
let gradientTolerance: Float = 1e-4

/// Expects `actual` to match PyTorch's `expected` element-wise with
/// |actual - expected| ≤ tolerance · max(1, |expected|), and the same shape. On failure the
/// message names the worst element, both values and the error.
func expectMatches(_ actual: Tensor?, _ expected: Tensor, tolerance: Float, _ label: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("\(label): no value (expected shape \(expected.shape))", sourceLocation: sourceLocation)
        return
    }
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape), PyTorch \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var worstRatio: Float = 0
    var worst = 0
    for i in 0..<expected.count {
        let ratio = abs(actual.data[i] - expected.data[i]) / (tolerance * max(1, abs(expected.data[i])))
        if !(ratio <= worstRatio) { worstRatio = ratio; worst = i }   // NaN counts as worst
    }
    if !(worstRatio <= 1) {
        Issue.record("""
            \(label): element \(worst) is \(actual.data[worst]), PyTorch \(expected.data[worst]) \
            (|diff| = \(abs(actual.data[worst] - expected.data[worst])), \
            allowed \(tolerance) · max(1, |PyTorch|))
            """, sourceLocation: sourceLocation)
    }
}
