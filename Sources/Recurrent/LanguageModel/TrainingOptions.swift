/// Everything `recurrent train` can be told, with defaults for a small model that learns in a
/// few minutes on two cores. Stored in each checkpoint's `state.json`, so `--resume` continues
/// with the same settings.
public struct TrainingOptions: Sendable, Equatable, Codable {
    public var cell: LanguageModelConfiguration.Cell = .lstm
    public var nonlinearity: LanguageModelConfiguration.Nonlinearity = .tanh
    public var layers = 2
    public var hiddenSize = 256
    public var embeddingSize = 64
    /// Dropout between recurrent layers and before the output layer (training only).
    public var dropout: Float = 0
    /// T, the truncated-BPTT window.
    public var sequenceLength = 100
    /// B, the number of parallel streams.
    public var batchSize = 32
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Float = 2e-3
    public var weightDecay: Float = 0
    public var schedule: ScheduleKind = .constant
    /// Linear warm-up from 0 over this many steps, before the schedule.
    public var warmupSteps = 0
    /// `step`/`exponential`: the rate is multiplied by `decayRate` every `decayEvery` steps.
    public var decayRate: Float = 0.5
    public var decayEvery = 1000
    /// `cosine`: the final rate.
    public var minimumLearningRate: Float = 0
    /// Maximum global gradient norm (0: no clipping).
    public var clip: Float = 5
    /// Length of training: the run stops at the first limit reached. None given: `--time-budget 180`.
    public var steps: Int?
    public var epochs: Double?
    public var timeBudget: Double?
    public var evalEvery = 200
    public var seed: UInt64 = 1
    public var split = CorpusSplit.standard
    public var unit: TextUnit = .character
    /// Characters sampled at each validation.
    public var sampleLength = 200

    public enum OptimizerKind: String, Sendable, Codable, CaseIterable { case adam, adamw, rmsprop, sgd, adagrad }
    public enum ScheduleKind: String, Sendable, Codable, CaseIterable { case constant, step, exponential, cosine }

    public init() {}

    public static let defaultTimeBudget = 180.0

    /// True when no length was given (the default budget applies).
    public var usesDefaultLength: Bool { steps == nil && epochs == nil && timeBudget == nil }

    /// Checks every value, with a message naming the option.
    public func validate() throws {
        func positive(_ v: Int, _ name: String) throws {
            guard v > 0 else { throw RecurrentError.invalidArgument("\(name) must be a positive integer, got \(v)") }
        }
        try positive(layers, "--layers")
        try positive(hiddenSize, "--hidden")
        try positive(embeddingSize, "--embedding")
        try positive(sequenceLength, "--seq-len")
        try positive(batchSize, "--batch")
        try positive(evalEvery, "--eval-every")
        try positive(decayEvery, "--decay-every")
        guard sampleLength >= 0 else { throw RecurrentError.invalidArgument("--sample-length must be ≥ 0, got \(sampleLength)") }
        guard warmupSteps >= 0 else { throw RecurrentError.invalidArgument("--warmup must be ≥ 0, got \(warmupSteps)") }
        guard dropout >= 0 && dropout < 1 else { throw RecurrentError.invalidArgument("--dropout must be in [0, 1), got \(dropout)") }
        guard learningRate > 0 && learningRate.isFinite else { throw RecurrentError.invalidArgument("--lr must be positive, got \(learningRate)") }
        guard weightDecay >= 0 else { throw RecurrentError.invalidArgument("--weight-decay must be ≥ 0, got \(weightDecay)") }
        guard clip >= 0 && clip.isFinite else { throw RecurrentError.invalidArgument("--clip must be ≥ 0 (0 turns clipping off), got \(clip)") }
        guard decayRate > 0 && decayRate <= 1 else { throw RecurrentError.invalidArgument("--decay-rate must be in (0, 1], got \(decayRate)") }
        guard minimumLearningRate >= 0 && minimumLearningRate <= learningRate else {
            throw RecurrentError.invalidArgument("--min-lr must be between 0 and --lr, got \(minimumLearningRate)")
        }
        if let s = steps { try positive(s, "--steps") }
        if let e = epochs, !(e > 0 && e.isFinite) { throw RecurrentError.invalidArgument("--epochs must be positive, got \(e)") }
        if let t = timeBudget, !(t > 0 && t.isFinite) { throw RecurrentError.invalidArgument("--time-budget must be positive seconds, got \(t)") }
        if nonlinearity == .relu && cell != .rnn {
            throw RecurrentError.invalidArgument("--nonlinearity relu applies to --cell rnn only")
        }
        if schedule == .cosine && steps == nil && epochs == nil {
            throw RecurrentError.invalidArgument("--schedule cosine needs the length of training as --steps or --epochs")
        }
        if split.validation <= 0 {
            throw RecurrentError.invalidArgument("--split needs a validation part (validation picks the best checkpoint)")
        }
    }

    /// The schedule over optimizer steps, given the planned number of steps (for cosine).
    public func learningRateSchedule(plannedSteps: Int?) -> any LearningRateSchedule {
        let main: any LearningRateSchedule
        switch schedule {
        case .constant: main = ConstantRate()
        case .step: main = StepDecay(stepSize: decayEvery, gamma: decayRate)
        case .exponential:
            main = ExponentialDecay(gamma: Float(_pow(Double(decayRate), 1 / Double(decayEvery))))
        case .cosine:
            main = CosineAnnealing(totalSteps: max(1, (plannedSteps ?? 1) - warmupSteps), minimum: minimumLearningRate)
        }
        return warmupSteps > 0 ? LinearWarmup(steps: warmupSteps, then: main) : main
    }

    /// The optimizer over `parameters`, PyTorch defaults for everything but the rate and decay.
    public func makeOptimizer(_ parameters: [Variable]) -> any Optimizer {
        switch optimizer {
        case .adam: return Adam(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: return AdamW(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .rmsprop: return RMSprop(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .sgd: return SGD(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .adagrad: return Adagrad(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        }
    }

    /// Name → value, for the start event and the report.
    public var summary: [(String, String)] {
        var rows: [(String, String)] = [("cell", cell == .rnn ? "rnn (\(nonlinearity.rawValue))" : cell.rawValue),
                                        ("layers", "\(layers)"), ("hidden", "\(hiddenSize)"), ("embedding", "\(embeddingSize)"),
                                        ("dropout", "\(dropout)"), ("seq_len", "\(sequenceLength)"), ("batch", "\(batchSize)"),
                                        ("optimizer", optimizer.rawValue), ("lr", "\(learningRate)")]
        if weightDecay > 0 { rows.append(("weight_decay", "\(weightDecay)")) }
        switch schedule {
        case .constant: rows.append(("schedule", "constant"))
        case .step, .exponential: rows.append(("schedule", "\(schedule.rawValue) ×\(decayRate) per \(decayEvery) steps"))
        case .cosine: rows.append(("schedule", "cosine to \(minimumLearningRate)"))
        }
        if warmupSteps > 0 { rows.append(("warmup", "\(warmupSteps)")) }
        rows += [("clip", clip > 0 ? "\(clip)" : "off"), ("seed", "\(seed)"),
                 ("split", "\(split.train)/\(split.validation)/\(split.test)"), ("unit", unit.rawValue)]
        if let s = steps { rows.append(("steps", "\(s)")) }
        if let e = epochs { rows.append(("epochs", "\(e)")) }
        if let t = timeBudget { rows.append(("time_budget", "\(t) s")) }
        rows.append(("eval_every", "\(evalEvery)"))
        return rows
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func _pow(_ a: Double, _ b: Double) -> Double { pow(a, b) }
