/// What one symbol of a character-level model is.
///
/// `.character`: a Unicode scalar of the UTF-8 text (the default; "é" is one symbol, a combining
/// accent is its own symbol). `.byte`: a raw byte 0...255 (any file, no UTF-8 requirement); in
/// `config.json` byte `b` is written as the one-character string U+00bb (Latin-1), so a byte
/// vocabulary has the same layout as a character one.
public enum TextUnit: String, Sendable, Codable, CaseIterable {
    case character = "char"
    case byte = "byte"
}
