import Testing
@testable import Recurrent

/// Compares Recurrent with PyTorch on the reference files written by scripts/make_fixtures.py.
/// Tolerances (see FixtureLoading.swift): |ours - PyTorch| ≤ 1e-5 · max(1, |PyTorch|) on outputs
/// and optimizer steps, ≤ 1e-4 · max(1, |PyTorch|) on gradients.
@Suite struct PyTorchFixtureFileTests {
    @Test func layerFixtureReadsBackShapesAndLengths() throws {
        let f = try Fixture("layer_lstm_2x_bidirectional")
        #expect(f["input.x"].shape == [5, 3, 3])
        #expect(f["output.y"].shape == [5, 3, 8])
        #expect(f.integers("input.lengths") == [5, 2, 4])
        #expect(f.parameters.count == 16)
        #expect(f.bool("bidirectional"))
        #expect(f.float("hidden_size") == 4)
    }
}
