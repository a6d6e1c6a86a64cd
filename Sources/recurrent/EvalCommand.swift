import ArgumentParser
import Recurrent

// Placeholder until the owning branch lands its implementation.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval")
    func run() throws { throw ValidationError("'eval' is not available in this build") }
}
