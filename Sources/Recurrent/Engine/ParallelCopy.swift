import CKernels

// Copies and fills big enough to share between the team's threads: from 256K floats a copy is
// bound by the bytes a core moves, and each core brings its own share. Inside a parallel part
// they run on the calling thread alone (`ThreadTeam.available` is 1 there).

/// Floats from which a copy, fill or sum is shared between the team's threads.
let sharedMemoryFloats = 1 << 18

/// `dst[r, 0..<cols] = src[r, 0..<cols]` for `rows` rows with row strides `ldSrc` and `ldDst`
/// (a block of columns into or out of a wider matrix), the rows shared between the team's
/// threads from 256K floats.
func copyRows(_ rows: Int, _ cols: Int, from src: UnsafePointer<Float>, _ ldSrc: Int,
              to dst: UnsafeMutablePointer<Float>, _ ldDst: Int) {
    if rows <= 0 || cols <= 0 { return }
    copyRows(rows, cols, from: src, ldSrc, to: dst, ldDst, threads: ThreadTeam.available)
}

/// `copyRows` on up to `threads` threads.
func copyRows(_ rows: Int, _ cols: Int, from src: UnsafePointer<Float>, _ ldSrc: Int,
              to dst: UnsafeMutablePointer<Float>, _ ldDst: Int, threads: Int) {
    if rows <= 0 || cols <= 0 { return }
    let parts = rows * cols >= sharedMemoryFloats ? max(1, min(threads, rows)) : 1
    let job = RowCopyJob(src: src, ldSrc: ldSrc, dst: dst, ldDst: ldDst, cols: cols)
    runParts(parts) { p in job.run(rows: WorkSplit.slice(p, of: parts, count: rows)) }
}

/// One thread's rows of `copyRows`.
private struct RowCopyJob: @unchecked Sendable {
    let src: UnsafePointer<Float>, ldSrc: Int
    let dst: UnsafeMutablePointer<Float>, ldDst: Int
    let cols: Int

    func run(rows: Range<Int>) {
        if rows.isEmpty { return }
        let r0 = rows.lowerBound
        ck_copy_rows(rows.count, cols, src + r0 * ldSrc, ldSrc, dst + r0 * ldDst, ldDst)
    }
}

/// Sets `count` floats from `pointer` to `value`, shared between the team's threads from 256K
/// floats (the seed gradient of a sum, zero tensors).
func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, with value: Float) {
    if count <= 0 { return }
    guard count >= sharedMemoryFloats else {
        pointer.initialize(repeating: value, count: count)
        return
    }
    let parts = ThreadTeam.available, job = FillJob(pointer: pointer, value: value)
    runParts(parts) { p in job.run(WorkSplit.slice(p, of: parts, count: count, quantum: 16)) }
}

/// One thread's slice of `fill`.
private struct FillJob: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>, value: Float

    func run(_ range: Range<Int>) {
        if !range.isEmpty { (pointer + range.lowerBound).initialize(repeating: value, count: range.count) }
    }
}
