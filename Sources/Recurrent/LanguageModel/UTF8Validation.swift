/// Strict UTF-8 decoding that reports where a file stops being UTF-8.
///
/// Rejects what the Unicode standard rejects: stray continuation bytes, truncated sequences,
/// overlong encodings, surrogates (U+D800...U+DFFF) and values above U+10FFFF.
enum UTF8Validation {
    /// The decoded scalar values, or the byte offset of the first invalid sequence.
    static func decode(_ bytes: [UInt8]) -> Result<[UInt32], InvalidSequence> {
        var scalars = [UInt32]()
        scalars.reserveCapacity(bytes.count)
        let n = bytes.count
        var failure: InvalidSequence?
        bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i < n {
                let b0 = p[i]
                if b0 < 0x80 { scalars.append(UInt32(b0)); i += 1; continue }
                let length: Int
                var value: UInt32
                let minimum: UInt32
                switch b0 {
                case 0xC2...0xDF: length = 2; value = UInt32(b0 & 0x1F); minimum = 0x80
                case 0xE0...0xEF: length = 3; value = UInt32(b0 & 0x0F); minimum = 0x800
                case 0xF0...0xF4: length = 4; value = UInt32(b0 & 0x07); minimum = 0x10000
                default:
                    failure = InvalidSequence(offset: i, byte: b0); return
                }
                if i + length > n { failure = InvalidSequence(offset: i, byte: b0); return }
                for k in 1..<length {
                    let b = p[i + k]
                    guard b & 0xC0 == 0x80 else { failure = InvalidSequence(offset: i, byte: b0); return }
                    value = (value << 6) | UInt32(b & 0x3F)
                }
                if value < minimum || value > 0x10FFFF || (0xD800...0xDFFF).contains(value) {
                    failure = InvalidSequence(offset: i, byte: b0); return
                }
                scalars.append(value)
                i += length
            }
        }
        if let failure { return .failure(failure) }
        return .success(scalars)
    }

    /// The first byte of a sequence that is not valid UTF-8.
    struct InvalidSequence: Error, Equatable {
        var offset: Int
        var byte: UInt8
    }
}
