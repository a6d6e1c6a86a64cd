/// A lookup table, PyTorch's `nn.Embedding`: row `v` of `W` `[V, E]` is the vector of index `v`.
///
/// Key `weight`; initialised `N(0, 1)` like PyTorch. The forward gathers rows; the backward
/// scatter-adds the output gradient back into a `[V, E]` gradient (a repeated index receives the sum).
public final class Embedding: Module {
    /// `V`
    public let count: Int
    /// `E`
    public let dimension: Int
    /// `[V, E]`
    public let weight: Variable

    public init(count: Int, dimension: Int, rng: inout RandomGenerator) {
        precondition(count > 0 && dimension > 0,
                     "Embedding: sizes must be positive, got count \(count), dimension \(dimension)")
        self.count = count
        self.dimension = dimension
        var w = [Float](repeating: 0, count: count * dimension)
        for i in 0..<w.count { w[i] = rng.nextNormal() }
        weight = Variable(Tensor(shape: [count, dimension], data: w), requiresGrad: true, name: "weight")
    }

    public func namedParameters() -> [(String, Variable)] { [("weight", weight)] }

    /// `N` indices in `0..<V` → `[N, E]`.
    public func callAsFunction(_ indices: [Int]) -> Variable {
        let v = count, e = dimension
        for (position, index) in indices.enumerated() {
            precondition(index >= 0 && index < v,
                         "Embedding: index \(index) at position \(position) is out of range for \(v) embeddings (0..<\(v))")
        }
        var out = [Float](repeating: 0, count: indices.count * e)
        weight.value.data.withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { o in
                for (n, index) in indices.enumerated() {
                    for j in 0..<e { o[n * e + j] = w[index * e + j] }
                }
            }
        }
        return Variable.record(Tensor(shape: [indices.count, e], data: out), parents: [weight]) { g in
            var gw = [Float](repeating: 0, count: v * e)
            g.data.withUnsafeBufferPointer { gp in
                gw.withUnsafeMutableBufferPointer { o in
                    for (n, index) in indices.enumerated() {
                        for j in 0..<e { o[index * e + j] += gp[n * e + j] }
                    }
                }
            }
            return [Tensor(shape: [v, e], data: gw)]
        }
    }
}
