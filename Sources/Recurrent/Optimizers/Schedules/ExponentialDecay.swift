#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Multiplies the rate by `γ` every step, PyTorch's `ExponentialLR`: `η_t = η₀ · γᵗ`.
public struct ExponentialDecay: LearningRateSchedule {
    public let gamma: Float

    public init(gamma: Float) {
        self.gamma = gamma
    }

    public func learningRate(at step: Int, base: Float) -> Float {
        precondition(step >= 0, "ExponentialDecay: step must be non-negative, got \(step)")
        return Float(decimalDouble(base) * pow(decimalDouble(gamma), Double(step)))
    }
}
