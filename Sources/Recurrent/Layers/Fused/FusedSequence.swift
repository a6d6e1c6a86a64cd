import CKernels

/// A whole recurrent sequence (one direction of one layer) as one fused operation, with a
/// hand-written backward pass.
///
/// For `x [T, B, I]`, `W_ih [G·H, I]`, `W_hh [G·H, H]`, biases `[G·H]` and state `h0 [B, H]`
/// (`c0 [B, H]` for LSTM), the forward pass computes per step the input projection
/// `x_t·W_ihᵀ + b_ih` (for batches under 8 rows, all steps at once in one product
/// `[T·B, I]·W_ihᵀ` first), one recurrent product `h_{t-1}·W_hhᵀ` and one element-wise kernel for
/// the gates, with PyTorch's equations and addition order `(W_hh h + b_hh) + (W_ih x + b_ih)`
/// (see `CellKind`). The backward pass is hand-written (see `gradients`).
///
/// Work is shared between `ThreadTeam.threads` threads by batch rows or hidden units (`WorkSplit`);
/// products run on packed AVX-512 or AVX2 kernels where available (`StepProduct`, `SequenceMatmul`),
/// the gate non-linearities in vectorized C (`CKernels`).
///
/// Masking: with `lengths`, step `t` leaves row `b` unchanged when `t >= lengths[b]` and writes
/// zeros to its output row. `reverse` runs `t = T-1 … 0` with the same rule, so every sequence
/// is read back to front from its own last element; `hN` is the state after the last processed
/// step (for `reverse`, after `t = 0`). A row of length 0 keeps `h0` (and `c0`) and outputs zeros.
public enum FusedSequence {
    /// Whether the fused layers' matrix products run on the CPU's bf16 matrix units (Intel AMX)
    /// at fp32 accuracy, where blocks allow (`PackedMatrix`): the CPU has them, Linux granted
    /// their state, and `RECURRENT_TILES=0` is not set. Otherwise the multiply-add kernels
    /// (AVX-512, or AVX2 with FMA) and BLAS run them.
    public static var usesMatrixTiles: Bool { PackedMatrix.tilesAvailable }

    /// Activations saved by `forward(…, saveForBackward: true)` for `backward`.
    public final class Context {
        let kind: CellKind
        let steps: Int, batch: Int, inputSize: Int, hiddenSize: Int
        let reverse: Bool
        let lengths: Workspace<Int32>?
        let weightIH: Tensor
        let weightHH: Tensor
        let states: SequenceStates
        let execution: Execution
        /// The symbols of a one-hot input (`forward(…, symbols:)`), or nil.
        let symbols: Workspace<Int32>?
        /// Set by the backward pass, which writes the gate gradients over the saved gates: the
        /// saved values are used up, as PyTorch frees a graph's saved tensors after `backward`.
        var consumed = false

        init(kind: CellKind, steps: Int, batch: Int, inputSize: Int, hiddenSize: Int, reverse: Bool,
             lengths: Workspace<Int32>?, weightIH: Tensor, weightHH: Tensor, states: SequenceStates,
             execution: Execution, symbols: Workspace<Int32>? = nil) {
            self.kind = kind
            self.steps = steps
            self.batch = batch
            self.inputSize = inputSize
            self.hiddenSize = hiddenSize
            self.reverse = reverse
            self.lengths = lengths
            self.weightIH = weightIH
            self.weightHH = weightHH
            self.states = states
            self.execution = execution
            self.symbols = symbols
        }
    }

    /// How a sequence is executed; tests force each variant, callers use `automatic`.
    struct Execution: Sendable {
        /// The thread split, or nil to choose from the sizes and the thread count.
        var split: WorkSplit?
        /// Whether the per-step products may use the packed kernels (else BLAS).
        var packedProducts: Bool

        static let automatic = Execution(split: nil, packedProducts: StepProduct.packedKernelIsFast)

        /// Whether every per-step product runs our packed kernels, which compute each row and
        /// unit alike in any block: then slices may follow the threads' speeds and rows may change
        /// threads mid-loop without changing results (BLAS may sum in another order for another
        /// block size).
        var computesRowsAlike: Bool { packedProducts && StepProduct.packedKernelIsFast }

        func split(batch: Int, hidden: Int, gates: Int, threads: Int, training: Bool) -> WorkSplit {
            split ?? WorkSplit.choose(batch: batch, hidden: hidden, gates: gates, threads: threads, training: training)
        }
    }

    /// Slot of the state read by step `t` (time layout, see `SequenceStates`).
    @inline(__always) static func previousSlot(_ t: Int, reverse: Bool) -> Int { reverse ? t + 1 : t }
    /// Slot of the state written by step `t`.
    @inline(__always) static func nextSlot(_ t: Int, reverse: Bool) -> Int { reverse ? t : t + 1 }
}
