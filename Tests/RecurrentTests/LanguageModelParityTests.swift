import Foundation
import Testing
@testable import Recurrent

/// Checkpoints written by PyTorch (scripts/make_fixtures.py: `Embedding -> LSTM/GRU/RNN
/// (batch_first) -> Linear` saved with `safetensors.torch.save_file`, plus a hand-written
/// config.json) load in Recurrent and give PyTorch's logits (≤1e-5 relative).
@Suite struct LanguageModelParityTests {
    @Test(arguments: ["charlm_lstm", "charlm_gru", "charlm_rnn_relu"])
    func pytorchCheckpointGivesPyTorchLogits(_ name: String) throws {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let model = try LanguageModelCheckpoint.loadModel(folder.appendingPathComponent(name).path)
        let fixture = try Fixture(name + "_expected")
        let indices = fixture["input.indices"]                 // [B, T] batch-first
        let expected = fixture["output.logits"]                // [B, T, V]
        let (b, t, v) = (indices.shape[0], indices.shape[1], expected.shape[2])
        #expect(model.vocabulary.count == v)
        // Recurrent is time-major: row t·B + b.
        var inputs = [Int](repeating: 0, count: t * b)
        for i in 0..<b { for s in 0..<t { inputs[s * b + i] = Int(indices[i, s]) } }
        for training in [false, true] {
            let logits: Tensor
            if training {
                // The training path (tape, fused nodes, folded embedding when it pays).
                model.training = false
                var generator = RandomGenerator(seed: 0)
                logits = model(inputs, steps: t, batch: b, state: nil, dropoutGenerator: &generator).logits.value
            } else {
                logits = model.predict(inputs, steps: t, batch: b, state: nil).logits
            }
            var batchFirst = Tensor(zeros: [b, t, v])
            for i in 0..<b { for s in 0..<t { for k in 0..<v { batchFirst[i, s, k] = logits[s * b + i, k] } } }
            expectMatches(batchFirst, expected, tolerance: outputTolerance, "\(name) logits (tape path: \(training))")
        }
    }
}
