import CKernels

/// The per-step products with `W_hh [G·H, H]` of one fused sequence:
/// forward `GH = h_{t-1}·W_hhᵀ` and backward `dh_{t-1} += dG_t·W_hh`, on a block of batch rows
/// and hidden units.
///
/// Where the AVX-512 kernels are available, `W_hh` is packed once per sequence (panels of 32
/// columns) so each step streams it with no per-call packing; for a batch of one row the forward
/// product reads `W_hh` in place (dot products, `ck_gemv_rows`) and so does the backward one (as
/// 32-column panels), which costs no packing.
/// Otherwise the platform BLAS runs (`gemv` for one row).
final class RecurrentProduct: @unchecked Sendable {
    let gates: Int, hidden: Int
    /// Row-major `W_hh [G·H, H]` (valid while the owner keeps the tensor alive).
    let weight: UnsafePointer<Float>
    /// `W_hhᵀ` packed as a `[H × G·H]` right-hand side (forward), or nil (BLAS).
    let packedTransposed: Workspace<Float>?
    /// `W_hh` packed as a `[G·H × H]` right-hand side (backward), or nil (BLAS, or in place).
    let packed: Workspace<Float>?
    /// Backward products read `W_hh` in place as 32-column panels (one row, H a multiple of 32).
    let inPlaceBackward: Bool
    /// Forward products of one row use `ck_gemv_rows` on the unpacked weights.
    let rowProducts: Bool

    static let packedKernelIsFast = ck_packed_gemm_is_fast() != 0

    /// Packs `W_hh` for the forward and/or backward products when `packed` (and the AVX-512
    /// kernel is available).
    init(weight: UnsafePointer<Float>, gates: Int, hidden: Int, batch: Int, forward: Bool, backward: Bool,
         packed usePacked: Bool) {
        let fast = usePacked && Self.packedKernelIsFast
        self.weight = weight
        rowProducts = fast && batch == 1
        self.gates = gates
        self.hidden = hidden
        let GH = gates * hidden, H = hidden
        if fast && forward && batch > 1 {
            let p = Workspace<Float>(count: ck_packed_size(H, GH))
            ck_pack(H, GH, weight, H, 1, p.pointer)
            packedTransposed = p
        } else {
            packedTransposed = nil
        }
        inPlaceBackward = fast && backward && batch == 1 && hidden % 32 == 0
        if fast && backward && !inPlaceBackward {
            let p = Workspace<Float>(count: ck_packed_size(GH, H))
            ck_pack(GH, H, weight, H, 0, p.pointer)
            packed = p
        } else {
            packed = nil
        }
    }

    /// `gh[r, g·H + j] = Σ_k hPrev[r, k] · W_hh[g·H + j, k]` for rows `0..<rows` (pointers at the
    /// block's first row) and units `units` of every gate. `gh` has row stride G·H.
    func forward(rows: Int, units: Range<Int>, hPrev: UnsafePointer<Float>, ldPrev: Int, gh: UnsafeMutablePointer<Float>) {
        let H = hidden, GH = gates * hidden
        if rows == 0 || units.isEmpty { return }
        let all = units.count == H
        if rowProducts && rows == 1 {
            if all {
                ck_gemv_rows(GH, H, weight, H, hPrev, gh, 0)
            } else {
                for g in 0..<gates {
                    let first = g * H + units.lowerBound
                    ck_gemv_rows(units.count, H, weight + first * H, H, hPrev, gh + first, 0)
                }
            }
            return
        }
        if let packedTransposed {
            if all {
                ck_gemm_packed(rows, H, hPrev, ldPrev, packedTransposed.pointer, 0, (GH + 31) / 32, GH, gh, GH, 0)
            } else {
                for g in 0..<gates {   // unit slices are multiples of 32, so gate blocks start on panels
                    ck_gemm_packed(rows, H, hPrev, ldPrev, packedTransposed.pointer, (g * H + units.lowerBound) / 32,
                                   (g * H + units.upperBound + 31) / 32, GH, gh, GH, 0)
                }
            }
            return
        }
        if all {
            if rows == 1 {
                BLAS.gemv(trans: false, m: GH, n: H, a: weight, lda: H, x: hPrev, beta: 0, y: gh)
            } else {
                BLAS.gemm(transA: false, transB: true, m: rows, n: GH, k: H, a: hPrev, lda: ldPrev,
                          b: weight, ldb: H, beta: 0, c: gh, ldc: GH)
            }
            return
        }
        for g in 0..<gates {
            let col = g * H + units.lowerBound
            BLAS.gemm(transA: false, transB: true, m: rows, n: units.count, k: H, a: hPrev, lda: ldPrev,
                      b: weight + col * H, ldb: H, beta: 0, c: gh + col, ldc: GH)
        }
    }

    /// `dh[r, j] += Σ_k dG[r, k] · W_hh[k, j]` for rows `0..<rows` (pointers at the block's first
    /// row) and units `units`. `dG` has row stride G·H, `dh` row stride H.
    func backward(rows: Int, units: Range<Int>, dG: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>) {
        let H = hidden, GH = gates * hidden
        if rows == 0 || units.isEmpty { return }
        if inPlaceBackward {
            ck_gemm_panels(rows, GH, dG, GH, weight, H, 32, units.lowerBound / 32, (units.upperBound + 31) / 32,
                           H, dh, H, 1)
            return
        }
        if let packed {
            ck_gemm_packed(rows, GH, dG, GH, packed.pointer, units.lowerBound / 32, (units.upperBound + 31) / 32,
                           H, dh, H, 1)
            return
        }
        if rows == 1 {
            BLAS.gemv(trans: true, m: GH, n: units.count, a: weight + units.lowerBound, lda: H, x: dG, beta: 1,
                      y: dh + units.lowerBound)
        } else {
            BLAS.gemm(transA: false, transB: false, m: rows, n: units.count, k: GH, a: dG, lda: GH,
                      b: weight + units.lowerBound, ldb: H, beta: 1, c: dh + units.lowerBound, ldc: H)
        }
    }
}
