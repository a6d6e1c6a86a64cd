import ArgumentParser
import Recurrent

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write DIR/report.html: loss curves, samples, hyperparameters, speed, and what the cells learned.",
        discussion: "The page is self-contained (inline SVG, data and script) and opens offline.")

    @Argument(help: "Run directory (the --out of recurrent train).") var directory: String
    @Option(help: "Layer of the cell shown first (1 = the lowest; default: the most interpretable cell's).") var layer: Int?
    @Option(help: "Cell (hidden unit index, from 0) shown first.") var cell: Int?
    @Option(name: .customLong("passage-length"), help: "Validation characters to colour (default 600).") var passageLength = 600

    func run() throws {
        let report = try TrainingReport.forRun(directory, layer: layer.map { $0 - 1 }, cell: cell, passageLength: passageLength)
        let path = try report.write(to: directory)
        print(path)
    }
}
