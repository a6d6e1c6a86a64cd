import CKernels

extension LayerStack {
    /// A unidirectional stack's layers at the same time, as a wavefront: layer k+1 steps over
    /// t as soon as layer k has computed its output at t. The lower half of the layers runs on
    /// one thread and the upper half on the other (two layers: one each), so when the team runs
    /// the halves one after the other (one thread, or the team busy elsewhere) the lower half
    /// finishes first and nothing waits for a layer that has not started. Each layer's
    /// operations see one thread (`ThreadTeam.available` is 1 inside a part).
    ///
    /// The graph is built as the layers run, on both threads, and walked back as a whole by
    /// `backward()`; so only the forward pass overlaps. Inter-layer dropout is not supported here
    /// (the caller runs the layers one after the other when it is on).
    ///
    /// - Returns: the last layer's output `[T, B, H]` and each layer's final state components.
    func runWavefront(_ x: Variable, initialRows: [[Variable]]?, lengths: [Int]?,
                      _ runLayer: RunLayerSteps) -> (output: Variable, finals: [[Variable]]) {
        let (steps, batch) = (x.shape[0], x.shape[1])
        var results = [(output: Variable, final: [Variable])?](repeating: nil, count: numLayers)
        withoutActuallyEscaping(runLayer) { runLayer in
            results.withUnsafeMutableBufferPointer { out in
                let job = WavefrontJob(layers: numLayers, steps: steps, batch: batch, inputs: unstack(x),
                                       initialRows: initialRows, lengths: lengths, runLayer: runLayer,
                                       results: out.baseAddress!)
                runParts(2) { part in job.run(part: part) }
            }
        }
        let done = results.map { $0! }
        precondition(done.last!.output.shape == [steps, batch, hiddenSize],
                     "recurrent layer: the last layer returned output \(done.last!.output.shape)")
        return (done.last!.output, done.map(\.final))
    }
}

/// The layers of `runWavefront` as the team's two parts run them.
private struct WavefrontJob: @unchecked Sendable {
    let layers: Int, steps: Int, batch: Int
    let inputs: [Variable]
    let initialRows: [[Variable]]?
    let lengths: [Int]?
    let runLayer: LayerStack.RunLayerSteps
    let results: UnsafeMutablePointer<(output: Variable, final: [Variable])?>
    /// Layer k's step outputs for layer k+1.
    let channels: [StepChannel]
    /// What the caller's thread records: its graph branch and whether gradients are on.
    let branch = ck_graph_branch()
    let recording = GradientMode.isEnabled

    init(layers: Int, steps: Int, batch: Int, inputs: [Variable], initialRows: [[Variable]]?, lengths: [Int]?,
         runLayer: @escaping LayerStack.RunLayerSteps, results: UnsafeMutablePointer<(output: Variable, final: [Variable])?>) {
        (self.layers, self.steps, self.batch, self.inputs) = (layers, steps, batch, inputs)
        (self.initialRows, self.lengths, self.runLayer, self.results) = (initialRows, lengths, runLayer, results)
        channels = (0..<(layers - 1)).map { _ in StepChannel(steps: steps) }
    }

    /// Part 0 runs the lower half of the layers, part 1 the upper half, each in order.
    func run(part: Int) {
        let lower = (layers + 1) / 2
        GraphBranches.inBranch(branch, recording: recording) {
            for layer in (part == 0 ? 0..<lower : lower..<layers) {
                let input: (Int) -> Variable = layer == 0 ? { inputs[$0] } : { channels[layer - 1].value(at: $0) }
                let publish: ((Int, Variable) -> Void)? = layer < layers - 1 ? { channels[layer].publish($1, at: $0) } : nil
                results[layer] = runLayer(layer, steps, batch, input, initialRows.map { rows in rows.map { $0[layer] } },
                                          lengths, publish)
            }
        }
    }
}

/// One layer's step outputs as the next layer reads them: `publish(y, at: t)` on one thread
/// (t = 0, 1, ... in order), `value(at: t)` on another, which waits until step t is in.
final class StepChannel: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Variable?>
    private let count: Int
    private let progress: OpaquePointer
    /// The step `publish` expects next (only the publishing thread touches it).
    private var next = 0

    init(steps: Int) {
        count = steps
        slots = .allocate(capacity: max(steps, 1))
        slots.initialize(repeating: nil, count: max(steps, 1))
        guard let p = ck_progress_create() else { preconditionFailure("StepChannel: out of memory") }
        progress = p
    }

    deinit {
        slots.deinitialize(count: max(count, 1))
        slots.deallocate()
        ck_progress_destroy(progress)
    }

    func publish(_ value: Variable, at t: Int) {
        precondition(t == next && t < count, "StepChannel: step \(t) published, expected step \(next) of \(count)")
        slots[t] = value
        next = t + 1
        ck_progress_publish(progress, next)
    }

    func value(at t: Int) -> Variable {
        precondition(t >= 0 && t < count, "StepChannel: step \(t) of \(count)")
        ck_progress_wait(progress, t + 1)
        return slots[t]!
    }
}
