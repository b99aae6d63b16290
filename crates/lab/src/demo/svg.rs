//! The demo's last screen as an SVG "screenshot" (monospace text on a dark terminal), for the
//! README: text, so it stays small, sharp and diffable.

use std::fmt::Write as _;

use super::{Line, Span, Style};

const CHAR_W: f64 = 8.4;
const LINE_H: f64 = 18.0;
const PAD: f64 = 14.0;
const BAR: f64 = 28.0;

fn colour(style: Style) -> (&'static str, &'static str) {
    // (fill, font-weight)
    match style {
        Style::Plain => ("#d0d0d0", "normal"),
        Style::Dim => ("#8a8a8a", "normal"),
        Style::Bold => ("#ffffff", "bold"),
        Style::Title => ("#5fd7ff", "bold"),
        Style::Red => ("#ff5f5f", "bold"),
        Style::Green => ("#87d75f", "normal"),
        Style::Yellow => ("#ffd75f", "normal"),
        Style::Cyan => ("#5fd7d7", "normal"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `lines` (already cut to `columns`) drawn as a terminal window titled `title`.
pub fn render(lines: &[Line], columns: usize, title: &str) -> String {
    let width = PAD * 2.0 + columns as f64 * CHAR_W;
    let height = BAR + PAD * 2.0 + lines.len() as f64 * LINE_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"'DejaVu Sans Mono', Menlo, Consolas, monospace\" \
         font-size=\"14\">"
    );
    let _ = writeln!(
        out,
        "<!-- The final screen of `floodwall demo`, written by its svg option (see README). -->"
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" rx=\"8\" fill=\"#1c1c1c\"/>\n\
         <rect width=\"100%\" height=\"{BAR}\" rx=\"8\" fill=\"#303030\"/>\n\
         <circle cx=\"18\" cy=\"14\" r=\"6\" fill=\"#ff5f56\"/><circle cx=\"38\" cy=\"14\" r=\"6\" fill=\"#ffbd2e\"/>\
         <circle cx=\"58\" cy=\"14\" r=\"6\" fill=\"#27c93f\"/>\n\
         <text x=\"{:.0}\" y=\"19\" fill=\"#b0b0b0\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        width / 2.0,
        escape(title)
    );
    for (i, line) in lines.iter().enumerate() {
        let y = BAR + PAD + (i as f64 + 0.8) * LINE_H;
        let mut column = 0usize;
        for Span(style, text) in &line.0 {
            let n = text.chars().count();
            if !text.trim().is_empty() {
                let (fill, weight) = colour(*style);
                // Each span at its own column, so proportional fallback fonts cannot drift.
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{y:.1}\" fill=\"{fill}\" font-weight=\"{weight}\" \
                     xml:space=\"preserve\" textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\">{}</text>",
                    PAD + column as f64 * CHAR_W,
                    n as f64 * CHAR_W,
                    escape(text)
                );
            }
            column += n;
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_placed_by_column() {
        let lines = [Line(vec![
            Span(Style::Red, "a<b".into()),
            Span(Style::Plain, " & c".into()),
        ])];
        let svg = render(&lines, 100, "floodwall demo");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(">a&lt;b</text>"));
        assert!(svg.contains(">  &amp; c</text>") || svg.contains("> &amp; c</text>"));
        assert!(svg.contains(&format!("x=\"{:.1}\"", PAD + 3.0 * CHAR_W)));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
