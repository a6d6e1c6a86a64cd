/// Something with named trainable parameters.
///
/// Names are PyTorch `state_dict` keys relative to the module (`weight`, `weight_ih_l0`); a
/// composite prefixes its children's keys with the child's name and a dot (`rnn.weight_ih_l0`),
/// so `namedParameters()` of a whole model lists the keys of its safetensors file.
public protocol Module: AnyObject {
    /// Parameters in a stable order, keyed as in a PyTorch `state_dict`.
    func namedParameters() -> [(String, Variable)]
}

extension Module {
    public var parameters: [Variable] { namedParameters().map(\.1) }

    /// Total number of trainable scalars.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.value.count } }

    public func zeroGradients() { for p in parameters { p.grad = nil } }

    /// Values keyed by parameter name (what `SafeTensors.write` stores).
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.0, $0.1.value) })
    }

    /// Loads values by name. Every parameter must be present with its exact shape; extra keys are
    /// an error too, so a mismatched checkpoint is refused rather than half-loaded.
    public func loadStateDict(_ state: [String: Tensor], source: String = "state dict") throws {
        let params = namedParameters()
        let expected = Set(params.map(\.0))
        for key in state.keys where !expected.contains(key) {
            throw RecurrentError.invalidCheckpoint("\(source): unexpected tensor '\(key)'")
        }
        for (key, p) in params {
            guard let t = state[key] else {
                throw RecurrentError.invalidCheckpoint("\(source): missing tensor '\(key)' (expected shape \(p.value.shape))")
            }
            guard t.shape == p.value.shape else {
                throw RecurrentError.invalidCheckpoint("\(source): tensor '\(key)' has shape \(t.shape), expected \(p.value.shape)")
            }
        }
        for (key, p) in params { p.value = state[key]! }
    }
}

/// Prefixes child keys: `prefixed("rnn", child)` → `rnn.weight_ih_l0`, ...
public func prefixed(_ prefix: String, _ child: Module) -> [(String, Variable)] {
    child.namedParameters().map { ("\(prefix).\($0.0)", $0.1) }
}

/// Errors with a message meant for a person.
public enum RecurrentError: Error, CustomStringConvertible, Equatable {
    case invalidCheckpoint(String)
    case invalidFile(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .invalidCheckpoint(let m), .invalidFile(let m), .invalidArgument(let m): return m
        }
    }
}
