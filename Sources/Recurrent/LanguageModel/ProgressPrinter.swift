#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Shows training events to a person or a program.
///
/// `.live` (stderr is a terminal): one line rewritten in place with step, loss, speed and ETA;
/// other events print above it. `.plain` (stderr redirected): a step line every few seconds and
/// every other event as its own line. `.json`: every event as one JSON line on stdout.
public final class ProgressPrinter {
    public enum Mode: Sendable { case live, plain, json }

    public let mode: Mode
    private let writeError: (String) -> Void
    private let writeOutput: (String) -> Void
    private var liveLineShown = false
    private var lastStepLine = -Double.infinity
    private var lastLiveUpdate = -Double.infinity
    private let plainInterval: Double

    /// `writeError`/`writeOutput` default to stderr/stdout (flushed).
    public init(mode: Mode, plainInterval: Double = 10,
                writeError: @escaping (String) -> Void = { fputs($0, stderr); fflush(stderr) },
                writeOutput: @escaping (String) -> Void = { fputs($0, stdout); fflush(stdout) }) {
        self.mode = mode
        self.plainInterval = plainInterval
        self.writeError = writeError
        self.writeOutput = writeOutput
    }

    /// `.json` if asked, else `.live` when stderr is a terminal, else `.plain`.
    public static func automaticMode(json: Bool) -> Mode {
        if json { return .json }
        return isatty(STDERR_FILENO) != 0 ? .live : .plain
    }

    public func show(_ event: TrainingEvent) {
        switch mode {
        case .json:
            writeOutput(event.json + "\n")
        case .plain:
            if case .step(let s) = event {
                guard s.elapsed - lastStepLine >= plainInterval || s.step == 1 else { return }
                lastStepLine = s.elapsed
            }
            writeError(ProgressPrinter.describe(event) + "\n")
        case .live:
            if case .step(let s) = event {
                guard s.elapsed - lastLiveUpdate >= 0.1 || s.step == 1 else { return }
                lastLiveUpdate = s.elapsed
                // Cut to the terminal's width: a wrapped line could not be rewritten in place.
                writeError("\r\u{1B}[K" + String(ProgressPrinter.describe(event).prefix(max(20, terminalColumns() - 1))))
                liveLineShown = true
                return
            }
            if liveLineShown { writeError("\r\u{1B}[K"); liveLineShown = false }
            writeError(ProgressPrinter.describe(event) + "\n")
        }
    }

    /// Ends a live line so the shell prompt starts on its own line.
    public func finish() {
        if liveLineShown { writeError("\n"); liveLineShown = false }
    }

    /// The human-readable form of an event.
    public static func describe(_ event: TrainingEvent) -> String {
        switch event {
        case .started(let s):
            let what = s.resumed ? "resuming at step \(s.step)" : "training"
            let plan = s.plannedSteps.map { ", \($0) steps" } ?? ""
            let budget = s.timeBudget.map { ", time budget \(formattedDuration($0))" } ?? ""
            return "\(what) on \(s.corpus): \(grouped(s.trainSymbols)) train / \(grouped(s.validationSymbols)) validation / "
                + "\(grouped(s.testSymbols)) test characters, vocabulary \(s.vocabularySize), "
                + "\(grouped(s.parameterCount)) parameters\(plan)\(budget)\n  "
                + s.hyperparameters.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        case .step(let s):
            let eta = s.remaining.map { "  ETA \(formattedDuration($0))" } ?? ""
            return "step \(s.step)  epoch \(fixed(s.epoch, 2))  loss \(fixed(s.loss, 4))  lr \(scientific(s.learningRate))  "
                + "\(grouped(Int(s.charactersPerSecond.rounded()))) chars/s  \(formattedDuration(s.elapsed))\(eta)"
        case .validation(let v):
            return "validation at step \(v.step): \(fixed(v.loss, 4)) nats/char, \(fixed(v.bitsPerCharacter, 4)) bits/char, "
                + "perplexity \(fixed(v.perplexity, 3)) over \(grouped(v.characters)) characters\(v.isBest ? " (best)" : "")"
        case .sample(_, let text):
            return "sample: " + text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n        ")
        case .checkpoint(let step, let path, let loss):
            return "checkpoint at step \(step) → \(path)" + (loss.map { " (validation \(fixed($0, 4)))" } ?? "")
        case .note(let message):
            return message
        case .finished(let f):
            let best = f.bestValidationLoss.map { ", best validation \(fixed($0, 4)) nats/char" } ?? ""
            let head = f.interrupted ? "interrupted at step \(f.step); checkpoint saved" : "finished at step \(f.step)"
            return "\(head) (\(formattedDuration(f.elapsed)), \(grouped(Int(f.charactersPerSecond.rounded()))) chars/s\(best)) in \(f.directory)"
        }
    }
}

/// Columns of the terminal on stderr (80 if unknown).
func terminalColumns() -> Int {
    var size = winsize()
    guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
    return Int(size.ws_col)
}

/// `1234567` → `1,234,567`.
func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}

/// Fixed-point text with `places` decimals.
func fixed(_ x: Double, _ places: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let r = (abs(x) * scale).rounded()
    let whole = Int(r / scale)
    let frac = Int(r - Double(whole) * scale)
    let fracText = String(frac)
    let sign = x < 0 && r > 0 ? "-" : ""
    if places == 0 { return sign + String(whole) }
    return sign + String(whole) + "." + String(repeating: "0", count: places - fracText.count) + fracText
}

/// `0.002` → `2.0e-03`.
func scientific(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return x == 0 ? "0" : fixed(x, 2) }
    var e = 0
    var m = abs(x)
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    if (m * 10).rounded() / 10 >= 10 { m /= 10; e += 1 }
    let es = String(abs(e))
    return (x < 0 ? "-" : "") + fixed(m, 1) + "e" + (e < 0 ? "-" : "+") + (es.count < 2 ? "0" : "") + es
}

/// Seconds as `45s`, `3m07s`, `1h02m`.
public func formattedDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(s % 60 < 10 ? "0" : "")\(s % 60)s" }
    return "\(s / 3600)h\((s % 3600) / 60 < 10 ? "0" : "")\((s % 3600) / 60)m"
}
