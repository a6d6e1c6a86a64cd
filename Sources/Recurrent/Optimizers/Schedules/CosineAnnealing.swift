#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cosine decay from the base rate to `minimum` over `totalSteps`, the closed form of PyTorch's
/// `CosineAnnealingLR(T_max: totalSteps, eta_min: minimum)`:
/// `η_t = η_min + (η₀ - η_min) · (1 + cos(π t / T_max)) / 2`.
/// Like PyTorch's closed form it is periodic: past `T_max` the rate rises again (period `2 T_max`).
public struct CosineAnnealing: LearningRateSchedule {
    public let totalSteps: Int
    public let minimum: Float

    public init(totalSteps: Int, minimum: Float = 0) {
        precondition(totalSteps > 0, "CosineAnnealing: totalSteps must be positive, got \(totalSteps)")
        self.totalSteps = totalSteps
        self.minimum = minimum
    }

    public func learningRate(at step: Int, base: Float) -> Float {
        precondition(step >= 0, "CosineAnnealing: step must be non-negative, got \(step)")
        let low = decimalDouble(minimum), high = decimalDouble(base)
        return Float(low + (high - low) * (1 + cos(Double.pi * Double(step) / Double(totalSteps))) / 2)
    }
}
