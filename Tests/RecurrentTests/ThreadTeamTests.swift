import CKernels
import Foundation
import Testing
@testable import Recurrent

@Suite struct ThreadTeamTests {
    /// Work started inside a part of the team's work runs on that thread alone: the caller's own
    /// part and the helpers' parts see one thread available, the caller outside sees the setting.
    @Test func oneThreadIsAvailableInsideParts() {
        #expect(ThreadTeam.available == ThreadTeam.threads)
        let seen = UncheckedPointer(UnsafeMutablePointer<Int>.allocate(capacity: 4))
        defer { seen.pointer.deallocate() }
        seen.pointer.initialize(repeating: 0, count: 4)
        runParts(4) { p in seen.pointer[p] = ThreadTeam.available }
        #expect((0..<4).map { seen.pointer[$0] } == [1, 1, 1, 1])
        #expect(ThreadTeam.available == ThreadTeam.threads)
    }

    /// The default setting follows OpenBLAS's rule: the first positive OPENBLAS_NUM_THREADS or
    /// OMP_NUM_THREADS, at most the cores; anything else means the cores.
    @Test func defaultThreadsFollowTheEnvironmentLikeOpenBLAS() {
        #expect(ck_default_threads(nil, nil, 8) == 8)
        #expect(ck_default_threads("2", "4", 8) == 2)
        #expect(ck_default_threads(nil, "4", 8) == 4)
        #expect(ck_default_threads("16", nil, 8) == 8)
        #expect(ck_default_threads("0", "3", 8) == 3)
        #expect(ck_default_threads("two", nil, 8) == 8)
        #expect(ck_default_threads("2x", "", 8) == 8)
    }

    /// Two training steps of the same layer on the same data, started on two threads at once,
    /// give the bits of the same step run alone: each caller sees the library's thread setting
    /// (not a process-wide BLAS thread count that another caller has just changed), and the one
    /// that finds the team busy runs every part itself.
    @Test func concurrentCallersGetTheResultsOfASoloRun() {
        let (T, B, I, H) = (40, 32, 64, 128)
        @Sendable func step() -> [Tensor] {
            var rng = RandomGenerator(seed: 5)
            let layer = RecurrentLayer(kind: .lstm, inputSize: I, hiddenSize: H, numLayers: 2, rng: &rng)
            let x = Variable(rng.uniformTensor([T, B, I], low: -1, high: 1), requiresGrad: true)
            let (output, state) = layer(x)
            let loss = sum(output) + sum(state.h)
            loss.backward()
            return [output.value, state.h.value, x.grad!] + layer.parameters.map { $0.grad! }
        }
        let solo = step()
        let results = UncheckedPointer(UnsafeMutablePointer<[Tensor]>.allocate(capacity: 2))
        results.pointer.initialize(repeating: [], count: 2)
        defer { results.pointer.deinitialize(count: 2); results.pointer.deallocate() }
        for _ in 0..<4 {
            DispatchQueue.concurrentPerform(iterations: 2) { i in results.pointer[i] = step() }
            for i in 0..<2 {
                #expect(results.pointer[i].count == solo.count)
                for (k, (a, b)) in zip(results.pointer[i], solo).enumerated() {
                    #expect(a == b, "caller \(i): result \(k) differs by \(a.maxAbsDifference(b))")
                }
            }
        }
    }
}
