import CKernels

/// The weights a sequence on the tape multiplies at every step, packed once for all its steps.
///
/// A cell stepped by the generic runner (`runCell`) calls `linear(x_t, weight: W, bias: b)` at
/// every step with the same `W` `[N, K]`. Through BLAS every such product packs `W` again: at C1
/// (T = 100, B = 32, I = 128, H = 256) OpenBLAS's copy of `Wᵀ` took 19% of an LSTM inference
/// step, the products themselves 27%. While `runCell` runs, `linear` takes the weight's
/// `StepProduct` from this scope instead: `W` packed once as the fused layers pack theirs (for
/// one row, read in place by `ck_gemv_rows`), and for training packed once more for the
/// backward product `g·W`. Each output element is computed alike whichever thread computes it,
/// so the result does not depend on the thread count.
///
/// An entry is used only while the weight still holds the very tensor it was packed from (its
/// storage is kept, so writing to the weight moves it to new storage and the entry is packed
/// again). Scopes are task-local: concurrent sequences never share one. (`@unchecked Sendable`
/// because a task started inside a cell's step would inherit the scope; the runner starts none.)
final class SequenceWeights: @unchecked Sendable {
    @TaskLocal static var current: SequenceWeights?

    private struct Key: Hashable {
        let weight: ObjectIdentifier
        let oneRow: Bool
    }

    private struct Entry {
        /// Keeps the weight alive (its identifier stays unique) and the packed tensor's storage.
        let weight: Variable
        let value: Tensor
        let product: StepProduct
        let backward: Bool
    }

    private var entries: [Key: Entry] = [:]

    /// Weights packed in this scope (one entry per weight and row kind).
    var packedCount: Int { entries.count }

    /// Runs `body` with a scope (the current one when there is one already).
    static func during<R>(_ body: () throws -> R) rethrows -> R {
        if current != nil || !StepProduct.packedKernelIsFast { return try body() }
        return try $current.withValue(SequenceWeights()) { try body() }
    }

    /// Whether products with `weight` go through this scope: a trainable parameter (a leaf that
    /// requires a gradient, the same at every step) of rank 2. A computed matrix is new at every
    /// step (and a leaf too while gradients are off): packing it would cost what BLAS's own
    /// packing costs, and its entry would keep it alive until the scope ends.
    func packs(_ weight: Variable) -> Bool {
        weight.requiresGrad && weight.backwardFn == nil && weight.value.rank == 2 && weight.value.count > 0
    }

    /// The products with `weight` `[N, K]` for blocks of `rows` rows: forward `x·Wᵀ` and, with
    /// `backward`, `g·W`; and the tensor they read (keep it while using them).
    func product(for weight: Variable, rows: Int, backward: Bool) -> (StepProduct, Tensor) {
        let key = Key(weight: ObjectIdentifier(weight), oneRow: rows == 1)
        if let entry = entries[key], entry.backward || !backward, entry.value.sharesStorage(with: weight.value) {
            return (entry.product, entry.value)
        }
        let value = weight.value
        let product = value.data.withUnsafeBufferPointer { w in
            StepProduct(weight: w.baseAddress!, gates: 1, hidden: value.shape[0], inputs: value.shape[1],
                        batch: rows, forward: true, backward: backward, packed: true, threads: ThreadTeam.available)
        }
        entries[key] = Entry(weight: weight, value: value, product: product, backward: backward)
        return (product, value)
    }
}

/// `linear(x, weight:, bias:)` with the weight's packed products from `scope`: `x` `[M, K]`,
/// `weight` `[N, K]`, `bias` `[N]` → `x·Wᵀ + b` `[M, N]`. The gradient of `x` is `g·W` by the
/// packed backward product; the weight's stays an unformed term `gᵀ·x` (`GradientTerm`).
func linear(_ x: Variable, weight: Variable, bias: Variable?, packedIn scope: SequenceWeights) -> Variable {
    let M = x.shape[0], K = x.shape[1], N = weight.shape[0]
    let inputGradient = GradientMode.isEnabled && x.requiresGrad
    let (product, weightValue) = scope.product(for: weight, rows: M, backward: inputGradient)
    let xv = x.value
    var out = Tensor(shape: [M, N], data: [Float](unsafeUninitializedCapacity: M * N) { o, initialized in
        xv.data.withUnsafeBufferPointer { px in product.forwardAll(rows: M, a: px.baseAddress!, out: o.baseAddress!) }
        initialized = M * N
    })
    if let bias { addToEveryRow(&out, bias.value) }
    return Variable.recordTerms(out, parents: bias.map { [x, weight, $0] } ?? [x, weight]) { g in
        var gx: Tensor? = nil
        if inputGradient {
            var d = Tensor(zeros: [M, K])
            g.data.withUnsafeBufferPointer { pg in
                d.data.withUnsafeMutableBufferPointer { pd in
                    withExtendedLifetime(weightValue) { product.backwardAll(rows: M, g: pg.baseAddress!, out: pd.baseAddress!) }
                }
            }
            gx = d
        }
        let terms: [GradientTerm?] = [gx.map(GradientTerm.tensor), .transposedProduct(g, xv)]
        return bias == nil ? terms : terms + [.tensor(columnSums(g))]
    }
}

extension StepProduct {
    /// Threads for a product of `rows` rows with `W` `[N, K]`: from 2²⁰ multiply-adds, and for
    /// one row from 512 KB of weights, which a product of one row reads at L2 speed for little
    /// arithmetic (each thread then keeps its slice in its own L2 from step to step).
    static func parts(_ rows: Int, _ N: Int, _ K: Int) -> Int {
        rows == 1 && N * K >= 1 << 17 ? ThreadTeam.available : productParts(rows, N, K, threads: ThreadTeam.available)
    }

    /// `out = a·Wᵀ` for `rows` rows of `a` `[rows, K]` (row stride K) into `out` `[rows, N]`,
    /// shared between the team's threads by 32-unit slices from 2²⁰ multiply-adds (slices that
    /// follow the threads' speeds, `runBalancedParts`: each unit comes out alike in any slice).
    func forwardAll(rows: Int, a: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let N = hidden, K = inputs
        let parts = N % 32 == 0 ? min(Self.parts(rows, N, K), N / 32) : 1
        let job = ProductJob(a: a, out: out)
        runBalancedParts(parts, count: N, quantum: 32) { units in
            self.forward(rows: rows, units: units, a: job.a, lda: K, out: job.out)
        }
    }

    /// `out += g·W` for `rows` rows of `g` `[rows, N]` into `out` `[rows, K]`, shared between the
    /// team's threads by 32-column slices from 2²⁰ multiply-adds (following the threads' speeds).
    func backwardAll(rows: Int, g: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let N = hidden, K = inputs
        let parts = min(Self.parts(rows, N, K), max(1, K / 32))
        let job = ProductJob(a: g, out: out)
        runBalancedParts(parts, count: K, quantum: 32) { columns in
            self.backward(rows: rows, units: columns, dG: job.a, dh: job.out)
        }
    }
}

/// The operands a `StepProduct` hands to the team's parts.
private struct ProductJob: @unchecked Sendable {
    let a: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
}
