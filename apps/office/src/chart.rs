//! Charts drawn as inline SVG (no script, no outside resource).

use std::fmt::Write as _;

use crate::html::esc;

/// One bar: its label, its value in `[0, max]`, and the text written after it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

/// A horizontal bar chart, one row per bar, scaled to `max`; `title` is read by screen
/// readers. Bars below `warn_below` (if any) are drawn in the warning colour.
pub fn bars(title: &str, bars: &[Bar], max: f64, warn_below: Option<f64>) -> String {
    const ROW: f64 = 28.0;
    const LABEL: f64 = 190.0;
    const WIDTH: f64 = 420.0;
    const TEXT: f64 = 150.0;
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    let total = LABEL + WIDTH + TEXT;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {total} {height}\" width=\"{total}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = esc(title)
    );
    let max = if max > 0.0 { max } else { 1.0 };
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let w = (b.value.clamp(0.0, max) / max * WIDTH).round();
        let class = match warn_below {
            Some(limit) if b.value < limit => "bar warn",
            _ => "bar",
        };
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"label\">{label}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{WIDTH}\" height=\"20\" class=\"track\"/><rect x=\"{LABEL}\" y=\"{y}\" width=\"{w}\" height=\"20\" class=\"{class}\"/><text x=\"{vx}\" y=\"{ty}\" class=\"value\">{text}</text>",
            lx = LABEL - 8.0,
            ty = y + 15.0,
            label = esc(&b.label),
            vx = LABEL + WIDTH + 8.0,
            text = esc(&b.text),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_and_escaped() {
        let svg = bars(
            "达标率",
            &[
                Bar {
                    label: "本周家访<x>".into(),
                    value: 50.0,
                    text: "1/2".into(),
                },
                Bar {
                    label: "谈心".into(),
                    value: 100.0,
                    text: "2/2".into(),
                },
            ],
            100.0,
            Some(80.0),
        );
        assert!(svg.contains("width=\"210\""), "{svg}");
        assert!(
            svg.contains("width=\"420\" height=\"20\" class=\"bar\""),
            "{svg}"
        );
        assert!(svg.contains("bar warn"));
        assert!(svg.contains("本周家访&lt;x&gt;"));
        assert!(!svg.contains("<x>"));
    }
}
