/// Builds one JSON object on one line, keys in insertion order (event lines, `metrics.jsonl`).
///
/// Non-finite numbers become `null`; strings are escaped per RFC 8259.
public struct JSONLine: Sendable {
    private var parts: [String] = []

    public init() {}

    public mutating func add(_ key: String, _ value: String) { parts.append("\(JSONLine.quote(key)):\(JSONLine.quote(value))") }
    public mutating func add(_ key: String, _ value: Int) { parts.append("\(JSONLine.quote(key)):\(value)") }
    public mutating func add(_ key: String, _ value: Bool) { parts.append("\(JSONLine.quote(key)):\(value)") }
    public mutating func add(_ key: String, _ value: Double) { parts.append("\(JSONLine.quote(key)):\(JSONLine.number(value))") }
    public mutating func add(_ key: String, _ value: Double?) {
        parts.append("\(JSONLine.quote(key)):\(value.map(JSONLine.number) ?? "null")")
    }
    /// A value already in JSON form (an array or nested object).
    public mutating func add(_ key: String, raw: String) { parts.append("\(JSONLine.quote(key)):\(raw)") }

    public var text: String { "{" + parts.joined(separator: ",") + "}" }

    public static func number(_ x: Double) -> String {
        guard x.isFinite else { return "null" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F || (0x2028...0x2029).contains(u.value):
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
