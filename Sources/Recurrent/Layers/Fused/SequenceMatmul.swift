import CKernels

/// The whole-sequence matrix products of a fused sequence (input projections, weight and input
/// gradients), over all T·B rows at once and shared between threads.
///
/// With the AVX-512 kernels the right-hand side is packed once and each thread takes a slice of
/// rows; otherwise the platform BLAS runs the product with its own threads.
enum SequenceMatmul {
    /// Threads for a product of `m·n·k` multiply-adds: all of `BLAS.threads` when the work is
    /// large enough to pay for the hand-off.
    static func parts(_ m: Int, _ n: Int, _ k: Int) -> Int {
        m * n * k >= 1 << 20 ? max(1, BLAS.threads) : 1
    }

    /// `out[m, n] = bias + A[m, k]·Wᵀ` for `W [n, k]` (row-major; `bias [n]` added to every row,
    /// then the product, as PyTorch's `addmm` does). `out` has row stride n.
    static func linear(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, packed usePacked: Bool) {
        if m == 0 || n == 0 { return }
        guard usePacked && RecurrentProduct.packedKernelIsFast else {
            ck_fill_rows(m, n, bias, out)
            BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, a: a, lda: lda, b: weight, ldb: k,
                      beta: 1, c: out, ldc: n)
            return
        }
        let packed = Workspace<Float>(count: ck_packed_size(k, n))
        ck_pack(k, n, weight, k, 1, packed.pointer)
        let job = RowJob(a: a, lda: lda, packed: packed.pointer, k: k, n: n, out: out, bias: bias)
        let parts = parts(m, n, k)
        runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: m, quantum: 8)) }
    }

    /// `out[m, n] = A[m, k]·W` for `W [k, n]` row-major. `out` has row stride n.
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, weight: UnsafePointer<Float>,
                         out: UnsafeMutablePointer<Float>, packed usePacked: Bool) {
        if m == 0 || n == 0 { return }
        guard usePacked && RecurrentProduct.packedKernelIsFast else {
            BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: weight, ldb: n,
                      beta: 0, c: out, ldc: n)
            return
        }
        let packed = Workspace<Float>(count: ck_packed_size(k, n))
        ck_pack(k, n, weight, n, 0, packed.pointer)
        let job = RowJob(a: a, lda: lda, packed: packed.pointer, k: k, n: n, out: out, bias: nil)
        let parts = parts(m, n, k)
        runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: m, quantum: 8)) }
    }

    /// `out[m, n] = Aᵀ·B` for `A [k, m]` and `B [k, n]` row-major (strides lda, ldb): the weight
    /// gradient `dW = dGᵀ·X` summed over all T·B rows. `out` has row stride ldo. (BLAS, with its
    /// own threads: OpenBLAS runs this shape near the machine's peak.)
    static func multiplyTransposedLeft(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                       b: UnsafePointer<Float>, ldb: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        BLAS.gemm(transA: true, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                  beta: 0, c: out, ldc: ldo)
    }
}

/// One thread's rows of `out = [bias +] A·B` against a packed B.
private struct RowJob: @unchecked Sendable {
    let a: UnsafePointer<Float>, lda: Int
    let packed: UnsafePointer<Float>, k: Int, n: Int
    let out: UnsafeMutablePointer<Float>
    let bias: UnsafePointer<Float>?

    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        let r0 = rows.lowerBound
        if let bias { ck_fill_rows(rows.count, n, bias, out + r0 * n) }
        ck_gemm_packed(rows.count, k, a + r0 * lda, lda, packed, 0, (n + 31) / 32, n, out + r0 * n, n,
                       bias == nil ? 0 : 1)
    }
}
