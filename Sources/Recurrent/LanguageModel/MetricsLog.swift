import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `metrics.jsonl`: every training event as one JSON line, appended as it happens.
final class MetricsLog {
    private let file: UnsafeMutablePointer<FILE>

    init(path: String) throws {
        guard let f = fopen(path, "ab") else {
            throw RecurrentError.invalidFile("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        file = f
    }

    deinit { fclose(file) }

    func append(_ event: TrainingEvent) {
        let line = event.json + "\n"
        _ = line.withCString { fputs($0, file) }
        fflush(file)
    }

    /// Drops the events after `step` (a resumed run repeats them), atomically.
    static func truncate(_ path: String, after step: Int) throws {
        guard FileSystem.exists(path) else { return }
        let text = try FileSystem.readText(path)
        var kept: [Substring] = []
        for line in text.split(separator: "\n") {
            if let s = eventStep(line), s > step { continue }
            kept.append(line)
        }
        try FileSystem.writeAtomically(kept.map { $0 + "\n" }.joined(), to: path)
    }

    /// The `"step"` of a line, read without parsing the whole object.
    static func eventStep(_ line: Substring) -> Int? {
        guard let r = line.range(of: "\"step\":") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    /// Every event of a metrics file as a dictionary (lines that are not JSON objects are skipped).
    static func read(_ path: String) throws -> [[String: Any]] {
        let text = try FileSystem.readText(path)
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }
}
