/// What a training run reports as it goes: to the terminal (`ProgressPrinter`), as JSON lines
/// (`--json`), and to `DIR/metrics.jsonl`.
public enum TrainingEvent: Sendable, Equatable {
    case started(Start)
    case step(Step)
    case validation(Validation)
    case sample(step: Int, text: String)
    case checkpoint(step: Int, path: String, validationLoss: Double?)
    case note(String)
    case finished(Finish)

    public struct Start: Sendable, Equatable {
        public var step: Int
        public var resumed: Bool
        public var corpus: String
        public var trainSymbols: Int, validationSymbols: Int, testSymbols: Int
        public var vocabularySize: Int
        public var parameterCount: Int
        /// Steps the run will take if known (`--steps`, `--epochs`), else nil.
        public var plannedSteps: Int?
        public var timeBudget: Double?
        /// Every hyperparameter as name → value text, in a stable order.
        public var hyperparameters: [(String, String)]

        public static func == (a: Start, b: Start) -> Bool {
            a.step == b.step && a.resumed == b.resumed && a.corpus == b.corpus && a.trainSymbols == b.trainSymbols
                && a.validationSymbols == b.validationSymbols && a.testSymbols == b.testSymbols
                && a.vocabularySize == b.vocabularySize && a.parameterCount == b.parameterCount
                && a.plannedSteps == b.plannedSteps && a.timeBudget == b.timeBudget
                && a.hyperparameters.elementsEqual(b.hyperparameters, by: ==)
        }
    }

    public struct Step: Sendable, Equatable {
        public var step: Int
        public var epoch: Double
        /// Mean cross-entropy of the window, nats per symbol.
        public var loss: Double
        public var learningRate: Double
        /// Global gradient norm before clipping.
        public var gradientNorm: Double
        /// Training symbols per second since the run (or the resume) started.
        public var charactersPerSecond: Double
        /// Training seconds so far, including before a resume.
        public var elapsed: Double
        /// Estimated seconds left, if the end is known.
        public var remaining: Double?
    }

    public struct Validation: Sendable, Equatable {
        public var step: Int
        public var loss: Double
        public var characters: Int
        public var isBest: Bool
        public var seconds: Double
        public var bitsPerCharacter: Double { loss / 0.693_147_180_559_945_3 }
        public var perplexity: Double { _exp(loss) }
    }

    public struct Finish: Sendable, Equatable {
        public var step: Int
        public var interrupted: Bool
        public var elapsed: Double
        public var charactersPerSecond: Double
        public var bestValidationLoss: Double?
        public var directory: String
    }

    /// The event as one JSON object (one line).
    public var json: String {
        var j = JSONLine()
        switch self {
        case .started(let s):
            j.add("event", "start"); j.add("step", s.step); j.add("resumed", s.resumed); j.add("corpus", s.corpus)
            j.add("train_chars", s.trainSymbols); j.add("validation_chars", s.validationSymbols); j.add("test_chars", s.testSymbols)
            j.add("vocab_size", s.vocabularySize); j.add("parameters", s.parameterCount)
            if let p = s.plannedSteps { j.add("planned_steps", p) }
            if let t = s.timeBudget { j.add("time_budget", t) }
            var h = JSONLine()
            for (k, v) in s.hyperparameters { h.add(k, v) }
            j.add("hyperparameters", raw: h.text)
        case .step(let s):
            j.add("event", "step"); j.add("step", s.step); j.add("epoch", round4(s.epoch)); j.add("loss", s.loss)
            j.add("lr", s.learningRate); j.add("grad_norm", round4(s.gradientNorm))
            j.add("chars_per_s", s.charactersPerSecond.rounded()); j.add("elapsed", round4(s.elapsed))
            if let r = s.remaining { j.add("eta", r.rounded()) }
        case .validation(let v):
            j.add("event", "validation"); j.add("step", v.step); j.add("loss", v.loss)
            j.add("bits_per_char", v.bitsPerCharacter); j.add("perplexity", v.perplexity)
            j.add("characters", v.characters); j.add("best", v.isBest); j.add("seconds", round4(v.seconds))
        case .sample(let step, let text):
            j.add("event", "sample"); j.add("step", step); j.add("text", text)
        case .checkpoint(let step, let path, let loss):
            j.add("event", "checkpoint"); j.add("step", step); j.add("path", path); j.add("validation_loss", loss)
        case .note(let message):
            j.add("event", "note"); j.add("message", message)
        case .finished(let f):
            j.add("event", f.interrupted ? "interrupted" : "done"); j.add("step", f.step); j.add("elapsed", round4(f.elapsed))
            j.add("chars_per_s", f.charactersPerSecond.rounded()); j.add("best_validation_loss", f.bestValidationLoss)
            j.add("directory", f.directory)
        }
        return j.text
    }

    /// The step this event belongs to (nil for notes).
    public var step: Int? {
        switch self {
        case .started(let s): return s.step
        case .step(let s): return s.step
        case .validation(let v): return v.step
        case .sample(let step, _), .checkpoint(let step, _, _): return step
        case .finished(let f): return f.step
        case .note: return nil
        }
    }
}

private func round4(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func _exp(_ x: Double) -> Double { exp(x) }
