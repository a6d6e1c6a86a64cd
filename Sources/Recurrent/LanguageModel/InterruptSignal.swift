#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C as a request: the first SIGINT sets a flag that the training loop reads between steps
/// (it then saves a checkpoint and stops); the handler is then reset, so a second Ctrl-C ends the
/// process at once (checkpoints are written atomically, so that cannot leave a half-written one).
public enum InterruptSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    /// Installs the SIGINT handler.
    public static func install() {
        flag = 0
        signal(SIGINT) { _ in
            InterruptSignal.flag = 1
            signal(SIGINT, SIG_DFL)
        }
    }

    /// Whether Ctrl-C was pressed since `install()`.
    public static var isRequested: Bool { flag != 0 }

    /// Sets the flag as a SIGINT would (tests, and a caller that wants to stop a run).
    public static func request() { flag = 1 }

    /// Clears the flag.
    public static func reset() { flag = 0 }
}
