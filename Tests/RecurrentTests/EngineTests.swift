import Testing
@testable import Recurrent

@Suite struct TensorTests {
    @Test func matmulMatchesNaive() {
        var rng = RandomGenerator(seed: 1)
        let a = rng.uniformTensor([3, 5], low: -1, high: 1)
        let b = rng.uniformTensor([4, 5], low: -1, high: 1)
        let c = matmul(a, b, transposeB: true)
        for i in 0..<3 { for j in 0..<4 {
            var s: Float = 0
            for k in 0..<5 { s += a[i, k] * b[j, k] }
            #expect(abs(c[i, j] - s) < 1e-5)
        } }
    }
}
