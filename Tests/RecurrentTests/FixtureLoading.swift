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
        (tensors, metadata) = try SafeTensors.read(path: path)
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

    /// A metadata value parsed as an Int (`"4"`).
    func integer(_ key: String) -> Int {
        guard let s = metadata[key], let v = Int(s) else {
            preconditionFailure("\(name): metadata '\(key)' missing or not an integer")
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
