import ArgumentParser
import Recurrent

@main
struct RecurrentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recurrent",
        abstract: "Train and run recurrent neural networks (RNN, LSTM, GRU) on the CPU.",
        subcommands: [Train.self, Generate.self, Eval.self, Report.self, Bench.self]
    )
}
