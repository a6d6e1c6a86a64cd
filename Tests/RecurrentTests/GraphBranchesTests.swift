import Testing
@testable import Recurrent

/// Parts of a graph built and differentiated at once, one per thread (`GraphBranches`).
@Suite struct GraphBranchesTests {
    /// Two branches that read the same input and the same weight (one also reads a weight of its
    /// own, returns an outside node as one of its outputs and an output without a gradient),
    /// and a branch nested in one of them: values and every gradient against the same graph
    /// built without branches. Each boundary node's gradient is the sum over the branches.
    @Test func branchesGiveTheGradientsOfThePlainGraph() {
        var rng = RandomGenerator(seed: 21)
        let x = randomVariable([3, 4], &rng, name: "x")
        let shared = randomVariable([4, 4], &rng, name: "shared")
        let own = randomVariable([4, 4], &rng, name: "own")
        let constant = randomVariable([3, 4], &rng, requiresGrad: false)
        func branch(_ b: Int, nested: Bool) -> [Variable] {
            if b == 0 {
                let h = tanh(matmul(x, shared))
                return [h * h, x, constant]
            }
            let inner = nested
                ? GraphBranches.run(2) { i in [sigmoid(matmul(x, i == 0 ? own : shared))] }.map { $0[0] }
                : (0..<2).map { i in sigmoid(matmul(x, i == 0 ? own : shared)) }
            return [inner[0] * inner[1] + matmul(x, own)]
        }
        func run(branches: Bool) -> [Tensor] {
            for v in [x, shared, own] { v.grad = nil }
            let outs = branches ? GraphBranches.run(2) { branch($0, nested: true) }
                                : (0..<2).map { branch($0, nested: false) }
            #expect(!outs[0][2].requiresGrad)
            let loss = weightedSum(outs[0][0]) + weightedSum(outs[0][1], seed: 3) + weightedSum(outs[1][0], seed: 4)
            loss.backward()
            return outs.flatMap { $0.map(\.value) } + [x, shared, own].map { $0.grad ?? Tensor(zeros: [0]) }
        }
        let plain = run(branches: false), branched = run(branches: true)
        let names = ["h²", "x", "constant", "inner", "dx", "dShared", "dOwn"]
        for (name, (p, q)) in zip(names, zip(branched, plain)) {
            let off = p.shape == q.shape ? p.maxAbsDifference(q) : .infinity
            #expect(off <= 1e-6, "\(name): off by \(off)")
        }
    }

    /// With gradients off, branches build no graph: the outputs are constants.
    @Test func branchesWithoutGradientsReturnConstants() {
        var rng = RandomGenerator(seed: 22)
        let w = randomVariable([4, 4], &rng)
        let outs = GradientMode.withoutGradients { GraphBranches.run(2) { b in [tanh(w) * Float(b + 1)] } }
        #expect(outs.allSatisfy { !$0[0].requiresGrad })
        #expect(outs[1][0].value.maxAbsDifference(outs[0][0].value * 2) == 0)
    }

    /// The branches are built and walked back as parts of the team's work: a node each branch
    /// records notes how many threads its forward and its backward could share (1 inside a part,
    /// whether the part ran on a helper or, with the team busy elsewhere, on the caller). Built
    /// on the caller, or walked back by the outer walk, they would see the team's threads.
    @Test func branchesRunAsPartsOfTheTeamsWorkForwardAndBackward() {
        let w = Variable(Tensor(repeating: 0.5, shape: [2, 2]), requiresGrad: true)
        let seen = ThreadSlots(count: 4)   // forward of branch 0, 1, then backward of branch 0, 1
        let outs = GraphBranches.run(2) { b in
            seen.slots[b] = ThreadTeam.available
            let y = Variable.record(w.value * Float(b + 1), parents: [w]) { g in
                seen.slots[2 + b] = ThreadTeam.available
                return [g * Float(b + 1)]
            }
            return [y]
        }
        (sum(outs[0][0]) + sum(outs[1][0])).backward()
        #expect(w.grad?.data == [3, 3, 3, 3])
        if ThreadTeam.threads >= 2 {
            #expect(seen.values == [1, 1, 1, 1], "threads available (forward 0, 1, backward 0, 1): \(seen.values)")
        } else {
            #expect(!seen.values.contains(-1))
        }
    }

    /// A bidirectional stack on the tape (two LSTM layers, lengths, an initial state, the input
    /// needing its gradient) with its directions as branches on the team and one after the other
    /// inside a team part (one thread): the same bits for the outputs, the state and every
    /// gradient; and within float rounding of the directions run without branches.
    @Test func concurrentDirectionsGiveTheBitsOfOneThread() {
        let run = BidirectionalRun()
        let team = run.results(concurrent: true)
        let result = UncheckedPointer(UnsafeMutablePointer<[Tensor]>.allocate(capacity: 1))
        result.pointer.initialize(to: [])
        defer { result.pointer.deinitialize(count: 1); result.pointer.deallocate() }
        runParts(2) { part in if part == 0 { result.pointer.pointee = run.results(concurrent: true) } }
        let alone = result.pointer.pointee
        #expect(alone.count == team.count && team.count == 4 + run.rnn.parameters.count)
        #expect(alone == team)
        let sequential = run.results(concurrent: false)
        for (i, (p, q)) in zip(team, sequential).enumerated() {
            let off = p.shape == q.shape ? p.maxAbsDifference(q) : .infinity
            #expect(off <= 1e-5, "result \(i): off by \(off)")
        }
    }
}

/// Integers written from several threads, each slot by one thread only (no two threads write
/// one Swift array). -1 until written.
final class ThreadSlots: @unchecked Sendable {
    let slots: UnsafeMutablePointer<Int>
    let count: Int
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: -1, count: count)
    }
    deinit { slots.deallocate() }
    var values: [Int] { Array(UnsafeBufferPointer(start: slots, count: count)) }
}

/// Output, h_n, then the gradients of x, h0 and every parameter, with `rnn.concurrentCells` set.
func recurrenceResults<Cell: RecurrentCell>(_ rnn: Recurrence<Cell>, _ x: Variable, _ state: RecurrentState,
                                            lengths: [Int], concurrent: Bool) -> [Tensor] {
    rnn.concurrentCells = concurrent
    for v in rnn.parameters + [x] + state.components { v.grad = nil }
    let (y, final) = rnn(x, initialState: state, lengths: lengths)
    outputAndStateLoss(y, final).backward()
    return [y.value, final.h.value] + ([x, state.h] + rnn.parameters).map { $0.grad ?? Tensor(zeros: [0]) }
}

/// A bidirectional `Recurrence` of LSTM cells and its inputs, to run on the team or inside a part.
private final class BidirectionalRun: @unchecked Sendable {
    let rnn: Recurrence<LSTMCell>
    let x: Variable, state: RecurrentState

    init() {
        var rng = RandomGenerator(seed: 23)
        rnn = Recurrence(inputSize: 5, numLayers: 2, bidirectional: true, rng: &rng) { i, rng in
            LSTMCell(inputSize: i, hiddenSize: 6, rng: &rng)
        }
        x = randomVariable([7, 3, 5], &rng, name: "x")
        state = RecurrentState(h: randomVariable([4, 3, 6], &rng), c: randomVariable([4, 3, 6], &rng))
    }

    func results(concurrent: Bool) -> [Tensor] {
        recurrenceResults(rnn, x, state, lengths: [7, 4, 6], concurrent: concurrent)
    }
}
