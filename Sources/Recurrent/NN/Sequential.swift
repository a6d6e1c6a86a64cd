/// Layers applied in order, PyTorch's `nn.Sequential`: `y = f_{n-1}(… f_1(f_0(x)))`.
///
/// Keys are the position of the layer and the layer's own key: `0.weight`, `0.bias`, `2.weight`, …
/// (a layer without parameters, such as `Activation`, keeps its position but adds no key).
public final class Sequential: Layer {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) {
        self.layers = layers
    }

    public convenience init(_ layers: any Layer...) {
        self.init(layers)
    }

    public func namedParameters() -> [(String, Variable)] {
        layers.enumerated().flatMap { i, layer in prefixed(String(i), layer) }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        layers.reduce(x) { y, layer in layer(y) }
    }
}
