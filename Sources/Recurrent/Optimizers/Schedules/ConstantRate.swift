/// The base rate at every step: `η_t = η₀`.
public struct ConstantRate: LearningRateSchedule {
    public init() {}

    public func learningRate(at step: Int, base: Float) -> Float {
        precondition(step >= 0, "ConstantRate: step must be non-negative, got \(step)")
        return base
    }
}
