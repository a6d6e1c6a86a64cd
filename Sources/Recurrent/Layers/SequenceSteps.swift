/// Splits a sequence into its steps in one tape node: `[T, ...]` → T values of shape `[...]`.
///
/// The per-step runner reads `x_t` this way; taking `index(x, t)` T times instead would send a
/// full `[T, ...]` gradient back from every step (O(T²) work in the backward pass).
/// Backward: the step gradients are written back into their slots of one `[T, ...]` tensor (zero
/// where a step received none).
func unstack(_ x: Variable) -> [Variable] {
    precondition(x.value.rank >= 1, "unstack: need a leading axis, got shape \(x.shape)")
    let shape = x.shape
    let steps = shape[0]
    let inner = Array(shape.dropFirst())
    let n = inner.reduce(1, *)
    let values = (0..<steps).map { t in
        Tensor(shape: inner, data: Array(x.value.data[(t * n)..<((t + 1) * n)]))
    }
    return Variable.recordMultiple(values, parents: [x]) { grads in
        var g = [Float](repeating: 0, count: steps * n)
        for (t, gt) in grads.enumerated() {
            guard let gt else { continue }
            for i in 0..<n { g[t * n + i] = gt.data[i] }
        }
        return [Tensor(shape: shape, data: g)]
    }
}
