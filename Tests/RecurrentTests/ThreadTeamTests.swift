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

    /// A balanced stepped loop with `sharing` covers each step's units exactly once: the threads'
    /// two own slices, then one-quantum slices (an eighth of the quanta, at least one) that
    /// either thread may take; every part of a step runs before any part of the next. Without
    /// `sharing` there are only the two own slices.
    @Test(arguments: [(512, true, 4), (2048, true, 10), (96, true, 3), (64, true, 2), (512, false, 2)])
    func sharedSlicesCoverEachStepOnce(_ count: Int, _ sharing: Bool, _ parts: Int) {
        let steps = 50
        let lock = NSLock()
        nonisolated(unsafe) var seen: [(step: Int, part: Int, slice: Range<Int>)] = []
        nonisolated(unsafe) var finishedSteps = 0, outOfOrder = false
        runBalancedSteps(steps, parts: 2, count: count, quantum: 32, sharing: sharing) { i, p, slice in
            lock.lock()
            if i != finishedSteps && i != finishedSteps + 1 { outOfOrder = true }
            seen.append((i, p, slice))
            if seen.filter({ $0.step == i }).count == parts { finishedSteps = i }
            lock.unlock()
        }
        #expect(!outOfOrder)
        for i in 0..<steps {
            let step = seen.filter { $0.step == i }
            #expect(Set(step.map(\.part)) == Set(0..<parts), "step \(i): parts \(step.map(\.part))")
            #expect(step.map(\.slice.count).reduce(0, +) == count)
            #expect(Set(step.flatMap { Array($0.slice) }) == Set(0..<count), "step \(i)")
            for s in step where s.part >= 2 { #expect(s.slice.count == 32 && s.slice.lowerBound % 32 == 0) }
        }
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
