import ArgumentParser
import Recurrent

// Placeholder until the owning branch lands its implementation.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate")
    func run() throws { throw ValidationError("'generate' is not available in this build") }
}
