import Foundation
import Testing
@testable import Recurrent

/// A small text with structure (repeated words, quotes, lines).
let tinyText = String(repeating: "the cat sat on the mat. \"a dog!\" said the cat.\nthe dog ran.\n", count: 6)

func tinyCorpus(_ text: String = tinyText) -> TextCorpus {
    TextCorpus(symbols: text.unicodeScalars.map(\.value), unit: .character, source: "tiny.txt")
}

func tinyOptions(cell: LanguageModelConfiguration.Cell = .lstm) -> TrainingOptions {
    var o = TrainingOptions()
    o.cell = cell
    o.layers = 2
    o.hiddenSize = 8
    o.embeddingSize = 4
    o.dropout = 0.1
    o.sequenceLength = 6
    o.batchSize = 3
    o.learningRate = 0.01
    o.steps = 12
    o.evalEvery = 4
    o.sampleLength = 8
    o.seed = 7
    return o
}

@Suite("Language model training", .serialized)
struct LanguageModelTests {
    @Test func trainingLowersTheLossAndWritesARunDirectory() throws {
        let dir = temporaryDirectory() + "/run"
        var options = tinyOptions()
        options.steps = 30
        options.evalEvery = 10
        options.learningRate = 0.05
        let trainer = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir)
        #expect(!FileSystem.exists(dir))   // nothing on disk before training starts
        var events: [TrainingEvent] = []
        let finish = try trainer.train(report: { events.append($0) })
        #expect(finish.step == 30 && !finish.interrupted)
        let losses = trainer.stepLosses
        let early: Float = losses.prefix(5).reduce(0, +) / 5
        let late: Float = losses.suffix(5).reduce(0, +) / 5
        #expect(early > late + 0.3)
        #expect(events.filter { if case .validation = $0 { return true } else { return false } }.count == 3)
        #expect(events.contains { if case .sample(10, let text) = $0 { return text.unicodeScalars.count == 8 } else { return false } })
        for file in ["latest/model.safetensors", "latest/config.json", "latest/state.json", "latest/optimizer.safetensors",
                     "latest/carried_state.safetensors", "best/model.safetensors", "best/config.json", "metrics.jsonl", "passage.txt"] {
            #expect(FileSystem.exists("\(dir)/\(file)"), "missing \(file)")
        }
        let metrics = try MetricsLog.read(dir + "/metrics.jsonl")
        #expect(metrics.filter { $0["event"] as? String == "step" }.count == 30)
        // The best checkpoint records its validation loss, in state.json and the weights' metadata.
        let best = try TrainingState.read(dir + "/best/state.json")
        #expect(best.validationLoss == trainer.bestValidationLoss)
        #expect(try SafeTensors.read(path: dir + "/best/model.safetensors").metadata["validation_loss"] != nil)
        // A second run into the same directory is refused, and the directory is left alone.
        expectError("already exists and is not empty") {
            _ = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir)
        }
    }

    @Test(arguments: [LanguageModelConfiguration.Cell.lstm, .gru])
    func resumedRunMatchesAnUninterruptedOne(cell: LanguageModelConfiguration.Cell) throws {
        let base = temporaryDirectory("resume\(cell)")
        let options = tinyOptions(cell: cell)
        let straight = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: base + "/a")
        try straight.train()
        // Stop after 6 steps (as Ctrl-C would: between steps, checkpoint saved), then resume to 12.
        let first = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: base + "/b")
        var calls = 0
        let stopped = try first.train(shouldStop: { calls += 1; return first.step >= 6 && calls > 0 })
        #expect(stopped.interrupted && stopped.step == 6)
        let second = try LanguageModelTrainer(resuming: base + "/b", corpus: tinyCorpus(), corpusPath: nil)
        #expect(second.step == 6)
        try second.train()
        #expect(second.step == 12)
        #expect(first.stepLosses + second.stepLosses == straight.stepLosses)
        #expect(second.bestValidationLoss == straight.bestValidationLoss)
        let a = try LanguageModelCheckpoint.loadModel(base + "/a/latest").stateDict()
        let b = try LanguageModelCheckpoint.loadModel(base + "/b/latest").stateDict()
        #expect(a == b)
        // metrics.jsonl holds each step once.
        let steps = try MetricsLog.read(base + "/b/metrics.jsonl").filter { $0["event"] as? String == "step" }.compactMap { $0["step"] as? Int }
        #expect(steps == Array(1...12))
    }

    @Test func resumeRefusesMismatchedDataAndDamagedCheckpoints() throws {
        let dir = temporaryDirectory() + "/run"
        var options = tinyOptions()
        options.steps = 4
        try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir).train()
        expectError("does not match the checkpoint's vocabulary") {
            _ = try LanguageModelTrainer(resuming: dir, corpus: tinyCorpus(tinyText + "Zebra!"), corpusPath: nil)
        }
        // A state.json from another format version.
        let statePath = dir + "/latest/state.json"
        let original = try FileSystem.readText(statePath)
        try FileSystem.writeAtomically(original.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 99"), to: statePath)
        expectError("format version 99 is not supported") {
            _ = try LanguageModelTrainer(resuming: dir, corpus: tinyCorpus(), corpusPath: nil)
        }
        try FileSystem.writeAtomically(original, to: statePath)
        // Truncated weights.
        let weights = try FileSystem.readRegularFile(dir + "/latest/model.safetensors")
        try FileSystem.writeAtomically(Array(weights.prefix(weights.count / 2)), to: dir + "/latest/model.safetensors")
        expectError("model.safetensors cannot be read") {
            _ = try LanguageModelTrainer(resuming: dir, corpus: tinyCorpus(), corpusPath: nil)
        }
        expectError("model.safetensors cannot be read") { _ = try LanguageModelCheckpoint.loadModel(dir + "/latest") }
        expectError("no checkpoint at") { _ = try LanguageModelCheckpoint.loadModel(dir + "/nothing") }
    }

    @Test func shortCorpusAndBadOptionsAreRefused() {
        let dir = temporaryDirectory() + "/run"
        var options = tinyOptions()
        options.batchSize = 60
        expectError("shorter than one batch window") {
            _ = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir)
        }
        options = tinyOptions()
        options.dropout = 1.5
        expectError("--dropout must be in [0, 1)") {
            _ = try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir)
        }
        options = tinyOptions()
        options.schedule = .cosine
        options.steps = nil
        expectError("--schedule cosine needs") { try options.validate() }
        #expect(!FileSystem.exists(dir))
    }

    @Test(arguments: [LanguageModelConfiguration.Cell.lstm, .gru, .rnn])
    func foldedEmbeddingMatchesTheLayerPath(cell: LanguageModelConfiguration.Cell) throws {
        var rng = RandomGenerator(seed: 21)
        let vocab = Vocabulary(corpus: tinyCorpus())   // V = 18 < E = 40
        let config = LanguageModelConfiguration(cell: cell, embeddingSize: 40, hiddenSize: 6, numLayers: 2,
                                                vocabulary: vocab, dropout: 0.3)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        let (t, b) = (10, 6)
        #expect(model.foldingPays(rows: t * b) && !model.foldingPays(rows: 1))
        let text = try vocab.encode(tinyCorpus())
        let inputs = Array(text.prefix(t * b)), targets = Array(text.dropFirst().prefix(t * b))
        let state = RecurrentState(h: Variable(rng.uniformTensor([2, b, 6], low: -1, high: 1)),
                                   c: cell == .lstm ? Variable(rng.uniformTensor([2, b, 6], low: -1, high: 1)) : nil)
        func run(folding: Bool) -> (loss: Float, state: [Float], grads: [String: Tensor]) {
            model.allowsFolding = folding
            model.zeroGradients()
            model.rnn.dropoutGenerator = RandomGenerator(seed: 5)
            var dropout = RandomGenerator(seed: 6)
            let (logits, final) = model(inputs, steps: t, batch: b, state: state, dropoutGenerator: &dropout)
            let loss = crossEntropy(logits: logits, targets: targets)
            loss.backward()
            return (loss.value.scalar, final.h.value.data, Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.grad!) }))
        }
        let plain = run(folding: false), folded = run(folding: true)
        #expect(abs(plain.loss - folded.loss) < 1e-5)
        #expect(zip(plain.state, folded.state).allSatisfy { abs($0 - $1) < 1e-5 })
        for (name, g) in plain.grads {
            let scale = max(1, g.data.map(abs).max()!)
            #expect(g.maxAbsDifference(folded.grads[name]!) < 1e-5 * scale, "gradient of \(name)")
        }
    }

    @Test(arguments: [(LanguageModelConfiguration.Cell.lstm, 40), (.gru, 4), (.rnn, 4)])
    func inferenceMatchesTheTapePath(cell: LanguageModelConfiguration.Cell, embedding: Int) throws {
        var rng = RandomGenerator(seed: 8)
        let vocab = Vocabulary(corpus: tinyCorpus())
        let config = LanguageModelConfiguration(cell: cell, embeddingSize: embedding, hiddenSize: 6, numLayers: 2,
                                                vocabulary: vocab, dropout: 0.5)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        let (t, b) = (10, 6)
        let inputs = Array(try vocab.encode(tinyCorpus()).prefix(t * b))
        let state = RecurrentState(h: Variable(rng.uniformTensor([2, b, 6], low: -1, high: 1)),
                                   c: cell == .lstm ? Variable(rng.uniformTensor([2, b, 6], low: -1, high: 1)) : nil)
        model.training = false
        model.allowsFolding = false
        var unused = RandomGenerator(seed: 0)
        let (tape, tapeState) = model(inputs, steps: t, batch: b, state: state, dropoutGenerator: &unused)
        model.allowsFolding = true   // inference folds where it pays (E = 40): compare against the unfolded tape
        let (values, valueState) = model.predict(inputs, steps: t, batch: b, state: state)
        #expect(tape.value.maxAbsDifference(values) < 1e-5)
        #expect(tapeState.h.value.maxAbsDifference(valueState.h.value) < 1e-6)
        if cell == .lstm { #expect(tapeState.c!.value.maxAbsDifference(valueState.c!.value) < 1e-6) }
        #expect(model.foldingPays(rows: t * b) == (embedding == 40))
    }

    @Test func evaluationEqualsADirectComputation() throws {
        var rng = RandomGenerator(seed: 3)
        let vocab = Vocabulary(corpus: tinyCorpus())
        let config = LanguageModelConfiguration(cell: .lstm, embeddingSize: 5, hiddenSize: 7, numLayers: 2, vocabulary: vocab)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        let text = Array(try vocab.encode(tinyCorpus()).prefix(41))
        // One forward pass over the whole text from a zero state, then the mean cross-entropy.
        let (logits, _) = model.predict(Array(text.dropLast()), steps: 40, batch: 1, state: nil)
        let direct = crossEntropy(logits: Variable(logits), targets: Array(text.dropFirst())).value.scalar
        // The evaluator reads it in chunks of 7 with the state carried.
        let measured = LanguageModelEvaluation.evaluate(model, text: text, streams: 1, chunkLength: 7)
        #expect(measured.characters == 40)
        #expect(abs(measured.nats - Double(direct)) < 1e-5)
        #expect(abs(measured.bitsPerCharacter - measured.nats / log(2)) < 1e-12)
        // Several streams: every character but the first is still predicted exactly once.
        let parallel = LanguageModelEvaluation.evaluate(model, text: text, streams: 3, chunkLength: 4)
        #expect(parallel.characters == 40)
        var expected = 0.0
        for (start, length) in [(0, 14), (14, 13), (27, 13)] {
            let piece = Array(text[start...(start + length)])
            let (l, _) = model.predict(Array(piece.dropLast()), steps: length, batch: 1, state: nil)
            expected += Double(crossEntropy(logits: Variable(l), targets: Array(piece.dropFirst()), reduction: .sum).value.scalar)
        }
        #expect(abs(parallel.totalNats - expected) < 1e-3)
    }

    @Test func generationIsDeterministicForASeed() throws {
        var rng = RandomGenerator(seed: 4)
        let vocab = Vocabulary(corpus: tinyCorpus())
        let config = LanguageModelConfiguration(cell: .gru, embeddingSize: 5, hiddenSize: 6, numLayers: 1, vocabulary: vocab)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        let prime = try vocab.encode(text: "the ")
        var a = TextGenerator(model: model, prime: prime, options: SamplingOptions(temperature: 1.2), seed: 11)
        var b = TextGenerator(model: model, prime: prime, options: SamplingOptions(temperature: 1.2), seed: 11)
        var c = TextGenerator(model: model, prime: prime, options: SamplingOptions(temperature: 1.2), seed: 12)
        let ta = a.text(count: 40), tb = b.text(count: 40), tc = c.text(count: 40)
        #expect(ta == tb)
        #expect(ta != tc)
        // argmax is the most likely symbol after the prime, every time.
        var g = TextGenerator(model: model, prime: prime, options: SamplingOptions(argmax: true), seed: 1)
        let (logits, _) = model.predict(prime, steps: prime.count, batch: 1, state: nil)
        let last = Array(logits.data.suffix(vocab.count))
        #expect(g.next() == Sampler.argmax(last))
    }

    @Test func topKAndTopPKeepTheMostLikelySymbols() throws {
        let logits: [Float] = [2, 0, 1, -1, 1]
        let p = Sampler.probabilities(logits: logits, options: SamplingOptions())
        #expect(abs(p.reduce(0, +) - 1) < 1e-12)
        let k2 = Sampler.probabilities(logits: logits, options: SamplingOptions(topK: 2))
        #expect(k2.enumerated().filter { $0.element > 0 }.map(\.offset) == [0, 2])   // tie 2 vs 4: lower index kept
        #expect(abs(k2[0] - p[0] / (p[0] + p[2])) < 1e-12)
        // p = softmax: [0.5206, 0.0705, 0.1915, 0.0259, 0.1915]; 0.5 is reached by the top one,
        // 0.6 needs two, 0.95 four.
        #expect(Sampler.probabilities(logits: logits, options: SamplingOptions(topP: 0.5)).filter { $0 > 0 }.count == 1)
        let nucleus = Sampler.probabilities(logits: logits, options: SamplingOptions(topP: 0.6))
        #expect(nucleus.filter { $0 > 0 }.count == 2)
        #expect(abs(nucleus[0] - p[0] / (p[0] + p[2])) < 1e-12)
        #expect(Sampler.probabilities(logits: logits, options: SamplingOptions(topP: 0.95)).filter { $0 > 0 }.count == 4)
        let all = Sampler.probabilities(logits: logits, options: SamplingOptions(topP: 1))
        #expect(all.filter { $0 > 0 }.count == 5)
        // Low temperature concentrates the mass on the argmax.
        let cold = Sampler.probabilities(logits: logits, options: SamplingOptions(temperature: 0.05))
        #expect(cold[0] > 0.99)
        // Draws only ever return kept symbols, and follow the distribution.
        var rng = RandomGenerator(seed: 9)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<4000 { counts[Sampler.sample(logits: logits, options: SamplingOptions(topK: 2), generator: &rng)] += 1 }
        #expect(counts[1] == 0 && counts[3] == 0 && counts[4] == 0)
        #expect(abs(Double(counts[0]) / 4000 - k2[0]) < 0.03)
        expectError("--top-p must be in (0, 1]") { try SamplingOptions(topP: 1.5).validate() }
        expectError("--temperature must be a positive") { try SamplingOptions(temperature: 0).validate() }
    }
}
