/// Batches for truncated backpropagation through time, char-rnn style: the training text is cut
/// into B contiguous segments, one per batch row, each read front to back in windows of T
/// symbols; the recurrent state of row b is carried from one window to the next.
///
/// With N symbols, each segment holds S = ⌊(N − 1) / B⌋ inputs (the extra symbol is the last
/// target). Window w of an epoch feeds row b the inputs `text[b·S + δ + w·T ..< … + T]` and the
/// targets one symbol later, where δ is the epoch's shift: 0 for the first epoch, then drawn
/// from the training generator in `0 ..< min(T, S − T + 1)` so window boundaries move between
/// epochs. An epoch has ⌊(S − δ) / T⌋ windows; a new epoch starts from a zero state.
public struct TrainingStreams: Sendable, Equatable, Codable {
    /// B
    public let batchSize: Int
    /// T
    public let windowLength: Int
    /// N, the length of the training text.
    public let textCount: Int
    /// Epochs completed.
    public private(set) var epoch: Int = 0
    /// The next window within the epoch.
    public private(set) var window: Int = 0
    /// δ of the current epoch.
    public private(set) var shift: Int = 0

    public init(textCount: Int, batchSize: Int, windowLength: Int) throws {
        guard batchSize > 0, windowLength > 0 else {
            throw RecurrentError.invalidArgument("--batch and --seq-len must be positive")
        }
        guard textCount >= batchSize * windowLength + 1 else {
            throw RecurrentError.invalidArgument(
                "the training text has \(textCount) symbols, shorter than one batch window: "
                + "--batch \(batchSize) × --seq-len \(windowLength) needs at least \(batchSize * windowLength + 1). "
                + "Use more text or a smaller --batch/--seq-len")
        }
        self.textCount = textCount
        self.batchSize = batchSize
        self.windowLength = windowLength
    }

    /// S, inputs per segment.
    public var segmentLength: Int { (textCount - 1) / batchSize }

    public var windowsPerEpoch: Int { (segmentLength - shift) / windowLength }

    /// Windows in a first epoch (δ = 0): how `--epochs` converts to steps.
    public var windowsPerFirstEpoch: Int { segmentLength / windowLength }

    /// Writes the next window into `inputs` and `targets` (time-major, `[T·B]`, element
    /// `t·B + b`) and advances. Returns true when the window starts an epoch, where the carried
    /// state must be reset to zero.
    public mutating func next(text: [Int], inputs: inout [Int], targets: inout [Int],
                              generator: inout RandomGenerator) -> Bool {
        precondition(text.count == textCount, "TrainingStreams: text of \(text.count) symbols, expected \(textCount)")
        let startsEpoch = window == 0
        let b = batchSize, t = windowLength, s = segmentLength
        if inputs.count != t * b { inputs = [Int](repeating: 0, count: t * b) }
        if targets.count != t * b { targets = [Int](repeating: 0, count: t * b) }
        text.withUnsafeBufferPointer { x in
            inputs.withUnsafeMutableBufferPointer { inp in
                targets.withUnsafeMutableBufferPointer { tgt in
                    for row in 0..<b {
                        let start = row * s + shift + window * t
                        for step in 0..<t {
                            inp[step * b + row] = x[start + step]
                            tgt[step * b + row] = x[start + step + 1]
                        }
                    }
                }
            }
        }
        window += 1
        if window >= windowsPerEpoch {
            epoch += 1
            window = 0
            shift = generator.nextInt(below: min(t, s - t + 1))
        }
        return startsEpoch
    }

    /// Fraction of training done in epochs (for progress and `--epochs`).
    public var epochsCompleted: Double { Double(epoch) + Double(window) / Double(max(windowsPerEpoch, 1)) }
}
