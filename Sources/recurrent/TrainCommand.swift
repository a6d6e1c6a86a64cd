#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Recurrent

extension LanguageModelConfiguration.Cell: ExpressibleByArgument {}
extension LanguageModelConfiguration.Nonlinearity: ExpressibleByArgument {}
extension TrainingOptions.OptimizerKind: ExpressibleByArgument {}
extension TrainingOptions.ScheduleKind: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a character-level language model on a text file.",
        discussion: """
        Without --data it trains on the `fortunes` corpus of Debian/Ubuntu (/usr/share/games/fortunes; \
        install it with `sudo apt-get install -y fortunes`). Without --steps, --epochs or --time-budget it \
        trains for \(Int(TrainingOptions.defaultTimeBudget)) seconds. Ctrl-C saves a checkpoint and stops; \
        continue with --resume DIR.
        """)

    @Option(help: "UTF-8 text file to train on (default: the fortunes corpus).") var data: String?
    @Option(help: "Run directory to create (checkpoints, metrics.jsonl, report.html). Default: runs/<data name>.") var out: String?
    @Option(help: "Continue the run in this directory from its latest checkpoint.") var resume: String?

    @Option(help: "Recurrent cell: lstm, gru or rnn.") var cell: LanguageModelConfiguration.Cell?
    @Option(help: "Non-linearity of --cell rnn: tanh or relu.") var nonlinearity: LanguageModelConfiguration.Nonlinearity?
    @Option(help: "Stacked recurrent layers (default 2).") var layers: Int?
    @Option(help: "Hidden size H (default 256).") var hidden: Int?
    @Option(help: "Embedding size E (default 64).") var embedding: Int?
    @Option(help: "Dropout between layers and before the output (default 0).") var dropout: Float?
    @Option(name: .customLong("seq-len"), help: "Truncated-BPTT window T (default 64).") var seqLen: Int?
    @Option(help: "Parallel streams B (default 64).") var batch: Int?
    @Option(help: "adam, adamw, rmsprop, sgd or adagrad (default adam).") var optimizer: TrainingOptions.OptimizerKind?
    @Option(help: "Learning rate (default 0.002).") var lr: Float?
    @Option(name: .customLong("weight-decay"), help: "Weight decay (default 0).") var weightDecay: Float?
    @Option(help: "Learning-rate schedule: constant, step, exponential or cosine (default constant).") var schedule: TrainingOptions.ScheduleKind?
    @Option(help: "Linear warm-up steps (default 0).") var warmup: Int?
    @Option(name: .customLong("decay-rate"), help: "step/exponential: factor per --decay-every steps (default 0.5).") var decayRate: Float?
    @Option(name: .customLong("decay-every"), help: "step/exponential: steps per decay (default 1000).") var decayEvery: Int?
    @Option(name: .customLong("min-lr"), help: "cosine: final learning rate (default 0).") var minLr: Float?
    @Option(help: "Maximum global gradient norm, 0 for none (default 5).") var clip: Float?
    @Option(help: "Train this many steps.") var steps: Int?
    @Option(help: "Train this many passes over the training text (fractions allowed).") var epochs: Double?
    @Option(name: .customLong("time-budget"), help: "Train this many seconds (wall clock).") var timeBudget: Double?
    @Option(name: .customLong("eval-every"), help: "Validate, sample and checkpoint every N steps (default 200).") var evalEvery: Int?
    @Option(help: "Random seed (default 1).") var seed: UInt64?
    @Option(help: "Train/validation/test shares, contiguous (default 90,5,5).") var split: String?
    @Flag(help: "Model raw bytes instead of Unicode characters.") var bytes = false
    @Option(name: .customLong("sample-length"), help: "Characters sampled at each validation (default 200).") var sampleLength: Int?
    @Option(help: "Threads to share the work between (default: the cores this process may use).") var threads: Int?
    @Flag(help: "Print every event as one JSON line on stdout.") var json = false

    func run() throws {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be positive") }
            ThreadTeam.threads = threads
        }
        let trainer = try makeTrainer()
        let printer = ProgressPrinter(mode: ProgressPrinter.automaticMode(json: json))
        InterruptSignal.install()
        let finish: TrainingEvent.Finish
        do {
            finish = try trainer.train(report: printer.show, shouldStop: { InterruptSignal.isRequested })
        } catch {
            printer.finish()
            throw error
        }
        printer.finish()
        if finish.interrupted {
            if !json { fputs("resume with: recurrent train --resume \(trainer.run.path)\n", stderr) }
            throw ExitCode(130)
        }
    }

    func makeTrainer() throws -> LanguageModelTrainer {
        if let resume {
            let fixed: [(String, Bool)] = [
                ("--out", out != nil), ("--cell", cell != nil), ("--nonlinearity", nonlinearity != nil), ("--layers", layers != nil),
                ("--hidden", hidden != nil), ("--embedding", embedding != nil), ("--dropout", dropout != nil),
                ("--seq-len", seqLen != nil), ("--batch", batch != nil), ("--optimizer", optimizer != nil), ("--lr", lr != nil),
                ("--weight-decay", weightDecay != nil), ("--schedule", schedule != nil), ("--warmup", warmup != nil),
                ("--decay-rate", decayRate != nil), ("--decay-every", decayEvery != nil), ("--min-lr", minLr != nil),
                ("--clip", clip != nil), ("--seed", seed != nil), ("--split", split != nil), ("--bytes", bytes),
                ("--sample-length", sampleLength != nil),
            ]
            if let given = fixed.first(where: { $0.1 }) {
                throw ValidationError("\(given.0) cannot be changed when resuming: the run continues with the settings stored in its checkpoint "
                                      + "(only --data, --steps, --epochs, --time-budget, --eval-every, --threads and --json apply)")
            }
            let corpus = try data.map { try TextCorpus.load(path: $0, unit: try storedUnit(resume)) }
            return try LanguageModelTrainer(resuming: resume, corpus: corpus, corpusPath: data,
                                            length: (steps, epochs, timeBudget), evalEvery: evalEvery)
        }
        var o = TrainingOptions()
        if let cell { o.cell = cell }
        if let nonlinearity { o.nonlinearity = nonlinearity }
        if let layers { o.layers = layers }
        if let hidden { o.hiddenSize = hidden }
        if let embedding { o.embeddingSize = embedding }
        if let dropout { o.dropout = dropout }
        if let seqLen { o.sequenceLength = seqLen }
        if let batch { o.batchSize = batch }
        if let optimizer { o.optimizer = optimizer }
        if let lr { o.learningRate = lr }
        if let weightDecay { o.weightDecay = weightDecay }
        if let schedule { o.schedule = schedule }
        if let warmup { o.warmupSteps = warmup }
        if let decayRate { o.decayRate = decayRate }
        if let decayEvery { o.decayEvery = decayEvery }
        if let minLr { o.minimumLearningRate = minLr }
        if let clip { o.clip = clip }
        o.steps = steps
        o.epochs = epochs
        o.timeBudget = timeBudget
        if let evalEvery { o.evalEvery = evalEvery }
        if let seed { o.seed = seed }
        if let split { o.split = try CorpusSplit(parsing: split) }
        if bytes { o.unit = .byte }
        if let sampleLength { o.sampleLength = sampleLength }
        try o.validate()
        let corpus = try data.map { try TextCorpus.load(path: $0, unit: o.unit) } ?? TextCorpus.loadDefault(unit: o.unit)
        let directory = out ?? "runs/" + Train.runName(data)
        return try LanguageModelTrainer(options: o, corpus: corpus, corpusPath: data, directory: directory)
    }

    /// The unit a run was trained with, so `--data` is read the same way on resume.
    func storedUnit(_ resume: String) throws -> TextUnit {
        let run = try RunDirectory.forResume(resume)
        let checkpoint = try LanguageModelCheckpoint.resolve(run.path, preferBest: false)
        return try LanguageModelCheckpoint.readConfiguration(checkpoint).unit
    }

    /// `shakespeare.txt` → `shakespeare`; no data → `fortunes`.
    static func runName(_ data: String?) -> String {
        guard let data else { return "fortunes" }
        let file = data.split(separator: "/").last.map(String.init) ?? data
        let stem = file.split(separator: ".").first.map(String.init) ?? file
        return stem.isEmpty ? "run" : stem
    }
}
