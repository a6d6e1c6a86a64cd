/// The per-parameter state of an optimizer — step counts and named buffers — and its state-dict
/// encoding (see `Optimizer` for the keys). Buffers start nil and are created when a parameter
/// first gets a gradient, as PyTorch creates its `state[p]` lazily.
struct OptimizerState {
    /// Buffer names in PyTorch's spelling (`exp_avg`, `exp_avg_sq`, `momentum_buffer`, …).
    let bufferNames: [String]
    /// Whether the algorithm counts steps per parameter (`param.<i>.step`).
    let tracksParameterSteps: Bool
    var stepCount = 0
    /// `steps[i]`: updates parameter `i` received.
    var steps: [Int]
    /// `buffers[k][i]`: buffer `bufferNames[k]` of parameter `i`.
    var buffers: [[Tensor?]]

    init(parameterCount: Int, bufferNames: [String], tracksParameterSteps: Bool) {
        self.bufferNames = bufferNames
        self.tracksParameterSteps = tracksParameterSteps
        steps = Array(repeating: 0, count: parameterCount)
        buffers = Array(repeating: Array(repeating: nil, count: parameterCount), count: bufferNames.count)
    }

    /// Takes buffer `k` of parameter `i` out (so it can be mutated in place without a copy),
    /// creating it with `initial` if it does not exist yet. Put it back with `store`.
    mutating func take(_ k: Int, _ i: Int, orCreate initial: @autoclosure () -> Tensor) -> Tensor {
        let t = buffers[k][i] ?? initial()
        buffers[k][i] = nil
        return t
    }

    mutating func store(_ k: Int, _ i: Int, _ t: Tensor) { buffers[k][i] = t }

    func encoded() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(scalar: Float(stepCount))]
        for i in 0..<steps.count {
            if tracksParameterSteps { out["param.\(i).step"] = Tensor(scalar: Float(steps[i])) }
            for (k, name) in bufferNames.enumerated() {
                if let t = buffers[k][i] { out["param.\(i).\(name)"] = t }
            }
        }
        return out
    }

    /// Decodes `state` for `parameters`, checking every key, count and shape. `required(i, step)`
    /// lists the buffers parameter `i` must have after `step` updates.
    static func decoded(_ state: [String: Tensor], parameters: [Variable], bufferNames: [String],
                        tracksParameterSteps: Bool,
                        required: (Int, Int) -> [String]) throws -> OptimizerState {
        var result = OptimizerState(parameterCount: parameters.count, bufferNames: bufferNames,
                                    tracksParameterSteps: tracksParameterSteps)
        guard let step = state["step"] else {
            throw RecurrentError.invalidCheckpoint("optimizer state: missing 'step'")
        }
        result.stepCount = try count(step, key: "step")
        var seenSteps = Set<Int>()
        for (key, value) in state where key != "step" {
            let parts = key.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "param", let i = Int(parts[1]) else {
                throw RecurrentError.invalidCheckpoint("optimizer state: unexpected key '\(key)'")
            }
            guard i >= 0 && i < parameters.count else {
                throw RecurrentError.invalidCheckpoint(
                    "optimizer state: key '\(key)' names parameter \(i), but the optimizer has \(parameters.count) parameters")
            }
            let name = String(parts[2])
            if name == "step" && tracksParameterSteps {
                result.steps[i] = try count(value, key: key)
                seenSteps.insert(i)
            } else if let k = bufferNames.firstIndex(of: name) {
                guard value.shape == parameters[i].shape else {
                    throw RecurrentError.invalidCheckpoint(
                        "optimizer state: '\(key)' has shape \(value.shape), parameter \(i) has shape \(parameters[i].shape)")
                }
                result.buffers[k][i] = value
            } else {
                throw RecurrentError.invalidCheckpoint("optimizer state: unexpected key '\(key)'")
            }
        }
        for i in 0..<parameters.count {
            if tracksParameterSteps && !seenSteps.contains(i) {
                throw RecurrentError.invalidCheckpoint("optimizer state: missing 'param.\(i).step'")
            }
            for name in required(i, result.steps[i]) where result.buffers[bufferNames.firstIndex(of: name)!][i] == nil {
                throw RecurrentError.invalidCheckpoint("optimizer state: missing 'param.\(i).\(name)'")
            }
        }
        return result
    }

    private static func count(_ t: Tensor, key: String) throws -> Int {
        guard t.count == 1, let v = t.data.first, v.isFinite, v >= 0, v == v.rounded(), v <= 16_777_216 else {
            throw RecurrentError.invalidCheckpoint(
                "optimizer state: '\(key)' must be one non-negative whole number, got \(t)")
        }
        return Int(v)
    }
}
