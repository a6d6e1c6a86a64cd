/// Fractions of a corpus for training, validation and test, taken as contiguous pieces in that
/// order: train = `[0, ⌊f_train·N⌋)`, validation = `[⌊f_train·N⌋, ⌊(f_train+f_val)·N⌋)`, test = the rest.
///
/// The default 90/5/5 on tiny-shakespeare gives the usual boundaries 1,003,854 and 1,059,624.
public struct CorpusSplit: Sendable, Equatable, Codable {
    public var train: Double
    public var validation: Double
    public var test: Double

    public static let standard = CorpusSplit(train: 0.9, validation: 0.05, test: 0.05)

    public init(train: Double, validation: Double, test: Double) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    /// Parses `90,5,5`, `0.9,0.05,0.05` or `90,10` (test 0). Percentages if the parts sum to 100.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.filter { $0 != " " } }
        let values = parts.compactMap { Double($0) }
        guard (2...3).contains(parts.count), values.count == parts.count, values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw RecurrentError.invalidArgument(
                "--split '\(text)': expected two or three non-negative numbers TRAIN,VALID[,TEST] such as 90,5,5")
        }
        let total = values.reduce(0, +)
        let scale: Double
        if abs(total - 100) < 1e-6 { scale = 100 } else if abs(total - 1) < 1e-9 { scale = 1 } else {
            throw RecurrentError.invalidArgument("--split '\(text)': the parts sum to \(total); they must sum to 100 (or 1)")
        }
        self.init(train: values[0] / scale, validation: values[1] / scale, test: values.count == 3 ? values[2] / scale : 0)
        guard train > 0 else { throw RecurrentError.invalidArgument("--split '\(text)': the training part must be positive") }
    }

    /// Symbol ranges of a corpus of `count` symbols.
    public func ranges(count: Int) -> (train: Range<Int>, validation: Range<Int>, test: Range<Int>) {
        let a = min(count, Int((train * Double(count)).rounded(.down)))
        let b = test == 0 ? count : min(count, max(a, Int(((train + validation) * Double(count)).rounded(.down))))
        return (0..<a, a..<b, b..<count)
    }
}
