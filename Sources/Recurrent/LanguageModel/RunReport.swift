import Foundation

extension TrainingReport {
    /// The report of a run directory: loss curves, samples and speed from `metrics.jsonl`,
    /// hyperparameters and sizes from the start event, and the cell activations of the best
    /// checkpoint (else the latest) over the first `passageLength` symbols of `passage.txt`.
    /// `layer` (0-based) and `cell` choose the cell shown first; nil picks the cell that follows
    /// the text best.
    public static func forRun(_ directory: String, layer: Int? = nil, cell: Int? = nil,
                              passageLength: Int = 600) throws -> TrainingReport {
        let run = RunDirectory(directory)
        guard FileSystem.isDirectory(run.path) else { throw RecurrentError.invalidFile("'\(directory)' is not a directory") }
        guard FileSystem.exists(run.metrics) else {
            throw RecurrentError.invalidFile("'\(directory)' is not a training run: it has no metrics.jsonl")
        }
        guard passageLength > 0 else { throw RecurrentError.invalidArgument("--passage-length must be positive") }
        let events = try MetricsLog.read(run.metrics)
        var report = TrainingReport(title: "Training report — \((run.path as NSString).lastPathComponent)")
        var start: [String: Any]?
        var finish: [String: Any]?
        var lastStep: [String: Any]?
        for e in events {
            let step = e["step"] as? Int ?? 0
            switch e["event"] as? String {
            case "start": if start == nil { start = e }
            case "step":
                if let loss = e["loss"] as? Double { report.trainingLoss.append((step, loss)) }
                lastStep = e
            case "validation":
                if let loss = e["loss"] as? Double { report.validationLoss.append((step, loss)) }
            case "sample":
                if let text = e["text"] as? String { report.samples.append((step, text)) }
            case "done", "interrupted": finish = e
            default: break
            }
        }
        // Hyperparameters in their usual order from a checkpoint's state.json, else from the start event.
        let checkpoint = try? LanguageModelCheckpoint.resolve(run.path)
        if let checkpoint, let state = try? TrainingState.read(checkpoint + "/" + LanguageModelCheckpoint.stateFile) {
            report.hyperparameters = state.options.summary
        } else if let h = start?["hyperparameters"] as? [String: Any] {
            report.hyperparameters = h.keys.sorted().map { ($0, "\(h[$0]!)") }
        }
        var summary: [(String, String)] = []
        if let c = start?["corpus"] as? String { summary.append(("corpus", c)) }
        if let t = start?["train_chars"] as? Int, let v = start?["validation_chars"] as? Int, let te = start?["test_chars"] as? Int {
            summary.append(("split (characters)", "\(grouped(t)) train / \(grouped(v)) validation / \(grouped(te)) test"))
        }
        if let v = start?["vocab_size"] as? Int { summary.append(("vocabulary", "\(v) symbols")) }
        if let p = start?["parameters"] as? Int { summary.append(("parameters", grouped(p))) }
        let steps = report.trainingLoss.last?.step ?? 0
        summary.append(("steps", grouped(steps)))
        if let best = report.validationLoss.min(by: { $0.loss < $1.loss }) {
            summary.append(("best validation loss", "\(fixed(best.loss, 4)) nats/char (\(fixed(best.loss / log(2), 4)) bits/char, "
                            + "perplexity \(fixed(exp(best.loss), 3))) at step \(grouped(best.step))"))
        }
        let speedSource = finish ?? lastStep
        if let cps = speedSource?["chars_per_s"] as? Double { summary.append(("speed", "\(grouped(Int(cps))) characters/s")) }
        if let s = speedSource?["elapsed"] as? Double { summary.append(("training time", formattedDuration(s))) }
        if let f = finish { summary.append(("status", f["event"] as? String == "interrupted" ? "interrupted" : "finished")) }
        else { summary.append(("status", "running or stopped without a final event")) }
        report.summary = summary

        if let checkpoint {
            let model = try LanguageModelCheckpoint.loadModel(checkpoint)
            let passageSymbols: [UInt32]
            if FileSystem.exists(run.passage) {
                let bytes = try FileSystem.readRegularFile(run.passage)
                passageSymbols = try TextCorpus.decode(bytes: bytes, unit: model.vocabulary.unit, source: run.passage).symbols
            } else {
                passageSymbols = []
            }
            let known = passageSymbols.prefix(passageLength).filter { model.vocabulary.index(of: $0) != nil }
            if !known.isEmpty {
                let text = known.map { model.vocabulary.index(of: $0)! }
                let activations = CellActivations.record(model, text: text)
                report.activations = activations
                report.interpretableCells = CellInterpretation.rank(activations)
                let l = activations.layerCount, h = activations.cellCount
                if let layer, !(0..<l).contains(layer) {
                    throw RecurrentError.invalidArgument("--layer \(layer + 1) is out of range: the model has layers 1...\(l)")
                }
                if let cell, !(0..<h).contains(cell) {
                    throw RecurrentError.invalidArgument("--cell \(cell) is out of range: the model has cells 0...\(h - 1)")
                }
                let top = report.interpretableCells.first
                report.selectedLayer = layer ?? top?.layer ?? 0
                report.selectedCell = cell ?? (layer == nil ? top?.cell ?? 0 : 0)
                report.summary.append(("cells shown from", (checkpoint as NSString).lastPathComponent + " checkpoint"))
            }
        }
        return report
    }

    /// Writes `report.html` into the run directory (atomically) and returns its path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        let path = RunDirectory(directory).report
        try FileSystem.writeAtomically(html, to: path)
        return path
    }
}
