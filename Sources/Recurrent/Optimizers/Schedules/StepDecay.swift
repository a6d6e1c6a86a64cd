#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Multiplies the rate by `γ` every `stepSize` steps, PyTorch's `StepLR`:
/// `η_t = η₀ · γ^⌊t / stepSize⌋`.
public struct StepDecay: LearningRateSchedule {
    public let stepSize: Int
    public let gamma: Float

    public init(stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be positive, got \(stepSize)")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    public func learningRate(at step: Int, base: Float) -> Float {
        precondition(step >= 0, "StepDecay: step must be non-negative, got \(step)")
        return Float(decimalDouble(base) * pow(decimalDouble(gamma), Double(step / stepSize)))
    }
}
