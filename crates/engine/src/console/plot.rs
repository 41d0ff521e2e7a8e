//! Small SVG plots drawn on the server: rates over time as lines, a latency histogram as
//! bars. Every label is escaped; nothing is loaded from elsewhere.

use super::history::Rate;
use crate::ops::metrics::Buckets;
use std::fmt::Write as _;

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 120.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 18.0;

/// Escapes text for SVG/HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">"#,
        w = WIDTH,
        h = HEIGHT,
        label = escape(label)
    );
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="4" x2="{LEFT}" y2="{y}" stroke="#98a2b3"/><line x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}" stroke="#98a2b3"/>"##,
        y = HEIGHT - BOTTOM
    );
}

/// A rounded axis maximum at or above `max`.
fn ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    (max / step).ceil() * step
}

/// Accepted and delivered messages per second over `window_secs`, newest at the right.
pub fn rates(label: &str, rates: &[Rate], window_secs: f64) -> String {
    let mut out = String::new();
    open(&mut out, label);
    let top = ceiling(
        rates
            .iter()
            .map(|r| r.accepted.max(r.delivered))
            .fold(0.0, f64::max),
    );
    let plot_h = HEIGHT - BOTTOM - 6.0;
    let x = |ago: f64| LEFT + (WIDTH - LEFT - 4.0) * (1.0 - (ago / window_secs).min(1.0));
    let y = |v: f64| HEIGHT - BOTTOM - plot_h * (v / top);
    for (pick, colour, name) in [
        (0usize, "#2e90fa", "accepted"),
        (1usize, "#12b76a", "delivered"),
    ] {
        let points: Vec<String> = rates
            .iter()
            .map(|r| {
                let v = if pick == 0 { r.accepted } else { r.delivered };
                format!("{:.1},{:.1}", x(r.ago.as_secs_f64()), y(v))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{name}</title></polyline>"#,
            points.join(" ")
        );
    }
    let _ = write!(
        out,
        r##"<text x="2" y="12" font-size="10" fill="#475467">{top}/s</text><text x="2" y="{yb}" font-size="10" fill="#475467">0</text><text x="{LEFT}" y="{yl}" font-size="10" fill="#2e90fa">accepted</text><text x="{x2}" y="{yl}" font-size="10" fill="#12b76a">delivered</text><text x="{xr}" y="{yl}" font-size="10" fill="#475467" text-anchor="end">now</text>"##,
        yb = HEIGHT - BOTTOM,
        yl = HEIGHT - 4.0,
        x2 = LEFT + 60.0,
        xr = WIDTH - 2.0
    );
    if rates.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" font-size="11" fill="#667085">no samples yet</text>"##,
            LEFT + 10.0,
            HEIGHT / 2.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A latency histogram: calls per bucket (seconds), from cumulative counts.
pub fn histogram(label: &str, buckets: &Buckets) -> String {
    let mut out = String::new();
    open(&mut out, label);
    let mut previous = 0;
    let mut counts: Vec<(f64, u64)> = Vec::with_capacity(buckets.bounds.len() + 1);
    for (bound, cumulative) in &buckets.bounds {
        counts.push((*bound, cumulative.saturating_sub(previous)));
        previous = *cumulative;
    }
    counts.push((f64::INFINITY, buckets.count.saturating_sub(previous)));
    let top = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let slot = (WIDTH - LEFT - 4.0) / counts.len() as f64;
    let plot_h = HEIGHT - BOTTOM - 6.0;
    for (i, (bound, n)) in counts.iter().enumerate() {
        let h = plot_h * (*n as f64 / top);
        let x = LEFT + slot * i as f64 + 1.0;
        let name = if bound.is_finite() {
            if *bound < 1.0 {
                format!("{}ms", bound * 1000.0)
            } else {
                format!("{bound}s")
            }
        } else {
            "more".into()
        };
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#7a5af8"><title>≤ {name}: {n}</title></rect>"##,
            HEIGHT - BOTTOM - h,
            slot - 2.0
        );
        if i % 2 == 0 {
            let _ = write!(
                out,
                r##"<text x="{x:.1}" y="{}" font-size="8" fill="#475467">{name}</text>"##,
                HEIGHT - 6.0
            );
        }
    }
    let _ = write!(
        out,
        r##"<text x="2" y="12" font-size="10" fill="#475467">{top}</text></svg>"##
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn labels_are_escaped_and_bars_count_each_bucket_once() {
        let svg = rates("<flow> & co", &[], 600.0);
        assert!(svg.contains("&lt;flow&gt; &amp; co") && !svg.contains("<flow>"));
        assert!(svg.contains("no samples yet"));
        let line = rates(
            "f",
            &[Rate {
                ago: Duration::ZERO,
                accepted: 40.0,
                delivered: 20.0,
            }],
            600.0,
        );
        assert!(line.contains("40/s"), "{line}");
        let buckets = Buckets {
            bounds: vec![(0.001, 2), (0.01, 5), (0.1, 5)],
            count: 6,
            sum: 0.05,
        };
        let bars = histogram("f / s", &buckets);
        for expected in ["≤ 1ms: 2", "≤ 10ms: 3", "≤ 100ms: 0", "≤ more: 1"] {
            assert!(bars.contains(expected), "{expected}: {bars}");
        }
    }
}
