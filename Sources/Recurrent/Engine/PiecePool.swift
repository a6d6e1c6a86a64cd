import CKernels

/// Work that tasks running side by side on the team's threads (one owner per thread, such as the
/// two directions of a bidirectional layer) may run for each other (`ck_pool_run`). Each owner
/// marks its task begun, does its own work, adds its pieces, then runs any piece nobody has
/// started, its own first, until the pieces of every begun owner are done: a thread that finishes
/// its own task early takes over part of a slower one's. (When the team runs the owners one after
/// the other on one thread, a later owner has not begun, and nobody waits for it.)
/// A piece's result must not depend on the thread that runs it, so results stay the same whoever
/// runs what.
final class PiecePool: @unchecked Sendable {
    private let pool: OpaquePointer

    /// Most pieces one owner may add.
    static var maxPieces: Int { ck_pool_max_pieces() }

    init(owners: Int) {
        guard let pool = ck_pool_create(owners) else { preconditionFailure("PiecePool: 1...4 owners, got \(owners)") }
        self.pool = pool
    }

    deinit { ck_pool_destroy(pool) }

    /// Marks `owner`'s task as begun, so the other owners wait for its pieces (call it first).
    func start(owner: Int) { ck_pool_start(pool, owner) }

    /// Adds `pieces` as `owner`'s and returns once the pieces of every owner that has begun have
    /// run. Each owner that called `start` calls this exactly once, from its own thread.
    func run(owner: Int, _ pieces: [() -> Void]) {
        precondition(pieces.count <= Self.maxPieces, "PiecePool: at most \(Self.maxPieces) pieces per owner")
        var list = PieceList(pieces: pieces)
        withUnsafeMutablePointer(to: &list) { pointer in
            ck_pool_run(pool, owner, pieces.count, { context, i in
                context!.assumingMemoryBound(to: PieceList.self).pointee.pieces[i]()
            }, pointer)
        }
    }
}

/// The pieces one owner hands to `ck_pool_run`.
private struct PieceList {
    let pieces: [() -> Void]
}
