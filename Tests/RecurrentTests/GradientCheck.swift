@testable import Recurrent

/// Finite-difference gradient checking shared by every test of a hand-written backward.
///
/// `loss` must rebuild the computation from the current values of `inputs` and return a scalar
/// Variable. The analytic gradient (one backward pass) is compared with central differences in
/// Double-accumulated Float32: |analytic - numeric| ≤ atol + rtol · |numeric| for every element.
/// Returns the worst violation ratio (≤ 1 passes) and a description of the worst element.
func gradientCheck(_ inputs: [Variable], epsilon: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
                   maxElementsPerInput: Int = 40, _ loss: () -> Variable) -> (ratio: Float, worst: String) {
    for v in inputs { v.grad = nil }
    let out = loss()
    out.backward()
    let analytic = inputs.map { $0.grad ?? Tensor(zeros: $0.shape) }
    var worstRatio: Float = 0
    var worst = "none"
    for (k, v) in inputs.enumerated() {
        let n = v.value.count
        let step = max(1, n / maxElementsPerInput)
        var i = 0
        while i < n {
            let saved = v.value.data[i]
            v.value.data[i] = saved + epsilon
            let plus = GradientMode.withoutGradients { loss().value.scalar }
            v.value.data[i] = saved - epsilon
            let minus = GradientMode.withoutGradients { loss().value.scalar }
            v.value.data[i] = saved
            let numeric = (plus - minus) / (2 * epsilon)
            let a = analytic[k].data[i]
            let ratio = abs(a - numeric) / (atol + rtol * abs(numeric))
            if ratio > worstRatio {
                worstRatio = ratio
                worst = "input \(k) '\(v.name)' element \(i): analytic \(a), numeric \(numeric)"
            }
            i += step
        }
    }
    return (worstRatio, worst)
}

/// A fixed pseudo-random "upstream gradient" weighting so that sum(w ⊙ y) exercises every output.
func weightedSum(_ y: Variable, seed: UInt64 = 99) -> Variable {
    var rng = RandomGenerator(seed: seed)
    let w = rng.uniformTensor(y.shape, low: -1, high: 1)
    return sum(multiplyByConstant(y, w))
}
