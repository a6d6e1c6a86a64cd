import Testing
@testable import Recurrent

// MARK: helpers

/// Parameters of a layer by PyTorch name.
func parametersByName(_ module: Module) -> [String: Variable] {
    Dictionary(uniqueKeysWithValues: module.namedParameters())
}

/// Whole-stack oracle in scalars (no dropout): every row, layer and direction stepped with
/// `referenceStep`, padded steps output zeros, reverse reads each row's valid prefix back to front.
/// Returns y `[T, B, outputSize]`, h_n and c_n `[L·D, B, H]`.
func referenceForward(_ layer: RecurrentLayer, x: Tensor, h0: Tensor?, c0: Tensor?,
                      lengths: [Int]?) -> (y: Tensor, h: Tensor, c: Tensor) {
    let (steps, batch) = (x.shape[0], x.shape[1])
    let hidden = layer.hiddenSize
    let directions = layer.bidirectional ? 2 : 1
    let p = parametersByName(layer)
    var hN = Tensor(zeros: [layer.numLayers * directions, batch, hidden]), cN = hN
    var input = x
    for k in 0..<layer.numLayers {
        var outs: [Tensor] = []
        for d in 0..<directions {
            let sfx = "_l\(k)" + (d == 1 ? "_reverse" : "")
            let (wih, whh, bih, bhh) = (p["weight_ih" + sfx]!.value, p["weight_hh" + sfx]!.value,
                                        p["bias_ih" + sfx]!.value, p["bias_hh" + sfx]!.value)
            var y = Tensor(zeros: [steps, batch, hidden])
            let row = k * directions + d
            for b in 0..<batch {
                var h = h0.map { Array($0.data[((row * batch + b) * hidden)..<((row * batch + b + 1) * hidden)]) }
                    ?? [Float](repeating: 0, count: hidden)
                var c = c0.map { Array($0.data[((row * batch + b) * hidden)..<((row * batch + b + 1) * hidden)]) }
                    ?? [Float](repeating: 0, count: hidden)
                let n = lengths?[b] ?? steps
                let width = input.shape[2]
                for t in (d == 0 ? Array(0..<n) : Array((0..<n).reversed())) {
                    let xt = Array(input.data[((t * batch + b) * width)..<((t * batch + b + 1) * width)])
                    (h, c) = referenceStep(layer.kind, wih: wih, whh: whh, bih: bih, bhh: bhh, x: xt, h: h, c: c)
                    for j in 0..<hidden { y[t, b, j] = h[j] }
                }
                for j in 0..<hidden { hN[row, b, j] = h[j]; cN[row, b, j] = c[j] }
            }
            outs.append(y)
        }
        if outs.count == 1 { input = outs[0]; continue }
        switch layer.mergeMode {
        case .concat:
            var merged = Tensor(zeros: [steps, batch, 2 * hidden])
            for t in 0..<steps { for b in 0..<batch { for j in 0..<hidden {
                merged[t, b, j] = outs[0][t, b, j]
                merged[t, b, hidden + j] = outs[1][t, b, j]
            } } }
            input = merged
        case .sum: input = outs[0] + outs[1]
        case .mean: input = (outs[0] + outs[1]) * 0.5
        case .product: input = outs[0] * outs[1]
        }
    }
    return (input, hN, cN)
}

/// A random initial state for `layer` and batch size `batch`.
func randomInitialState(_ layer: RecurrentLayer, batch: Int, _ rng: inout RandomGenerator) -> RecurrentState {
    let shape = [layer.numLayers * (layer.bidirectional ? 2 : 1), batch, layer.hiddenSize]
    return RecurrentState(h: randomVariable(shape, &rng, name: "h0"),
                          c: layer.kind.hasCellState ? randomVariable(shape, &rng, name: "c0") : nil)
}

/// Steps `range` of a `[T, ...]` Variable, on the tape.
func steps(_ x: Variable, _ range: Range<Int>) -> Variable { stack(range.map { index(x, $0) }) }

/// Loss touching the output and every state component.
func outputAndStateLoss(_ y: Variable, _ state: RecurrentState) -> Variable {
    state.components.enumerated().reduce(weightedSum(y)) { $0 + weightedSum($1.1, seed: UInt64(10 + $1.0)) }
}

/// The coupled input-forget gate LSTM of `RecurrentCell`'s documentation, verbatim.
final class CoupledLSTMCell: RecurrentCell {
    struct State { var h: Variable; var c: Variable }
    let inputSize: Int, hiddenSize: Int
    let weightIH, weightHH, biasIH, biasHH: Variable      // [3H, I], [3H, H], [3H], [3H]

    init(inputSize: Int, hiddenSize: Int, rng: inout RandomGenerator) {
        (self.inputSize, self.hiddenSize) = (inputSize, hiddenSize)
        let k = 1 / Float(hiddenSize).squareRoot()
        func parameter(_ shape: [Int]) -> Variable {
            Variable(rng.uniformTensor(shape, low: -k, high: k), requiresGrad: true)
        }
        weightIH = parameter([3 * hiddenSize, inputSize])
        weightHH = parameter([3 * hiddenSize, hiddenSize])
        biasIH = parameter([3 * hiddenSize])
        biasHH = parameter([3 * hiddenSize])
    }
    func namedParameters() -> [(String, Variable)] {
        [("weight_ih", weightIH), ("weight_hh", weightHH), ("bias_ih", biasIH), ("bias_hh", biasHH)]
    }
    func zeroState(batchSize: Int) -> State {
        let zero = Variable(Tensor(zeros: [batchSize, hiddenSize]))
        return State(h: zero, c: zero)
    }
    func callAsFunction(_ x: Variable, _ s: State) -> State {
        let H = hiddenSize
        let gates = linear(s.h, weight: weightHH, bias: biasHH) + linear(x, weight: weightIH, bias: biasIH)
        let i = sigmoid(columns(gates, 0..<H))
        let g = tanh(columns(gates, H..<2 * H))
        let o = sigmoid(columns(gates, 2 * H..<3 * H))
        let c = oneMinus(i) * s.c + i * g
        return State(h: o * tanh(c), c: c)
    }
    func output(of s: State) -> Variable { s.h }
    func components(of s: State) -> [Variable] { [s.h, s.c] }
    func state(from components: [Variable]) -> State { State(h: components[0], c: components[1]) }
}

// MARK: tests

@Suite(.serialized) struct RecurrentLayerTests {
    static let gradientKinds: [CellKind] = [.rnnTanh, .lstm, .gru]

    @Test func parameterNamesShapesAndInitialisationOrder() {
        var rng = RandomGenerator(seed: 9)
        let layer = RecurrentLayer(kind: .gru, inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, rng: &rng)
        let names = layer.namedParameters().map(\.0)
        var expected: [String] = []
        for k in 0..<2 { for sfx in ["", "_reverse"] {
            expected += ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map { "\($0)_l\(k)\(sfx)" }
        } }
        #expect(names == expected)
        let shapes = layer.parameters.map(\.shape)
        #expect(shapes[0] == [12, 3] && shapes[1] == [12, 4] && shapes[2] == [12] && shapes[8] == [12, 8])
        var replay = RandomGenerator(seed: 9)
        for p in layer.parameters { #expect(p.value == replay.uniformTensor(p.shape, low: -0.5, high: 0.5), "\(p.name)") }
        #expect(layer.dropoutGenerator == RandomGenerator(seed: replay.next()))
        #expect(layer.description == "GRU(3 => 4, 2 layers, bidirectional concat)  # 552 parameters")
    }

    @Test(arguments: CellKind.allCases, [false, true])
    func forwardMatchesScalarReference(kind: CellKind, fused: Bool) {
        for (bidirectional, mode) in [(false, MergeMode.concat)] + MergeMode.allCases.map({ (true, $0) }) {
            var rng = RandomGenerator(seed: 31)
            let layer = RecurrentLayer(kind: kind, inputSize: 3, hiddenSize: 4, numLayers: 2,
                                       bidirectional: bidirectional, mergeMode: mode, rng: &rng)
            layer.useFusedKernels = fused
            let x = randomVariable([5, 4, 3], &rng)
            let lengths = [3, 5, 0, 2]
            let s0 = randomInitialState(layer, batch: 4, &rng)
            let (y, state) = layer(x, initialState: s0, lengths: lengths)
            let ref = referenceForward(layer, x: x.value, h0: s0.h.value, c0: s0.c?.value, lengths: lengths)
            let what = "\(kind) fused \(fused) bidirectional \(bidirectional) \(mode)"
            #expect(y.shape == [5, 4, layer.outputSize], "\(what)")
            #expect(y.value.maxAbsDifference(ref.y) < 1e-5, "\(what)")
            #expect(state.h.value.maxAbsDifference(ref.h) < 1e-5, "\(what)")
            #expect((state.c?.value.maxAbsDifference(ref.c) ?? 0) < 1e-5, "\(what)")
            #expect((state.c != nil) == kind.hasCellState)
        }
    }

    @Test func mergeModesSetTheNextLayersInputSize() {
        for mode in MergeMode.allCases {
            var rng = RandomGenerator(seed: 1)
            let layer = RecurrentLayer(kind: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 2,
                                       bidirectional: true, mergeMode: mode, rng: &rng)
            let width = mode == .concat ? 8 : 4
            #expect(parametersByName(layer)["weight_ih_l1"]!.shape == [16, width])
            #expect(parametersByName(layer)["weight_ih_l1_reverse"]!.shape == [16, width])
            #expect(layer.outputSize == width)
        }
    }

    /// 2 layers, bidirectional, lengths in mixed order and an initial state; the generic runner
    /// (fused: false) and the fused nodes.
    @Test(arguments: gradientKinds, [false, true])
    func gradientsMatchFiniteDifferences(kind: CellKind, fused: Bool) {
        var rng = RandomGenerator(seed: 41)
        let layer = RecurrentLayer(kind: kind, inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true, rng: &rng)
        layer.useFusedKernels = fused
        let x = randomVariable([4, 3, 2], &rng, name: "x")
        let s0 = randomInitialState(layer, batch: 3, &rng)
        let r = gradientCheck(layer.parameters + [x] + s0.components, maxElementsPerInput: 12) {
            let (y, state) = layer(x, initialState: s0, lengths: [3, 4, 1])
            return outputAndStateLoss(y, state)
        }
        #expect(r.ratio <= 1, "\(kind) fused \(fused): \(r.worst)")
    }

    @Test func mergeModeGradientsMatchFiniteDifferences() {
        for mode in [MergeMode.sum, .mean, .product] {
            var rng = RandomGenerator(seed: 43)
            let layer = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 2, numLayers: 2,
                                       bidirectional: true, mergeMode: mode, rng: &rng)
            layer.useFusedKernels = false
            let x = randomVariable([3, 2, 2], &rng, name: "x")
            let r = gradientCheck(layer.parameters + [x], maxElementsPerInput: 8) {
                let (y, state) = layer(x, lengths: [2, 3])
                return outputAndStateLoss(y, state)
            }
            #expect(r.ratio <= 1, "\(mode): \(r.worst)")
        }
    }

    /// Appending padding (garbage inputs) to a batch changes no output at a valid step, no final
    /// state and no gradient; the padding itself receives zero gradient.
    @Test(arguments: gradientKinds, [false, true])
    func paddedStepsChangeNothing(kind: CellKind, fused: Bool) {
        var rng = RandomGenerator(seed: 51)
        let layer = RecurrentLayer(kind: kind, inputSize: 3, hiddenSize: 3, numLayers: 2, bidirectional: true, rng: &rng)
        layer.useFusedKernels = fused
        let lengths = [3, 4, 2]
        let x = randomVariable([4, 3, 3], &rng, name: "x")
        let padding = rng.uniformTensor([3, 3, 3], low: -5, high: 5)
        let xPadded = Variable(Tensor(shape: [7, 3, 3], data: x.value.data + padding.data), requiresGrad: true)
        let s0 = randomInitialState(layer, batch: 3, &rng)

        func run(_ input: Variable) -> (y: Tensor, state: [Tensor], grads: [Tensor]) {
            layer.zeroGradients()
            for v in s0.components { v.grad = nil }
            let (y, state) = layer(input, initialState: s0, lengths: lengths)
            outputAndStateLoss(steps(y, 0..<4), state).backward()
            return (steps(y, 0..<4).value, state.components.map(\.value),
                    (layer.parameters + s0.components).map { $0.grad! })
        }
        let plain = run(x)
        let padded = run(xPadded)
        #expect(plain.y == padded.y)
        #expect(plain.state == padded.state)
        for (a, b) in zip(plain.grads, padded.grads) { #expect(a.maxAbsDifference(b) == 0) }
        let gx = xPadded.grad!
        #expect(Array(gx.data[0..<36]) == x.grad!.data)
        #expect(gx.data[36...].allSatisfy { $0 == 0 })
    }

    /// A batch with lengths = each sequence alone, cut to its length: outputs, h_n and (summed)
    /// parameter gradients agree.
    @Test(arguments: [false, true])
    func batchWithLengthsEqualsSequencesRunAlone(fused: Bool) {
        var rng = RandomGenerator(seed: 61)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true, rng: &rng)
        layer.useFusedKernels = fused
        let lengths = [2, 4, 3]
        let (steps, batch, width) = (4, 3, 6)
        let x = randomVariable([steps, batch, 2], &rng)
        let s0 = randomInitialState(layer, batch: batch, &rng)
        let w = rng.uniformTensor([steps, batch, width], low: -1, high: 1)
        layer.zeroGradients()
        let (y, state) = layer(x, initialState: s0, lengths: lengths)
        sum(multiplyByConstant(y, w)).backward()
        let batchGrads = layer.parameters.map { $0.grad! }

        var summed = layer.parameters.map { Tensor(zeros: $0.shape) }
        for b in 0..<batch {
            let n = lengths[b]
            func row(_ t: Tensor, _ count: Int) -> Tensor {   // [count, 1, N] from [*, B, N]
                let inner = t.shape[2]
                var d: [Float] = []
                for i in 0..<count { d += t.data[((i * batch + b) * inner)..<((i * batch + b + 1) * inner)] }
                return Tensor(shape: [count, 1, inner], data: d)
            }
            let initial = RecurrentState(components: s0.components.map { Variable(row($0.value, 4)) })
            layer.zeroGradients()
            let (yb, sb) = layer(Variable(row(x.value, n)), initialState: initial)
            sum(multiplyByConstant(yb, row(w, n))).backward()
            for (i, p) in layer.parameters.enumerated() { summed[i].add(p.grad!) }
            #expect(yb.value.maxAbsDifference(row(y.value, n)) < 1e-6)
            #expect(sb.h.value.maxAbsDifference(row(state.h.value, 4)) < 1e-6)
            #expect(sb.c!.value.maxAbsDifference(row(state.c!.value, 4)) < 1e-6)
            let padded = row(y.value, steps).data[(n * width)...]
            #expect(padded.allSatisfy { $0 == 0 })
        }
        for (a, b) in zip(batchGrads, summed) { #expect(a.maxAbsDifference(b) < 1e-5) }
    }

    /// The reverse direction's h_n is the final state of a forward layer with the reverse weights
    /// run over the valid prefix reversed, and its output at t is that run's output at n-1-t.
    @Test(arguments: gradientKinds, [false, true])
    func reverseDirectionReadsEachSequenceFromItsOwnEnd(kind: CellKind, fused: Bool) throws {
        var rng = RandomGenerator(seed: 71)
        let layer = RecurrentLayer(kind: kind, inputSize: 2, hiddenSize: 3, bidirectional: true, rng: &rng)
        let forward = RecurrentLayer(kind: kind, inputSize: 2, hiddenSize: 3, rng: &rng)
        layer.useFusedKernels = fused
        forward.useFusedKernels = fused
        let p = parametersByName(layer)
        try forward.loadStateDict(Dictionary(uniqueKeysWithValues: forward.namedParameters().map { name, _ in
            (name, p[name + "_reverse"]!.value)
        }))
        let lengths = [3, 1, 4]
        let x = randomVariable([4, 3, 2], &rng)
        let s0 = randomInitialState(layer, batch: 3, &rng)
        let (y, state) = layer(x, initialState: s0, lengths: lengths)
        for (b, n) in lengths.enumerated() {
            var reversed: [Float] = []
            for t in (0..<n).reversed() { reversed += x.value.data[((t * 3 + b) * 2)..<((t * 3 + b + 1) * 2)] }
            let initial = RecurrentState(components: s0.components.map { component in
                Variable(Tensor(shape: [1, 1, 3], data: Array(component.value.data[((3 + b) * 3)..<((3 + b + 1) * 3)])))
            })
            let (yf, sf) = forward(Variable(Tensor(shape: [n, 1, 2], data: reversed)), initialState: initial)
            for i in 0..<n { for j in 0..<3 {
                #expect(abs(y.value[n - 1 - i, b, 3 + j] - yf.value[i, 0, j]) < 1e-6, "\(kind) row \(b) step \(i)")
            } }
            for j in 0..<3 {
                #expect(abs(state.h.value[1, b, j] - sf.h.value[0, 0, j]) < 1e-6, "\(kind) h_n row \(b)")
                if let c = state.c { #expect(abs(c.value[1, b, j] - sf.c!.value[0, 0, j]) < 1e-6) }
            }
        }
    }

    /// Truncated BPTT: the detached state of chunk 1 starts chunk 2. Values equal one run over
    /// both chunks; chunk 2's backward reaches neither chunk 1's input nor chunk 1's parameters use.
    @Test(arguments: [false, true])
    func truncatedBackpropagationCarriesValuesAndCutsGradients(fused: Bool) {
        var rng = RandomGenerator(seed: 81)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 2, hiddenSize: 3, numLayers: 2, rng: &rng)
        layer.useFusedKernels = fused
        let x = randomVariable([6, 2, 2], &rng)
        let x1 = Variable(x.value.slice(0..<3), requiresGrad: true)
        let x2 = Variable(x.value.slice(3..<6), requiresGrad: true)
        let (yFull, sFull) = layer(x)
        let (_, s1) = layer(x1)
        let (y2, s2) = layer(x2, initialState: s1.detached())
        #expect(y2.value.maxAbsDifference(yFull.value.slice(3..<6)) < 1e-6)
        #expect(s2.h.value.maxAbsDifference(sFull.h.value) < 1e-6)
        #expect(s2.c!.value.maxAbsDifference(sFull.c!.value) < 1e-6)

        layer.zeroGradients()
        outputAndStateLoss(y2, s2).backward()
        #expect(x1.grad == nil)
        #expect(x2.grad != nil)
        let truncated = layer.parameters.map { $0.grad! }
        // The same chunk from a constant initial state gives the same parameter gradients.
        layer.zeroGradients()
        let constant = RecurrentState(components: s1.components.map { Variable($0.value) })
        let (y3, s3) = layer(x2, initialState: constant)
        outputAndStateLoss(y3, s3).backward()
        for (a, p) in zip(truncated, layer.parameters) { #expect(a == p.grad!) }

        // Without the cut the gradient does reach chunk 1.
        let (_, t1) = layer(x1)
        let (y4, t2) = layer(x2, initialState: t1)
        outputAndStateLoss(y4, t2).backward()
        #expect(x1.grad.map { $0.data.contains { $0 != 0 } } == true)
    }

    @Test(arguments: [false, true])
    func dropoutOnlyBetweenLayersAndOnlyWhileTraining(fused: Bool) {
        var rng = RandomGenerator(seed: 91)
        let p: Float = 0.4
        let layer = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 3, numLayers: 2, dropout: p, rng: &rng)
        var plainRng = RandomGenerator(seed: 91)
        let plain = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 3, numLayers: 2, rng: &plainRng)
        layer.useFusedKernels = fused
        plain.useFusedKernels = fused
        let x = randomVariable([3, 4, 2], &rng)

        layer.training = false
        let before = layer.dropoutGenerator
        #expect(layer(x).output.value == plain(x).output.value)
        #expect(layer.dropoutGenerator == before)

        // Training: layer 1 reads layer 0's output times a mask drawn row-major from the generator.
        layer.training = true
        var replay = layer.dropoutGenerator
        let y = layer(x).output
        let y0 = layer.runOnTape(layer.directionParameters[0][0], reverse: false, x, initial: nil, lengths: nil).output
        var mask = Tensor(zeros: y0.shape)
        for i in 0..<mask.count { mask.data[i] = replay.nextUniform() < 1 - p ? 1 / (1 - p) : 0 }
        let expected = layer.runOnTape(layer.directionParameters[1][0], reverse: false, multiplyByConstant(y0, mask), initial: nil, lengths: nil).output
        #expect(y.value.maxAbsDifference(expected.value) < 1e-6)
        #expect(layer.dropoutGenerator == replay)
        #expect(mask.data.contains(0) && mask.data.contains(1 / (1 - p)))

        // The last layer's output is never dropped.
        var singleRng = RandomGenerator(seed: 3)
        let single = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 3, dropout: 0.9, rng: &singleRng)
        let trainingOutput = single(x).output.value
        single.training = false
        #expect(trainingOutput == single(x).output.value)

        // p = 1 zeroes layer 0's output: the result no longer depends on x.
        var allRng = RandomGenerator(seed: 4)
        let all = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 3, numLayers: 2, dropout: 1, rng: &allRng)
        #expect(all(x).output.value == all(randomVariable([3, 4, 2], &rng)).output.value)
    }

    @Test func stateLayoutIsLayerTimesDirectionsPlusDirection() {
        var rng = RandomGenerator(seed: 95)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true, rng: &rng)
        layer.useFusedKernels = false
        let x = randomVariable([3, 2, 2], &rng)
        let s0 = randomInitialState(layer, batch: 2, &rng)
        let (y, state) = layer(x, initialState: s0, lengths: [3, 2])
        #expect(state.h.shape == [4, 2, 3] && state.c!.shape == [4, 2, 3])
        var input = x
        for k in 0..<2 {
            var outs: [Variable] = []
            for d in 0..<2 {
                let row = k * 2 + d
                let initial = s0.components.map { index($0, row) }
                let (out, final) = layer.runOnTape(layer.directionParameters[k][d], reverse: d == 1, input, initial: initial, lengths: [3, 2])
                #expect(final[0].value == index(state.h, row).value)
                #expect(final[1].value == index(state.c!, row).value)
                outs.append(out)
            }
            input = MergeMode.concat.merge(outs[0], outs[1])
        }
        #expect(input.value == y.value)
    }

    @Test func genericRecurrenceOfLSTMCellsIsAnLSTMLayer() {
        var rngA = RandomGenerator(seed: 99), rngB = RandomGenerator(seed: 99)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 3, hiddenSize: 2, numLayers: 2, bidirectional: true,
                                   dropout: 0.3, rng: &rngA)
        layer.useFusedKernels = false
        let recurrence = Recurrence(inputSize: 3, numLayers: 2, bidirectional: true, dropout: 0.3, rng: &rngB) { i, rng in
            LSTMCell(inputSize: i, hiddenSize: 2, rng: &rng)
        }
        #expect(recurrence.namedParameters().map(\.0) == layer.namedParameters().map(\.0))
        #expect(recurrence.parameters.map(\.value) == layer.parameters.map(\.value))
        #expect(recurrence.dropoutGenerator == layer.dropoutGenerator)
        let x = randomVariable([3, 2, 3], &rngA)
        let a = layer(x, lengths: [1, 3]), b = recurrence(x, lengths: [1, 3])
        #expect(a.output.value == b.output.value && a.state.h.value == b.state.h.value && a.state.c!.value == b.state.c!.value)
        #expect(recurrence.outputSize == 4)
        #expect(recurrence.description.hasPrefix("Recurrence<LSTMCell>(3 => 2, 2 layers, bidirectional concat, dropout 0.3)"))
    }

    /// The documentation's custom cell runs through every feature of the generic runner.
    @Test func customCellRunsInTheGenericRunner() {
        var rng = RandomGenerator(seed: 7)
        let rnn = Recurrence(inputSize: 2, numLayers: 2, bidirectional: true, mergeMode: .sum, rng: &rng) { i, rng in
            CoupledLSTMCell(inputSize: i, hiddenSize: 2, rng: &rng)
        }
        #expect(rnn.namedParameters().map(\.0).prefix(4) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
        let x = randomVariable([3, 3, 2], &rng, name: "x")
        let s0 = RecurrentState(h: randomVariable([4, 3, 2], &rng, name: "h0"), c: randomVariable([4, 3, 2], &rng, name: "c0"))
        let (y, state) = rnn(x, initialState: s0, lengths: [2, 3, 1])
        #expect(y.shape == [3, 3, 2] && state.h.shape == [4, 3, 2] && state.c!.shape == [4, 3, 2])
        let r = gradientCheck(rnn.parameters + [x] + s0.components, maxElementsPerInput: 8) {
            let (y, state) = rnn(x, initialState: s0, lengths: [2, 3, 1])
            return outputAndStateLoss(y, state)
        }
        #expect(r.ratio <= 1, "\(r.worst)")
    }

    @Test func unstackGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 13)
        let x = randomVariable([3, 2, 2], &rng, name: "x")
        let r = gradientCheck([x]) {
            let parts = unstack(x)
            return weightedSum(parts[0] * parts[2]) + weightedSum(parts[2], seed: 3)   // step 1 unused
        }
        #expect(r.ratio <= 1, "\(r.worst)")
        let parts = unstack(x)
        #expect(parts.map(\.value) == (0..<3).map { index(x, $0).value })
    }

    @Test func stateComponentsAndDetaching() {
        var rng = RandomGenerator(seed: 17)
        let h = randomVariable([2, 1, 3], &rng), c = randomVariable([2, 1, 3], &rng)
        var state = RecurrentState(h: h)
        #expect(state.c == nil && state.components.count == 1)
        state.c = c
        #expect(state.c === c && state.components.count == 2)
        let cut = state.detached()
        #expect(cut.h.value == h.value && !cut.h.requiresGrad && cut.c!.value == c.value && !cut.c!.requiresGrad)
        state.c = nil
        #expect(state.components.count == 1)
    }

    /// Fused nodes and the generic cell runner on the same weights, inputs and dropout masks:
    /// outputs, h_n, c_n and every parameter and input gradient agree.
    @Test(arguments: CellKind.allCases, [MergeMode.concat, .product])
    func fusedAndGenericPathsAgree(kind: CellKind, mode: MergeMode) {
        var rng = RandomGenerator(seed: 101)
        let layer = RecurrentLayer(kind: kind, inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true,
                                   mergeMode: mode, dropout: 0.25, rng: &rng)
        let x = randomVariable([6, 4, 3], &rng, name: "x")
        let s0 = randomInitialState(layer, batch: 4, &rng)
        let masks = layer.dropoutGenerator

        func run(fused: Bool) -> (values: [Tensor], grads: [Tensor]) {
            layer.useFusedKernels = fused
            layer.dropoutGenerator = masks
            let inputs = layer.parameters + [x] + s0.components
            for v in inputs { v.grad = nil }
            let (y, state) = layer(x, initialState: s0, lengths: [4, 6, 1, 3])
            outputAndStateLoss(y, state).backward()
            return ([y.value] + state.components.map(\.value), inputs.map { $0.grad! })
        }
        let generic = run(fused: false)
        let fused = run(fused: true)
        for (a, b) in zip(generic.values + generic.grads, fused.values + fused.grads) {
            #expect(a.shape == b.shape)
            #expect(a.maxAbsDifference(b) < 1e-5, "\(kind) \(mode)")
        }
        #expect(generic.grads.count == layer.parameters.count + 1 + (kind.hasCellState ? 2 : 1))
    }

    @Test func inferenceWithoutGradientsAgrees() {
        var rng = RandomGenerator(seed: 103)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, rng: &rng)
        #expect(layer.useFusedKernels)
        layer.training = false
        let x = randomVariable([5, 2, 3], &rng)
        let fused = GradientMode.withoutGradients { layer(x, lengths: [5, 2]) }
        layer.useFusedKernels = false
        let generic = GradientMode.withoutGradients { layer(x, lengths: [5, 2]) }
        #expect(fused.output.value.maxAbsDifference(generic.output.value) < 1e-5)
        #expect(fused.state.h.value.maxAbsDifference(generic.state.h.value) < 1e-5)
        #expect(!fused.output.requiresGrad && !generic.state.h.requiresGrad)
    }
}
