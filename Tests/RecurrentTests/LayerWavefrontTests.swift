import Dispatch
import Testing
@testable import Recurrent

/// A unidirectional stack's layers as a wavefront (`LayerStack.runWavefront`).
@Suite struct LayerWavefrontTests {
    /// Three LSTM layers with lengths, an initial state and an input that needs its gradient,
    /// with the layers as a wavefront and one after the other: the same bits for the output and
    /// the state, the gradients within float rounding (the backward walk meets a weight's
    /// per-step terms in another order: layer k+1 reads layer k's steps directly instead of
    /// through the stacked output). Each layer's steps ran as a part of the team's work (one
    /// thread available) only in the wavefront.
    @Test func wavefrontGivesTheResultsOfLayersInTurn() {
        let run = StackRun(layers: 3)
        let wavefront = run.results(concurrent: true)
        let wavefrontThreads = run.threadsSeen()
        let inTurn = run.results(concurrent: false)
        #expect(wavefront.count == 4 + run.rnn.parameters.count)
        #expect(wavefront[0] == inTurn[0] && wavefront[1] == inTurn[1])
        for (i, (p, q)) in zip(wavefront, inTurn).enumerated() {
            let off = p.shape == q.shape ? p.maxAbsDifference(q) : .infinity
            #expect(off <= 1e-6 * max(1, q.data.map { abs($0) }.max() ?? 0), "result \(i): off by \(off)")
        }
        if ThreadTeam.threads >= 2 {
            #expect(wavefrontThreads == [1, 1, 1], "threads available in each layer: \(wavefrontThreads)")
            #expect(run.threadsSeen() == [ThreadTeam.threads, ThreadTeam.threads, ThreadTeam.threads])
        }
    }

    /// With the team busy elsewhere, the wavefront's two halves run one after the other on the
    /// caller: the lower half first, so no layer waits for one that has not started (with the
    /// layers dealt out in turn, layer 2 would wait for layer 1 forever).
    @Test(.timeLimit(.minutes(1))) func wavefrontFinishesWhenTheTeamIsBusy() {
        let run = StackRun(layers: 3)
        let alone = run.results(concurrent: false)
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = DispatchGroup()
        DispatchQueue.global().async(group: holder) {
            runParts(2) { part in
                if part == 0 { holding.signal(); release.wait() }
            }
        }
        holding.wait()
        let busy = run.results(concurrent: true)
        release.signal()
        holder.wait()
        #expect(busy[0] == alone[0] && busy[1] == alone[1])
        for (i, (p, q)) in zip(busy, alone).enumerated() {
            let off = p.shape == q.shape ? p.maxAbsDifference(q) : .infinity
            #expect(off <= 1e-6 * max(1, q.data.map { abs($0) }.max() ?? 0), "result \(i): off by \(off)")
        }
    }
}

/// A stack of LSTM cells that note how many threads each layer's steps could share.
private final class StackRun: @unchecked Sendable {
    let rnn: Recurrence<ObservedLSTMCell>
    let x: Variable, state: RecurrentState
    let seen: ThreadSlots

    init(layers: Int) {
        var rng = RandomGenerator(seed: 31)
        let seen = ThreadSlots(count: layers)
        var next = 0
        rnn = Recurrence(inputSize: 5, numLayers: layers, rng: &rng) { i, rng in
            defer { next += 1 }
            return ObservedLSTMCell(LSTMCell(inputSize: i, hiddenSize: 6, rng: &rng), layer: next, seen: seen)
        }
        self.seen = seen
        x = randomVariable([9, 3, 5], &rng, name: "x")
        state = RecurrentState(h: randomVariable([layers, 3, 6], &rng), c: randomVariable([layers, 3, 6], &rng))
    }

    func results(concurrent: Bool) -> [Tensor] {
        recurrenceResults(rnn, x, state, lengths: [9, 4, 7], concurrent: concurrent)
    }

    /// The threads each layer's last step could share.
    func threadsSeen() -> [Int] { seen.values }
}

/// An LSTM cell that notes `ThreadTeam.available` at each step (each layer its own slot).
private final class ObservedLSTMCell: RecurrentCell {
    let cell: LSTMCell, layer: Int, seen: ThreadSlots
    init(_ cell: LSTMCell, layer: Int, seen: ThreadSlots) { (self.cell, self.layer, self.seen) = (cell, layer, seen) }
    var inputSize: Int { cell.inputSize }
    var hiddenSize: Int { cell.hiddenSize }
    func namedParameters() -> [(String, Variable)] { cell.namedParameters() }
    func zeroState(batchSize: Int) -> LSTMCell.State { cell.zeroState(batchSize: batchSize) }
    func callAsFunction(_ x: Variable, _ state: LSTMCell.State) -> LSTMCell.State {
        seen.slots[layer] = ThreadTeam.available
        return cell(x, state)
    }
    func output(of state: LSTMCell.State) -> Variable { cell.output(of: state) }
    func components(of state: LSTMCell.State) -> [Variable] { cell.components(of: state) }
    func state(from components: [Variable]) -> LSTMCell.State { cell.state(from: components) }
}
