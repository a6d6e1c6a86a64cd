import Testing
import Recurrent
import Foundation

/// The library example from README.md, verbatim inside `trainSineLSTM`, so the README cannot rot.
@Suite struct ReadmeExampleTests {
    @Test func readmeExampleLearnsToPredictASineWave() {
        let (first, last) = trainSineLSTM()
        #expect(last < first * 0.2, "loss went from \(first) to \(last)")
    }
}

func trainSineLSTM() -> (first: Float, last: Float) {
    // README example begins
    var rng = RandomGenerator(seed: 42)
    let (T, B, H) = (20, 8, 32)
    let lstm = RecurrentLayer(kind: .lstm, inputSize: 1, hiddenSize: H, rng: &rng)
    let head = Linear(inputSize: H, outputSize: 1, rng: &rng)
    let optimizer = Adam(parameters: lstm.parameters + head.parameters, learningRate: 1e-2)

    // Each of B sequences is a sine wave with its own phase; predict the next value.
    func batch(_ step: Int) -> (x: Variable, y: Tensor) {
        var x = Tensor(zeros: [T, B, 1]), y = Tensor(zeros: [T * B, 1])
        for b in 0..<B {
            let phase = Float((step * B + b) % 97) * 0.3
            for t in 0..<T {
                x[t, b, 0] = sin(phase + 0.3 * Float(t))
                y[t * B + b, 0] = sin(phase + 0.3 * Float(t + 1))
            }
        }
        return (Variable(x), y)
    }

    var losses: [Float] = []
    for step in 0..<150 {
        let (x, y) = batch(step)
        let (output, _) = lstm(x)                                   // [T, B, H]
        let prediction = head(reshape(output, [T * B, H]))          // [T·B, 1]
        let loss = mseLoss(prediction, y)
        optimizer.zeroGradients()
        loss.backward()
        clipGradientNorm(optimizer.parameters, maxNorm: 1)
        optimizer.step()
        losses.append(loss.value.scalar)
    }
    print("MSE: first \(losses[0]), last \(losses.last!)")
    // README example ends
    return (losses[0], losses.suffix(10).reduce(0, +) / 10)
}
