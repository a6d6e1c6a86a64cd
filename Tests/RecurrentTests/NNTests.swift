import Testing
@testable import Recurrent

@Suite struct LinearTests {
    @Test func gradientsOnRankThreeInput() {
        var rng = RandomGenerator(seed: 10)
        let layer = Linear(inputSize: 4, outputSize: 3, rng: &rng)
        layer.bias!.value = rng.uniformTensor([3], low: -1, high: 1)
        let x = Variable(rng.uniformTensor([2, 3, 4], low: -1, high: 1), requiresGrad: true, name: "x")
        #expect(layer(x).shape == [2, 3, 3])
        let r = gradientCheck([x, layer.weight, layer.bias!]) { weightedSum(layer(x)) }
        #expect(r.ratio <= 1, "\(r.worst)")
    }

    @Test func forwardIsInputTimesWeightTransposedPlusBias() {
        var rng = RandomGenerator(seed: 11)
        let layer = Linear(inputSize: 2, outputSize: 2, rng: &rng)
        layer.weight.value = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        layer.bias!.value = Tensor(shape: [2], data: [10, 20])
        let y = layer(Variable(Tensor(shape: [1, 2], data: [1, -1])))
        #expect(y.value == Tensor(shape: [1, 2], data: [1 - 2 + 10, 3 - 4 + 20]))
    }

    @Test func xavierUniformWeightsAndZeroBias() {
        var rng = RandomGenerator(seed: 12)
        let layer = Linear(inputSize: 30, outputSize: 20, rng: &rng)
        let bound = (6 / Float(50)).squareRoot()
        let w = layer.weight.value.data
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.map(abs).max()! > 0.9 * bound)
        let meanSquare = w.map { $0 * $0 }.reduce(0, +) / Float(w.count)
        #expect(abs(meanSquare - bound * bound / 3) < 0.1 * bound * bound / 3)   // Var U(-a,a) = a²/3
        #expect(layer.bias!.value == Tensor(zeros: [20]))
        #expect(layer.namedParameters().map(\.0) == ["weight", "bias"])
        #expect(Linear(inputSize: 3, outputSize: 2, bias: false, rng: &rng).namedParameters().map(\.0) == ["weight"])
    }
}

@Suite struct EmbeddingTests {
    @Test func gathersRowsAndScatterAddsGradients() {
        var rng = RandomGenerator(seed: 20)
        let table = Embedding(count: 5, dimension: 3, rng: &rng)
        let indices = [2, 0, 2, 4]
        let y = table(indices)
        #expect(y.shape == [4, 3])
        #expect(Array(y.value.data[0..<3]) == Array(table.weight.value.data[6..<9]))
        let r = gradientCheck([table.weight]) { weightedSum(table(indices)) }
        #expect(r.ratio <= 1, "\(r.worst)")
        table.weight.grad = nil
        sum(table(indices)).backward()
        let g = table.weight.grad!
        #expect(Array(g.data[6..<9]) == [2, 2, 2])   // index 2 used twice
        #expect(Array(g.data[3..<6]) == [0, 0, 0])   // index 1 unused
    }

    @Test func initialisedStandardNormal() {
        var rng = RandomGenerator(seed: 21)
        let w = Embedding(count: 64, dimension: 32, rng: &rng).weight.value.data
        let mean = w.reduce(0, +) / Float(w.count)
        let variance = w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)
        #expect(abs(mean) < 0.1)
        #expect(abs(variance - 1) < 0.1)
    }
}

@Suite struct LayerNormTests {
    @Test func normalisesEachRow() {
        var rng = RandomGenerator(seed: 30)
        let norm = LayerNorm(size: 6)
        let y = norm(Variable(rng.uniformTensor([4, 6], low: -3, high: 5))).value
        for r in 0..<4 {
            let row = Array(y.data[(r * 6)..<((r + 1) * 6)])
            let mean = row.reduce(0, +) / 6
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-3)
        }
        #expect(norm.namedParameters().map(\.0) == ["weight", "bias"])
    }

    @Test func matchesDirectFormula() {
        let norm = LayerNorm(size: 3, epsilon: 1e-5)
        norm.weight.value = Tensor(shape: [3], data: [1, 2, -1])
        norm.bias.value = Tensor(shape: [3], data: [0, 1, 0.5])
        let y = norm(Variable(Tensor(shape: [1, 3], data: [1, 2, 4]))).value
        let mean: Double = 7.0 / 3
        let variance = ((1 - mean) * (1 - mean) + (2 - mean) * (2 - mean) + (4 - mean) * (4 - mean)) / 3
        let r = 1 / (variance + 1e-5).squareRoot()
        let expected = [(1 - mean) * r * 1 + 0, (2 - mean) * r * 2 + 1, (4 - mean) * r * -1 + 0.5]
        for j in 0..<3 { #expect(abs(Double(y.data[j]) - expected[j]) < 1e-5) }
    }

    @Test func gradients() {
        var rng = RandomGenerator(seed: 31)
        let norm = LayerNorm(size: 5)
        norm.weight.value = rng.uniformTensor([5], low: 0.5, high: 1.5)
        norm.bias.value = rng.uniformTensor([5], low: -1, high: 1)
        let x = Variable(rng.uniformTensor([2, 3, 5], low: -2, high: 2), requiresGrad: true, name: "x")
        let r = gradientCheck([x, norm.weight, norm.bias]) { weightedSum(norm(x)) }
        #expect(r.ratio <= 1, "\(r.worst)")
    }
}

@Suite struct DropoutTests {
    @Test func identityWhenNotTraining() {
        var rng = RandomGenerator(seed: 40)
        let x = Variable(Tensor(repeating: 1, shape: [4, 4]))
        #expect(Dropout(probability: 0.5)(x, training: false, rng: &rng) === x)
        #expect(Dropout(probability: 0)(x, training: true, rng: &rng) === x)
    }

    @Test func invertedScalingAndMaskedGradient() {
        var rng = RandomGenerator(seed: 41)
        let x = Variable(Tensor(repeating: 2, shape: [50, 40]), requiresGrad: true)
        let y = Dropout(probability: 0.25)(x, training: true, rng: &rng)
        let values = Set(y.value.data)
        #expect(values == [0, 2 / Float(0.75)])
        let dropped = Float(y.value.data.filter { $0 == 0 }.count) / Float(y.value.count)
        #expect(abs(dropped - 0.25) < 0.04)
        sum(y).backward()
        for (g, v) in zip(x.grad!.data, y.value.data) { #expect(g == v / 2) }
    }
}

@Suite struct SequentialTests {
    @Test func keysFollowPositionsAndForwardComposes() throws {
        var rng = RandomGenerator(seed: 50)
        let first = Linear(inputSize: 3, outputSize: 4, rng: &rng)
        let second = Linear(inputSize: 4, outputSize: 2, rng: &rng)
        let model = Sequential(first, Activation(.tanh), second, LayerNorm(size: 2))
        #expect(model.namedParameters().map(\.0) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"])
        let x = Variable(rng.uniformTensor([5, 3], low: -1, high: 1))
        let direct = (model.layers[3] as! LayerNorm)(second(tanh(first(x))))
        #expect(model(x).value == direct.value)

        var state = model.stateDict()
        state["2.weight"] = Tensor(repeating: 0.5, shape: [2, 4])
        try model.loadStateDict(state)
        #expect(second.weight.value == Tensor(repeating: 0.5, shape: [2, 4]))
    }

    @Test func activations() {
        let x = Variable(Tensor(shape: [1, 3], data: [-1, 0, 2]))
        #expect(Activation(.relu)(x).value.data == [0, 0, 2])
        #expect(abs(Activation(.sigmoid)(x).value.data[2] - 1 / (1 + Float(0.1353352832))) < 1e-6)
        #expect(abs(Activation(.tanh)(x).value.data[0] + 0.7615941559) < 1e-6)
    }
}
