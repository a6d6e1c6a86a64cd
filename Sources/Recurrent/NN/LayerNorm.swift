/// Layer normalisation over the last axis, PyTorch's `nn.LayerNorm(size)`.
///
/// For each row `x` `[D]` of the input `[..., D]`:
/// `μ = mean(x)`, `σ² = mean((x - μ)²)` (biased), `x̂ = (x - μ) / sqrt(σ² + ε)`, `y = x̂ ⊙ γ + β`.
/// Keys `weight` (γ, ones) and `bias` (β, zeros), both `[D]`; `ε = 1e-5` by default.
///
/// One tape node with a fused backward, with `r = 1/sqrt(σ² + ε)` and `ĝ = dy ⊙ γ`:
/// `dx = r · (ĝ - mean(ĝ) - x̂ ⊙ mean(ĝ ⊙ x̂))`, `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy`.
public final class LayerNorm: Layer {
    /// `D`
    public let size: Int
    public let epsilon: Float
    /// γ `[D]`
    public let weight: Variable
    /// β `[D]`
    public let bias: Variable

    public init(size: Int, epsilon: Float = 1e-5) {
        precondition(size > 0, "LayerNorm: size must be positive, got \(size)")
        precondition(epsilon >= 0, "LayerNorm: epsilon must be non-negative, got \(epsilon)")
        self.size = size
        self.epsilon = epsilon
        weight = Variable(Tensor(repeating: 1, shape: [size]), requiresGrad: true, name: "weight")
        bias = Variable(Tensor(zeros: [size]), requiresGrad: true, name: "bias")
    }

    public func namedParameters() -> [(String, Variable)] { [("weight", weight), ("bias", bias)] }

    /// `[..., D] → [..., D]`.
    public func callAsFunction(_ x: Variable) -> Variable {
        precondition(x.value.rank >= 1 && x.shape.last == size,
                     "LayerNorm: expected input [..., \(size)], got \(x.shape)")
        let d = size
        let rows = x.value.count / d
        var normalized = [Float](repeating: 0, count: rows * d)   // x̂
        var inverseStd = [Float](repeating: 0, count: rows)      // r
        var out = [Float](repeating: 0, count: rows * d)
        x.value.data.withUnsafeBufferPointer { xp in
            weight.value.data.withUnsafeBufferPointer { gamma in
                bias.value.data.withUnsafeBufferPointer { beta in
                    for r in 0..<rows {
                        let row = r * d
                        var s: Double = 0
                        for j in 0..<d { s += Double(xp[row + j]) }
                        let mean = s / Double(d)
                        var ss: Double = 0
                        for j in 0..<d { let c = Double(xp[row + j]) - mean; ss += c * c }
                        let rstd = Float(1 / (ss / Double(d) + Double(epsilon)).squareRoot())
                        inverseStd[r] = rstd
                        let m = Float(mean)
                        for j in 0..<d {
                            let xh = (xp[row + j] - m) * rstd
                            normalized[row + j] = xh
                            out[row + j] = xh * gamma[j] + beta[j]
                        }
                    }
                }
            }
        }
        let gammaValue = weight.value
        return Variable.record(Tensor(shape: x.shape, data: out), parents: [x, weight, bias]) { g in
            var dx = [Float](repeating: 0, count: rows * d)
            var dGamma = [Float](repeating: 0, count: d)
            var dBeta = [Float](repeating: 0, count: d)
            g.data.withUnsafeBufferPointer { gp in
                gammaValue.data.withUnsafeBufferPointer { gamma in
                    for r in 0..<rows {
                        let row = r * d
                        var meanG: Float = 0, meanGX: Float = 0
                        for j in 0..<d {
                            let gh = gp[row + j] * gamma[j]
                            meanG += gh
                            meanGX += gh * normalized[row + j]
                            dGamma[j] += gp[row + j] * normalized[row + j]
                            dBeta[j] += gp[row + j]
                        }
                        meanG /= Float(d)
                        meanGX /= Float(d)
                        let rstd = inverseStd[r]
                        for j in 0..<d {
                            let gh = gp[row + j] * gamma[j]
                            dx[row + j] = rstd * (gh - meanG - normalized[row + j] * meanGX)
                        }
                    }
                }
            }
            return [Tensor(shape: g.shape, data: dx), Tensor(shape: [d], data: dGamma), Tensor(shape: [d], data: dBeta)]
        }
    }
}
