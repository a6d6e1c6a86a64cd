import Testing
@testable import Recurrent

// Compares Recurrent with PyTorch on the reference files written by scripts/make_fixtures.py
// (torch, float32, CPU). Tolerances (FixtureLoading.swift): |ours - PyTorch| ≤ 1e-5 · max(1, |PyTorch|)
// on forward values and optimizer steps, ≤ 1e-4 · max(1, |PyTorch|) on gradients.

/// `Σ y ⊙ g` for a fixed upstream gradient `g`, so `dL/dy = g` as in the fixture's loss.
private func dot(_ y: Variable, _ upstream: Tensor) -> Variable {
    sum(multiplyByConstant(y, upstream))
}

@Suite struct PyTorchCellParityTests {
    /// One step of a cell with the fixture's parameters, input and state; then the gradients of
    /// `L = Σ h' ⊙ g_h (+ Σ c' ⊙ g_c)` with respect to every parameter, x, h (and c).
    func check<Cell: RecurrentCell>(_ cell: Cell, against f: Fixture) throws {
        try cell.loadStateDict(f.parameters, source: f.name)
        let x = Variable(f["input.x"], requiresGrad: true)
        let inputs = ["h", "c"].filter { f.tensors["input.\($0)"] != nil }
        let state = inputs.map { Variable(f["input.\($0)"], requiresGrad: true) }
        let next = cell.components(of: cell(x, cell.state(from: state)))
        #expect(next.count == inputs.count)
        var loss: Variable?
        for (name, y) in zip(inputs, next) {
            expectMatches(y.value, f["output.\(name)"], tolerance: outputTolerance, "\(f.name) \(name)'")
            let term = dot(y, f["upstream.\(name)"])
            loss = loss.map { $0 + term } ?? term
        }
        loss!.backward()
        expectMatches(x.grad, f["grad.x"], tolerance: gradientTolerance, "\(f.name) dL/dx")
        for (name, v) in zip(inputs, state) {
            expectMatches(v.grad, f["grad.\(name)"], tolerance: gradientTolerance, "\(f.name) dL/d\(name)")
        }
        for (name, p) in cell.namedParameters() {
            expectMatches(p.grad, f["grad.\(name)"], tolerance: gradientTolerance, "\(f.name) dL/d\(name)")
        }
    }

    @Test func rnnTanhCell() throws {
        var rng = RandomGenerator(seed: 1)
        try check(RNNCell(inputSize: 3, hiddenSize: 4, nonlinearity: .tanh, rng: &rng), against: Fixture("cell_rnn_tanh"))
    }

    @Test func rnnReLUCell() throws {
        var rng = RandomGenerator(seed: 1)
        try check(RNNCell(inputSize: 3, hiddenSize: 4, nonlinearity: .relu, rng: &rng), against: Fixture("cell_rnn_relu"))
    }

    @Test func lstmCell() throws {
        var rng = RandomGenerator(seed: 1)
        try check(LSTMCell(inputSize: 3, hiddenSize: 4, rng: &rng), against: Fixture("cell_lstm"))
    }

    @Test func gruCell() throws {
        var rng = RandomGenerator(seed: 1)
        try check(GRUCell(inputSize: 3, hiddenSize: 4, rng: &rng), against: Fixture("cell_gru"))
    }
}

@Suite struct PyTorchRecurrentLayerParityTests {
    static let fixtures = ["layer_lstm_2x_bidirectional", "layer_gru_2x_bidirectional",
                           "layer_rnn_tanh_2x_bidirectional", "layer_lstm_1x_full"]

    /// nn.LSTM / nn.GRU / nn.RNN over pack_padded_sequence(enforce_sorted=False) with h0 (and c0),
    /// or over a full batch from zeros; `L = Σ y ⊙ g_y + Σ h_n ⊙ g_h (+ Σ c_n ⊙ g_c)`.
    @Test(arguments: fixtures, [true, false])
    func layerMatchesPyTorch(fixture name: String, fused: Bool) throws {
        let f = try Fixture(name)
        guard let kind = CellKind(rawValue: f.metadata["kind"] ?? "") else {
            Issue.record("\(name): unknown kind \(f.metadata["kind"] ?? "none")")
            return
        }
        var rng = RandomGenerator(seed: 1)
        let layer = RecurrentLayer(kind: kind, inputSize: f.integer("input_size"), hiddenSize: f.integer("hidden_size"),
                                   numLayers: f.integer("num_layers"), bidirectional: f.bool("bidirectional"),
                                   rng: &rng)
        layer.useFusedKernels = fused
        try layer.loadStateDict(f.parameters, source: name)
        let label = "\(name) (\(fused ? "fused" : "generic"))"

        let x = Variable(f["input.x"], requiresGrad: true)
        let h0 = f.tensors["input.h0"].map { Variable($0, requiresGrad: true) }
        let c0 = f.tensors["input.c0"].map { Variable($0, requiresGrad: true) }
        let initial = h0.map { RecurrentState(h: $0, c: c0) }
        let lengths = f.tensors["input.lengths"] != nil ? f.integers("input.lengths") : nil
        let (y, state) = layer(x, initialState: initial, lengths: lengths)

        expectMatches(y.value, f["output.y"], tolerance: outputTolerance, "\(label) output")
        expectMatches(state.h.value, f["output.h_n"], tolerance: outputTolerance, "\(label) h_n")
        var loss = dot(y, f["upstream.y"]) + dot(state.h, f["upstream.h_n"])
        if kind == .lstm {
            guard let cN = state.c else {
                Issue.record("\(label): no c_n")
                return
            }
            expectMatches(cN.value, f["output.c_n"], tolerance: outputTolerance, "\(label) c_n")
            loss = loss + dot(cN, f["upstream.c_n"])
        }
        loss.backward()

        expectMatches(x.grad, f["grad.x"], tolerance: gradientTolerance, "\(label) dL/dx")
        if let h0 { expectMatches(h0.grad, f["grad.h0"], tolerance: gradientTolerance, "\(label) dL/dh0") }
        if let c0 { expectMatches(c0.grad, f["grad.c0"], tolerance: gradientTolerance, "\(label) dL/dc0") }
        #expect(layer.namedParameters().count == f.parameters.count)
        for (key, p) in layer.namedParameters() {
            expectMatches(p.grad, f["grad.\(key)"], tolerance: gradientTolerance, "\(label) dL/d\(key)")
        }
    }
}

@Suite struct PyTorchGradientClippingParityTests {
    /// clip_grad_norm_ on three gradients: one case above max_norm (scaled), one below (unchanged).
    @Test(arguments: ["clipped", "unclipped"])
    func clipGradientNormMatchesPyTorch(case name: String) throws {
        let f = try Fixture("clip_grad_norm")
        let parameters = (0..<3).map { i -> Variable in
            let g = f["\(name).grad_before.p\(i)"]
            let p = Variable(Tensor(zeros: g.shape), requiresGrad: true)
            p.grad = g
            return p
        }
        let total = clipGradientNorm(parameters, maxNorm: f["\(name).max_norm"].scalar)
        expectMatches(Tensor(shape: [1], data: [total]), f["\(name).total_norm"], tolerance: outputTolerance,
                      "\(name) total norm")
        for (i, p) in parameters.enumerated() {
            expectMatches(p.grad, f["\(name).grad_after.p\(i)"], tolerance: outputTolerance, "\(name) p\(i).grad")
        }
    }
}

@Suite struct PyTorchOptimizerParityTests {
    static let fixtures = ["sgd_plain", "sgd_nesterov", "sgd_momentum_dampening", "adam", "adam_weight_decay",
                           "adamw", "rmsprop_centered_momentum", "rmsprop_plain", "adagrad", "adagrad_decay"]

    /// The optimizer PyTorch used, built from the fixture's hyperparameters.
    func optimizer(for f: Fixture, _ parameters: [Variable]) throws -> any Optimizer {
        switch f.metadata["optimizer"] {
        case "SGD":
            return SGD(parameters: parameters, learningRate: f.float("lr"), momentum: f.float("momentum"),
                       dampening: f.float("dampening"), nesterov: f.bool("nesterov"),
                       weightDecay: f.float("weight_decay"))
        case "Adam":
            return Adam(parameters: parameters, learningRate: f.float("lr"), beta1: f.float("beta1"),
                        beta2: f.float("beta2"), epsilon: f.float("eps"), weightDecay: f.float("weight_decay"))
        case "AdamW":
            return AdamW(parameters: parameters, learningRate: f.float("lr"), beta1: f.float("beta1"),
                         beta2: f.float("beta2"), epsilon: f.float("eps"), weightDecay: f.float("weight_decay"))
        case "RMSprop":
            return RMSprop(parameters: parameters, learningRate: f.float("lr"), alpha: f.float("alpha"),
                           epsilon: f.float("eps"), weightDecay: f.float("weight_decay"),
                           momentum: f.float("momentum"), centered: f.bool("centered"))
        case "Adagrad":
            return Adagrad(parameters: parameters, learningRate: f.float("lr"),
                           learningRateDecay: f.float("lr_decay"), weightDecay: f.float("weight_decay"),
                           initialAccumulatorValue: f.float("initial_accumulator_value"), epsilon: f.float("eps"))
        default:
            throw RecurrentError.invalidFile("\(f.name): unknown optimizer \(f.metadata["optimizer"] ?? "none")")
        }
    }

    /// Three steps with the fixture's gradients; the parameters must match after every step.
    @Test(arguments: fixtures)
    func optimizerStepsMatchPyTorch(name: String) throws {
        let f = try Fixture("optimizer_" + name)
        let parameters = [Variable(f["initial.p0"], requiresGrad: true), Variable(f["initial.p1"], requiresGrad: true)]
        let opt = try optimizer(for: f, parameters)
        for step in 1...f.integer("steps") {
            for (i, p) in parameters.enumerated() { p.grad = f["step\(step).grad.p\(i)"] }
            opt.step()
            for (i, p) in parameters.enumerated() {
                expectMatches(p.value, f["step\(step).p\(i)"], tolerance: outputTolerance, "\(name) step \(step) p\(i)")
            }
        }
    }
}

@Suite struct PyTorchCrossEntropyParityTests {
    /// F.cross_entropy with one ignored target (mean and sum), and without ignore_index (mean).
    @Test(arguments: [("mean", Reduction.mean, true), ("sum", Reduction.sum, true),
                      ("mean_no_ignore", Reduction.mean, false)])
    func crossEntropyMatchesPyTorch(suffix: String, reduction: Reduction, ignoring: Bool) throws {
        let f = try Fixture("cross_entropy")
        let logits = Variable(f["input.logits"], requiresGrad: true)
        let loss = crossEntropy(logits: logits, targets: f.integers("input.targets"),
                                ignoreIndex: ignoring ? f.integer("ignore_index") : nil, reduction: reduction)
        expectMatches(loss.value.reshaped([1]), f["output.loss_\(suffix)"], tolerance: outputTolerance, "loss \(suffix)")
        loss.backward()
        expectMatches(logits.grad, f["grad.logits_\(suffix)"], tolerance: gradientTolerance, "dL/dlogits \(suffix)")
    }
}
