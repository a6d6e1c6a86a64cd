import CKernels

/// A node of the reverse-mode autodiff graph: a value, its gradient, and how to send a gradient
/// back to the values it was computed from.
///
/// Operations on `Variable`s record themselves as they run (define-by-run). `backward()` orders
/// the recorded nodes topologically — the tape — and walks it in reverse, calling each node's
/// backward closure once with the summed gradient of its output. A fused operation (a whole
/// recurrent layer, softmax cross-entropy) is one node with a hand-written backward.
public final class Variable {
    public var value: Tensor
    /// Accumulated gradient, same shape as `value`; `nil` until a backward pass reaches this node.
    public var grad: Tensor?
    /// Whether gradients flow to (and through) this node.
    public let requiresGrad: Bool
    /// A name for parameters (`weight_ih_l0`); empty for intermediates.
    public var name: String

    let parents: [Variable]
    /// The graph branch that created the node (`GraphBranches`; 0 outside any branch).
    let branch = ck_graph_branch()
    /// Given the gradient of this node's output, the gradient for each parent (nil: none).
    let backwardFn: ((Tensor) -> [GradientTerm?])?

    /// A leaf: an input (`requiresGrad: false`) or a trainable parameter (`requiresGrad: true`).
    public init(_ value: Tensor, requiresGrad: Bool = false, name: String = "") {
        self.value = value
        self.requiresGrad = requiresGrad
        self.name = name
        self.parents = []
        self.backwardFn = nil
    }

    init(value: Tensor, parents: [Variable], backward: @escaping (Tensor) -> [GradientTerm?]) {
        self.value = value
        self.requiresGrad = true
        self.name = ""
        self.parents = parents
        self.backwardFn = backward
    }

    public var shape: [Int] { value.shape }

    /// Records an operation. If no parent needs a gradient (or recording is off) the result is a
    /// plain constant and `backward` is dropped, so inference builds no graph.
    public static func record(_ value: Tensor, parents: [Variable],
                              backward: @escaping (Tensor) -> [Tensor?]) -> Variable {
        recordTerms(value, parents: parents) { g in backward(g).map { $0.map(GradientTerm.tensor) } }
    }

    /// `record` with gradients that may be products left unformed (`GradientTerm`).
    static func recordTerms(_ value: Tensor, parents: [Variable],
                            backward: @escaping (Tensor) -> [GradientTerm?]) -> Variable {
        if GradientMode.isEnabled && parents.contains(where: { $0.requiresGrad }) {
            return Variable(value: value, parents: parents, backward: backward)
        }
        return Variable(value)
    }

    /// The same value cut from the graph (truncated BPTT carries state this way).
    public func detached() -> Variable { Variable(value) }

    /// Back-propagates from this node. `seed` defaults to ones (use a scalar loss).
    public func backward(_ seed: Tensor? = nil) {
        let start = seed ?? Tensor(repeating: 1, shape: value.shape)
        precondition(start.shape == value.shape, "backward: seed shape \(start.shape) does not match \(value.shape)")
        _ = Variable.propagate([(self, start)], stoppingAt: nil)
    }

    /// Walks the graph below the `seeds` (nodes and their gradients) in reverse topological
    /// order, calling each node's backward closure once with its summed gradient; leaves add it
    /// to their `grad`. Nodes with `stoppingAt(node)` are not entered: their summed gradients
    /// are returned instead (a branch's walk stops at what it read from outside, `GraphBranches`).
    static func propagate(_ seeds: [(Variable, Tensor)],
                          stoppingAt stops: ((Variable) -> Bool)?) -> [ObjectIdentifier: Tensor] {
        // Topological order (iterative DFS; graphs over long sequences are deep).
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = seeds.reversed().map { ($0.0, false) }
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            if let stops, stops(node) { order.append(node); continue }
            stack.append((node, true))
            for p in node.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        // Gradients of intermediates live here; leaves accumulate into `grad`. A node's gradient
        // is complete when the walk reaches it (every node that reads it comes before it).
        var pending: [ObjectIdentifier: PendingGradient] = [:]
        for (node, g) in seeds {
            let id = ObjectIdentifier(node)
            if pending[id] == nil { pending[id] = PendingGradient(.tensor(g)) } else { pending[id]!.add(.tensor(g)) }
        }
        var stopped: [ObjectIdentifier: Tensor] = [:]
        for node in order.reversed() {
            let id = ObjectIdentifier(node)
            guard var collected = pending.removeValue(forKey: id) else { continue }
            let g = collected.materialized()
            if let stops, stops(node) { stopped[id] = g; continue }
            guard let fn = node.backwardFn else {
                if node.grad == nil { node.grad = g } else { node.grad!.add(g) }
                continue
            }
            let grads = fn(g)
            precondition(grads.count == node.parents.count, "backward: op returned \(grads.count) gradients for \(node.parents.count) inputs")
            for (p, pg) in zip(node.parents, grads) {
                guard p.requiresGrad, let pg else { continue }
                let shape = pg.shape
                precondition(shape == p.value.shape, "backward: gradient shape \(shape) for input of shape \(p.value.shape)")
                let pid = ObjectIdentifier(p)
                if pending[pid] == nil { pending[pid] = PendingGradient(pg) } else { pending[pid]!.add(pg) }
            }
        }
        return stopped
    }

    /// Clears the gradient.
    public func zeroGrad() { grad = nil }
}

/// Whether operations record themselves for backpropagation.
///
/// The flag is task-local: turning recording off in one task (evaluation, a finite-difference
/// check) never affects a graph being built concurrently in another.
public enum GradientMode {
    @TaskLocal static var enabledFlag = true
    public static var isEnabled: Bool { enabledFlag }

    /// Runs `body` without recording (inference, generation, evaluation).
    public static func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
        try $enabledFlag.withValue(false) { try body() }
    }
}

/// Collects the gradients of the outputs of one multi-output node during a backward pass.
final class MultipleOutputGradients {
    var grads: [Tensor?]
    init(count: Int) { grads = Array(repeating: nil, count: count) }
}

extension Variable {
    /// Records one operation with several outputs (a fused recurrent layer returns `y`, `h_n`,
    /// `c_n`). `backward` receives the gradient of each output (nil where no gradient reached it)
    /// and returns one gradient per parent. The node runs once per backward pass.
    public static func recordMultiple(_ values: [Tensor], parents: [Variable],
                                      backward: @escaping ([Tensor?]) -> [Tensor?]) -> [Variable] {
        guard GradientMode.isEnabled && parents.contains(where: { $0.requiresGrad }) else {
            return values.map { Variable($0) }
        }
        let box = MultipleOutputGradients(count: values.count)
        let empty = Tensor(shape: [0], data: [])
        let hub = Variable(value: empty, parents: parents) { _ in
            let g = box.grads
            box.grads = Array(repeating: nil, count: g.count)
            return backward(g).map { $0.map(GradientTerm.tensor) }
        }
        return values.enumerated().map { i, v in
            Variable(value: v, parents: [hub]) { g in
                if box.grads[i] == nil { box.grads[i] = g } else { box.grads[i]!.add(g) }
                return [.tensor(empty)]
            }
        }
    }
}
