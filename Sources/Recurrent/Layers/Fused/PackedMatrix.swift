import CKernels

/// A right-hand side `B [k × n]` packed once for many products `C = A·B` (a weight matrix for
/// all the steps of a sequence), for one of the two packed kernels:
///
/// - `.fma`: fp32 panels of 32 columns for the multiply-add kernels (AVX-512 or AVX2) (`ck_gemm_panels`).
/// - `.tiles`: the bf16 matrix units (Intel AMX, `ck_tile_gemm`). Each value is split exactly
///   into three bf16 parts `x = x₀ + x₁ + x₂` and a multiply-add becomes six part products
///   (`a₀b₀ + a₀b₁ + a₁b₀ + a₁b₁ + a₀b₂ + a₂b₀`; the terms left out are below `2⁻²¹·|a·b|`),
///   added in fp32: an fp32 result at fp32 accuracy (measured error at or below the FMA
///   kernel's and near OpenBLAS's), ~1.5x the FMA kernel's rate at 64 rows.
///   Used where the CPU and OS allow it, blocks have at least 32 rows and k is at least 128: at
///   16 rows the products are bound by reading `B`, which is 1.5x larger in this form (a
///   16 × 1088 × 2048 product: 0.88–0.92x the FMA kernel), and at k = 64 by loading and storing the
///   result tiles (3200 × 64 × 4096: 0.72x).
///
/// Both kernels compute each element of `C` from its row of `A` and column of `B` alone, in an
/// order that does not depend on the block, so rows and columns come out alike whichever thread
/// or block computes them.
final class PackedMatrix: @unchecked Sendable {
    enum Kernel { case fma, tiles }

    let kernel: Kernel
    let k: Int, n: Int
    private let floats: Workspace<Float>?
    private let parts: Workspace<UInt16>?

    /// Whether the tile kernel can run here (`RECURRENT_TILES=0` in the environment turns it off).
    static let tilesAvailable = ck_tile_gemm_available() != 0

    /// Terms the tile kernel sums in one pass over the result; a longer k is summed in passes of
    /// this many, each added to the result of the ones before.
    static let termsPerPass = Int(CK_TILE_TERMS_PER_PASS)

    /// The kernel for products of `k` terms whose blocks have up to `rows` rows.
    static func kernel(rows: Int, k: Int) -> Kernel { tilesAvailable && rows >= 32 && k >= 128 ? .tiles : .fma }

    /// Room for `B [k × n]` in the form `kernel` reads (not yet packed).
    init(k: Int, n: Int, kernel: Kernel) {
        self.k = k
        self.n = n
        self.kernel = kernel
        switch kernel {
        case .fma:
            floats = Workspace(count: ck_packed_size(k, n))
            parts = nil
        case .tiles:
            precondition(Self.tilesAvailable, "PackedMatrix: the tile kernel is not available here")
            floats = nil
            parts = Workspace(count: ck_tile_packed_size(k, n))
        }
    }

    /// Packs rows `kOffset..<kOffset + count` of B and its columns `columns` (starting on a
    /// multiple of 32) from `b`: `B(kOffset + i, j) = b[i·ldb + j]`, or `b[j·ldb + i]` when
    /// `transposed` (Wᵀ from a row-major `W [n × count]`). Calls for disjoint column slices may
    /// run at the same time; `[W_ih | W_hh]ᵀ` is two calls, at kOffset 0 and I.
    func pack(rows count: Int, at kOffset: Int = 0, columns: Range<Int>, from b: UnsafePointer<Float>, ldb: Int,
              transposed: Bool) {
        let c0 = columns.lowerBound
        precondition(c0 % 32 == 0 && kOffset + count <= k && columns.upperBound <= n)
        if columns.isEmpty { return }
        let source = transposed ? b + c0 * ldb : b + c0
        if let floats {
            ck_pack_strided(count, columns.count, source, ldb, transposed ? 1 : 0, floats.pointer + c0 * k + 32 * kOffset,
                            32 * k)
        } else if let parts {
            ck_tile_pack(count, columns.count, source, ldb, transposed ? 1 : 0, parts.pointer + ck_tile_packed_size(k, c0),
                         k, kOffset)
        }
    }

    /// `C[m × n] = A[m × k]·B` (`C +=` when `accumulate`) for the 32-column panels `panels`, and
    /// with `groups` > 1 the same panels shifted by `g·groupStride` for each g (the same units of
    /// every gate). `A` and `C` are row-major with row strides lda and ldc.
    /// With `transposedA` (the tile kernel only) `A(i, kk) = a[kk·lda + i]`: `dGᵀ` of a weight
    /// gradient read from `dG [k, m]` in place.
    /// With `descending` the panels go last to first (the same results; see `StepProduct.forward`).
    func multiply(m: Int, a: UnsafePointer<Float>, lda: Int, transposedA: Bool = false, panels: Range<Int>,
                  groups: Int = 1, groupStride: Int = 0, out c: UnsafeMutablePointer<Float>, ldc: Int,
                  accumulate: Bool, descending: Bool = false) {
        if m == 0 || panels.isEmpty { return }
        if let floats {
            precondition(!transposedA, "PackedMatrix: the FMA kernel reads A as it lies")
            ck_gemm_panels(m, k, a, lda, floats.pointer, 32, 32 * k, groups, groupStride, panels.lowerBound,
                           panels.upperBound, n, c, ldc, accumulate ? 1 : 0, descending ? 1 : 0)
        } else if let parts {
            ck_tile_gemm(m, k, a, lda, transposedA ? 1 : 0, parts.pointer, groups, groupStride, panels.lowerBound,
                         panels.upperBound, n, c, ldc, accumulate ? 1 : 0, descending ? 1 : 0)
        }
    }

    /// The panels that hold columns `columns` (32-aligned start).
    static func panels(_ columns: Range<Int>) -> Range<Int> { columns.lowerBound / 32..<(columns.upperBound + 31) / 32 }
}
