/// Per-cell activations of every layer while a model reads a passage: for LSTM `tanh(c_t)`
/// (the cell state squashed to (−1, 1), as in Karpathy, Johnson & Fei-Fei, "Visualizing and
/// Understanding Recurrent Networks"), for GRU and tanh-RNN the hidden state `h_t`, for ReLU-RNN
/// `h_t` divided by each cell's largest value over the passage.
public struct CellActivations: Sendable, Equatable {
    /// The passage, one string per symbol.
    public var symbols: [String]
    /// L
    public var layerCount: Int
    /// H
    public var cellCount: Int
    /// `[L, T, H]`, row-major, each value in [−1, 1].
    public var values: [Float]
    /// What the values are, for the page: `tanh(c)` or `h`.
    public var quantity: String

    public init(symbols: [String], layerCount: Int, cellCount: Int, values: [Float], quantity: String) {
        precondition(values.count == layerCount * symbols.count * cellCount,
                     "CellActivations: \(values.count) values for \(layerCount) layers × \(symbols.count) steps × \(cellCount) cells")
        self.symbols = symbols
        self.layerCount = layerCount
        self.cellCount = cellCount
        self.values = values
        self.quantity = quantity
    }

    public var length: Int { symbols.count }

    @inline(__always) public func value(layer: Int, step: Int, cell: Int) -> Float {
        values[(layer * length + step) * cellCount + cell]
    }

    /// The activations of one cell over the passage.
    public func trace(layer: Int, cell: Int) -> [Float] {
        (0..<length).map { value(layer: layer, step: $0, cell: cell) }
    }
}

/// A cell whose activation follows a simple property of the text.
public struct InterpretableCell: Sendable, Equatable {
    public var layer: Int
    public var cell: Int
    /// The property (`inside quotes`, `position in line`, ...).
    public var feature: String
    /// Pearson correlation between the cell's activation and the property over the passage.
    public var correlation: Double
    /// Fraction of steps where |activation| > 0.9.
    public var saturation: Double
}

/// Finds cells that track text properties, by correlating each cell's activation with
/// indicator features of the passage (Karpathy et al. found quote, line-position and
/// bracket-depth cells this way).
public enum CellInterpretation {
    /// Features of the text after reading each symbol: name and one value per position.
    public static func features(of symbols: [String]) -> [(name: String, values: [Double])] {
        var inQuote = false, depth = 0, column = 0
        var quote = [Double](), paren = [Double](), position = [Double](), newline = [Double](),
            space = [Double](), letter = [Double](), upper = [Double](), punctuation = [Double](), vowel = [Double]()
        for s in symbols {
            let c = s.unicodeScalars.first!
            if s == "\"" { inQuote.toggle() }
            if s == "(" || s == "[" || s == "{" { depth += 1 }
            if (s == ")" || s == "]" || s == "}") && depth > 0 { depth -= 1 }
            column = s == "\n" ? 0 : column + 1
            quote.append(inQuote ? 1 : 0)
            paren.append(depth > 0 ? 1 : 0)
            position.append(Double(column))
            newline.append(s == "\n" ? 1 : 0)
            space.append(s == " " ? 1 : 0)
            letter.append(c.properties.isAlphabetic ? 1 : 0)
            upper.append(c.properties.isUppercase ? 1 : 0)
            punctuation.append(".,;:!?".contains(s) ? 1 : 0)
            vowel.append("aeiouAEIOU".contains(s) ? 1 : 0)
        }
        return [("inside quotes", quote), ("inside brackets", paren), ("position in line", position),
                ("end of line", newline), ("space", space), ("inside a word", letter), ("capital letter", upper),
                ("punctuation", punctuation), ("vowel", vowel)]
    }

    /// The `top` cells with the strongest |correlation| to any feature (one entry per cell).
    public static func rank(_ activations: CellActivations, top: Int = 12) -> [InterpretableCell] {
        let features = self.features(of: activations.symbols).filter { f in
            Set(f.values).count > 1
        }
        let t = activations.length
        guard t > 2, !features.isEmpty else { return [] }
        let centered: [(String, [Double], Double)] = features.map { f in
            let m = f.values.reduce(0, +) / Double(t)
            let c = f.values.map { $0 - m }
            return (f.name, c, c.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        var found: [InterpretableCell] = []
        for layer in 0..<activations.layerCount {
            for cell in 0..<activations.cellCount {
                let a = activations.trace(layer: layer, cell: cell).map(Double.init)
                let m = a.reduce(0, +) / Double(t)
                let ac = a.map { $0 - m }
                let an = ac.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard an > 1e-9 else { continue }
                var best = (name: "", r: 0.0)
                for (name, fc, fn) in centered {
                    var dot = 0.0
                    for i in 0..<t { dot += ac[i] * fc[i] }
                    let r = dot / (an * fn)
                    if abs(r) > abs(best.r) { best = (name, r) }
                }
                let saturated = a.filter { abs($0) > 0.9 }.count
                found.append(InterpretableCell(layer: layer, cell: cell, feature: best.name, correlation: best.r,
                                               saturation: Double(saturated) / Double(t)))
            }
        }
        return Array(found.sorted { abs($0.correlation) > abs($1.correlation) }.prefix(top))
    }
}

extension CellActivations {
    /// Runs `model` over `text` (symbol indices) one step at a time from a zero state and keeps
    /// every layer's state after each step: `tanh(c_t)` for LSTM, `h_t` otherwise (ReLU-RNN
    /// values scaled per cell by their largest magnitude so they fit in [−1, 1]).
    public static func record(_ model: CharacterLanguageModel, text: [Int]) -> CellActivations {
        let l = model.configuration.numLayers, h = model.configuration.hiddenSize, t = text.count
        var values = [Float](repeating: 0, count: l * t * h)
        var state: RecurrentState?
        let kind = model.configuration.cellKind
        for (step, symbol) in text.enumerated() {
            let (_, final) = model.predict([symbol], steps: 1, batch: 1, state: state)
            state = final
            let source = kind == .lstm ? final.c!.value.data.map { _tanh($0) } : final.h.value.data   // [L, 1, H]
            for layer in 0..<l {
                for cell in 0..<h { values[(layer * t + step) * h + cell] = source[layer * h + cell] }
            }
        }
        if kind == .rnnReLU {
            for layer in 0..<l {
                for cell in 0..<h {
                    var m: Float = 0
                    for step in 0..<t { m = max(m, abs(values[(layer * t + step) * h + cell])) }
                    guard m > 0 else { continue }
                    for step in 0..<t { values[(layer * t + step) * h + cell] /= m }
                }
            }
        }
        return CellActivations(symbols: text.map { model.vocabulary.string(at: $0) }, layerCount: l, cellCount: h,
                               values: values, quantity: kind == .lstm ? "tanh(c)" : kind == .rnnReLU ? "h / max |h|" : "h")
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func _tanh(_ x: Float) -> Float { tanhf(x) }
