import CKernels

/// The fp32 multiply-add peak of this machine as a benchmark's threads see it, for "fraction of
/// peak" figures. A nominal peak (cores × FMA units × lanes × 2 × base clock) misses the turbo
/// clock: on the 2-core development machine the nominal 256 GFLOP/s was measured as 2 × 170-175.
public enum MachinePeak {
    /// GFLOP/s of `threads` threads running independent vector FMA chains at once (the widest
    /// vectors the CPU has): the best of `bursts` bursts of ~23 ms.
    public static func gflops(threads: Int, bursts: Int = 8) -> Double {
        ck_fma_peak(max(1, threads), max(1, bursts)) / 1e9
    }
}
