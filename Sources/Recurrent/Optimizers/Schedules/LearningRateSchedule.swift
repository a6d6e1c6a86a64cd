/// A learning rate as a function of the step, PyTorch's `lr_scheduler` closed forms.
///
/// `step` counts completed scheduler steps from 0 (PyTorch's `last_epoch`); `base` is the
/// optimizer's initial rate. Typical use, once per training step `t`:
/// `optimizer.learningRate = schedule.learningRate(at: t, base: baseRate)`.
/// Rates are computed in Double and rounded once.
public protocol LearningRateSchedule: Sendable {
    func learningRate(at step: Int, base: Float) -> Float
}
