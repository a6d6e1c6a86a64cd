import CKernels
import Testing
@testable import Recurrent

/// The packed products compute exactly the sums they document, bit for bit, whichever
/// instruction set runs them (AVX-512, or AVX2 with FMA; `ck_packed_gemm_is_fast`), so a model
/// gives the same numbers on both kinds of x86-64 machine. Each expected value is built here in
/// scalar Swift with the same roundings: `addingProduct` is one fused multiply-add.
@Suite struct PackedKernelArithmeticTests {
    /// `ck_gemm_panels`: each element is the chain `c = fma(a[k], b[k], c)` over k from zero (then
    /// added to C when accumulating), for one row (several panels at once) and for blocks of
    /// rows, packed panels and a matrix read in place, partial last panels (under and over 16
    /// columns), gate ranges, the panels in either order, and (13 rows at k = 4000) panels taken
    /// in blocks of k.
    @Test func panelProductsAreFusedChainsOverK() {
        var rng = RandomGenerator(seed: 21)
        // (m, n, k, groups, groupStride in panels, panels per group)
        let cases = [(1, 45, 7, 1, 0, 2), (1, 160, 33, 1, 0, 5), (2, 50, 19, 1, 0, 2), (7, 96, 64, 1, 0, 3),
                     (13, 77, 40, 1, 0, 3), (6, 256, 48, 4, 2, 1), (11, 256, 5, 2, 4, 3), (1, 256, 24, 4, 2, 2),
                     (9, 64, 300, 1, 0, 2), (13, 80, 4000, 1, 0, 3)]
        for (m, n, k, groups, groupStride, perGroup) in cases {
            let b = (0..<(k * n)).map { _ in rng.uniform(-1, 1) }          // B [k, n]
            let a = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
            let c0 = (0..<(m * n)).map { _ in rng.uniform(-1, 1) }
            var packed = [Float](repeating: .nan, count: ck_packed_size(k, n))
            ck_pack(k, n, b, n, 0, &packed)
            let covered = Set((0..<groups).flatMap { g in (g * groupStride..<g * groupStride + perGroup) })
            for inPlace in n % 32 == 0 ? [false, true] : [false] {
                for accumulate in [false, true] {
                    for descending in [false, true] {
                        var c = c0
                        b.withUnsafeBufferPointer { pb in
                            packed.withUnsafeBufferPointer { pp in
                                ck_gemm_panels(m, k, a, k, inPlace ? pb.baseAddress! : pp.baseAddress!,
                                               inPlace ? n : 32, inPlace ? 32 : 32 * k, groups, groupStride, 0,
                                               perGroup, n, &c, n, accumulate ? 1 : 0, descending ? 1 : 0)
                            }
                        }
                        var expected = c0
                        for i in 0..<m { for j in 0..<n where covered.contains(j / 32) {
                            var s: Float = 0
                            for kk in 0..<k { s = s.addingProduct(a[i * k + kk], b[kk * n + j]) }
                            expected[i * n + j] = accumulate ? c0[i * n + j] + s : s
                        } }
                        #expect(c.map(\.bitPattern) == expected.map(\.bitPattern),
                                "m=\(m) n=\(n) k=\(k) groups=\(groups) inPlace=\(inPlace) accumulate=\(accumulate) descending=\(descending)")
                    }
                }
            }
        }
    }

    /// `ck_gemv_rows`: within each range, rows in whole blocks of 16 are dot products kept as 16
    /// partial sums and added in a fixed tree; rows of a last partial block, and rows of a
    /// non-shifted read past its blocks, are plain chains. With ldw a multiple of 16 (and
    /// 16 ≤ k ≤ 4096) lane j of the partial sums takes the k with (k + o) ≡ j (mod 16), o being
    /// the row's offset from a 64-byte boundary in floats, its first term a plain product;
    /// otherwise lane j takes k ≡ j among the first ⌊k/16⌋·16 terms, from zero, and the rest are
    /// chained onto the tree's sum.
    @Test func rowProductsAreLaneSumsInATree() {
        var rng = RandomGenerator(seed: 22)
        // (rows per group, k, ld, groups, group stride)
        let shapes = [(16, 256, 256, 1, 0), (32, 40, 48, 1, 0), (20, 33, 48, 1, 0), (16, 17, 20, 1, 0),
                      (35, 100, 112, 2, 40), (33, 40, 43, 1, 0), (16, 16, 16, 3, 16), (48, 7, 10, 1, 0)]
        for (rows, k, ld, groups, stride) in shapes {
            let totalRows = groups == 1 ? rows : (groups - 1) * stride + rows
            for offset in (ld % 16 == 0 ? [0, 1, 7, 15] : [0, 3]) {
                let buffer = Workspace<Float>(count: offset + totalRows * ld + 16)
                buffer.pointer.update(repeating: .nan, count: buffer.count)
                let w = buffer.pointer + offset
                for r in 0..<totalRows { for kk in 0..<k { w[r * ld + kk] = rng.uniform(-1, 1) } }
                let x = (0..<k).map { _ in rng.uniform(-1, 1) }
                let shifted = ld % 16 == 0 && k >= 16 && k <= 4096
                let o = shifted ? Int(UInt(bitPattern: w) >> 2) & 15 : 0
                for descending in [false, true] {
                    var y = [Float](repeating: 5, count: totalRows)
                    ck_gemv_rows(groups, stride, rows, k, w, ld, x, &y, 0, descending ? 1 : 0)
                    var expected = [Float](repeating: 5, count: totalRows)
                    for g in 0..<groups {
                        for i in 0..<rows {
                            let r = g * stride + i, row = w + r * ld
                            let inWholeBlock = i < rows / 16 * 16
                            if !inWholeBlock {
                                var s: Float = 0
                                for kk in 0..<k { s = s.addingProduct(row[kk], x[kk]) }
                                expected[r] = s
                            } else if shifted {
                                var lanes = [Float](repeating: 0, count: 16)
                                let chunks = (o + k + 15) / 16
                                for c in 0..<chunks {
                                    for j in 0..<16 {
                                        let kk = c * 16 + j - o
                                        let (wv, xv): (Float, Float) = kk >= 0 && kk < k ? (row[kk], x[kk]) : (0, 0)
                                        lanes[j] = c == 0 ? wv * xv : lanes[j].addingProduct(wv, xv)
                                    }
                                }
                                expected[r] = Self.tree(lanes)
                            } else {
                                var lanes = [Float](repeating: 0, count: 16)
                                let k16 = k / 16 * 16
                                for kk in 0..<k16 { lanes[kk % 16] = lanes[kk % 16].addingProduct(row[kk], x[kk]) }
                                var s = Self.tree(lanes)
                                for kk in k16..<k { s = s.addingProduct(row[kk], x[kk]) }
                                expected[r] = s
                            }
                        }
                    }
                    #expect(y.map(\.bitPattern) == expected.map(\.bitPattern),
                            "rows=\(rows) k=\(k) ld=\(ld) offset=\(offset) groups=\(groups) descending=\(descending)")
                }
            }
        }
    }

    /// The 16 partial sums added as `ck_reduce16` does: a_j = v_j + v_{j+8}, b_j = a_j + a_{j+4},
    /// then (b_0 + b_2) + (b_1 + b_3).
    static func tree(_ v: [Float]) -> Float {
        let a = (0..<8).map { v[$0] + v[$0 + 8] }
        let b = (0..<4).map { a[$0] + a[$0 + 4] }
        return (b[0] + b[2]) + (b[1] + b[3])
    }
}
