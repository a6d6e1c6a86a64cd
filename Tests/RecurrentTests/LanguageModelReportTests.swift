import Foundation
import Testing
@testable import Recurrent

@Suite("Language model report", .serialized)
struct LanguageModelReportTests {
    /// A passage and two layers of 3 cells: layer 1 cell 2 is exactly the quote indicator.
    func syntheticActivations() -> CellActivations {
        let text = "He said \"hi there\" and (left).\nShe said \"bye\".\n"
        let symbols = text.map { String($0) }
        let quote = CellInterpretation.features(of: symbols).first { $0.name == "inside quotes" }!.values
        var values: [Float] = []
        var rng = RandomGenerator(seed: 5)
        for layer in 0..<2 {
            for t in 0..<symbols.count {
                for cell in 0..<3 {
                    values.append(layer == 1 && cell == 2 ? Float(quote[t]) * 1.9 - 0.95 : rng.uniform(-0.3, 0.3))
                }
            }
        }
        return CellActivations(symbols: symbols, layerCount: 2, cellCount: 3, values: values, quantity: "tanh(c)")
    }

    @Test func quoteCellIsFoundFirst() {
        let ranked = CellInterpretation.rank(syntheticActivations(), top: 3)
        #expect(ranked.first?.layer == 1 && ranked.first?.cell == 2)
        #expect(ranked.first?.feature == "inside quotes")
        #expect(abs((ranked.first?.correlation ?? 0) - 1) < 1e-6)
        #expect(ranked.first?.saturation == 1)
        // One entry per property comes first.
        let all = CellInterpretation.rank(syntheticActivations(), top: 6)
        let leaders = all.prefix(while: { c in all.filter { $0.feature == c.feature }.first! == c })
        #expect(Set(leaders.map(\.feature)).count == leaders.count && leaders.count >= 2)
    }

    @Test func htmlIsSelfContainedWithChartSamplesAndCells() {
        let a = syntheticActivations()
        let report = TrainingReport(
            title: "Training report <run>", summary: [("steps", "30")], hyperparameters: [("cell", "lstm")],
            trainingLoss: (1...30).map { ($0, 4.0 / Double($0)) }, validationLoss: [(10, 1.5), (20, 1.2), (30, 1.1)],
            samples: [(10, "To be <or> not"), (20, "second sample")], activations: a,
            interpretableCells: CellInterpretation.rank(a), selectedLayer: 1, selectedCell: 2)
        let html = report.html
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg"))
        #expect(html.contains("<polyline"))
        #expect(html.contains("validation loss"))
        #expect(html.contains("To be &lt;or&gt; not"))
        #expect(html.contains("Training report &lt;run&gt;"))
        #expect(html.contains("<select id=\"layer\">"))
        #expect(html.contains("inside quotes"))
        #expect(!html.contains("http://") && !html.contains("https://"))
        #expect(!html.contains("src=") && !html.contains("<link"))
        // One span per passage symbol, coloured for the selected cell (the quote cell is ±0.95).
        #expect(html.components(separatedBy: "<span style=").count - 1 == a.length)
        #expect(html.contains("rgba(214,39,40,0.95)"))
        // The embedded data decodes to the quantized activations.
        let start = html.range(of: "data:\"")!.upperBound
        let end = html[start...].firstIndex(of: "\"")!
        let bytes = [UInt8](Data(base64Encoded: String(html[start..<end]))!)
        #expect(bytes.count == a.values.count)
        #expect(Int8(bitPattern: bytes[0]) == Int8((a.values[0] * 127).rounded()))
    }

    @Test func chartTicksAreRoundAndCoverTheRange() {
        let t = SVGLineChart.ticks(1.13, 4.7)
        #expect(t.first! <= 1.13 && t.last! >= 4.7)
        #expect(t == [1.0, 2.0, 3.0, 4.0, 5.0])
        #expect(SVGLineChart.ticks(1.3, 1.9) == [1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9])
        #expect(SVGLineChart.ticks(0, 10_000).contains(2000))
    }

    @Test func progressLinesReadWell() {
        let step = TrainingEvent.step(.init(step: 12, epoch: 0.5, loss: 2.34567, learningRate: 0.002, gradientNorm: 1,
                                            charactersPerSecond: 31234.4, elapsed: 75, remaining: 3700))
        #expect(ProgressPrinter.describe(step) == "step 12  epoch 0.50  loss 2.3457  lr 2.0e-03  31,234 chars/s  1m15s  ETA 1h01m")
        var err = "", out = ""
        let json = ProgressPrinter(mode: .json, writeError: { err += $0 }, writeOutput: { out += $0 })
        json.show(step)
        #expect(err.isEmpty && out.hasPrefix(#"{"event":"step","step":12,"#) && out.hasSuffix("}\n"))
        let plain = ProgressPrinter(mode: .plain, plainInterval: 10, writeError: { err += $0 }, writeOutput: { out += $0 })
        plain.show(.note("hello"))
        plain.show(step)
        plain.show(.step(.init(step: 13, epoch: 0.5, loss: 2, learningRate: 0.002, gradientNorm: 1,
                               charactersPerSecond: 1, elapsed: 76, remaining: nil)))
        #expect(err == "hello\n" + ProgressPrinter.describe(step) + "\n")
        let v = TrainingEvent.Validation(step: 5, loss: 0.6931471805599453, characters: 10, isBest: true, seconds: 1)
        #expect(abs(v.bitsPerCharacter - 1) < 1e-12 && abs(v.perplexity - 2) < 1e-12)
    }

    /// `recurrent bench`'s progress: the row, the time elapsed and the mean row time times the
    /// rows to go; a live line is cleared before each result, plain mode prints a line per row.
    @Test func rowProgressShowsRowElapsedAndTimeLeft() {
        #expect(RowProgress.text(row: 3, total: 27, label: "C1 lstm train, 2 threads", elapsed: 40, finished: 2)
                == "[3/27] C1 lstm train, 2 threads · 40s elapsed · ~8m20s left")
        #expect(RowProgress.text(row: 1, total: 27, label: "C1 rnn infer", elapsed: 0.2, finished: 0)
                == "[1/27] C1 rnn infer · 0s elapsed")
        var written: [String] = []
        var live = RowProgress(total: 2, live: true, write: { written.append($0) })
        live.begin("a")
        live.end()
        #expect(written == ["\r\u{1B}[K[1/2] a · 0s elapsed", "\r\u{1B}[K"])
        written = []
        var plain = RowProgress(total: 2, live: false, write: { written.append($0) })
        plain.begin("a")
        plain.end()
        plain.begin("b")
        #expect(written.count == 2 && written[0] == "[1/2] a · 0s elapsed\n" && written[1].hasPrefix("[2/2] b · 0s elapsed · ~"))
    }

    @Test func reportOfARealRunIsSelfContained() throws {
        let dir = temporaryDirectory() + "/run"
        var options = tinyOptions()
        options.steps = 8
        try LanguageModelTrainer(options: options, corpus: tinyCorpus(), corpusPath: nil, directory: dir).train()
        let report = try TrainingReport.forRun(dir, passageLength: 30)
        #expect(report.trainingLoss.map(\.step) == Array(1...8))
        #expect(report.validationLoss.map(\.step) == [4, 8])
        #expect(report.samples.count == 2)
        #expect(report.hyperparameters.first! == ("cell", "lstm"))
        let validation = CorpusSplit.standard.ranges(count: tinyCorpus().count).validation.count   // 19 < 30
        #expect(report.activations?.length == validation)
        #expect(report.activations?.layerCount == 2 && report.activations?.cellCount == 8)
        let path = try report.write(to: dir)
        let html = try FileSystem.readText(path)
        #expect(html.contains("<svg") && html.contains("<polyline") && html.contains("const ACT="))
        #expect(!html.contains("http://") && !html.contains("https://"))
        expectError("--cell 99 is out of range") { _ = try TrainingReport.forRun(dir, cell: 99) }
        expectError("no metrics.jsonl") { _ = try TrainingReport.forRun(dir + "/best") }
    }

    @Test func byteModelsTrainOnAnyBytes() throws {
        let dir = temporaryDirectory() + "/run"
        var bytes: [UInt8] = []
        var rng = RandomGenerator(seed: 2)
        for _ in 0..<400 { bytes.append(UInt8(rng.nextInt(below: 4)) * 60) }   // includes NUL
        let corpus = try TextCorpus.decode(bytes: bytes, unit: .byte, source: "blob")
        var options = tinyOptions()
        options.unit = .byte
        options.steps = 4
        let trainer = try LanguageModelTrainer(options: options, corpus: corpus, corpusPath: nil, directory: dir)
        try trainer.train()
        let model = try LanguageModelCheckpoint.loadModel(dir)
        #expect(model.vocabulary.unit == .byte && model.vocabulary.symbols == [0, 60, 120, 180])
        let config = try LanguageModelCheckpoint.readConfiguration(dir + "/best")
        #expect(config.unit == .byte && config.vocab == ["\u{0}", "<", "x", "\u{B4}"])
    }
}
