/// A module that maps one Variable to another, `y = f(x)`, so that layers can be chained
/// (`Sequential`). Parameters, if any, are listed by `namedParameters()` as for every `Module`.
public protocol Layer: Module {
    func callAsFunction(_ x: Variable) -> Variable
}
