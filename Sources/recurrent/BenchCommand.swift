import ArgumentParser
import Recurrent

// Placeholder until the owning branch lands its implementation.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench")
    func run() throws { throw ValidationError("'bench' is not available in this build") }
}
