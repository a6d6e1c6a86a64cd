#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes the safetensors format (Hugging Face; what PyTorch users save weights in).
///
/// Layout: an 8-byte little-endian `UInt64` `N`, then `N` bytes of UTF-8 JSON header, then the
/// raw data. The header maps each tensor name to
/// `{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}` (byte offsets relative to the start
/// of the data) and may hold `"__metadata__": {string: string}`. Data is little-endian, row-major.
///
/// Writing produces what Python's `safetensors.torch.save_file` produces for float32 tensors:
/// compact JSON, `__metadata__` first (only when non-empty), tensors sorted by name (bytewise) both
/// in the header and in the data, the header padded with spaces to a multiple of 8 bytes. The file
/// is written to a temporary file in the same directory, flushed, and renamed over `path`, so a
/// reader never sees half a file.
///
/// Reading validates everything (sizes, UTF-8, JSON, every field, offsets that must tile the data
/// exactly as the reference implementation demands) and never reads out of bounds; any problem
/// throws `RecurrentError.invalidFile` naming the file and the problem. `F32` tensors load as
/// they are; `F16`, `BF16` and `F64` tensors are converted to Float32.
public enum SafeTensors {
    /// Reads every tensor and the `__metadata__` map (empty when absent) of a safetensors file.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try decode(try readFile(path), source: path)
    }

    /// Writes `tensors` (Float32) and optional string `metadata` to `path`, atomically.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        if tensors.keys.contains(metadataKey) {
            throw RecurrentError.invalidArgument("\(path): a tensor cannot be named '\(metadataKey)' (reserved for metadata)")
        }
        try writeFileAtomically(encode(tensors, metadata: metadata), to: path)
    }

    static let metadataKey = "__metadata__"

    /// Bytes per element of the dtypes this reader accepts.
    static let elementSizes: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8]

    // MARK: - Encoding

    static func encode(_ tensors: [String: Tensor], metadata: [String: String]) -> [UInt8] {
        let names = tensors.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var header: [UInt8] = Array("{".utf8)
        var first = true
        if !metadata.isEmpty {
            appendJSONString(metadataKey, to: &header)
            header.append(contentsOf: ":{".utf8)
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { header.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for name in names {
            let t = tensors[name]!
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
            appendJSONString(name, to: &header)
            let shape = t.shape.map(String.init).joined(separator: ",")
            let end = offset + 4 * t.count
            header.append(contentsOf: ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8)
            offset = end
        }
        header.append(UInt8(ascii: "}"))
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + header.count + offset)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header)
        for name in names {
            let data = tensors[name]!.data
            #if _endian(little)
            data.withUnsafeBytes { bytes.append(contentsOf: $0) }
            #else
            for v in data { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            #endif
        }
        return bytes
    }

    /// JSON string literal as serde_json writes it: `"` and `\` escaped, control characters as
    /// `\n`, `\t`, … or `\u00XX`, everything else raw UTF-8.
    static func appendJSONString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x08: out.append(contentsOf: "\\b".utf8)
            case 0x0C: out.append(contentsOf: "\\f".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: - Decoding

    /// Parses and validates a whole file's bytes; `source` names the file in error messages.
    static func decode(_ bytes: [UInt8], source: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ problem: String) -> RecurrentError { .invalidFile("\(source): \(problem)") }

        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        var declared: UInt64 = 0
        for k in 0..<8 { declared |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard declared <= UInt64(bytes.count - 8) else {
            throw fail("header length \(declared) is larger than the \(bytes.count - 8) bytes that follow it")
        }
        let headerEnd = 8 + Int(declared)
        let headerBytes = Array(bytes[8..<headerEnd])
        var utf8 = UTF8()
        var iterator = headerBytes.makeIterator()
        decoding: while true {
            switch utf8.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: break decoding
            case .error: throw fail("header is not valid UTF-8")
            }
        }
        let root: HeaderJSON
        do {
            var parser = HeaderJSONParser(bytes: headerBytes)
            root = try parser.parseDocument()
        } catch let error as HeaderJSONParser.Failure {
            throw fail("header is not valid JSON: \(error.message)")
        }
        guard case .object(let entries) = root else {
            throw fail("header is not a JSON object")
        }

        struct Entry { let name: String; let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
        let dataLength = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var infos: [Entry] = []
        for (name, value) in entries {
            if name == metadataKey {
                guard case .object(let pairs) = value else { throw fail("'\(metadataKey)' is not an object") }
                for (key, v) in pairs {
                    guard case .string(let s) = v else {
                        throw fail("metadata value for '\(key)' is not a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            guard case .object(let fields) = value else { throw fail("entry for tensor '\(name)' is not an object") }
            func field(_ key: String) throws -> HeaderJSON {
                guard let v = fields.first(where: { $0.0 == key })?.1 else {
                    throw fail("tensor '\(name)' has no '\(key)'")
                }
                return v
            }
            func integers(_ key: String) throws -> [Int] {
                guard case .array(let items) = try field(key) else {
                    throw fail("'\(key)' of tensor '\(name)' is not an array")
                }
                return try items.map { item in
                    guard case .number(let text) = item, let v = Int(text) else {
                        throw fail("'\(key)' of tensor '\(name)' holds \(item), which is not a 64-bit integer")
                    }
                    return v
                }
            }
            guard case .string(let dtype) = try field("dtype") else {
                throw fail("'dtype' of tensor '\(name)' is not a string")
            }
            guard let elementSize = elementSizes[dtype] else {
                throw fail("tensor '\(name)' has dtype \(dtype); supported: F32 (F16, BF16 and F64 are converted to F32)")
            }
            let shape = try integers("shape")
            if let negative = shape.first(where: { $0 < 0 }) {
                throw fail("tensor '\(name)' has negative dimension \(negative) in shape \(shape)")
            }
            let offsets = try integers("data_offsets")
            guard offsets.count == 2 else {
                throw fail("'data_offsets' of tensor '\(name)' must hold 2 numbers, got \(offsets)")
            }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0 && begin <= end else {
                throw fail("tensor '\(name)' has invalid data_offsets [\(begin), \(end)]")
            }
            guard end <= dataLength else {
                throw fail("tensor '\(name)' data_offsets [\(begin), \(end)] run past the \(dataLength) bytes of data")
            }
            var byteCount = elementSize
            for d in shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(name)' shape \(shape) is too large") }
                byteCount = product
            }
            guard end - begin == byteCount else {
                throw fail("tensor '\(name)' data_offsets [\(begin), \(end)] span \(end - begin) bytes, but \(dtype) shape \(shape) needs \(byteCount)")
            }
            infos.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }

        // The tensors must tile the data section exactly: no overlap, no gap, nothing left over.
        infos.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        var previous: String?
        for info in infos {
            if info.begin < expected {
                throw fail("tensor '\(info.name)' data_offsets [\(info.begin), \(info.end)] overlap tensor '\(previous!)'")
            }
            if info.begin > expected {
                throw fail("\(info.begin - expected) unused bytes before tensor '\(info.name)' (data_offsets must be contiguous)")
            }
            expected = info.end
            previous = info.name
        }
        guard expected == dataLength else {
            throw fail("\(dataLength - expected) bytes of data after the last tensor belong to no tensor")
        }

        var tensors: [String: Tensor] = [:]
        bytes.withUnsafeBytes { raw in
            for info in infos {
                let region = UnsafeRawBufferPointer(rebasing: raw[(headerEnd + info.begin)..<(headerEnd + info.end)])
                tensors[info.name] = Tensor(shape: info.shape, data: floats(region, dtype: info.dtype))
            }
        }
        return (tensors, metadata)
    }

    /// Converts little-endian elements of a supported dtype to Float32.
    static func floats(_ region: UnsafeRawBufferPointer, dtype: String) -> [Float] {
        switch dtype {
        case "F32":
            var out = [Float](repeating: 0, count: region.count / 4)
            #if _endian(little)
            out.withUnsafeMutableBytes { $0.copyMemory(from: region) }
            #else
            for k in 0..<out.count {
                out[k] = Float(bitPattern: UInt32(littleEndian: region.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
            }
            #endif
            return out
        case "F64":
            return (0..<(region.count / 8)).map { k in
                Float(Double(bitPattern: UInt64(littleEndian: region.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))))
            }
        case "BF16":
            return (0..<(region.count / 2)).map { k in
                Float(bitPattern: UInt32(UInt16(littleEndian: region.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))) << 16)
            }
        case "F16":
            return (0..<(region.count / 2)).map { k in
                halfToFloat(UInt16(littleEndian: region.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)))
            }
        default:
            preconditionFailure("SafeTensors: unsupported dtype \(dtype) reached conversion")
        }
    }

    /// IEEE 754 binary16 → binary32, exact (every half is a float), without `Float16` (missing on
    /// Intel macOS).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            return sign * Float(mantissa) * 0x1p-24                         // zero and subnormals
        case 31:
            return Float(bitPattern: (UInt32(h & 0x8000) << 16) | 0x7F80_0000 | (mantissa << 13))  // inf, NaN
        default:
            return Float(bitPattern: (UInt32(h & 0x8000) << 16) | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
        }
    }

    // MARK: - Files

    static func systemError() -> String { String(cString: strerror(errno)) }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RecurrentError.invalidFile("\(path): cannot open: \(systemError())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw RecurrentError.invalidFile("\(path): cannot stat: \(systemError())") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw RecurrentError.invalidFile("\(path): cannot read: \(systemError())") }
            if n == 0 { break }
            filled += n
        }
        if filled < bytes.count { bytes.removeLast(bytes.count - filled) }   // file shrank meanwhile
        return bytes
    }

    /// Writes to `<path>.tmp-<pid>-<random>` in the same directory, fsyncs, then renames over `path`.
    static func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
        var rng = SystemRandomNumberGenerator()
        let temporary = "\(path).tmp-\(getpid())-\(String(rng.next() & 0xFFFF_FFFF, radix: 16))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw RecurrentError.invalidFile("\(path): cannot create temporary file '\(temporary)': \(systemError())") }
        var problem: String?
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { problem = "cannot write: \(systemError())"; break }
            written += n
        }
        if problem == nil && fsync(fd) != 0 { problem = "cannot flush: \(systemError())" }
        if close(fd) != 0 && problem == nil { problem = "cannot close: \(systemError())" }
        if problem == nil && rename(temporary, path) != 0 { problem = "cannot rename '\(temporary)' to it: \(systemError())" }
        if let problem {
            unlink(temporary)
            throw RecurrentError.invalidFile("\(path): \(problem)")
        }
    }
}

// The POSIX calls, reachable from inside `SafeTensors` whose `read`/`write` would shadow them.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }

/// A parsed JSON value of a safetensors header. Numbers keep their text so that integers are read
/// exactly; objects keep their order.
indirect enum HeaderJSON: CustomStringConvertible {
    case object([(String, HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    var description: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string(let s): return "\"\(s)\""
        case .number(let n): return n
        case .bool(let b): return String(b)
        case .null: return "null"
        }
    }
}

/// A strict RFC 8259 parser for safetensors headers (UTF-8 already validated). It rejects
/// duplicate keys and nesting deeper than `maxDepth`, and never indexes past the input.
struct HeaderJSONParser {
    struct Failure: Error { let message: String }

    let bytes: [UInt8]
    var position = 0
    static let maxDepth = 64

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> HeaderJSON {
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else { throw failure("unexpected '\(character(at: position))' after the value") }
        return value
    }

    private func failure(_ message: String) -> Failure { Failure(message: "\(message) at byte \(position)") }

    private func character(at i: Int) -> String {
        i < bytes.count ? String(decoding: [bytes[i]], as: UTF8.self) : "end of header"
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        guard current == c else {
            throw failure("expected '\(String(decoding: [c], as: UTF8.self))' but found '\(character(at: position))'")
        }
        position += 1
    }

    private mutating func parseValue(depth: Int) throws -> HeaderJSON {
        guard depth < HeaderJSONParser.maxDepth else { throw failure("nesting deeper than \(HeaderJSONParser.maxDepth)") }
        skipWhitespace()
        guard let c = current else { throw failure("unexpected end of header") }
        switch c {
        case UInt8(ascii: "{"):
            position += 1
            var pairs: [(String, HeaderJSON)] = []
            var keys = Set<String>()
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(pairs) }
            while true {
                skipWhitespace()
                let key = try parseString()
                guard keys.insert(key).inserted else { throw failure("duplicate key \"\(key)\"") }
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                pairs.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .object(pairs)
            }
        case UInt8(ascii: "["):
            position += 1
            var items: [HeaderJSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "]"))
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            for (word, value) in [("true", HeaderJSON.bool(true)), ("false", .bool(false)), ("null", .null)] {
                let w = Array(word.utf8)
                if position + w.count <= bytes.count && Array(bytes[position..<(position + w.count)]) == w {
                    position += w.count
                    return value
                }
            }
            throw failure("unexpected '\(character(at: position))'")
        }
    }

    private mutating func parseString() throws -> String {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while true {
            guard let c = current else { throw failure("unterminated string") }
            position += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = current else { throw failure("unterminated escape") }
                position += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard current == UInt8(ascii: "\\"), position + 1 < bytes.count,
                              bytes[position + 1] == UInt8(ascii: "u") else { throw failure("unpaired surrogate in \\u escape") }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default:
                    throw failure("invalid escape '\\\(String(decoding: [e], as: UTF8.self))'")
                }
            case 0..<0x20:
                throw failure("control character in string")
            default:
                out.append(c)
            }
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in \\u escape")
            }
            v = v * 16 + digit
            position += 1
        }
        return v
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returned as text.
    private mutating func parseNumber() throws -> String {
        let start = position
        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if isDigit(current) {
            while isDigit(current) { position += 1 }
        } else {
            throw failure("invalid number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard isDigit(current) else { throw failure("invalid number") }
            while isDigit(current) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard isDigit(current) else { throw failure("invalid number") }
            while isDigit(current) { position += 1 }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }
}
