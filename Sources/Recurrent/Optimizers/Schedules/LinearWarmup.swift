/// A linear ramp over the first `steps` steps, then another schedule (or the base rate).
///
/// For `t < steps`: `η_t = η₀ · (s + (1 - s) · t / steps)` with start factor `s` (0 by default), as
/// PyTorch's `LinearLR(start_factor: s, end_factor: 1, total_iters: steps)`; for `t ≥ steps`:
/// `then.learningRate(at: t - steps, base: η₀)` (the next schedule starts at its own step 0), or
/// `η₀` when there is none.
public struct LinearWarmup: LearningRateSchedule {
    public let steps: Int
    public let startFactor: Float
    public let next: (any LearningRateSchedule)?

    public init(steps: Int, then next: (any LearningRateSchedule)? = nil, startFactor: Float = 0) {
        precondition(steps >= 0, "LinearWarmup: steps must be non-negative, got \(steps)")
        precondition(startFactor >= 0 && startFactor <= 1,
                     "LinearWarmup: startFactor must be in [0, 1], got \(startFactor)")
        self.steps = steps
        self.startFactor = startFactor
        self.next = next
    }

    public func learningRate(at step: Int, base: Float) -> Float {
        precondition(step >= 0, "LinearWarmup: step must be non-negative, got \(step)")
        if step >= steps {
            return next?.learningRate(at: step - steps, base: base) ?? base
        }
        let s = decimalDouble(startFactor)
        return Float(decimalDouble(base) * (s + (1 - s) * Double(step) / Double(steps)))
    }
}
