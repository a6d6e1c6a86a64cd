import ArgumentParser
import Recurrent
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recurrent bench`: throughput of the recurrent layers (`RecurrentLayer`, fused kernels) on the
/// configurations of the PyTorch peer script (`bench_torch.py`), with the same definitions:
///
/// - train: forward + backward of `sum(output)` through the layer (parameter gradients cleared
///   before each step, outside the timed region; no optimizer step);
/// - infer: forward without recording;
/// - FLOPs (matrix products only): forward = Σ over layers and directions of `2·T·B·G·H·(D_l + H)`
///   with `D_l = D` for layer 0 and `H·dirs` after; train = 3 × forward.
/// - Fraction of peak (`of_peak`): GFLOP/s over the machine's fp32 peak measured with the same
///   threads just before the row (`MachinePeak`, ~0.2 s; the turbo clock moves the peak).
///
/// Timing mirrors the peer script's contention-aware loop: 3 warm-up steps, then steps in chunks
/// of ≥ 0.3 s, each chunk bracketed by a reading of the machine's CPU counters; steps from chunks
/// where other processes used little of the machine are pooled until enough exist (`clean`), or
/// the least-contended chunks are used when the deadline passes (`contended`).
///
/// `--path cells` runs the same layers as their cells stepped on the tape by the generic runner
/// (`useFusedKernels = false`): the path a custom `RecurrentCell` takes. Its PyTorch peer is
/// `scripts/bench_cells_torch.py` (cells in a Python loop).
///
/// Results go to stdout (a table, or JSON lines with `--json`); which row is running, the time
/// elapsed and an estimate of the time left go to stderr (`RowProgress`).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time RNN/LSTM/GRU training steps and inference on PyTorch's benchmark configurations.")

    @Option(help: "Comma-separated configurations: C1, C1bi, C2, C3, C4.")
    var configs: String = "C1,C1bi,C2,C3,C4"

    @Option(help: "Comma-separated cells: rnn, lstm, gru.")
    var cells: String = "rnn,lstm,gru"

    @Option(help: "Comma-separated modes: train, infer (C3 is inference only).")
    var modes: String = "train,infer"

    @Option(help: "Comma-separated thread counts.")
    var threads: String = "2"

    @Option(help: "Timed steps wanted from uncontended chunks (the median is over them).")
    var repeats: Int = 10

    @Option(name: .customLong("min-time"), help: "Seconds of uncontended steps wanted.")
    var minTime: Double = 1.0

    @Option(help: "Seconds spent at most per measurement looking for uncontended steps.")
    var deadline: Double = 60

    @Flag(help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(help: "Which implementation runs the layers: fused (whole-sequence kernels) or cells (the cell values stepped on the tape by the generic runner, the path a custom cell takes).")
    var path: String = "fused"

    @Flag(help: "Set up one row (one config, cell, mode and thread count), print 'ready', then time steps on request: each stdin line 'chunk SECONDS' runs steps for at least that long and prints {\"times\": [seconds...], \"foreign\": share}; end of input stops (scripts/bench_paired.py drives it).")
    var serve = false

    func validate() throws {
        for c in list(configs) where BenchConfig.named(c) == nil {
            throw ValidationError("unknown config '\(c)' (known: \(BenchConfig.all.map(\.name).joined(separator: ", ")))")
        }
        for c in list(cells) where BenchConfig.cellKind(c) == nil {
            throw ValidationError("unknown cell '\(c)' (known: rnn, lstm, gru)")
        }
        for m in list(modes) where m != "train" && m != "infer" {
            throw ValidationError("unknown mode '\(m)' (known: train, infer)")
        }
        for t in list(threads) where (Int(t) ?? 0) < 1 {
            throw ValidationError("threads must be positive integers, got '\(t)'")
        }
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if path != "fused" && path != "cells" { throw ValidationError("unknown path '\(path)' (known: fused, cells)") }
        if serve {
            let one = [configs, cells, modes, threads].allSatisfy { list($0).count == 1 }
            if !one { throw ValidationError("--serve times one row: give one config, one cell, one mode and one thread count") }
            if list(modes) == ["train"] && BenchConfig.named(list(configs)[0])?.trains == false {
                throw ValidationError("\(list(configs)[0]) has no training row")
            }
        }
    }

    func run() throws {
        if serve { return try serveRow() }
        if !json {
            print("config cell mode   threads  median_ms     min_ms  iters  tokens/s  GFLOP/s  of_peak  foreign status     peak_MB")
        }
        var rows: [(threads: Int, config: BenchConfig, cell: String, train: Bool)] = []
        for t in list(threads).compactMap({ Int($0) }) {
            for configName in list(configs) {
                let config = BenchConfig.named(configName)!
                for cellName in list(cells) {
                    for mode in list(modes) where mode == "infer" || config.trains {
                        rows.append((t, config, cellName, mode == "train"))
                    }
                }
            }
        }
        var progress = RowProgress(total: rows.count)
        for r in rows {
            progress.begin("\(r.config.name) \(r.cell) \(r.train ? "train" : "infer"), \(r.threads) thread\(r.threads == 1 ? "" : "s")")
            ThreadTeam.threads = r.threads
            let row = measureRow(r.config, cellName: r.cell, kind: BenchConfig.cellKind(r.cell)!, train: r.train,
                                 threads: r.threads)
            progress.end()
            print(json ? row.json : row.text)
            fflush(stdout)
        }
    }

    private func list(_ s: String) -> [String] {
        s.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
    }

    private func measureRow(_ config: BenchConfig, cellName: String, kind: CellKind, train: Bool, threads: Int) -> BenchRow {
        let (before, step) = makeRow(config, kind: kind, train: train)
        // Measured next to each row: the turbo clock follows the machine's load.
        let peak = MachinePeak.gflops(threads: threads)
        let memory = PeakMemory.start()
        let timing = ContentionAwareTimer(minIterations: repeats, minTime: minTime, deadline: deadline,
                                          cleanThreshold: ContentionMonitor.cleanThreshold(threads: threads))
            .measure(before: before, step)
        let flops = config.forwardFlops(gates: kind.gateCount) * (train ? 3 : 1)
        return BenchRow(config: config, cell: cellName, mode: train ? "train" : "infer", threads: threads,
                        timing: timing, flops: flops, peakGflops: peak, peakMegabytes: memory.peakMegabytes(), path: path)
    }

    /// `--serve`: one row's steps, timed in chunks on request (see the flag's help).
    private func serveRow() throws {
        let config = BenchConfig.named(list(configs)[0])!, threads = Int(list(threads)[0])!
        ThreadTeam.threads = threads
        let (before, step) = makeRow(config, kind: BenchConfig.cellKind(list(cells)[0])!, train: list(modes)[0] == "train")
        for _ in 0..<3 { before(); step() }
        print("ready")
        fflush(stdout)
        while let line = readLine() {
            let words = line.split(separator: " ")
            guard words.count == 2, words[0] == "chunk", let seconds = Double(words[1]) else {
                fputs("recurrent bench --serve: expected 'chunk SECONDS' on stdin, got '\(line)'\n", stderr)
                throw ExitCode(2)
            }
            let chunk = ContentionAwareTimer.chunk(seconds: seconds, before: before, step)
            let foreign = chunk.foreign.map { "\(($0 * 1e4).rounded() / 1e4)" } ?? "null"
            print("{\"times\": [\(chunk.times.map { "\($0)" }.joined(separator: ", "))], \"foreign\": \(foreign)}")
            fflush(stdout)
        }
    }

    /// The layer, input and step of one row, as `bench_torch.py` defines them: `before` clears
    /// the parameter gradients (outside the timed region), `step` is a training step (forward
    /// and backward of the output's sum) or an inference forward pass.
    private func makeRow(_ config: BenchConfig, kind: CellKind, train: Bool) -> (before: () -> Void, step: () -> Void) {
        var rng = RandomGenerator(seed: 0)
        let layer = RecurrentLayer(kind: kind, inputSize: config.D, hiddenSize: config.H, numLayers: config.L,
                                   bidirectional: config.bidirectional, rng: &rng)
        layer.training = train
        layer.useFusedKernels = path == "fused"
        var data = [Float](repeating: 0, count: config.T * config.B * config.D)
        for i in data.indices { data[i] = rng.nextNormal() }
        let x = Variable(Tensor(shape: [config.T, config.B, config.D], data: data))
        let parameters = layer.parameters
        return ({ if train { for p in parameters { p.grad = nil } } }, {
            if train {
                let y = layer(x).output
                sum(y).backward()
            } else {
                _ = GradientMode.withoutGradients { layer(x) }
            }
        })
    }
}

/// One configuration of the peer benchmark (`bench_torch.py`'s `CONFIGS`).
struct BenchConfig {
    let name: String
    let T: Int, B: Int, D: Int, H: Int, L: Int
    let bidirectional: Bool
    /// Whether the configuration has a training row (C3 is inference only).
    let trains: Bool

    static let all: [BenchConfig] = [
        BenchConfig(name: "C1", T: 100, B: 32, D: 128, H: 256, L: 1, bidirectional: false, trains: true),
        BenchConfig(name: "C1bi", T: 100, B: 32, D: 128, H: 256, L: 1, bidirectional: true, trains: true),
        BenchConfig(name: "C2", T: 100, B: 64, D: 512, H: 512, L: 2, bidirectional: false, trains: true),
        BenchConfig(name: "C3", T: 50, B: 1, D: 128, H: 256, L: 1, bidirectional: false, trains: false),
        BenchConfig(name: "C4", T: 200, B: 16, D: 64, H: 1024, L: 1, bidirectional: false, trains: true),
    ]

    static func named(_ name: String) -> BenchConfig? { all.first { $0.name == name } }

    static func cellKind(_ name: String) -> CellKind? {
        switch name {
        case "rnn": return .rnnTanh
        case "lstm": return .lstm
        case "gru": return .gru
        default: return nil
        }
    }

    /// Multiply-add FLOPs of one forward pass: Σ_l dirs · 2·T·B·G·H·(D_l + H).
    func forwardFlops(gates G: Int) -> Double {
        let dirs = bidirectional ? 2 : 1
        var total = 0.0
        for l in 0..<L {
            let dIn = l == 0 ? D : H * dirs
            total += Double(dirs * 2 * T * B * G * H * (dIn + H))
        }
        return total
    }
}

/// One measured row, printed as a table line or a JSON object with `bench_torch.py`'s field names.
struct BenchRow {
    let config: BenchConfig
    let cell: String, mode: String
    let threads: Int
    let timing: ContentionAwareTimer.Result
    let flops: Double
    /// The machine's measured fp32 peak for `threads` threads (`MachinePeak`), GFLOP/s.
    let peakGflops: Double
    let peakMegabytes: Double?
    /// `fused` or `cells` (`--path`).
    let path: String

    var gflops: Double { flops / timing.median / 1e9 }

    var tokensPerSecond: Double { Double(config.T * config.B) / timing.median }

    var json: String {
        var fields: [(String, String)] = [
            ("lib", quoted("recurrent")), ("path", quoted(path)), ("blas", quoted(BLAS.implementation)),
            ("tiles", FusedSequence.usesMatrixTiles ? "true" : "false"),
            ("threads", "\(threads)"),
            ("config", quoted(config.name)), ("cell", quoted(cell)), ("mode", quoted(mode)),
            ("T", "\(config.T)"), ("B", "\(config.B)"), ("D", "\(config.D)"), ("H", "\(config.H)"),
            ("L", "\(config.L)"), ("bidir", config.bidirectional ? "true" : "false"),
            ("median_ms", number(timing.median * 1e3)), ("min_ms", number(timing.minimum * 1e3)),
            ("iters", "\(timing.count)"), ("tokens_per_s", number(tokensPerSecond)),
            ("gflops", number(gflops)), ("gflops_best", number(flops / timing.minimum / 1e9)),
            ("peak_gflops", number(peakGflops)), ("of_peak", number(gflops / peakGflops)),
            ("foreign", timing.foreign.map { number($0) } ?? "null"), ("status", quoted(timing.status)),
        ]
        fields.append(("peak_rss_mb", peakMegabytes.map { number($0) } ?? "null"))
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    var text: String {
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
        func fixed(_ v: Double, _ digits: Int) -> String {
            let scale = Double((0..<digits).reduce(1) { r, _ in r * 10 })
            let rounded = (v * scale).rounded() / scale
            var s = "\(rounded)"
            let decimals = s.split(separator: ".").last.map(\.count) ?? 0
            if digits > 0 && decimals < digits { s += String(repeating: "0", count: digits - decimals) }
            return s
        }
        return [config.name.padding(6), cell.padding(4), mode.padding(5), pad("\(threads)", 8),
                pad(fixed(timing.median * 1e3, 3), 11), pad(fixed(timing.minimum * 1e3, 3), 10),
                pad("\(timing.count)", 6), pad("\(Int(tokensPerSecond.rounded()))", 9),
                pad(fixed(gflops, 1), 8), pad(fixed(100 * gflops / peakGflops, 1) + "%", 8),
                pad(timing.foreign.map { fixed($0, 2) } ?? "-", 8), " " + timing.status.padding(10),
                pad(peakMegabytes.map { fixed($0, 1) } ?? "-", 7)].joined(separator: " ")
    }

    private func quoted(_ s: String) -> String { "\"" + String(s.map { $0 == "\"" ? "'" : $0 }) + "\"" }
    private func number(_ v: Double) -> String { v.isFinite ? "\((v * 1e4).rounded() / 1e4)" : "null" }
}

/// CPU use of this process and of the whole machine over a time window (Linux `/proc`), as
/// `_monitor.py` reads it: `foreign` is the share of the machine's capacity (CPUs × wall time)
/// that other processes used.
struct ContentionMonitor {
    private let wallStart: Double
    private let machineStart: Int
    private let ownStart: Int

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    static let cpuCount = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// A step measured while others used less than this share of the machine is clean: other
    /// processes left at least `threads` CPUs free (plus 10% slack), as in `_monitor.py`.
    static func cleanThreshold(threads: Int) -> Double {
        Double(cpuCount - min(threads, cpuCount)) / Double(cpuCount) + 0.10
    }

    /// nil where `/proc` is not available (macOS).
    static func start() -> ContentionMonitor? {
        guard let machine = machineBusyTicks(), let own = ownTicks() else { return nil }
        return ContentionMonitor(wallStart: monotonicSeconds(), machineStart: machine, ownStart: own)
    }

    /// Share of the machine used by other processes since `start`.
    func foreign() -> Double {
        let wall = monotonicSeconds() - wallStart
        guard let machine = Self.machineBusyTicks(), let own = Self.ownTicks() else { return 0 }
        let capacity = max(wall * Self.ticksPerSecond * Double(Self.cpuCount), 1e-9)
        return max(0, Double((machine - machineStart) - (own - ownStart)) / capacity)
    }

    /// user + nice + system + irq + softirq ticks of all CPUs (first line of /proc/stat).
    private static func machineBusyTicks() -> Int? {
        guard let line = readFile("/proc/stat")?.split(separator: "\n").first else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard v.count >= 7 else { return nil }
        return v[0] + v[1] + v[2] + v[5] + v[6]
    }

    /// utime + stime + cutime + cstime of this process (/proc/self/stat).
    private static func ownTicks() -> Int? {
        guard let s = readFile("/proc/self/stat"), let close = s.lastIndex(of: ")") else { return nil }
        let fields = s[s.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 14, let a = Int(fields[11]), let b = Int(fields[12]), let c = Int(fields[13]),
              let d = Int(fields[14]) else { return nil }
        return a + b + c + d
    }
}

/// Timing loop that pools steps from chunks measured while the machine was quiet
/// (`_monitor.measure`).
struct ContentionAwareTimer {
    struct Result {
        var median: Double, minimum: Double
        var count: Int
        var foreign: Double?
        var status: String
    }

    let minIterations: Int
    let minTime: Double
    let deadline: Double
    let cleanThreshold: Double
    var warmup = 3
    var chunkSeconds = 0.3

    func measure(before: () -> Void, _ step: () -> Void) -> Result {
        for _ in 0..<warmup { before(); step() }
        var chunks: [(times: [Double], foreign: Double?)] = []
        var clean: [Double] = []
        let begin = monotonicSeconds()
        while true {
            let (times, foreign) = Self.chunk(seconds: chunkSeconds, before: before, step)
            chunks.append((times, foreign))
            let isClean = (foreign ?? 0) < cleanThreshold
            if isClean { clean += times }
            if clean.count >= minIterations && clean.reduce(0, +) >= minTime { break }
            if monotonicSeconds() - begin > deadline { break }
            if !isClean { waitUntilQuiet(maxSeconds: 10) }
        }
        var selected: [(times: [Double], foreign: Double?)]
        let status: String
        if clean.count >= minIterations {
            selected = chunks.filter { ($0.foreign ?? 0) < cleanThreshold }
            status = chunks.first?.foreign == nil ? "unmonitored" : "clean"
        } else {
            selected = []
            var n = 0
            for c in chunks.sorted(by: { ($0.foreign ?? 0) < ($1.foreign ?? 0) }) {
                selected.append(c)
                n += c.times.count
                if n >= minIterations { break }
            }
            status = "contended"
        }
        let times = selected.flatMap(\.times).sorted()
        let weight = selected.reduce(0) { $0 + $1.times.reduce(0, +) }
        let foreign: Double? = selected.first?.foreign == nil ? nil
            : selected.reduce(0) { $0 + $1.times.reduce(0, +) * ($1.foreign ?? 0) } / max(weight, 1e-12)
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        return Result(median: median, minimum: times[0], count: times.count, foreign: foreign, status: status)
    }

    /// Steps for at least `seconds` (at least one step), each timed after its `before`, and the
    /// share of the machine other processes used meanwhile (nil without `/proc`).
    static func chunk(seconds: Double, before: () -> Void, _ step: () -> Void) -> (times: [Double], foreign: Double?) {
        var times: [Double] = []
        let monitor = ContentionMonitor.start()
        let start = monotonicSeconds()
        while times.isEmpty || monotonicSeconds() - start < seconds {
            before()
            let t0 = monotonicSeconds()
            step()
            times.append(monotonicSeconds() - t0)
        }
        return (times, monitor?.foreign())
    }

    /// Sleeps in 0.25 s samples until other processes leave the machine quiet enough.
    private func waitUntilQuiet(maxSeconds: Double) {
        let start = monotonicSeconds()
        while monotonicSeconds() - start < maxSeconds {
            guard let monitor = ContentionMonitor.start() else { return }
            usleep(250_000)
            if monitor.foreign() < cleanThreshold { return }
        }
    }
}

/// Peak resident memory during a measurement, from `/proc/self/status` (VmHWM after resetting it
/// through `/proc/self/clear_refs`), minus the resident memory at the start.
struct PeakMemory {
    private let baselineKB: Int?
    private let resetWorked: Bool

    static func start() -> PeakMemory {
        let reset = writeFile("/proc/self/clear_refs", "5")
        return PeakMemory(baselineKB: statusField("VmRSS:"), resetWorked: reset)
    }

    /// Megabytes above the starting resident size, or nil where it cannot be measured.
    func peakMegabytes() -> Double? {
        guard resetWorked, let base = baselineKB, let peak = Self.statusField("VmHWM:") else { return nil }
        return Double(max(0, peak - base)) / 1024
    }

    private static func statusField(_ name: String) -> Int? {
        guard let text = readFile("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

private func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func writeFile(_ path: String, _ text: String) -> Bool {
    guard let f = fopen(path, "w") else { return false }
    defer { fclose(f) }
    return fputs(text, f) >= 0
}

private extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
