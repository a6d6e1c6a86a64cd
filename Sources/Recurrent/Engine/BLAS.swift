// Matrix products through the platform BLAS: Accelerate on Apple platforms, OpenBLAS on Linux.
//
// On Linux OpenBLAS is loaded with `dlopen` on first use rather than linked. The reason is the
// core-type trap of OpenBLAS 0.3.21 (Debian 12): it does not recognise Sapphire Rapids and falls
// back to Haswell kernels (~60% of the machine) unless `OPENBLAS_CORETYPE` is set *before the
// library loads*. Loading it ourselves lets us set that variable first, so every program that uses
// Recurrent — the `recurrent` tool, tests, a user's own executable — gets the AVX-512 kernels.
// A value the user already set in the environment is respected.

import CKernels
#if canImport(Accelerate)
import Accelerate
#elseif canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Row-major single-precision BLAS entry points used by the engine.
public enum BLAS {
    #if !canImport(Accelerate)
    typealias SgemmFn = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float,
        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SgemvFn = @convention(c) (
        Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreadsFn = @convention(c) (Int32) -> Void
    typealias CoreNameFn = @convention(c) () -> UnsafeMutablePointer<CChar>?

    struct Library: @unchecked Sendable {
        let sgemm: SgemmFn
        let sgemv: SgemvFn
        let coreName: CoreNameFn?
        let forcedCoreType: String?
    }

    static let library: Library = load()

    private static func cpuHasAVX512() -> Bool {
        #if arch(x86_64)
        guard let f = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 8192)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("flags") { return s.contains(" avx512f") && s.contains(" avx512bw") }
        }
        #endif
        return false
    }

    private static func load() -> Library {
        var forced: String? = nil
        if getenv("OPENBLAS_CORETYPE") == nil && cpuHasAVX512() {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 0)
            forced = "SkylakeX"
        }
        // OpenBLAS worker threads otherwise spin ~0.1 s after every call and compete with the
        // fused layers' own threads for the cores; a short timeout lets them sleep (2^4 cycles).
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        _ = HeapSetup.done
        let candidates = ["libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libblas.so.3"]
        var handle: UnsafeMutableRawPointer? = nil
        for name in candidates {
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { break }
        }
        guard let h = handle else {
            fputs("error: Recurrent needs OpenBLAS but could not load libopenblas.so.0 "
                  + "(install it with: apt-get install -y libopenblas-dev)\n", stderr)
            exit(70)
        }
        func sym<T>(_ name: String, _: T.Type) -> T? {
            guard let p = dlsym(h, name) else { return nil }
            return unsafeBitCast(p, to: T.self)
        }
        guard let gemm = sym("cblas_sgemm", SgemmFn.self), let gemv = sym("cblas_sgemv", SgemvFn.self) else {
            fputs("error: the loaded BLAS library has no cblas_sgemm/cblas_sgemv\n", stderr)
            exit(70)
        }
        // Every call the library makes is one thread's share of some work (`ThreadTeam`): BLAS
        // itself runs single-threaded, set once here rather than around each call.
        sym("openblas_set_num_threads", SetThreadsFn.self)?(1)
        return Library(sgemm: gemm, sgemv: gemv, coreName: sym("openblas_get_corename", CoreNameFn.self),
                       forcedCoreType: forced)
    }
    #endif

    /// The BLAS implementation and kernel family in use, e.g. `OpenBLAS SkylakeX` or `Accelerate`.
    public static var implementation: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        if let f = library.coreName, let p = f() { return "OpenBLAS " + String(cString: p) }
        return "BLAS"
        #endif
    }

    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, row-major.
    /// `op(X) = Xᵀ` when the corresponding `trans` flag is set; `lda`/`ldb`/`ldc` are row strides.
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
            return
        }
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        library.sgemm(101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha,
                      a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #endif
    }

    /// `y[m] = alpha · A[m×n] · x + beta · y` (or `Aᵀ·x` with `trans`, then `y` has `n` entries), row-major.
    @inline(__always)
    public static func gemv(trans: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        if m == 0 || n == 0 { return }
        #if canImport(Accelerate)
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
        #else
        library.sgemv(101, trans ? 112 : 111, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
        #endif
    }
}

/// The first-use setup of the C heap: keep freed memory for the next step's arrays instead of
/// page-faulting them in again (see `ck_heap_keep_freed`; `RECURRENT_HEAP=system` opts out). Run
/// when BLAS loads and when a recurrent sequence first runs (fused or on the tape): inference
/// with the packed kernels loads no BLAS (`LD_DEBUG=files` of `recurrent bench --modes infer`,
/// both paths), and without the setup a C2 RNN inference on the tape spent 2.7% of its samples
/// in page faults (0.42% with it).
enum HeapSetup {
    static let done: Bool = ck_heap_keep_freed() != 0
}
