import CKernels

/// What a backward closure sends to one parent: a gradient tensor, or a product `aᵀ·b` left
/// unformed.
///
/// A weight used at every step of a sequence (a cell's `W_ih`, `W_hh` on the generic path)
/// receives one product `g_tᵀ·x_t` per step (`g_t` `[B, G·H]`, `x_t` `[B, I]`). Formed one by one,
/// each is a product with K = B (32 at C1) written into a fresh `[G·H, I]` tensor and then added:
/// two passes over the weight's size per step for little arithmetic. Kept unformed, the terms of
/// one gradient are stacked (`[ΣB, G·H]` and `[ΣB, I]`) and formed as one product with K = ΣB
/// (`PendingGradient`): the same sum, in another order.
///
/// A slice of columns (`columns(x, range)`, how the cells split their gates) sends back
/// `columnBlock`: the block is added into its columns of the sum, instead of a `[B, N]` tensor of
/// zeros around it that is then added in full (an LSTM step's four gates: one zero fill and four
/// block copies instead of four fills, four copies and three full additions). The sums are the
/// same bits: the zeros added before were exact.
enum GradientTerm {
    case tensor(Tensor)
    /// `aᵀ·b` for `a` `[R, M]` and `b` `[R, N]` → `[M, N]`.
    case transposedProduct(Tensor, Tensor)
    /// `[R, total]`, zero but for columns `start..<start + block.shape[1]`, which hold `block`
    /// `[R, w]`.
    case columnBlock(Tensor, start: Int, total: Int)

    /// The shape of the gradient the term stands for.
    var shape: [Int] {
        switch self {
        case .tensor(let t): return t.shape
        case .transposedProduct(let a, let b): return [a.shape.last ?? 0, b.shape.last ?? 0]
        case .columnBlock(let block, _, let total): return [block.shape.first ?? 0, total]
        }
    }
}

/// The gradient of one node while a backward pass collects it: a sum of tensors plus products not
/// yet formed (`GradientTerm.transposedProduct`), formed when their stacked rows reach
/// `stackedRows` (at the latest when the node is reached: `materialized()`).
struct PendingGradient {
    private var sum: Tensor?
    private var products: [(Tensor, Tensor)] = []
    private var rows = 0

    /// Rows of `[R, M]ᵀ·[R, N]` terms stacked before they are formed: stacked operands of twice
    /// the result's size (`R·(M + N) = 2·M·N`), within 256...4096 rows. Each stacked row is copied
    /// once whatever R is; a smaller R keeps the copies in cache, a larger one reads and writes
    /// the `[M, N]` result fewer times. (C1 LSTM on the tape, M = 1024, N = 128 and 256: 512 rows
    /// against 2048, `bench_ab`, 6 rounds, 1.126 fastest / 1.111 median; 256 and 1024 rows like
    /// 512. C2 and C4, 512 against 2048: 1.048 / 0.993 and 0.876 / 0.997, no clear difference.
    /// This rule against 2048 rows: C1 LSTM training 1.049 / 1.066 (8 rounds), C4 1.177 / 1.097.)
    static func stackedRows(m: Int, n: Int) -> Int {
        min(4096, max(256, 2 * m * n / max(1, m + n)))
    }

    init(_ term: GradientTerm) { add(term) }

    mutating func add(_ term: GradientTerm) {
        switch term {
        case .tensor(let t):
            if sum == nil { sum = t } else { sum!.add(t) }
        case .columnBlock(let block, let start, let total):
            precondition(block.rank == 2 && start >= 0 && start + block.shape[1] <= total,
                         "gradient: column block \(block.shape) at \(start) of \(total) columns")
            let rows = block.shape[0], width = block.shape[1]
            if sum == nil { sum = Tensor(zeros: [rows, total]) }
            precondition(sum!.shape == [rows, total], "gradient: column block for \([rows, total]) added to \(sum!.shape)")
            if rows > 0 && width > 0 {
                sum!.data.withUnsafeMutableBufferPointer { d in
                    block.data.withUnsafeBufferPointer { b in
                        ck_add_rows(rows, width, b.baseAddress!, width, d.baseAddress! + start, total)
                    }
                }
            }
        case .transposedProduct(let a, let b):
            precondition(a.rank == 2 && b.rank == 2 && a.shape[0] == b.shape[0],
                         "gradient: product term of \(a.shape)ᵀ and \(b.shape)")
            if let (first, _) = products.first {
                precondition(first.shape[1] == a.shape[1] && products[0].1.shape[1] == b.shape[1],
                             "gradient: product terms \(first.shape)ᵀ·\(products[0].1.shape) and \(a.shape)ᵀ·\(b.shape) differ")
            }
            products.append((a, b))
            rows += a.shape[0]
            if rows >= Self.stackedRows(m: a.shape[1], n: b.shape[1]) { formProducts() }
        }
    }

    /// The summed gradient.
    mutating func materialized() -> Tensor {
        formProducts()
        return sum!
    }

    /// Adds the pending products to `sum` as one product of their stacked rows.
    private mutating func formProducts() {
        guard let (a0, b0) = products.first else { return }
        let m = a0.shape[1], n = b0.shape[1]
        let a = products.count == 1 ? a0 : Tensor(stackingRows: products.map(\.0), width: m, rows: rows)
        let b = products.count == 1 ? b0 : Tensor(stackingRows: products.map(\.1), width: n, rows: rows)
        products = []
        rows = 0
        if sum == nil {
            sum = matmul(a, b, transposeA: true)
        } else {
            matmul(a, b, transposeA: true, accumulatingInto: &sum!)
        }
    }
}

extension Tensor {
    /// The rows of matrices `[R_i, width]` one after another: `[rows = ΣR_i, width]`.
    init(stackingRows parts: [Tensor], width: Int, rows: Int) {
        let data = [Float](unsafeUninitializedCapacity: rows * width) { out, initialized in
            var offset = 0
            for p in parts {
                p.data.withUnsafeBufferPointer { src in
                    if src.count > 0 { (out.baseAddress! + offset).initialize(from: src.baseAddress!, count: src.count) }
                }
                offset += p.count
            }
            initialized = offset
        }
        self.init(shape: [rows, width], data: data)
    }
}
