/// A line chart as inline SVG (no external references): several series of (x, y) points on
/// shared axes with "nice" ticks, a legend, and optional dots.
struct SVGLineChart {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
        var width: Double = 2
        var opacity: Double = 1
        var dots: Bool = false
    }

    var series: [Series]
    var xLabel: String
    var yLabel: String
    var width = 760.0
    var height = 320.0

    var svg: String {
        let left = 60.0, right = 20.0, top = 16.0, bottom = 44.0
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var out = "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(escapeHTML(yLabel)) by \(escapeHTML(xLabel))\">"
        out += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"#fff\" stroke=\"#ccc\"/>"
        guard let x0 = all.map(\.x).min(), let x1 = all.map(\.x).max(),
              let y0 = all.map(\.y).min(), let y1 = all.map(\.y).max() else {
            return out + "<text x=\"\(n(left + 10))\" y=\"\(n(top + 24))\">no data yet</text></svg>"
        }
        let xTicks = SVGLineChart.ticks(x0, x1 == x0 ? x0 + 1 : x1)
        let yTicks = SVGLineChart.ticks(y0, y1 == y0 ? y0 + 0.1 : y1)
        let xa = xTicks.first!, xb = xTicks.last!, ya = yTicks.first!, yb = yTicks.last!
        func px(_ x: Double) -> Double { left + (x - xa) / (xb - xa) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - ya) / (yb - ya) * plotH }
        for t in yTicks {
            out += "<line x1=\"\(n(left))\" x2=\"\(n(left + plotW))\" y1=\"\(n(py(t)))\" y2=\"\(n(py(t)))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(n(left - 6))\" y=\"\(n(py(t) + 4))\" text-anchor=\"end\" font-size=\"11\">\(SVGLineChart.label(t))</text>"
        }
        for t in xTicks {
            out += "<line x1=\"\(n(px(t)))\" x2=\"\(n(px(t)))\" y1=\"\(n(top))\" y2=\"\(n(top + plotH))\" stroke=\"#f3f3f3\"/>"
            out += "<text x=\"\(n(px(t)))\" y=\"\(n(top + plotH + 16))\" text-anchor=\"middle\" font-size=\"11\">\(SVGLineChart.label(t))</text>"
        }
        out += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 6))\" text-anchor=\"middle\" font-size=\"12\">\(escapeHTML(xLabel))</text>"
        out += "<text x=\"14\" y=\"\(n(top + plotH / 2))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 \(n(top + plotH / 2)))\">\(escapeHTML(yLabel))</text>"
        for s in series where !s.points.isEmpty {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = pts.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(n(s.width))\" stroke-opacity=\"\(n(s.opacity))\" points=\"\(path)\"/>"
            if s.dots {
                for p in pts { out += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"3\" fill=\"\(s.color)\"/>" }
            }
        }
        var ly = top + 14
        for s in series where !s.points.isEmpty {
            out += "<line x1=\"\(n(left + plotW - 170))\" x2=\"\(n(left + plotW - 150))\" y1=\"\(n(ly - 4))\" y2=\"\(n(ly - 4))\" stroke=\"\(s.color)\" stroke-width=\"3\" stroke-opacity=\"\(n(max(s.opacity, 0.5)))\"/>"
            out += "<text x=\"\(n(left + plotW - 144))\" y=\"\(n(ly))\" font-size=\"12\">\(escapeHTML(s.name))</text>"
            ly += 16
        }
        return out + "</svg>"
    }

    /// Round tick values (1, 2 or 5 × 10^k apart) covering `[lo, hi]`.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        let raw = (hi - lo) / Double(count)
        var p = 1.0
        while p > raw { p /= 10 }
        while p * 10 <= raw { p *= 10 }
        let mantissa = [1.0, 2.0, 5.0, 10.0].first { $0 * p >= raw } ?? 10
        let step = mantissa * p
        // Tick k is k·mantissa·10^e, divided by an exact power of ten when e < 0 so that labels
        // such as 1.4 come out exact instead of 1.4000000000000001.
        let divisor = p < 1 ? (1 / p).rounded() : 1
        let multiplier = p < 1 ? mantissa : step
        func tick(_ k: Int) -> Double { Double(k) * multiplier / divisor }
        let first = Int((lo / step + 1e-9).rounded(.down))
        var ticks: [Double] = []
        var k = first
        while ticks.count < 50 {
            ticks.append(tick(k))
            if tick(k) >= hi - step * 1e-9 { break }
            k += 1
        }
        if ticks.count < 2 { ticks.append(tick(first + 1)) }
        return ticks
    }

    static func label(_ x: Double) -> String {
        if abs(x) >= 1000 && x == x.rounded() { return grouped(Int(x)) }
        if x == x.rounded() { return String(Int(x)) }
        let a = abs(x)
        return fixed(x, a >= 10 ? 1 : a >= 1 ? 2 : 3)
    }

    private func n(_ x: Double) -> String { fixed(x, 1) }
}

/// Escapes text for HTML content and attribute values.
func escapeHTML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out
}
