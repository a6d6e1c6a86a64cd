/// The built-in recurrences, with PyTorch's gate layout.
///
/// `gateCount` is G in the parameter shapes `weight_ih [G·H, I]`, `weight_hh [G·H, H]`:
/// RNN 1, LSTM 4 (rows i, f, g, o), GRU 3 (rows r, z, n).
public enum CellKind: String, Sendable, Codable, CaseIterable {
    case rnnTanh = "rnn_tanh"
    case rnnReLU = "rnn_relu"
    case lstm
    case gru

    public var gateCount: Int {
        switch self {
        case .rnnTanh, .rnnReLU: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }

    /// Whether the state has a cell component `c` (LSTM only).
    public var hasCellState: Bool { self == .lstm }
}
