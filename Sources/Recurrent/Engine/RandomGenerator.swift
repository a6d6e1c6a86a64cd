#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The library's seeded random generator: xoshiro256** seeded through SplitMix64.
///
/// Every random choice in Recurrent (initialisation, dropout masks, batch order, sampling) draws
/// from one of these, so the same seed gives the same stream on every platform. The state is four
/// `UInt64`s and can be saved and restored (`state`) to resume a run exactly.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    public var state: [UInt64]

    public init(seed: UInt64) {
        var s = seed
        func splitmix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = [splitmix(), splitmix(), splitmix(), splitmix()]
    }

    /// Restores a saved state (four words).
    public init(state: [UInt64]) {
        precondition(state.count == 4, "RandomGenerator: state needs 4 words, got \(state.count)")
        self.state = state
    }

    @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = RandomGenerator.rotl(state[3], 45)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of resolution.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * nextUniform() }

    /// Standard normal (Box–Muller in Double, for the same values everywhere).
    public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Integer in 0..<n without modulo bias.
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0, "nextInt(below:): n must be positive, got \(n)")
        return Int(next(upperBound: UInt64(n)))
    }

    /// A tensor of U(low, high) values.
    public mutating func uniformTensor(_ shape: [Int], low: Float, high: Float) -> Tensor {
        let n = shape.reduce(1, *)
        var d = [Float](repeating: 0, count: n)
        for i in 0..<n { d[i] = uniform(low, high) }
        return Tensor(shape: shape, data: d)
    }
}

