/// The four parameters of one (layer, direction) of a recurrent stack, with G = `kind.gateCount`:
/// `weightIH [G·H, I_k]`, `weightHH [G·H, H]`, `biasIH [G·H]`, `biasHH [G·H]` (PyTorch's
/// `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, suffix `_reverse` for the
/// reverse direction).
struct DirectionParameters {
    /// Replaceable: a language model's layer 0 reads one-hot inputs through `W_ih·Eᵀ`.
    var weightIH: Variable
    let weightHH: Variable
    let biasIH: Variable
    let biasHH: Variable
}
