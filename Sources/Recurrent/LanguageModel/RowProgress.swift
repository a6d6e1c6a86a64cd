#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which of a fixed list of long measurements (the rows of `recurrent bench`) is running, on
/// stderr: one line rewritten in place when stderr is a terminal, cleared before each result is
/// printed; one line per row otherwise. The time left is the mean time of the finished rows times
/// the rows to go.
public struct RowProgress {
    public let total: Int
    public let live: Bool
    private let start: Double
    private var finished = 0
    private var shown = false
    private let write: (String) -> Void

    /// `live` defaults to whether stderr is a terminal; `write` to stderr (flushed).
    public init(total: Int, live: Bool = isatty(STDERR_FILENO) != 0,
                write: @escaping (String) -> Void = { fputs($0, stderr); fflush(stderr) }) {
        self.total = total
        self.live = live
        self.write = write
        start = monotonicSeconds()
    }

    /// `[3/27] C1 lstm train, 2 threads · 41s elapsed · ~2m10s left` (no estimate before a row
    /// has finished).
    public static func text(row: Int, total: Int, label: String, elapsed: Double, finished: Int) -> String {
        var line = "[\(row)/\(total)] \(label) · \(formattedDuration(elapsed)) elapsed"
        if finished > 0 && finished < total {
            line += " · ~\(formattedDuration(elapsed / Double(finished) * Double(total - finished))) left"
        }
        return line
    }

    /// Shows that the next row, `label`, has started.
    public mutating func begin(_ label: String) {
        let line = RowProgress.text(row: finished + 1, total: total, label: label,
                                    elapsed: monotonicSeconds() - start, finished: finished)
        if live {
            write("\r\u{1B}[K" + line)
            shown = true
        } else {
            write(line + "\n")
        }
    }

    /// Marks the current row finished, clearing a live line so the row's result prints on its own.
    public mutating func end() {
        finished += 1
        if shown {
            write("\r\u{1B}[K")
            shown = false
        }
    }
}
