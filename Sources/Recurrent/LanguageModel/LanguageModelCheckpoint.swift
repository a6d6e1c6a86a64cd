/// A checkpoint directory and the run directory that holds them.
///
/// Checkpoint (a directory):
/// - `model.safetensors`: the weights under PyTorch keys (`embedding.weight`, `rnn.weight_ih_l0`,
///   …, `head.bias`); metadata `format_version`, `step`, `validation_loss`.
/// - `config.json`: `LanguageModelConfiguration`.
/// - `state.json`, `optimizer.safetensors`, `carried_state.safetensors` (`h`, `c` `[L, B, H]`):
///   what `--resume` needs (the `latest` checkpoint has all three; `best` has `state.json`).
///
/// A run directory (`train --out DIR`) holds `latest/`, `best/`, `metrics.jsonl`, `passage.txt`
/// (the start of the validation text, for the report) and `report.html`. A checkpoint is written
/// into a temporary sibling directory, then renamed into place, so a crash or Ctrl-C leaves
/// either the previous checkpoint or the new one.
public enum LanguageModelCheckpoint {
    static let modelFile = "model.safetensors"
    static let configFile = "config.json"
    static let stateFile = "state.json"
    static let optimizerFile = "optimizer.safetensors"
    static let carriedStateFile = "carried_state.safetensors"

    /// The checkpoint a path names: a checkpoint directory itself, or a run directory's `best/`
    /// (else `latest/`).
    public static func resolve(_ path: String, preferBest: Bool = true) throws -> String {
        let dir = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        guard FileSystem.exists(dir) else { throw RecurrentError.invalidCheckpoint("no checkpoint at '\(path)': no such directory") }
        guard FileSystem.isDirectory(dir) else {
            throw RecurrentError.invalidCheckpoint("'\(path)' is a file; a checkpoint is a directory holding \(modelFile) and \(configFile)")
        }
        if FileSystem.exists(dir + "/" + modelFile) { return dir }
        let order = preferBest ? ["best", "latest", "latest.old"] : ["latest", "latest.old"]
        for sub in order where FileSystem.exists("\(dir)/\(sub)/\(modelFile)") { return "\(dir)/\(sub)" }
        throw RecurrentError.invalidCheckpoint(
            "'\(path)' is not a checkpoint: it has no \(modelFile) (nor best/ or latest/ subdirectories)")
    }

    /// The configuration of a checkpoint directory.
    public static func readConfiguration(_ checkpoint: String) throws -> LanguageModelConfiguration {
        let path = checkpoint + "/" + configFile
        guard FileSystem.exists(path) else { throw RecurrentError.invalidCheckpoint("\(checkpoint) has no \(configFile)") }
        return try LanguageModelConfiguration.parse(try FileSystem.readRegularFile(path), source: path)
    }

    /// Builds the model of a checkpoint (a checkpoint or run directory) and loads its weights.
    /// A tensor that is missing, extra or of the wrong shape is refused with its name.
    public static func loadModel(_ path: String) throws -> CharacterLanguageModel {
        let checkpoint = try resolve(path)
        let config = try readConfiguration(checkpoint)
        var rng = RandomGenerator(seed: 0)
        let model = try CharacterLanguageModel(configuration: config, rng: &rng)
        try loadWeights(into: model, from: checkpoint)
        return model
    }

    static func loadWeights(into model: CharacterLanguageModel, from checkpoint: String) throws {
        let file = checkpoint + "/" + modelFile
        let tensors: [String: Tensor]
        let metadata: [String: String]
        do {
            (tensors, metadata) = try SafeTensors.read(path: file)
        } catch {
            throw RecurrentError.invalidCheckpoint("\(file) cannot be read: \(error)")
        }
        if let v = metadata["format_version"], v != String(LanguageModelConfiguration.currentFormatVersion) {
            throw RecurrentError.invalidCheckpoint(
                "\(file): checkpoint format version \(v) is not supported (this build reads version \(LanguageModelConfiguration.currentFormatVersion))")
        }
        try model.loadStateDict(tensors, source: file)
    }

    /// Writes a checkpoint directory atomically (temporary sibling, then rename over `path`).
    static func write(to path: String, model: CharacterLanguageModel, state: TrainingState,
                      optimizer: (any Optimizer)?, carried: RecurrentState?) throws {
        try replaceDirectory(path) { dir in
            var metadata = ["format_version": String(LanguageModelConfiguration.currentFormatVersion),
                            "step": String(state.step)]
            if let loss = state.validationLoss { metadata["validation_loss"] = String(loss) }
            try SafeTensors.write(model.stateDict(), metadata: metadata, to: dir + "/" + modelFile)
            try FileSystem.writeAtomically(try model.configuration.jsonText(), to: dir + "/" + configFile)
            try FileSystem.writeAtomically(try state.jsonText(), to: dir + "/" + stateFile)
            if let optimizer {
                try SafeTensors.write(optimizer.stateDict(), to: dir + "/" + optimizerFile)
                var carriedTensors: [String: Tensor] = [:]
                if let carried {
                    carriedTensors["h"] = carried.h.value
                    if let c = carried.c { carriedTensors["c"] = c.value }
                }
                try SafeTensors.write(carriedTensors, to: dir + "/" + carriedStateFile)
            }
        }
    }

    /// Builds a directory next to `path` and swaps it in: `path` → `path.old`, new → `path`,
    /// then removes `path.old`. Readers fall back to `path.old` if a crash hits between the renames.
    static func replaceDirectory(_ path: String, build: (String) throws -> Void) throws {
        let temp = "\(path).tmp-\(getProcessID())"
        let old = path + ".old"
        FileSystem.removeItem(temp)
        try FileSystem.createDirectory(temp)
        do {
            try build(temp)
        } catch {
            FileSystem.removeItem(temp)
            throw error
        }
        if FileSystem.exists(path) {
            FileSystem.removeItem(old)
            try FileSystem.rename(path, to: old)
        }
        try FileSystem.rename(temp, to: path)
        FileSystem.removeItem(old)
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func getProcessID() -> Int32 { getpid() }
