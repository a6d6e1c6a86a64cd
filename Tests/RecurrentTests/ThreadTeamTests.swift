import CKernels
import Foundation
import Testing
@testable import Recurrent

@Suite struct ThreadTeamTests {
    /// Work started inside a part of the team's work runs on that thread alone: the caller's own
    /// part and the helpers' parts see one thread available, the caller outside sees the setting.
    @Test func oneThreadIsAvailableInsideParts() {
        #expect(ThreadTeam.available == ThreadTeam.threads)
        let seen = SharedBuffer<Int>(count: 4)
        runParts(4) { p in seen[p] = ThreadTeam.available }
        #expect((0..<4).map { seen[$0] } == [1, 1, 1, 1])
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
        let results = SharedBuffer<[Tensor]>(count: 2, repeating: [])
        for _ in 0..<4 {
            DispatchQueue.concurrentPerform(iterations: 2) { i in results[i] = step() }
            for i in 0..<2 {
                #expect(results[i].count == solo.count)
                for (k, (a, b)) in zip(results[i], solo).enumerated() {
                    #expect(a == b, "caller \(i): result \(k) differs by \(a.maxAbsDifference(b))")
                }
            }
        }
    }
}

/// Storage the threads of a test share, each writing its own elements.
final class SharedBuffer<Element>: @unchecked Sendable {
    private var storage: [Element]
    private let lock = NSLock()
    init(count: Int, repeating value: Element) { storage = Array(repeating: value, count: count) }
    subscript(i: Int) -> Element {
        get { lock.lock(); defer { lock.unlock() }; return storage[i] }
        set { lock.lock(); storage[i] = newValue; lock.unlock() }
    }
}

extension SharedBuffer where Element == Int {
    convenience init(count: Int) { self.init(count: count, repeating: 0) }
}
