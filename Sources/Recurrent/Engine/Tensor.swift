/// A dense, row-major Float32 array with a shape.
///
/// Storage is a Swift array, so copies are copy-on-write and cheap until mutated. Shapes are
/// checked at every operation with a message that names both shapes.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }

    public init(repeating value: Float, shape: [Int]) {
        let count = shape.reduce(1, *)
        self.init(shape: shape, data: [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!, count: count, with: value) }
            initialized = count
        })
    }

    /// A scalar (rank 0) tensor.
    public init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    public var count: Int { data.count }
    public var rank: Int { shape.count }
    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements")
        return data[0]
    }

    public subscript(index: Int...) -> Float {
        get { data[flatIndex(index)] }
        set { data[flatIndex(index)] = newValue }
    }

    @inline(__always) func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) does not match shape \(shape)")
        var f = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "Tensor: index \(index) out of range for shape \(shape)")
            f = f * d + i
        }
        return f
    }

    /// The same data viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape: cannot view \(shape) as \(newShape)")
        return Tensor(shape: newShape, data: data)
    }

    /// Rows `range` of the leading dimension.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice: range \(range) out of bounds for shape \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [range.count] + shape.dropFirst(),
                      data: Array(data[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }

    /// Largest absolute element-wise difference; shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: shapes \(shape) and \(other.shape) differ")
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }

    /// Whether both tensors have the same shape and hold the very same storage (not a copy of
    /// it): while a holder keeps one of them, the storage can be neither freed nor written in
    /// place, so whatever was computed from it still holds (`SequenceWeights`, `PackedWeightCache`).
    func sharesStorage(with other: Tensor) -> Bool {
        shape == other.shape && data.withUnsafeBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress }
        }
    }

    public var description: String { "Tensor(shape: \(shape), data: \(data.prefix(8))\(count > 8 ? "…" : ""))" }

    // MARK: element-wise helpers on values (not recorded on the tape)

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, *) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }

    /// `f` of every element, in one pass into new storage.
    public func map(_ f: (Float) -> Float) -> Tensor {
        let n = count
        return Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { out, initialized in
            data.withUnsafeBufferPointer { x in
                for i in 0..<n { out[i] = f(x[i]) }
            }
            initialized = n
        })
    }

    /// The result of an element-wise C kernel `kernel(n, x, y)` (`y[i] = f(x[i])`) on this tensor.
    func applying(_ kernel: (Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void) -> Tensor {
        let n = count
        return Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { out, initialized in
            data.withUnsafeBufferPointer { x in if n > 0 { kernel(n, x.baseAddress!, out.baseAddress!) } }
            initialized = n
        })
    }

    /// `f` of every pair of elements, in one pass into new storage (shapes must match).
    public func zipWith(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "element-wise op: shapes \(shape) and \(other.shape) differ")
        let n = count
        return Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { out, initialized in
            data.withUnsafeBufferPointer { a in
                other.data.withUnsafeBufferPointer { b in
                    for i in 0..<n { out[i] = f(a[i], b[i]) }
                }
            }
            initialized = n
        })
    }

    /// In-place `self += other` (same shape).
    public mutating func add(_ other: Tensor) {
        precondition(shape == other.shape, "accumulate: shapes \(shape) and \(other.shape) differ")
        other.data.withUnsafeBufferPointer { b in
            data.withUnsafeMutableBufferPointer { o in
                for i in 0..<o.count { o[i] += b[i] }
            }
        }
    }

    public func sum() -> Float { Tensor.sum(data) }

    /// Sum with a SIMD accumulator (scalar `s += x` loops do not vectorize). From 256K floats
    /// the two halves are summed apart, on two threads when the team has them, and then added:
    /// the same result on any number of threads.
    public static func sum(_ x: [Float]) -> Float {
        x.withUnsafeBufferPointer { p in
            guard p.count >= sharedMemoryFloats else { return sum(p) }
            let half = p.count / 2
            let halves = UnsafeMutablePointer<Float>.allocate(capacity: 2)
            defer { halves.deallocate() }
            let job = HalfSumJob(data: p, half: half, results: halves)
            let threads = ThreadTeam.available
            runParts(min(2, threads)) { part in job.run(part, of: threads) }
            return halves[0] + halves[1]
        }
    }

    /// `sum` of one buffer on the calling thread.
    static func sum(_ p: UnsafeBufferPointer<Float>) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= p.count {
            acc += SIMD16<Float>(p[i..<(i + 16)])
            i += 16
        }
        var s = acc.sum()
        while i < p.count { s += p[i]; i += 1 }
        return s
    }

    /// Sum of squares with a SIMD accumulator.
    public static func sumOfSquares(_ x: [Float]) -> Float {
        x.withUnsafeBufferPointer { p in
            var acc = SIMD16<Float>(repeating: 0)
            var i = 0
            while i + 16 <= p.count {
                let v = SIMD16<Float>(p[i..<(i + 16)])
                acc += v * v
                i += 16
            }
            var s = acc.sum()
            while i < p.count { s += p[i] * p[i]; i += 1 }
            return s
        }
    }
}

/// `C[m,n] = A[m,k] · B[k,n]` with optional transposes, on tensors.
///
/// Products of 2²⁰ multiply-adds or more are shared between the team's threads (`runParts`), each
/// running single-threaded BLAS on a slice of C's rows (or of its columns when C has fewer rows
/// than columns): OpenBLAS's own threads sleep right after each call and take their time to wake,
/// and the team's helpers are already spinning from the layers' work. (Language-model head,
/// 4096 × 256 · 256 × 65, inside a char-LM training step: the forward product with its bias 2.1 ms
/// with OpenBLAS's two threads, 1.2 ms in two team parts; its two gradient products then 0.8 and
/// 1.1 ms.)
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    let (m, n, k) = productShape(a, b, transposeA: transposeA, transposeB: transposeB)
    if m == 0 || n == 0 || k == 0 { return Tensor(zeros: [m, n]) }
    let out = [Float](unsafeUninitializedCapacity: m * n) { pc, initialized in
        multiply(a, b, transposeA: transposeA, transposeB: transposeB, into: pc.baseAddress!, m: m, n: n, k: k, beta: 0)
        initialized = m * n
    }
    return Tensor(shape: [m, n], data: out)
}

/// `C += op(A) · op(B)` into `c` `[M, N]` (as `matmul` shares the work).
func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
            accumulatingInto c: inout Tensor) {
    let (m, n, k) = productShape(a, b, transposeA: transposeA, transposeB: transposeB)
    precondition(c.shape == [m, n], "matmul: cannot accumulate a [\(m), \(n)] product into \(c.shape)")
    if m == 0 || n == 0 || k == 0 { return }
    c.data.withUnsafeMutableBufferPointer { pc in
        multiply(a, b, transposeA: transposeA, transposeB: transposeB, into: pc.baseAddress!, m: m, n: n, k: k, beta: 1)
    }
}

/// (M, N, K) of `op(A) · op(B)`, checked.
private func productShape(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> (Int, Int, Int) {
    precondition(a.rank == 2 && b.rank == 2, "matmul: expected matrices, got \(a.shape) and \(b.shape)")
    let m = transposeA ? a.shape[1] : a.shape[0]
    let k = transposeA ? a.shape[0] : a.shape[1]
    let kb = transposeB ? b.shape[1] : b.shape[0]
    let n = transposeB ? b.shape[0] : b.shape[1]
    precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
    return (m, n, k)
}

/// `C = op(A) · op(B) + beta · C` (M, N, K > 0), shared between the team's threads from 2²⁰
/// multiply-adds.
private func multiply(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, into c: UnsafeMutablePointer<Float>,
                      m: Int, n: Int, k: Int, beta: Float) {
    let lda = a.shape[1], ldb = b.shape[1]
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            let job = MatmulJob(a: pa.baseAddress!, lda: lda, transposeA: transposeA, b: pb.baseAddress!, ldb: ldb,
                                transposeB: transposeB, c: c, m: m, n: n, k: k, beta: beta)
            let threads = ThreadTeam.available
            if productParts(m, n, k, threads: threads) < 2 {
                job.run(rows: 0..<m, columns: 0..<n)
                return
            }
            let byRows = m >= n
            let parts = min(threads, max(1, (byRows ? m : n) / 16))
            runParts(parts) { p in
                if byRows { job.run(rows: WorkSplit.slice(p, of: parts, count: m, quantum: 16), columns: 0..<n) }
                else { job.run(rows: 0..<m, columns: WorkSplit.slice(p, of: parts, count: n, quantum: 16)) }
            }
        }
    }
}

/// One block of C's rows and columns of a `matmul`.
private struct MatmulJob: @unchecked Sendable {
    let a: UnsafePointer<Float>, lda: Int, transposeA: Bool
    let b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
    let c: UnsafeMutablePointer<Float>
    let m: Int, n: Int, k: Int
    let beta: Float

    func run(rows: Range<Int>, columns: Range<Int>) {
        if rows.isEmpty || columns.isEmpty { return }
        let r0 = rows.lowerBound, c0 = columns.lowerBound
        // Row r of op(A) starts at a + r·lda (as a column when transposed: a + r); column j of
        // op(B) at b + j (as a row when transposed: b + j·ldb).
        BLAS.gemm(transA: transposeA, transB: transposeB, m: rows.count, n: columns.count, k: k,
                  a: a + (transposeA ? r0 : r0 * lda), lda: lda, b: b + (transposeB ? c0 * ldb : c0), ldb: ldb,
                  beta: beta, c: c + r0 * n + c0, ldc: n)
    }
}

/// The halves of `Tensor.sum`: part p sums half p (one part sums both).
private struct HalfSumJob: @unchecked Sendable {
    let data: UnsafeBufferPointer<Float>, half: Int
    let results: UnsafeMutablePointer<Float>

    func run(_ part: Int, of threads: Int) {
        for h in (threads >= 2 ? part...part : 0...1) {
            let range = h == 0 ? 0..<half : half..<data.count
            results[h] = Tensor.sum(UnsafeBufferPointer(rebasing: data[range]))
        }
    }
}
