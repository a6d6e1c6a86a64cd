#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the next symbol is chosen from the model's logits.
public struct SamplingOptions: Sendable, Equatable {
    /// τ > 0: `p ∝ exp(logit / τ)`; below 1 sharpens, above 1 flattens.
    public var temperature: Float
    /// Keep only the k most likely symbols (nil: all).
    public var topK: Int?
    /// Nucleus: keep the smallest set of most likely symbols whose probability reaches p (nil: all).
    public var topP: Float?
    /// Always take the most likely symbol (ignores the rest).
    public var argmax: Bool

    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil, argmax: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.argmax = argmax
    }

    /// Checks the ranges, with messages naming the option.
    public func validate() throws {
        guard temperature > 0, temperature.isFinite else {
            throw RecurrentError.invalidArgument("--temperature must be a positive number, got \(temperature)")
        }
        if let k = topK, k < 1 { throw RecurrentError.invalidArgument("--top-k must be at least 1, got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw RecurrentError.invalidArgument("--top-p must be in (0, 1], got \(p)") }
    }
}

/// Turns logits into a choice: temperature, then top-k, then top-p (nucleus) filtering, then one
/// draw from the renormalised distribution.
public enum Sampler {
    /// The distribution sampled from: `softmax(logits / τ)` restricted to the symbols that survive
    /// top-k and top-p, renormalised (Double, sums to 1).
    public static func probabilities(logits: [Float], options: SamplingOptions) -> [Double] {
        let n = logits.count
        precondition(n > 0, "Sampler: no logits")
        if options.argmax {
            var p = [Double](repeating: 0, count: n)
            p[argmax(logits)] = 1
            return p
        }
        let tau = Double(options.temperature)
        let m = Double(logits.max()!)
        var p = logits.map { exp((Double($0) - m) / tau) }
        let total = p.reduce(0, +)
        for i in 0..<n { p[i] /= total }
        // Most likely first; ties keep index order so the result is deterministic.
        let order = (0..<n).sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        var keep = n
        if let k = options.topK { keep = min(keep, k) }
        if let top = options.topP {
            var cumulative = 0.0
            var needed = 0
            for i in order {
                cumulative += p[i]
                needed += 1
                if cumulative >= Double(top) - 1e-12 { break }
            }
            keep = min(keep, needed)
        }
        var filtered = [Double](repeating: 0, count: n)
        var kept = 0.0
        for i in order.prefix(keep) { filtered[i] = p[i]; kept += p[i] }
        for i in 0..<n { filtered[i] /= kept }
        return filtered
    }

    /// One symbol index drawn with `generator` (53-bit uniform against the cumulative sum).
    public static func sample(logits: [Float], options: SamplingOptions, generator: inout RandomGenerator) -> Int {
        if options.argmax { return argmax(logits) }
        let p = probabilities(logits: logits, options: options)
        let u = Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        var cumulative = 0.0
        var last = 0
        for (i, pi) in p.enumerated() where pi > 0 {
            cumulative += pi
            last = i
            if u < cumulative { return i }
        }
        return last
    }

    /// Index of the largest logit (the first one on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }
}
