/// The state of a whole recurrent layer stack in PyTorch's layout: `h` (`h_n` / `h_0`) and, for
/// LSTM, `c` (`c_n` / `c_0`), each `[L·D, B, H]` with row `layer·D + direction` (D = 2 when
/// bidirectional, direction 1 = reverse).
///
/// A cell whose state has more parts keeps them all in `components` (`h` first, then `c`, ...).
///
/// Truncated back-propagation through time: feed the state returned for one chunk, `detached()`,
/// as the initial state of the next chunk. Values carry over; gradients stop at the cut, so each
/// backward pass only spans its own chunk.
public struct RecurrentState {
    /// Every state component, each `[L·D, B, H]`, in the cell's order (`h` first).
    public var components: [Variable]

    public init(h: Variable, c: Variable? = nil) {
        components = c.map { [h, $0] } ?? [h]
    }

    public init(components: [Variable]) {
        precondition(!components.isEmpty, "RecurrentState: needs at least h")
        self.components = components
    }

    /// Hidden state `[L·D, B, H]`.
    public var h: Variable {
        get { components[0] }
        set { components[0] = newValue }
    }

    /// Cell state `[L·D, B, H]` (LSTM), else nil.
    public var c: Variable? {
        get { components.count > 1 ? components[1] : nil }
        set {
            if let newValue {
                if components.count > 1 { components[1] = newValue } else { components.append(newValue) }
            } else if components.count > 1 {
                components.remove(at: 1)
            }
        }
    }

    /// The same values cut from the graph (truncated BPTT).
    public func detached() -> RecurrentState {
        RecurrentState(components: components.map { $0.detached() })
    }
}
