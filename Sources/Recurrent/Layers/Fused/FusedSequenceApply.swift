extension FusedSequence {
    /// The fused sequence as one node of the autodiff tape (what the recurrent layers call).
    ///
    /// Shapes as in `forward`. Activations are saved only when recording is on and some input
    /// needs a gradient; `dx` is computed only when `x` needs one.
    public static func apply(kind: CellKind, x: Variable, weightIH: Variable, weightHH: Variable,
                             biasIH: Variable, biasHH: Variable, h0: Variable, c0: Variable?,
                             lengths: [Int]?, reverse: Bool) -> (output: Variable, hN: Variable, cN: Variable?) {
        apply(kind: kind, x: x, weightIH: weightIH, weightHH: weightHH, biasIH: biasIH, biasHH: biasHH, h0: h0, c0: c0,
              lengths: lengths, reverse: reverse, symbols: nil)
    }

    /// `apply` for a one-hot `x` given by its `symbols` as well (see `forward(…, symbols:)`); `x`
    /// must not need a gradient.
    static func apply(kind: CellKind, x: Variable, weightIH: Variable, weightHH: Variable,
                      biasIH: Variable, biasHH: Variable, h0: Variable, c0: Variable?,
                      lengths: [Int]?, reverse: Bool, symbols: [Int]?) -> (output: Variable, hN: Variable, cN: Variable?) {
        precondition(symbols == nil || !x.requiresGrad, "FusedSequence.apply: symbol inputs take no gradient")
        var parents = [x, weightIH, weightHH, biasIH, biasHH, h0]
        if let c0 { parents.append(c0) }
        let recording = GradientMode.isEnabled && parents.contains { $0.requiresGrad }
        let result = forward(kind: kind, x: x.value, weightIH: weightIH.value, weightHH: weightHH.value,
                             biasIH: biasIH.value, biasHH: biasHH.value, h0: h0.value, c0: c0?.value,
                             lengths: lengths, reverse: reverse, saveForBackward: recording, execution: .automatic,
                             symbols: symbols)
        var values = [result.output, result.hN]
        if let cN = result.cN { values.append(cN) }
        guard recording, let context = result.context else {
            return (Variable(result.output), Variable(result.hN), result.cN.map { Variable($0) })
        }
        let inputGradient = x.requiresGrad
        let hasC0 = c0 != nil
        let outputs = Variable.recordMultiple(values, parents: parents) { g in
            let grads = gradients(context, dOutput: g[0], dhN: g[1], dcN: g.count > 2 ? g[2] : nil,
                                  inputGradient: inputGradient)
            var perParent: [Tensor?] = [grads.dx, grads.dWeightIH, grads.dWeightHH, grads.dBiasIH, grads.dBiasHH, grads.dh0]
            if hasC0 { perParent.append(grads.dc0) }
            return perParent
        }
        return (outputs[0], outputs[1], outputs.count > 2 ? outputs[2] : nil)
    }
}
