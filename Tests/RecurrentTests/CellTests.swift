import Testing
@testable import Recurrent
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One step for one batch row, in scalars, straight from PyTorch's equations (the tests' oracle).
/// `wih` `[G·H, I]`, `whh` `[G·H, H]`, `bih`, `bhh` `[G·H]`; `x` `[I]`, `h`, `c` `[H]`.
func referenceStep(_ kind: CellKind, wih: Tensor, whh: Tensor, bih: Tensor, bhh: Tensor,
                   x: [Float], h: [Float], c: [Float]) -> (h: [Float], c: [Float]) {
    let hidden = h.count
    let rows = kind.gateCount * hidden
    var gi = [Float](repeating: 0, count: rows), gh = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        var si = Double(bih.data[r]), sh = Double(bhh.data[r])
        for k in 0..<x.count { si += Double(wih[r, k]) * Double(x[k]) }
        for k in 0..<hidden { sh += Double(whh[r, k]) * Double(h[k]) }
        gi[r] = Float(si)
        gh[r] = Float(sh)
    }
    func sigma(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
    var newH = [Float](repeating: 0, count: hidden), newC = c
    for j in 0..<hidden {
        switch kind {
        case .rnnTanh: newH[j] = tanhf(gi[j] + gh[j])
        case .rnnReLU: newH[j] = max(0, gi[j] + gh[j])
        case .lstm:
            let i = sigma(gi[j] + gh[j])
            let f = sigma(gi[hidden + j] + gh[hidden + j])
            let g = tanhf(gi[2 * hidden + j] + gh[2 * hidden + j])
            let o = sigma(gi[3 * hidden + j] + gh[3 * hidden + j])
            newC[j] = f * c[j] + i * g
            newH[j] = o * tanhf(newC[j])
        case .gru:
            let r = sigma(gi[j] + gh[j])
            let z = sigma(gi[hidden + j] + gh[hidden + j])
            let n = tanhf(gi[2 * hidden + j] + r * gh[2 * hidden + j])
            newH[j] = (1 - z) * n + z * h[j]
        }
    }
    return (newH, newC)
}

/// A cell of `kind` behind one signature: its parameters and a step `(x, h, c?) → (h', c'?)`.
struct AnyCellStep {
    let parameters: [Variable]
    let step: (Variable, Variable, Variable?) -> (h: Variable, c: Variable?)

    init(_ kind: CellKind, inputSize: Int, hiddenSize: Int, rng: inout RandomGenerator) {
        switch kind {
        case .rnnTanh, .rnnReLU:
            let cell = RNNCell(inputSize: inputSize, hiddenSize: hiddenSize,
                               nonlinearity: kind == .rnnTanh ? .tanh : .relu, rng: &rng)
            parameters = cell.parameters
            step = { x, h, _ in (cell(x, h), nil) }
        case .lstm:
            let cell = LSTMCell(inputSize: inputSize, hiddenSize: hiddenSize, rng: &rng)
            parameters = cell.parameters
            step = { x, h, c in
                let s = cell(x, LSTMCell.State(h: h, c: c!))
                return (s.h, s.c)
            }
        case .gru:
            let cell = GRUCell(inputSize: inputSize, hiddenSize: hiddenSize, rng: &rng)
            parameters = cell.parameters
            step = { x, h, _ in (cell(x, h), nil) }
        }
    }
}

func randomVariable(_ shape: [Int], _ rng: inout RandomGenerator, name: String = "",
                    requiresGrad: Bool = true) -> Variable {
    Variable(rng.uniformTensor(shape, low: -1, high: 1), requiresGrad: requiresGrad, name: name)
}

@Suite(.serialized) struct CellTests {
    @Test(arguments: CellKind.allCases)
    func stepMatchesScalarEquations(kind: CellKind) {
        var rng = RandomGenerator(seed: 11)
        let (b, i, h) = (3, 5, 4)
        let cell = AnyCellStep(kind, inputSize: i, hiddenSize: h, rng: &rng)
        let x = randomVariable([b, i], &rng), h0 = randomVariable([b, h], &rng), c0 = randomVariable([b, h], &rng)
        let out = cell.step(x, h0, kind.hasCellState ? c0 : nil)
        let p = cell.parameters.map(\.value)
        for row in 0..<b {
            let ref = referenceStep(kind, wih: p[0], whh: p[1], bih: p[2], bhh: p[3],
                                    x: Array(x.value.data[(row * i)..<((row + 1) * i)]),
                                    h: Array(h0.value.data[(row * h)..<((row + 1) * h)]),
                                    c: Array(c0.value.data[(row * h)..<((row + 1) * h)]))
            for j in 0..<h {
                #expect(abs(out.h.value[row, j] - ref.h[j]) < 1e-5, "\(kind) h[\(row), \(j)]")
                if let c = out.c { #expect(abs(c.value[row, j] - ref.c[j]) < 1e-5, "\(kind) c[\(row), \(j)]") }
            }
        }
    }

    /// Two steps, so gradients also pass through the recurrent state.
    @Test(arguments: CellKind.allCases)
    func gradientsMatchFiniteDifferences(kind: CellKind) {
        var rng = RandomGenerator(seed: 21)
        let (b, i, h) = (2, 3, 3)
        let cell = AnyCellStep(kind, inputSize: i, hiddenSize: h, rng: &rng)
        let x1 = randomVariable([b, i], &rng, name: "x1"), x2 = randomVariable([b, i], &rng, name: "x2")
        let h0 = randomVariable([b, h], &rng, name: "h0"), c0 = randomVariable([b, h], &rng, name: "c0")
        var inputs = cell.parameters + [x1, x2, h0]
        if kind.hasCellState { inputs.append(c0) }
        let r = gradientCheck(inputs) {
            let s1 = cell.step(x1, h0, kind.hasCellState ? c0 : nil)
            let s2 = cell.step(x2, s1.h, s1.c)
            var loss = weightedSum(s2.h) + weightedSum(s1.h, seed: 5)
            if let c = s2.c { loss = loss + weightedSum(c, seed: 7) }
            return loss
        }
        #expect(r.ratio <= 1, "\(kind): \(r.worst)")
    }

    @Test func defaultInitialisationDrawsInPyTorchOrder() {
        var rng = RandomGenerator(seed: 5)
        let cell = GRUCell(inputSize: 3, hiddenSize: 4, rng: &rng)
        var replay = RandomGenerator(seed: 5)
        let expected = [[12, 3], [12, 4], [12], [12]].map { replay.uniformTensor($0, low: -0.5, high: 0.5) }
        #expect(cell.namedParameters().map(\.0) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        #expect(cell.parameters.map(\.value) == expected)
        #expect(rng == replay)
        #expect(cell.parameters.allSatisfy { $0.requiresGrad && $0.value.data.allSatisfy { abs($0) <= 0.5 } })
    }

    @Test func shapesAndDescriptions() {
        var rng = RandomGenerator(seed: 1)
        let lstm = LSTMCell(inputSize: 10, hiddenSize: 20, rng: &rng)
        #expect(lstm.parameters.map(\.shape) == [[80, 10], [80, 20], [80], [80]])
        #expect(lstm.description == "LSTMCell(10 => 20)  # 2_560 parameters")
        #expect(lstm.stateComponentCount == 2)
        let rnn = RNNCell(inputSize: 3, hiddenSize: 4, nonlinearity: .relu, rng: &rng)
        #expect(rnn.description == "RNNCell(3 => 4, relu)  # 36 parameters")
        #expect(rnn.stateComponentCount == 1)
        let gru = GRUCell(inputSize: 2, hiddenSize: 2, rng: &rng)
        #expect(gru.description == "GRUCell(2 => 2)  # 36 parameters")
        #expect(gru.zeroState(batchSize: 3).shape == [3, 2])
    }

    @Test func cellOverExistingParametersSharesThem() {
        var rng = RandomGenerator(seed: 2)
        let a = LSTMCell(inputSize: 2, hiddenSize: 3, rng: &rng)
        let b = LSTMCell(weightIH: a.weightIH, weightHH: a.weightHH, biasIH: a.biasIH, biasHH: a.biasHH)
        #expect(b.inputSize == 2 && b.hiddenSize == 3)
        #expect(zip(a.parameters, b.parameters).allSatisfy { $0 === $1 })
    }
}
