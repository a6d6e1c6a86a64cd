/// A fixed-size block of raw memory owned by a class and freed with it, so the time loops of the
/// fused kernels work on plain pointers instead of nesting `withUnsafe…` closures.
///
/// The memory is not initialized: every kernel writes a slot before anything reads it.
final class Workspace<Element: BitwiseCopyable> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
    }

    /// A workspace holding a copy of `values`.
    convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    /// The contents as an array.
    var array: [Element] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    deinit { pointer.deallocate() }
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
nonisolated(unsafe) let emptyFloatStorage = Workspace<Float>(count: 1)
