import ArgumentParser
import Recurrent

// Placeholder until the owning branch lands its implementation.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train")
    func run() throws { throw ValidationError("'train' is not available in this build") }
}
