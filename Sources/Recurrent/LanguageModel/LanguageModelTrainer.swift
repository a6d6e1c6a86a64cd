import Foundation

/// Trains a `CharacterLanguageModel` with truncated BPTT, char-rnn style, and keeps its run
/// directory: checkpoints, metrics and the validation passage.
///
/// One step: take the next window of the B streams (`TrainingStreams`), run it from the state
/// carried over from the previous window (detached, so gradients stop at the window), take the
/// mean cross-entropy of the T·B predictions, back-propagate, clip the global gradient norm,
/// update with the optimizer at the scheduled rate. Every `evalEvery` steps and at the end the
/// whole validation split is measured (`LanguageModelEvaluation`, B streams), a sample is
/// written, and the `latest` checkpoint (plus `best` if the loss improved) is saved.
///
/// Construction validates everything and touches no file; `run` creates or updates the
/// directory. A resumed trainer continues exactly: its steps see the same windows, dropout
/// masks and optimizer state as an uninterrupted run with the same seed.
public final class LanguageModelTrainer {
    public private(set) var options: TrainingOptions
    public let run: RunDirectory
    public let model: CharacterLanguageModel
    public let corpus: TextCorpus
    let optimizer: any Optimizer
    let schedule: any LearningRateSchedule
    var streams: TrainingStreams
    var streamGenerator: RandomGenerator
    var outputDropoutGenerator: RandomGenerator
    var carried: RecurrentState?
    /// Steps completed.
    public private(set) var step: Int
    public private(set) var bestValidationLoss: Double?
    var bestStep: Int?
    var lastValidationLoss: Double?
    var lastValidatedStep: Int?
    var elapsedBefore: Double
    var trainedCharacters: Int
    let trainText: [Int]
    let validationText: [Int]
    let splitCounts: (train: Int, validation: Int, test: Int)
    let corpusPath: String?
    public let resumed: Bool
    /// Losses of the steps run by this trainer, in order (what the resume test compares).
    public private(set) var stepLosses: [Float] = []

    /// A new run into `directory`, which must not exist or be empty. `corpusPath` is the file
    /// (nil for the default corpus), recorded so `--resume` can read it again.
    public init(options: TrainingOptions, corpus: TextCorpus, corpusPath: String?, directory: String) throws {
        try options.validate()
        let run = RunDirectory(directory)
        if run.isNonEmpty {
            throw RecurrentError.invalidArgument(
                "'\(directory)' already exists and is not empty; continue it with --resume \(directory), or choose another --out")
        }
        if FileSystem.exists(run.path) && !FileSystem.isDirectory(run.path) {
            throw RecurrentError.invalidArgument("--out '\(directory)' is a file")
        }
        let vocabulary = Vocabulary(corpus: corpus)
        let encoded = try vocabulary.encode(corpus)
        let (trainText, validationText, counts) = try LanguageModelTrainer.split(encoded, options: options, source: corpus.source)
        var rng = RandomGenerator(seed: options.seed)
        let config = LanguageModelConfiguration(cell: options.cell, nonlinearity: options.nonlinearity,
                                                embeddingSize: options.embeddingSize, hiddenSize: options.hiddenSize,
                                                numLayers: options.layers, vocabulary: vocabulary, dropout: options.dropout)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        self.options = options
        self.run = run
        self.model = model
        self.corpus = corpus
        self.corpusPath = corpusPath
        self.trainText = trainText
        self.validationText = validationText
        self.splitCounts = counts
        streams = try TrainingStreams(textCount: trainText.count, batchSize: options.batchSize, windowLength: options.sequenceLength)
        streamGenerator = RandomGenerator(seed: rng.next())
        outputDropoutGenerator = RandomGenerator(seed: rng.next())
        optimizer = options.makeOptimizer(model.parameters)
        schedule = options.learningRateSchedule(plannedSteps: LanguageModelTrainer.plannedSteps(options, streams))
        step = 0
        elapsedBefore = 0
        trainedCharacters = 0
        resumed = false
    }

    /// Continues the run in `directory` (or the run whose `latest/` it is) from its latest
    /// checkpoint. `corpus` nil reads the recorded data again. `length` replaces the stored
    /// length of training (`steps`, `epochs`, `timeBudget`) when it sets any of them;
    /// `evalEvery` replaces the validation interval.
    public init(resuming directory: String, corpus givenCorpus: TextCorpus?, corpusPath givenPath: String?,
                length: (steps: Int?, epochs: Double?, timeBudget: Double?)? = nil, evalEvery: Int? = nil) throws {
        let run = try RunDirectory.forResume(directory)
        let checkpoint = try run.latestCheckpoint()
        let state = try TrainingState.read(checkpoint + "/" + LanguageModelCheckpoint.stateFile)
        var options = state.options
        if let length, length.steps != nil || length.epochs != nil || length.timeBudget != nil {
            options.steps = length.steps
            options.epochs = length.epochs
            options.timeBudget = length.timeBudget
        }
        if let evalEvery { options.evalEvery = evalEvery }
        try options.validate()
        let config = try LanguageModelCheckpoint.readConfiguration(checkpoint)
        let vocabulary = try config.vocabulary()
        let corpusPath = givenCorpus == nil ? state.corpus.path : givenPath
        let corpus: TextCorpus
        if let givenCorpus {
            corpus = givenCorpus
        } else if let path = state.corpus.path {
            corpus = try TextCorpus.load(path: path, unit: options.unit)
        } else {
            corpus = try TextCorpus.loadDefault(unit: options.unit)
        }
        let encoded: [Int]
        do {
            encoded = try vocabulary.encode(corpus)
        } catch let error as RecurrentError {
            throw RecurrentError.invalidArgument(
                "the data does not match the checkpoint's vocabulary (\(vocabulary.count) symbols): \(error.description)")
        }
        let (trainText, validationText, counts) = try LanguageModelTrainer.split(encoded, options: options, source: corpus.source)
        var rng = RandomGenerator(seed: 0)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        try LanguageModelCheckpoint.loadWeights(into: model, from: checkpoint)
        let optimizer = options.makeOptimizer(model.parameters)
        let optimizerFile = checkpoint + "/" + LanguageModelCheckpoint.optimizerFile
        let carriedFile = checkpoint + "/" + LanguageModelCheckpoint.carriedStateFile
        do {
            try optimizer.loadStateDict(try SafeTensors.read(path: optimizerFile).tensors)
        } catch {
            throw RecurrentError.invalidCheckpoint("\(optimizerFile): \(error)")
        }
        let carriedTensors: [String: Tensor]
        do { carriedTensors = try SafeTensors.read(path: carriedFile).tensors } catch {
            throw RecurrentError.invalidCheckpoint("\(carriedFile): \(error)")
        }
        var streams = state.streams
        var notes: [String] = []
        if state.corpus.fingerprint != corpus.fingerprint || streams.textCount != trainText.count {
            streams = try TrainingStreams(textCount: trainText.count, batchSize: options.batchSize, windowLength: options.sequenceLength)
            notes.append("the data differs from the data of the checkpoint; the streams restart at the beginning of the new training text")
        }
        let stateShape = [config.numLayers, options.batchSize, config.hiddenSize]
        if let h = carriedTensors["h"], notes.isEmpty {
            guard h.shape == stateShape, (carriedTensors["c"] != nil) == config.cellKind.hasCellState,
                  carriedTensors["c"].map({ $0.shape == stateShape }) ?? true else {
                throw RecurrentError.invalidCheckpoint("\(carriedFile): carried state does not have shape \(stateShape)")
            }
            carried = RecurrentState(h: Variable(h), c: carriedTensors["c"].map { Variable($0) })
        }
        self.options = options
        self.run = run
        self.model = model
        self.corpus = corpus
        self.corpusPath = corpusPath
        self.trainText = trainText
        self.validationText = validationText
        self.splitCounts = counts
        self.streams = streams
        self.optimizer = optimizer
        streamGenerator = try state.streamGenerator.generator()
        outputDropoutGenerator = try state.outputDropoutGenerator.generator()
        model.rnn.dropoutGenerator = try state.layerDropoutGenerator.generator()
        schedule = options.learningRateSchedule(plannedSteps: LanguageModelTrainer.plannedSteps(options, streams))
        step = state.step
        bestValidationLoss = state.bestValidationLoss
        bestStep = state.bestStep
        lastValidationLoss = state.validationLoss
        lastValidatedStep = state.validationLoss == nil ? nil : state.step
        elapsedBefore = state.elapsed
        trainedCharacters = state.trainedCharacters
        resumed = true
        pendingNotes = notes
    }

    var pendingNotes: [String] = []

    /// Train / validation pieces of the encoded corpus, with the checks that need their sizes.
    static func split(_ encoded: [Int], options: TrainingOptions, source: String) throws
        -> ([Int], [Int], (train: Int, validation: Int, test: Int)) {
        let r = options.split.ranges(count: encoded.count)
        let window = options.batchSize * options.sequenceLength + 1
        guard r.train.count >= window else {
            throw RecurrentError.invalidArgument(
                "'\(source)' is too short: its training part has \(r.train.count) characters, shorter than one batch window "
                + "(--batch \(options.batchSize) × --seq-len \(options.sequenceLength) + 1 = \(window)). "
                + "Use more text or a smaller --batch/--seq-len")
        }
        guard r.validation.count >= 2 else {
            throw RecurrentError.invalidArgument(
                "'\(source)' is too short: its validation part has \(r.validation.count) characters (at least 2 needed); "
                + "use more text or a larger validation share in --split")
        }
        return (Array(encoded[r.train]), Array(encoded[r.validation]), (r.train.count, r.validation.count, r.test.count))
    }

    /// Steps the run will take if its length is given in steps or epochs.
    static func plannedSteps(_ options: TrainingOptions, _ streams: TrainingStreams) -> Int? {
        let fromEpochs = options.epochs.map { Int(($0 * Double(streams.windowsPerFirstEpoch)).rounded(.up)) }
        switch (options.steps, fromEpochs) {
        case let (s?, e?): return min(s, e)
        case let (s?, nil): return s
        case let (nil, e?): return e
        case (nil, nil): return nil
        }
    }

    var timeBudget: Double? { options.usesDefaultLength ? TrainingOptions.defaultTimeBudget : options.timeBudget }

    /// Trains until the length is reached or `shouldStop` returns true (checked between steps
    /// and between validation chunks), then saves the latest checkpoint. Every event goes to
    /// `metrics.jsonl` and to `report`.
    @discardableResult
    public func train(report: (TrainingEvent) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> TrainingEvent.Finish {
        try prepareDirectory()
        let metrics = try MetricsLog(path: run.metrics)
        func emit(_ event: TrainingEvent) {
            metrics.append(event)
            report(event)
        }
        for note in pendingNotes { emit(.note(note)) }
        pendingNotes = []
        let planned = LanguageModelTrainer.plannedSteps(options, streams)
        emit(.started(.init(step: step, resumed: resumed, corpus: corpus.source, trainSymbols: splitCounts.train,
                            validationSymbols: splitCounts.validation, testSymbols: splitCounts.test,
                            vocabularySize: model.vocabulary.count, parameterCount: model.parameterCount,
                            plannedSteps: planned, timeBudget: timeBudget, hyperparameters: options.summary)))

        let sessionStart = monotonicSeconds()
        var stepSeconds = 0.0
        var sessionCharacters = 0
        var sessionSteps = 0
        var inputs = [Int](), targets = [Int]()
        let parameters = model.parameters
        let b = options.batchSize, t = options.sequenceLength
        var interrupted = false
        func elapsed() -> Double { elapsedBefore + monotonicSeconds() - sessionStart }
        func speed() -> Double { stepSeconds > 0 ? Double(sessionCharacters) / stepSeconds : 0 }

        model.training = true
        while true {
            if shouldStop() { interrupted = true; break }
            if let s = planned, step >= s { break }
            if let budget = timeBudget, elapsed() >= budget { break }
            let started = monotonicSeconds()
            let rate = schedule.learningRate(at: step, base: options.learningRate)
            optimizer.learningRate = rate
            if streams.next(text: trainText, inputs: &inputs, targets: &targets, generator: &streamGenerator) {
                carried = nil
            }
            optimizer.zeroGradients()
            let (logits, final) = model(inputs, steps: t, batch: b, state: carried, dropoutGenerator: &outputDropoutGenerator)
            let loss = crossEntropy(logits: logits, targets: targets)
            let lossValue = loss.value.scalar
            guard lossValue.isFinite else {
                throw RecurrentError.invalidArgument(
                    "training diverged: the loss is \(lossValue) at step \(step + 1); lower --lr (now \(options.learningRate)) or --clip")
            }
            loss.backward()
            let norm = clipGradientNorm(parameters, maxNorm: options.clip > 0 ? options.clip : .infinity)
            optimizer.step()
            carried = final.detached()
            step += 1
            sessionSteps += 1
            stepLosses.append(lossValue)
            trainedCharacters += b * t
            sessionCharacters += b * t
            stepSeconds += monotonicSeconds() - started
            let now = elapsed()
            var remaining: Double?
            if let s = planned { remaining = Double(s - step) * (now - elapsedBefore) / Double(sessionSteps) }
            if let budget = timeBudget { remaining = min(remaining ?? .infinity, max(0, budget - now)) }
            emit(.step(.init(step: step, epoch: streams.epochsCompleted, loss: Double(lossValue), learningRate: Double(rate),
                             gradientNorm: Double(norm), charactersPerSecond: speed(), elapsed: now, remaining: remaining)))
            if step % options.evalEvery == 0 {
                guard try validateAndSave(emit: emit, elapsed: elapsed, shouldStop: shouldStop) else { interrupted = true; break }
            }
        }
        if !interrupted && lastValidatedStep != step {
            if try !validateAndSave(emit: emit, elapsed: elapsed, shouldStop: shouldStop) { interrupted = true }
        }
        if interrupted {
            try saveLatest(validationLoss: lastValidatedStep == step ? lastValidationLoss : nil, elapsed: elapsed())
            emit(.checkpoint(step: step, path: run.latest, validationLoss: lastValidatedStep == step ? lastValidationLoss : nil))
        }
        let finish = TrainingEvent.Finish(step: step, interrupted: interrupted, elapsed: elapsed(), charactersPerSecond: speed(),
                                          bestValidationLoss: bestValidationLoss, directory: run.path)
        emit(.finished(finish))
        return finish
    }

    /// Measures the validation split, writes a sample and the checkpoints. Returns false if
    /// `shouldStop` interrupted the measurement (nothing is saved then).
    func validateAndSave(emit: (TrainingEvent) -> Void, elapsed: () -> Double, shouldStop: () -> Bool) throws -> Bool {
        let started = monotonicSeconds()
        var stopped = false
        let loss = LanguageModelEvaluation.evaluate(model, text: validationText, streams: options.batchSize,
                                                    chunkLength: options.sequenceLength,
                                                    shouldStop: { if shouldStop() { stopped = true }; return stopped })
        model.training = true
        if stopped { return false }
        let improved = bestValidationLoss.map { loss.nats < $0 } ?? true
        if improved {
            bestValidationLoss = loss.nats
            bestStep = step
        }
        lastValidationLoss = loss.nats
        lastValidatedStep = step
        emit(.validation(.init(step: step, loss: loss.nats, characters: loss.characters, isBest: improved,
                               seconds: monotonicSeconds() - started)))
        if options.sampleLength > 0 {
            var generator = TextGenerator(model: model, prime: TextGenerator.defaultPrime(model.vocabulary),
                                          options: SamplingOptions(temperature: 0.8), seed: options.seed &+ UInt64(step))
            emit(.sample(step: step, text: generator.text(count: options.sampleLength)))
            model.training = true
        }
        try saveLatest(validationLoss: loss.nats, elapsed: elapsed())
        emit(.checkpoint(step: step, path: run.latest, validationLoss: loss.nats))
        if improved {
            try LanguageModelCheckpoint.write(to: run.best, model: model, state: currentState(validationLoss: loss.nats, elapsed: elapsed()),
                                              optimizer: nil, carried: nil)
            emit(.checkpoint(step: step, path: run.best, validationLoss: loss.nats))
        }
        return true
    }

    func currentState(validationLoss: Double?, elapsed: Double) -> TrainingState {
        TrainingState(step: step, validationLoss: validationLoss, bestValidationLoss: bestValidationLoss, bestStep: bestStep,
                      streams: streams, streamGenerator: .init(streamGenerator),
                      layerDropoutGenerator: .init(model.rnn.dropoutGenerator),
                      outputDropoutGenerator: .init(outputDropoutGenerator), elapsed: elapsed,
                      trainedCharacters: trainedCharacters, options: options,
                      corpus: .init(path: corpusPath, description: corpus.source, count: corpus.count, fingerprint: corpus.fingerprint))
    }

    func saveLatest(validationLoss: Double?, elapsed: Double) throws {
        try LanguageModelCheckpoint.write(to: run.latest, model: model, state: currentState(validationLoss: validationLoss, elapsed: elapsed),
                                          optimizer: optimizer, carried: carried)
    }

    /// Creates the directory of a new run (passage, empty metrics) or trims a resumed run's
    /// metrics to the checkpoint's step.
    func prepareDirectory() throws {
        if resumed {
            try MetricsLog.truncate(run.metrics, after: step)
            return
        }
        try FileSystem.createDirectory(run.path)
        let passage = Array(validationText.prefix(2000))
        let symbols = passage.map { model.vocabulary.symbols[$0] }
        let bytes: [UInt8] = model.vocabulary.unit == .byte
            ? symbols.map { UInt8($0) }
            : Array(String(String.UnicodeScalarView(symbols.map { Unicode.Scalar($0)! })).utf8)
        try FileSystem.writeAtomically(bytes, to: run.passage)
        try FileSystem.writeAtomically([UInt8](), to: run.metrics)
    }
}
