import ArgumentParser
import Recurrent

// Placeholder until the owning branch lands its implementation.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report")
    func run() throws { throw ValidationError("'report' is not available in this build") }
}
