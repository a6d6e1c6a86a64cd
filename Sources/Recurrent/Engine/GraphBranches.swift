import CKernels

/// Independent parts of a graph, built and differentiated at the same time, one per thread.
///
/// `GraphBranches.run(n) { b in ... }` calls the body for b = 0..<n and returns each call's
/// outputs. With two or more threads available the bodies run on the team's threads (branch b
/// on thread b mod threads), else one after the other; either way each body's operations see
/// one thread (`ThreadTeam.available` is 1 inside them), so running the branches at once or
/// one after the other gives the same bits. The two directions of a bidirectional layer on the
/// tape are such branches (`LayerStack`).
///
/// Every node a branch creates records the branch (`Variable.branch`). The nodes it reads from
/// outside — its inputs, the weights its cells hold — are its boundary. While gradients are
/// recorded, the outputs come back as outputs of one node whose parents are the branches'
/// boundaries: its backward walks each branch's own nodes, again one branch per thread, from its
/// outputs' gradients down to its boundary (`Variable.propagate`), and returns each boundary
/// node's gradient summed over the branches in branch order. So a branch's backward writes
/// nothing outside the branch, even where two branches read the same weight.
///
/// Bodies run at the same time must not share mutable state of their own: a cell's step may
/// read its parameters but not, say, append to an array another branch's cell also appends to.
enum GraphBranches {
    static func run(_ count: Int, _ body: (Int) -> [Variable]) -> [[Variable]] {
        precondition(count >= 0, "GraphBranches.run: negative branch count \(count)")
        if count == 0 { return [] }
        let ids = (0..<count).map { _ in ck_graph_new_branch() }
        let recording = GradientMode.isEnabled
        var outputs = [[Variable]](repeating: [], count: count)
        let parts = min(count, ThreadTeam.available)
        withoutActuallyEscaping(body) { body in
            outputs.withUnsafeMutableBufferPointer { out in
                let job = BranchJob(body: body, outputs: out.baseAddress!)
                runParts(parts) { p in
                    for b in stride(from: p, to: count, by: parts) {
                        job.outputs[b] = inBranch(ids[b], recording: recording) { job.body(b) }
                    }
                }
            }
        }
        return recording ? joined(outputs, ids: ids) : outputs
    }

    /// Runs `body` as part of branch `id` (nodes it creates record it), recording gradients or
    /// not as `recording` says (a helper thread does not see the caller's task-local setting).
    static func inBranch<R>(_ id: Int, recording: Bool, _ body: () -> R) -> R {
        let previous = ck_graph_enter_branch(id)
        defer { ck_graph_enter_branch(previous) }
        return GradientMode.$enabledFlag.withValue(recording) { body() }
    }

    /// The branches' outputs as outputs of one node over their boundaries (see the type's doc).
    private static func joined(_ outputs: [[Variable]], ids: [Int]) -> [[Variable]] {
        // Each branch's boundary in the order a walk from its outputs meets it, then all of them
        // without repeats: the node's parents.
        let boundaries = zip(outputs, ids).map { boundary(below: $0.0, branch: $0.1) }
        var parents: [Variable] = []
        var seen = Set<ObjectIdentifier>()
        for node in boundaries.joined() where seen.insert(ObjectIdentifier(node)).inserted { parents.append(node) }
        if parents.isEmpty { return outputs }

        // The outputs a gradient can reach, as (branch, index in the branch).
        let flowing = outputs.indices.flatMap { b in outputs[b].indices.filter { outputs[b][$0].requiresGrad }.map { (b, $0) } }
        let joined = Variable.recordMultiple(flowing.map { outputs[$0.0][$0.1].value }, parents: parents) { grads in
            // Each branch's walk, from the gradients its outputs received down to its boundary.
            var seeds = [[(Variable, Tensor)]](repeating: [], count: ids.count)
            for ((b, k), g) in zip(flowing, grads) { if let g { seeds[b].append((outputs[b][k], g)) } }
            var reached = [[ObjectIdentifier: Tensor]](repeating: [:], count: ids.count)
            let parts = min(ids.count, ThreadTeam.available)
            reached.withUnsafeMutableBufferPointer { out in
                let walk = WalkJob(seeds: seeds, ids: ids, reached: out.baseAddress!)
                runParts(parts) { p in
                    for b in stride(from: p, to: walk.ids.count, by: parts) { walk.run(b) }
                }
            }
            return parents.map { node in
                let id = ObjectIdentifier(node)
                var sum: Tensor? = nil
                for r in reached {
                    guard let g = r[id] else { continue }
                    if sum == nil { sum = g } else { sum!.add(g) }
                }
                return sum
            }
        }
        var result = outputs
        for ((b, k), v) in zip(flowing, joined) { result[b][k] = v }
        return result
    }

    /// The nodes below `outputs` that need a gradient and that branch `id` did not create, in
    /// the order a depth-first walk meets them (the walk does not go below them).
    private static func boundary(below outputs: [Variable], branch id: Int) -> [Variable] {
        var found: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack = outputs.filter(\.requiresGrad).reversed() as [Variable]
        while let node = stack.popLast() {
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            if node.branch != id { found.append(node); continue }
            for p in node.parents.reversed() where p.requiresGrad { stack.append(p) }
        }
        return found
    }
}

/// What `GraphBranches.run` hands to the team's parts.
private struct BranchJob: @unchecked Sendable {
    let body: (Int) -> [Variable]
    let outputs: UnsafeMutablePointer<[Variable]>
}

/// One branch's backward walk, as the team's parts run it.
private struct WalkJob: @unchecked Sendable {
    /// Per branch, its outputs that received a gradient, with the gradient.
    let seeds: [[(Variable, Tensor)]]
    let ids: [Int]
    let reached: UnsafeMutablePointer<[ObjectIdentifier: Tensor]>

    func run(_ b: Int) {
        if seeds[b].isEmpty { return }
        let id = ids[b]
        reached[b] = Variable.propagate(seeds[b], stoppingAt: { $0.branch != id })
    }
}
