import CKernels

/// A fixed-size block of raw memory (64-byte aligned) owned by a class and released with it, so
/// the time loops of the fused kernels work on plain pointers instead of nesting `withUnsafe…`
/// closures. Large blocks come from and return to a pool (`ck_buffer_acquire`), so repeated
/// training steps reuse their buffers instead of faulting in fresh pages.
///
/// The memory is not initialized: every kernel writes a slot before anything reads it.
final class Workspace<Element: BitwiseCopyable>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int) {
        self.count = count
        guard let raw = ck_buffer_acquire(Self.bytes(count)) else {
            fatalError("Workspace: out of memory allocating \(count) elements")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
    }

    /// A workspace holding a copy of `values`.
    convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    /// A workspace of `count` zeros.
    convenience init(zeros count: Int) where Element == Float {
        self.init(count: count)
        pointer.update(repeating: 0, count: count)
    }

    /// `count` elements starting at `offset`, as an array.
    func array(from offset: Int = 0, count n: Int? = nil) -> [Element] {
        Array(UnsafeBufferPointer(start: pointer + offset, count: n ?? (count - offset)))
    }

    /// Bytes of a workspace of `count` elements (at least one element).
    private static func bytes(_ count: Int) -> Int { Swift.max(count, 1) * MemoryLayout<Element>.stride }

    deinit { ck_buffer_release(UnsafeMutableRawPointer(pointer), Self.bytes(count)) }
}

extension UnsafeBufferPointer where Element == Float {
    /// The base address, or a valid dummy address for an empty buffer (BLAS and the kernels never
    /// read through it when a dimension is 0).
    var start: UnsafePointer<Float> { baseAddress ?? UnsafePointer(emptyFloatStorage.pointer) }
}

extension UnsafeMutableBufferPointer where Element == Float {
    /// The base address, or a valid dummy address for an empty buffer.
    var start: UnsafeMutablePointer<Float> { baseAddress ?? emptyFloatStorage.pointer }
}

/// Backing for the address of empty buffers.
let emptyFloatStorage = Workspace<Float>(count: 1)
