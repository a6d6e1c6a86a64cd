import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the language-model tools need, with messages that name the path.
enum FileSystem {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// The whole content of a regular file (following links).
    static func readRegularFile(_ path: String) throws -> [UInt8] {
        guard exists(path) else { throw RecurrentError.invalidFile("cannot read '\(path)': no such file") }
        guard !isDirectory(path) else { throw RecurrentError.invalidFile("cannot read '\(path)': it is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecurrentError.invalidFile("cannot read '\(path)': permission denied or not a regular file")
        }
        return [UInt8](data)
    }

    static func readText(_ path: String) throws -> String {
        let bytes = try readRegularFile(path)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw RecurrentError.invalidFile("'\(path)' is not valid UTF-8")
        }
        return s
    }

    /// Regular files (not symbolic links) under `directory`, recursively, sorted by path.
    static func regularFiles(under directory: String) -> [String] {
        var result: [String] = []
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        for name in entries.sorted() where !name.hasPrefix(".") {
            let path = directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: result.append(path)
            case S_IFDIR: result += regularFiles(under: path)
            default: continue
            }
        }
        return result.sorted()
    }

    /// Writes a file atomically: into a temporary file in the same directory, flushed, then
    /// renamed over `path`, so a reader sees the old content or the new, never a mix.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temp = path + ".tmp-\(getpid())"
        guard let f = fopen(temp, "wb") else {
            throw RecurrentError.invalidFile("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
        let flushed = fflush(f) == 0 && fsync(fileno(f)) == 0
        fclose(f)
        guard written == bytes.count, flushed else {
            unlink(temp)
            throw RecurrentError.invalidFile("cannot write '\(path)': disk full or I/O error")
        }
        try rename(temp, to: path)
    }

    static func writeAtomically(_ text: String, to path: String) throws {
        try writeAtomically(Array(text.utf8), to: path)
    }

    static func rename(_ from: String, to: String) throws {
        guard Glibc_rename(from, to) == 0 else {
            throw RecurrentError.invalidFile("cannot rename '\(from)' to '\(to)': \(String(cString: strerror(errno)))")
        }
    }

    /// Creates a directory and its parents (no error if it exists).
    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw RecurrentError.invalidFile("cannot create directory '\(path)': \(error.localizedDescription)")
        }
    }

    static func removeItem(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Appends a line to a file (creating it).
    static func appendLine(_ line: String, to path: String) throws {
        guard let f = fopen(path, "ab") else {
            throw RecurrentError.invalidFile("cannot append to '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
    }
}

@inline(__always) private func Glibc_rename(_ a: String, _ b: String) -> Int32 {
    #if canImport(Glibc)
    return Glibc.rename(a, b)
    #else
    return Darwin.rename(a, b)
    #endif
}
