/// Updates parameters from their gradients, one `step()` at a time (PyTorch's `torch.optim`).
///
/// Parameters whose `grad` is nil are skipped by `step()` (their state does not advance), as in
/// PyTorch. `stateDict()` holds every buffer and step count so that `loadStateDict` on a fresh
/// optimizer over the same parameters continues the run exactly. Keys:
/// `step` (number of `step()` calls), `param.<i>.step` (steps that parameter `i` took, for the
/// algorithms that track it), `param.<i>.<buffer>` (`exp_avg`, `momentum_buffer`, …, PyTorch's
/// names), where `i` is the parameter's index in `parameters`. Counts are stored as Float32
/// scalars, exact up to 2²⁴ steps (PyTorch stores its `step` as a float32 tensor too).
/// Hyperparameters are not part of the state: construct the optimizer with the same ones.
public protocol Optimizer: AnyObject {
    /// The parameters `step()` updates, in the order their state is keyed.
    var parameters: [Variable] { get }
    /// The step size; set it before each `step()` to follow a `LearningRateSchedule`.
    var learningRate: Float { get set }
    /// Number of completed `step()` calls.
    var stepCount: Int { get }
    /// Applies one update to every parameter that has a gradient.
    func step()
    func stateDict() -> [String: Tensor]
    /// Restores a `stateDict()`; throws `RecurrentError.invalidCheckpoint` for a key that does not
    /// belong to this optimizer, a parameter index out of range, a shape mismatch, or a missing buffer.
    func loadStateDict(_ state: [String: Tensor]) throws
}

extension Optimizer {
    /// Clears the gradient of every parameter.
    public func zeroGradients() { for p in parameters { p.grad = nil } }
}

/// The Double that Python holds for the decimal a Float hyperparameter was written as.
///
/// PyTorch keeps hyperparameters in Python doubles and does scalar arithmetic (`1 - β₂`,
/// `1 - β₂^t`, `lr / (1 - β₁^t)`) in double before a kernel rounds the result to float32. `0.999`
/// as a Float is 0.99900001287…, which would make `1 - β₂` wrong by 1.3e-5 relative; the Float's
/// shortest decimal ("0.999") gives back Python's double exactly.
func decimalDouble(_ x: Float) -> Double { Double(x.description) ?? Double(x) }
