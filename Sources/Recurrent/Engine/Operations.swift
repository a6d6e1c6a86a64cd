import CKernels
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Differentiable operations on `Variable`. Each records one node whose backward closure returns
// the gradient for each input. Shapes use letters: `[B, N]` batch × features.

public func + (a: Variable, b: Variable) -> Variable {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    return Variable.record(a.value + b.value, parents: [a, b]) { g in [g, g] }
}

public func - (a: Variable, b: Variable) -> Variable {
    precondition(a.shape == b.shape, "subtract: shapes \(a.shape) and \(b.shape) differ")
    return Variable.record(a.value - b.value, parents: [a, b]) { g in [g, g * -1] }
}

/// Element-wise (Hadamard) product `a ⊙ b`.
public func * (a: Variable, b: Variable) -> Variable {
    precondition(a.shape == b.shape, "multiply: shapes \(a.shape) and \(b.shape) differ")
    let av = a.value, bv = b.value
    return Variable.record(av * bv, parents: [a, b]) { g in [g * bv, g * av] }
}

public func * (a: Variable, s: Float) -> Variable {
    Variable.record(a.value * s, parents: [a]) { g in [g * s] }
}

/// `1 - a`, element-wise.
public func oneMinus(_ a: Variable) -> Variable {
    Variable.record(a.value.map { 1 - $0 }, parents: [a]) { g in [g * -1] }
}

/// Matrix product `[M, K] · [K, N] → [M, N]` (either side optionally transposed).
///
/// Inside a sequence run on the tape, `a · Wᵀ` with a weight `W` is `linear(a, weight: W, bias: nil)`
/// (packed once for all steps, `SequenceWeights`).
public func matmul(_ a: Variable, _ b: Variable, transposeB: Bool = false) -> Variable {
    if transposeB, let scope = SequenceWeights.current, scope.packs(b), a.value.rank == 2, a.shape[0] > 0,
       a.shape[1] == b.shape[1] {
        return linear(a, weight: b, bias: nil, packedIn: scope)
    }
    let av = a.value, bv = b.value
    let out = matmul(av, bv, transposeB: transposeB)
    return Variable.recordTerms(out, parents: [a, b]) { g in
        // b's gradient gᵀ·a (or aᵀ·g) stays unformed until all its terms are in (`GradientTerm`).
        [.tensor(matmul(g, bv, transposeB: !transposeB)),
         transposeB ? .transposedProduct(g, av) : .transposedProduct(av, g)]
    }
}

/// Adds a bias `[N]` to every row of `x` `[B, N]`.
public func addRowVector(_ x: Variable, _ bias: Variable) -> Variable {
    precondition(x.value.rank == 2 && bias.value.rank == 1 && x.shape[1] == bias.shape[0],
                 "addRowVector: cannot add bias \(bias.shape) to rows of \(x.shape)")
    var out = x.value
    addToEveryRow(&out, bias.value)
    return Variable.record(out, parents: [x, bias]) { g in [g, columnSums(g)] }
}

/// `out[r, j] += bias[j]` for every row of `out` `[B, N]` (`ck_add_rows` reading one row).
func addToEveryRow(_ out: inout Tensor, _ bias: Tensor) {
    let n = bias.count
    guard n > 0 else { return }
    bias.data.withUnsafeBufferPointer { b in
        out.data.withUnsafeMutableBufferPointer { o in
            if o.count >= n { ck_add_rows(o.count / n, n, b.baseAddress!, 0, o.baseAddress!, n) }
        }
    }
}

/// Sum over rows: `[B, N] → [N]` (`ck_sum_rows`).
public func columnSums(_ g: Tensor) -> Tensor {
    let n = g.shape.last ?? 1
    let rows = g.count / max(n, 1)
    var s = [Float](repeating: 0, count: n)
    g.data.withUnsafeBufferPointer { p in
        s.withUnsafeMutableBufferPointer { o in
            if rows > 0 && n > 0 { ck_sum_rows(rows, n, p.baseAddress!, n, o.baseAddress!) }
        }
    }
    return Tensor(shape: [n], data: s)
}

/// `x · Wᵀ + b` for `x` `[B, I]`, `W` `[O, I]`, `b` `[O]` — PyTorch's `F.linear`, as one tape
/// node (the bias is added to the product in place, `(x · Wᵀ) + b` as `addRowVector` adds it).
///
/// Inside a sequence run on the tape (`runCell`) the weight is packed once for all steps
/// (`SequenceWeights`).
public func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
    if let scope = SequenceWeights.current, scope.packs(weight), x.value.rank == 2, x.shape[0] > 0,
       x.shape[1] == weight.shape[1], bias.map({ $0.value.rank == 1 && $0.shape[0] == weight.shape[0] }) ?? true {
        return linear(x, weight: weight, bias: bias, packedIn: scope)
    }
    guard let bias else { return matmul(x, weight, transposeB: true) }
    precondition(x.value.rank == 2 && bias.value.rank == 1 && weight.value.rank == 2 && bias.shape[0] == weight.shape[0],
                 "linear: cannot add bias \(bias.shape) to x \(x.shape) · weight \(weight.shape)ᵀ")
    let xv = x.value, wv = weight.value
    var out = matmul(xv, wv, transposeB: true)
    addToEveryRow(&out, bias.value)
    return Variable.recordTerms(out, parents: [x, weight, bias]) { g in
        // The weight's gradient gᵀ·x stays unformed until all its terms are in (`GradientTerm`).
        [.tensor(matmul(g, wv)), .transposedProduct(g, xv), .tensor(columnSums(g))]
    }
}

/// σ(x) = 1 / (1 + e^{-x}), element-wise (the fused kernels' vectorized σ, `ck_sigmoid`).
public func sigmoid(_ x: Variable) -> Variable {
    let y = x.value.applying(ck_sigmoid)
    return Variable.record(y, parents: [x]) { g in [g.zipWith(y) { gi, yi in gi * yi * (1 - yi) }] }
}

/// tanh(x), element-wise (the fused kernels' vectorized tanh, `ck_tanh`).
public func tanh(_ x: Variable) -> Variable {
    let y = x.value.applying(ck_tanh)
    return Variable.record(y, parents: [x]) { g in [g.zipWith(y) { gi, yi in gi * (1 - yi * yi) }] }
}

/// max(x, 0), element-wise.
public func relu(_ x: Variable) -> Variable {
    let y = x.value.map { max($0, 0) }
    return Variable.record(y, parents: [x]) { g in [g.zipWith(y) { gi, yi in yi > 0 ? gi : 0 }] }
}

/// eˣ, element-wise (`ck_exp`).
public func exp(_ x: Variable) -> Variable {
    let y = x.value.applying(ck_exp)
    return Variable.record(y, parents: [x]) { g in [g * y] }
}

/// ln x, element-wise.
public func log(_ x: Variable) -> Variable {
    let xv = x.value
    return Variable.record(xv.map { logf($0) }, parents: [x]) { g in [g.zipWith(xv) { $0 / $1 }] }
}

/// Sum of all elements → scalar.
public func sum(_ x: Variable) -> Variable {
    let shape = x.shape
    return Variable.record(Tensor(scalar: x.value.sum()), parents: [x]) { g in
        [Tensor(repeating: g.scalar, shape: shape)]
    }
}

/// Mean of all elements → scalar.
public func mean(_ x: Variable) -> Variable {
    let n = Float(max(x.value.count, 1))
    return sum(x) * (1 / n)
}

public func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
    let old = x.shape
    return Variable.record(x.value.reshaped(shape), parents: [x]) { g in [g.reshaped(old)] }
}

/// Columns `range` of the last axis of a `[B, N]` matrix → `[B, range.count]`
/// (splits stacked gate pre-activations).
public func columns(_ x: Variable, _ range: Range<Int>) -> Variable {
    precondition(x.value.rank == 2 && range.lowerBound >= 0 && range.upperBound <= x.shape[1],
                 "columns: range \(range) out of bounds for \(x.shape)")
    let rows = x.shape[0], n = x.shape[1], k = range.count, start = range.lowerBound
    let out = [Float](unsafeUninitializedCapacity: rows * k) { dst, count in
        if rows > 0 && k > 0 {
            x.value.data.withUnsafeBufferPointer { src in
                copyRows(rows, k, from: src.baseAddress! + start, n, to: dst.baseAddress!, k)
            }
        }
        count = rows * k
    }
    return Variable.recordTerms(Tensor(shape: [rows, k], data: out), parents: [x]) { g in
        // Added into its columns of x's gradient (zeros elsewhere), `GradientTerm.columnBlock`.
        [.columnBlock(g, start: start, total: n)]
    }
}

/// Concatenates `[B, N_i]` matrices along the last axis → `[B, ΣN_i]`.
public func concatColumns(_ xs: [Variable]) -> Variable {
    precondition(!xs.isEmpty && xs.allSatisfy { $0.value.rank == 2 && $0.shape[0] == xs[0].shape[0] },
                 "concatColumns: need matrices with equal row counts, got \(xs.map(\.shape))")
    let rows = xs[0].shape[0]
    let widths = xs.map { $0.shape[1] }
    let total = widths.reduce(0, +)
    let out = [Float](unsafeUninitializedCapacity: rows * total) { dst, count in
        var offset = 0
        for (x, w) in zip(xs, widths) {
            if rows > 0 && w > 0 {
                x.value.data.withUnsafeBufferPointer { src in
                    copyRows(rows, w, from: src.baseAddress!, w, to: dst.baseAddress! + offset, total)
                }
            }
            offset += w
        }
        count = rows * total
    }
    return Variable.record(Tensor(shape: [rows, total], data: out), parents: xs) { g in
        var grads: [Tensor?] = []
        var o = 0
        g.data.withUnsafeBufferPointer { src in
            for w in widths {
                let gx = [Float](unsafeUninitializedCapacity: rows * w) { dst, count in
                    if rows > 0 && w > 0 { copyRows(rows, w, from: src.baseAddress! + o, total, to: dst.baseAddress!, w) }
                    count = rows * w
                }
                grads.append(Tensor(shape: [rows, w], data: gx))
                o += w
            }
        }
        return grads
    }
}

/// Stacks equal-shaped values along a new leading axis: `T × [B, N] → [T, B, N]`.
public func stack(_ xs: [Variable]) -> Variable {
    precondition(!xs.isEmpty && xs.allSatisfy { $0.shape == xs[0].shape },
                 "stack: need equal shapes, got \(Set(xs.map(\.shape)))")
    let inner = xs[0].shape
    let n = xs[0].value.count
    var data = [Float]()
    data.reserveCapacity(n * xs.count)
    for x in xs { data.append(contentsOf: x.value.data) }
    return Variable.record(Tensor(shape: [xs.count] + inner, data: data), parents: xs) { g in
        (0..<xs.count).map { t in Tensor(shape: inner, data: Array(g.data[(t * n)..<((t + 1) * n)])) }
    }
}

/// Element `t` of the leading axis: `[T, ...] → [...]`.
public func index(_ x: Variable, _ t: Int) -> Variable {
    precondition(x.value.rank >= 1 && t >= 0 && t < x.shape[0], "index: \(t) out of range for \(x.shape)")
    let inner = Array(x.shape.dropFirst())
    let n = inner.reduce(1, *)
    let shape = x.shape
    let slice = Tensor(shape: inner, data: Array(x.value.data[(t * n)..<((t + 1) * n)]))
    return Variable.record(slice, parents: [x]) { g in
        var gx = Tensor(zeros: shape)
        for i in 0..<n { gx.data[t * n + i] = g.data[i] }
        return [gx]
    }
}

/// Row-wise choice: row `b` of the result is `a[b]` where `keep[b]`, else `b[b]`. Shapes `[B, N]`.
/// The generic runner uses it so padded steps leave the state (and every gradient) unchanged.
public func selectRows(_ keep: [Bool], _ a: Variable, _ b: Variable) -> Variable {
    precondition(a.shape == b.shape && a.value.rank == 2 && keep.count == a.shape[0],
                 "selectRows: mask of \(keep.count) rows for shapes \(a.shape), \(b.shape)")
    let n = a.shape[1]
    var out = b.value
    for (r, k) in keep.enumerated() where k {
        for j in 0..<n { out.data[r * n + j] = a.value.data[r * n + j] }
    }
    return Variable.record(out, parents: [a, b]) { g in
        var ga = g, gb = g
        for (r, k) in keep.enumerated() {
            for j in 0..<n { if k { gb.data[r * n + j] = 0 } else { ga.data[r * n + j] = 0 } }
        }
        return [ga, gb]
    }
}

/// Multiplies by a fixed mask (dropout with a precomputed, already scaled mask).
public func multiplyByConstant(_ x: Variable, _ mask: Tensor) -> Variable {
    precondition(x.shape == mask.shape, "multiplyByConstant: shapes \(x.shape) and \(mask.shape) differ")
    return Variable.record(x.value * mask, parents: [x]) { g in [g * mask] }
}
