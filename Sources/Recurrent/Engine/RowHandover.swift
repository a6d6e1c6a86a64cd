import CKernels

/// Rows of one time loop that its owner hands to another thread mid-sequence (`ck_handover_*`),
/// for loops that run side by side, one per thread, such as the two directions of a
/// bidirectional layer. A thread that has finished its own loop asks (`help`); the owner, at its
/// next step, keeps some of its rows and publishes a closure that runs the others' remaining
/// steps, which the asking thread then runs while the owner goes on with the rows it kept. Rows
/// of a time loop never interact, so when each row's results are the same in any block of rows
/// (our packed kernels), they do not depend on who ran which steps.
final class RowHandover: @unchecked Sendable {
    private let handover: OpaquePointer
    /// The given-away rows' steps from the cut on (set by the owner before the cut).
    private var work: ((Int) -> Void)?
    /// Fewest steps left (the current one included) for which handing over pays.
    static let minimumSteps = 16

    init() {
        guard let handover = ck_handover_create() else { preconditionFailure("RowHandover: out of memory") }
        self.handover = handover
    }

    deinit { ck_handover_destroy(handover) }

    /// Owner: its loop begins (only a begun loop is waited for).
    func begin() { ck_handover_begin(handover) }

    /// Owner, before a step with `remaining` steps left: whether another thread has asked and
    /// handing over still pays (if it does not, the request is declined).
    @inline(__always) func isAsked(remaining: Int) -> Bool {
        ck_handover_poll(handover, remaining, Self.minimumSteps) != 0
    }

    /// Owner, after `isAsked` returned true before step `step`: the asking thread runs
    /// `work(step)`.
    func handOver(atStep step: Int, _ work: @escaping (Int) -> Void) {
        self.work = work
        ck_handover_cut(handover, step)
    }

    /// Owner, after its loop: returns once any rows it gave away have run (and drops the closure,
    /// which may hold the loop, and through it this handover).
    func end() {
        ck_handover_end(handover)
        work = nil
    }

    /// Another thread, done with its own loop: runs the rows the owner gives away, if its loop is
    /// still running; returns the step it took them from, or nil.
    @discardableResult func help() -> Int? {
        let step = ck_handover_request(handover)
        if step < 0 { return nil }
        work?(step)
        ck_handover_done(handover)
        return step
    }
}
