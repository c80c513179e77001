//! The scale report's SVG charts: bars and lines. plotters is built with its SVG backend
//! only, so text is written as SVG `<text>` and laid out by estimate: no system fonts or
//! fontconfig are needed to draw them.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Error;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (760, 420);

/// Tableau 10.
pub const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a line chart.
#[derive(Debug)]
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A bar chart: one bar per `(label, value)`, the value written above it.
pub fn bars(path: &Path, title: &str, y_desc: &str, bars: &[(String, f64)]) -> Result<(), Error> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let groups = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(34)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..groups, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
        let x = i as f64;
        let color = COLORS[i % COLORS.len()];
        Rectangle::new([(x + 0.2, 0.0), (x + 0.8, *value)], color.filled())
    }))?;
    let above = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let below = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, (label, value)) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, *value));
        root.draw(&Text::new(figure(*value), (x, y - 4), above.clone()))?;
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(label.clone(), (x, y + 8), below.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// A line chart over a linear x axis, with a linear or (if `log_y`) logarithmic y axis
/// whose labels `y_label` writes.
pub fn lines(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line],
    (log_y, y_label): (bool, fn(f64) -> String),
) -> Result<(), Error> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let x_max = points().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max);
    if log_y {
        let y_min = points()
            .map(|p| p.1)
            .filter(|&y| y > 0.0)
            .fold(f64::INFINITY, f64::min);
        let y_min = if y_min.is_finite() { y_min / 1.5 } else { 1.0 };
        let mut chart = builder(&root, title).build_cartesian_2d(
            0.0..x_max,
            (y_min..(y_max * 1.5).max(y_min * 10.0)).log_scale(),
        )?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_label_formatter(&|y| y_label(*y))
            .label_style((FONT, 13))
            .draw()?;
        draw_lines(&mut chart, lines)?;
    } else {
        let mut chart =
            builder(&root, title).build_cartesian_2d(0.0..x_max, 0.0..(y_max * 1.1).max(1e-9))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_label_formatter(&|y| y_label(*y))
            .label_style((FONT, 13))
            .draw()?;
        draw_lines(&mut chart, lines)?;
    }
    root.present()?;
    Ok(())
}

fn builder<'a, 'b, 'c>(
    root: &'a DrawingArea<SVGBackend<'c>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'c>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(72);
    builder
}

fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: &[Line],
) -> Result<(), Error>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for line in lines {
        let style = line.color.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(
                line.points.clone(),
                style,
            )))?
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// A number for a label, to about three significant digits.
#[must_use]
pub fn figure(x: f64) -> String {
    crate::report::figure(x)
}

/// Nanoseconds for a label, in the unit that reads best.
#[must_use]
pub fn nanos(ns: f64) -> String {
    match ns {
        ns if ns >= 1e9 => format!("{} s", figure(ns / 1e9)),
        ns if ns >= 1e6 => format!("{} ms", figure(ns / 1e6)),
        ns if ns >= 1e3 => format!("{} µs", figure(ns / 1e3)),
        ns => format!("{} ns", figure(ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::{bars, lines, Line, COLORS};

    #[test]
    fn draws_svg_without_system_fonts() {
        let dir = std::env::temp_dir().join(format!("regent-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bar_path = dir.join("bars.svg");
        bars(
            &bar_path,
            "throughput",
            "Mops/s",
            &[("spawn".into(), 1.5), ("steady".into(), 4.0)],
        )
        .unwrap();
        let line_path = dir.join("lines.svg");
        let line = |name: &str, k: f64| Line {
            name: name.into(),
            color: COLORS[0],
            points: (1..20).map(|x| (f64::from(x), k * f64::from(x))).collect(),
        };
        lines(
            &line_path,
            "latency",
            ("processes", "ns"),
            &[line("p50", 10.0), line("p99", 100.0)],
            (true, super::nanos),
        )
        .unwrap();
        for path in [bar_path, line_path] {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<text"), "{svg}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
