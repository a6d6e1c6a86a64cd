import Foundation

/// The directory of one training run (`train --out DIR`) and the files in it.
public struct RunDirectory: Sendable, Equatable {
    public let path: String

    public init(_ path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// The checkpoint `--resume` continues from.
    public var latest: String { path + "/latest" }
    /// The checkpoint with the lowest validation loss.
    public var best: String { path + "/best" }
    /// Every training event, one JSON object per line.
    public var metrics: String { path + "/metrics.jsonl" }
    /// The start of the validation text (what the report colours by cell activation).
    public var passage: String { path + "/passage.txt" }
    public var report: String { path + "/report.html" }

    /// The run directory a `--resume` argument names: the run directory, or its `latest/`.
    public static func forResume(_ argument: String) throws -> RunDirectory {
        let run = RunDirectory(argument)
        guard FileSystem.isDirectory(run.path) else {
            throw RecurrentError.invalidCheckpoint("cannot resume from '\(argument)': no such directory")
        }
        if FileSystem.exists(run.path + "/" + LanguageModelCheckpoint.stateFile),
           FileSystem.exists(run.path + "/" + LanguageModelCheckpoint.optimizerFile) {
            let parent = (run.path as NSString).deletingLastPathComponent
            return RunDirectory(parent.isEmpty ? "." : parent)
        }
        return run
    }

    /// The latest checkpoint, falling back to `latest.old` left by a crash between two renames.
    func latestCheckpoint() throws -> String {
        for candidate in [latest, latest + ".old"] where FileSystem.exists(candidate + "/" + LanguageModelCheckpoint.stateFile) {
            return candidate
        }
        if FileSystem.exists(best + "/" + LanguageModelCheckpoint.modelFile) {
            throw RecurrentError.invalidCheckpoint(
                "cannot resume '\(path)': it has a best/ checkpoint but no latest/ one (best/ holds no optimizer state)")
        }
        throw RecurrentError.invalidCheckpoint("cannot resume '\(path)': it holds no checkpoint (latest/state.json is missing)")
    }

    /// Whether the directory exists and has entries.
    var isNonEmpty: Bool {
        guard FileSystem.exists(path) else { return false }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
        return !entries.isEmpty
    }
}
