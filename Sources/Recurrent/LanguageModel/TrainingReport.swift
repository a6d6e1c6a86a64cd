import Foundation

/// The content of `report.html` and its rendering as one self-contained page (inline CSS, SVG,
/// data and script; nothing fetched, so it opens offline).
public struct TrainingReport {
    public var title: String
    /// Name → value rows shown at the top (corpus, steps, best validation loss, speed, ...).
    public var summary: [(String, String)]
    public var hyperparameters: [(String, String)]
    public var trainingLoss: [(step: Int, loss: Double)]
    public var validationLoss: [(step: Int, loss: Double)]
    public var samples: [(step: Int, text: String)]
    public var activations: CellActivations?
    public var interpretableCells: [InterpretableCell]
    /// The cell shown when the page opens.
    public var selectedLayer: Int
    public var selectedCell: Int

    public init(title: String, summary: [(String, String)] = [], hyperparameters: [(String, String)] = [],
                trainingLoss: [(step: Int, loss: Double)] = [], validationLoss: [(step: Int, loss: Double)] = [],
                samples: [(step: Int, text: String)] = [], activations: CellActivations? = nil,
                interpretableCells: [InterpretableCell] = [], selectedLayer: Int = 0, selectedCell: Int = 0) {
        self.title = title
        self.summary = summary
        self.hyperparameters = hyperparameters
        self.trainingLoss = trainingLoss
        self.validationLoss = validationLoss
        self.samples = samples
        self.activations = activations
        self.interpretableCells = interpretableCells
        self.selectedLayer = selectedLayer
        self.selectedCell = selectedCell
    }

    /// The loss chart: raw training loss (faint), its moving average, validation loss.
    var lossChart: SVGLineChart {
        let raw = TrainingReport.downsample(trainingLoss.map { (Double($0.step), $0.loss) }, to: 1500)
        var smoothed: [(x: Double, y: Double)] = []
        var ema: Double?
        let beta = trainingLoss.count > 200 ? 0.98 : 0.9
        for p in trainingLoss {
            ema = ema.map { beta * $0 + (1 - beta) * p.loss } ?? p.loss
            smoothed.append((Double(p.step), ema!))
        }
        return SVGLineChart(series: [
            .init(name: "training loss", color: "#4c78a8", points: raw, width: 1, opacity: 0.25),
            .init(name: "training (moving average)", color: "#4c78a8", points: TrainingReport.downsample(smoothed, to: 1500)),
            .init(name: "validation loss", color: "#e45756", points: validationLoss.map { (Double($0.step), $0.loss) },
                  dots: validationLoss.count <= 60),
        ], xLabel: "step", yLabel: "nats per character")
    }

    /// Bucket means so a long run draws at most `limit` points.
    static func downsample(_ points: [(x: Double, y: Double)], to limit: Int) -> [(x: Double, y: Double)] {
        guard points.count > limit else { return points }
        let per = (points.count + limit - 1) / limit
        return stride(from: 0, to: points.count, by: per).map { start in
            let chunk = points[start..<min(start + per, points.count)]
            return (chunk.map(\.x).reduce(0, +) / Double(chunk.count), chunk.map(\.y).reduce(0, +) / Double(chunk.count))
        }
    }

    public var html: String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        h += "<title>\(escapeHTML(title))</title><style>\(TrainingReport.css)</style></head><body>\n"
        h += "<h1>\(escapeHTML(title))</h1>\n"
        h += TrainingReport.table(summary, cssClass: "summary")
        h += "<h2>Loss</h2>\n" + lossChart.svg + "\n"
        h += "<h2>Hyperparameters</h2>\n" + TrainingReport.table(hyperparameters, cssClass: "hyper")
        h += "<h2>Samples over time</h2>\n"
        if samples.isEmpty { h += "<p>No samples recorded.</p>\n" }
        for s in samples {
            h += "<div class=\"sample\"><div class=\"step\">step \(grouped(s.step))</div><pre>\(escapeHTML(s.text))</pre></div>\n"
        }
        h += "<h2>What the cells learned</h2>\n"
        if let a = activations {
            h += cellSection(a)
        } else {
            h += "<p>No activation data (the run has no checkpoint yet).</p>\n"
        }
        return h + "</body></html>\n"
    }

    private func cellSection(_ a: CellActivations) -> String {
        let layer = min(max(selectedLayer, 0), a.layerCount - 1)
        let cell = min(max(selectedCell, 0), a.cellCount - 1)
        var h = "<p>A validation passage coloured by the activation (\(escapeHTML(a.quantity))) of one cell: "
        h += "<span class=\"neg\">blue</span> negative, <span class=\"pos\">red</span> positive, white near zero. "
        h += "Hover a character to read the value.</p>\n"
        h += "<div class=\"controls\"><label>layer <select id=\"layer\">"
        for l in 0..<a.layerCount { h += "<option value=\"\(l)\"\(l == layer ? " selected" : "")>\(l + 1)</option>" }
        h += "</select></label> <label>cell <input id=\"cell\" type=\"number\" min=\"0\" max=\"\(a.cellCount - 1)\" value=\"\(cell)\"></label>"
        h += " <span id=\"which\">layer \(layer + 1), cell \(cell)</span></div>\n"
        h += "<div id=\"passage\" class=\"passage\">"
        for (t, s) in a.symbols.enumerated() {
            let v = a.value(layer: layer, step: t, cell: cell)
            let shown = s == "\n" ? "↵\n" : s == "\t" ? "⇥\t" : s
            h += "<span style=\"background:\(TrainingReport.color(v))\" title=\"\(fixed(Double(v), 3))\">\(escapeHTML(shown))</span>"
        }
        h += "</div>\n"
        if !interpretableCells.isEmpty {
            h += "<h3>Cells that follow the text</h3>\n<p>Correlation of each cell's activation with simple properties "
            h += "of the passage; click a row to show that cell.</p>\n<table class=\"cells\"><tr><th>layer</th><th>cell</th>"
            h += "<th>follows</th><th>correlation</th><th>saturated</th></tr>\n"
            for c in interpretableCells {
                h += "<tr class=\"pick\" data-layer=\"\(c.layer)\" data-cell=\"\(c.cell)\"><td>\(c.layer + 1)</td><td>\(c.cell)</td>"
                h += "<td>\(escapeHTML(c.feature))</td><td>\(fixed(c.correlation, 2))</td><td>\(Int((c.saturation * 100).rounded()))%</td></tr>\n"
            }
            h += "</table>\n"
        }
        let quantized = a.values.map { v -> UInt8 in UInt8(bitPattern: Int8(max(-127, min(127, (v * 127).rounded())))) }
        h += "<script>const ACT={layers:\(a.layerCount),steps:\(a.length),cells:\(a.cellCount),data:\"\(Data(quantized).base64EncodedString())\"};\n"
        h += TrainingReport.script + "</script>\n"
        return h
    }

    /// Background colour for an activation in [−1, 1].
    static func color(_ v: Float) -> String {
        let a = fixed(Double(min(abs(v), 1)), 2)
        return v >= 0 ? "rgba(214,39,40,\(a))" : "rgba(31,119,180,\(a))"
    }

    static func table(_ rows: [(String, String)], cssClass: String) -> String {
        guard !rows.isEmpty else { return "" }
        var h = "<table class=\"\(cssClass)\">"
        for (k, v) in rows { h += "<tr><th>\(escapeHTML(k))</th><td>\(escapeHTML(v))</td></tr>" }
        return h + "</table>\n"
    }

    static let css = """
    body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
    h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
    table{border-collapse:collapse;margin:.5em 0}th,td{padding:.2em .8em;text-align:left;border-bottom:1px solid #eee}
    th{font-weight:600;color:#555}.sample{margin:.6em 0}.sample .step{color:#777;font-size:.85em}
    pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;margin:.2em 0}
    .passage{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;line-height:1.5;border:1px solid #ddd;padding:.6em}
    .passage span{border-radius:2px}.pos{color:#d62728;font-weight:600}.neg{color:#1f77b4;font-weight:600}
    .controls{margin:.6em 0}.controls input{width:5em}tr.pick{cursor:pointer}tr.pick:hover{background:#f0f4ff}
    svg.chart{max-width:100%;height:auto}
    """

    static let script = """
    (function(){
    const raw=atob(ACT.data);
    const spans=document.getElementById('passage').children;
    const layerSel=document.getElementById('layer'),cellIn=document.getElementById('cell'),which=document.getElementById('which');
    function value(l,t,c){let b=raw.charCodeAt((l*ACT.steps+t)*ACT.cells+c);if(b>127)b-=256;return b/127;}
    function paint(){
      const l=+layerSel.value;let c=Math.max(0,Math.min(ACT.cells-1,parseInt(cellIn.value)||0));cellIn.value=c;
      which.textContent='layer '+(l+1)+', cell '+c;
      for(let t=0;t<spans.length;t++){const v=value(l,t,c),a=Math.abs(v).toFixed(2);
        spans[t].style.background=v>=0?'rgba(214,39,40,'+a+')':'rgba(31,119,180,'+a+')';spans[t].title=v.toFixed(3);}
    }
    layerSel.addEventListener('change',paint);cellIn.addEventListener('input',paint);
    for(const row of document.querySelectorAll('tr.pick')){row.addEventListener('click',function(){
      layerSel.value=row.dataset.layer;cellIn.value=row.dataset.cell;paint();
      document.getElementById('passage').scrollIntoView({behavior:'smooth',block:'center'});});}
    })();
    """
}
