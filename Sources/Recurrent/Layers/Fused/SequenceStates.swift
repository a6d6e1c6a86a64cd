/// Where one fused sequence keeps its states and activations.
///
/// States are numbered in time layout, slots `0...T`: without `reverse`, step `t` reads slot `t`
/// and writes slot `t+1`; with `reverse`, step `t` reads slot `t+1` and writes slot `t`.
///
/// Saving for backward, the hidden state read by each step is stored next to its input:
/// `inputsAndStates [T, B, I+H]` holds `[x_t | h_prev(t)]` per row, so the weight gradients come
/// from one product `dGᵀ·[X | H_prev]`. The state written by the last step (`h_N`) has its own
/// buffer. Cells keep all `T+1` slots `[T+1, B, H]`; gates `[T, B, G·H]`.
/// For inference, two alternating slots hold `h` (and `c`), and gates use one step's scratch;
/// with `inputsBesideStates` each slot row is `[x | h]` (`[2, B, I+H]`), so a step can take
/// `[x_t | h_{t-1}]` as one operand, as it can from the saved layout.
final class SequenceStates: @unchecked Sendable {
    let steps: Int, batch: Int, inputSize: Int, hidden: Int, gateWidth: Int
    let reverse: Bool
    let saved: Bool
    /// Inputs sit beside the hidden states (always when saved).
    let inputsBesideStates: Bool
    /// Saved: `[T, B, I+H]`. Inference: two `[B, H]` hidden slots (`[B, I+H]` with inputs beside).
    let hiddenStorage: Workspace<Float>
    /// Saved: `h_N [B, H]`.
    let last: Workspace<Float>?
    /// LSTM cells: `[T+1, B, H]` saved, `[2, B, H]` otherwise.
    let cells: Workspace<Float>?
    /// Activated gates (LSTM, GRU): `[T, B, G·H]` saved, `[B, G·H]` otherwise.
    let gates: Workspace<Float>?
    /// GRU `gh_n = W_hn h + b_hn`: `[T, B, H]` saved, `[B, H]` otherwise.
    let hiddenNewGate: Workspace<Float>?

    init(kind: CellKind, steps T: Int, batch B: Int, inputSize I: Int, hidden H: Int, reverse: Bool, saved: Bool,
         inputsBesideStates: Bool = false) {
        steps = T
        batch = B
        inputSize = I
        hidden = H
        gateWidth = kind.gateCount * H
        self.reverse = reverse
        self.saved = saved
        self.inputsBesideStates = saved || inputsBesideStates
        let BH = B * H
        hiddenStorage = Workspace(count: saved ? T * B * (I + H) : 2 * B * (self.inputsBesideStates ? I + H : H))
        last = saved ? Workspace(count: BH) : nil
        cells = kind == .lstm ? Workspace(count: (saved ? T + 1 : 2) * BH) : nil
        gates = kind.gateCount > 1 ? Workspace(count: (saved ? T : 1) * B * gateWidth) : nil
        hiddenNewGate = kind == .gru ? Workspace(count: (saved ? T : 1) * BH) : nil
    }

    /// Row stride of `inputsAndStates` (and of inference slots with inputs beside).
    var inputStateWidth: Int { inputSize + hidden }

    /// The hidden state in slot `s`: pointer to row 0 and row stride.
    @inline(__always) func hidden(_ s: Int) -> (pointer: UnsafeMutablePointer<Float>, stride: Int) {
        let H = hidden, B = batch
        if !saved {
            if inputsBesideStates { return (inputs(s) + inputSize, inputStateWidth) }
            return (hiddenStorage.pointer + (s & 1) * B * H, H)
        }
        let step = reverse ? s - 1 : s   // the step that reads slot s
        if step < 0 || step >= steps { return (last!.pointer, H) }
        return (hiddenStorage.pointer + step * B * inputStateWidth + inputSize, inputStateWidth)
    }

    /// Row 0 of the input beside slot `s` of an inference layout with inputs beside (row stride
    /// `inputStateWidth`); saved layouts hold each step's input beside the state it reads.
    @inline(__always) func inputs(_ s: Int) -> UnsafeMutablePointer<Float> {
        precondition(inputsBesideStates && !saved)
        return hiddenStorage.pointer + (s & 1) * batch * inputStateWidth
    }

    /// The cell state in slot `s` (row stride H).
    @inline(__always) func cell(_ s: Int) -> UnsafeMutablePointer<Float> {
        cells!.pointer + (saved ? s : s & 1) * batch * hidden
    }

    /// Activated gates of step `t` (row stride G·H).
    @inline(__always) func gates(_ t: Int) -> UnsafeMutablePointer<Float> {
        gates!.pointer + (saved ? t : 0) * batch * gateWidth
    }

    /// GRU `gh_n` of step `t` (row stride H).
    @inline(__always) func newGate(_ t: Int) -> UnsafeMutablePointer<Float> {
        hiddenNewGate!.pointer + (saved ? t : 0) * batch * hidden
    }
}
