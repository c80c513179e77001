//! The scale report's SVG charts: bars and lines. plotters is built with its SVG backend
//! only, so text is written as SVG `<text>` and laid out by estimate: no system fonts or
//! fontconfig are needed to draw them.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Error;

/// The charts' font family (no system font is read: the SVG names it).
pub const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (760, 420);

/// Tableau 10, in peer order where lines or bars are peers: regent first.
pub const COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
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

/// One axis of a line chart.
#[derive(Debug, Clone, Copy)]
pub struct Axis<'a> {
    /// The axis title.
    pub desc: &'a str,
    /// A logarithmic scale over the points' range, or else a linear one from zero.
    pub log: bool,
    /// Writes a tick's label.
    pub label: fn(f64) -> String,
}

/// A line chart of `lines` over the axes `x` and `y`.
pub fn lines(
    path: &Path,
    title: &str,
    (x, y): (Axis<'_>, Axis<'_>),
    lines: &[Line],
) -> Result<(), Error> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let values =
        |axis: fn(&(f64, f64)) -> f64| lines.iter().flat_map(|l| l.points.iter()).map(axis);
    let (x_max, y_max) = (
        values(|p| p.0).fold(0.0, f64::max).max(1e-9),
        values(|p| p.1).fold(0.0, f64::max),
    );
    // A log scale's range: the positive points', with room around them.
    let log_range = |axis: fn(&(f64, f64)) -> f64, max: f64, room: f64| {
        let min = values(axis)
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let min = if min.is_finite() { min / room } else { 1.0 };
        (min..(max * room).max(min * 10.0)).log_scale()
    };
    let x_log = || log_range(|p| p.0, x_max, 1.2);
    let y_log = || log_range(|p| p.1, y_max, 1.5);
    let (x_lin, y_lin) = (0.0..x_max, 0.0..(y_max * 1.1).max(1e-9));
    let axes = (x, y);
    match (x.log, y.log) {
        (false, false) => plot(&root, title, axes, (x_lin, y_lin), lines)?,
        (false, true) => plot(&root, title, axes, (x_lin, y_log()), lines)?,
        (true, false) => plot(&root, title, axes, (x_log(), y_lin), lines)?,
        (true, true) => plot(&root, title, axes, (x_log(), y_log()), lines)?,
    }
    root.present()?;
    Ok(())
}

/// Draws `lines` on a chart over `ranges`, one per axis.
fn plot<X, Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    (x, y): (Axis<'_>, Axis<'_>),
    ranges: (X, Y),
    lines: &[Line],
) -> Result<(), Error>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = builder(root, title).build_cartesian_2d(ranges.0, ranges.1)?;
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(y.desc)
        .x_label_formatter(&|v| (x.label)(*v))
        .y_label_formatter(&|v| (y.label)(*v))
        .label_style((FONT, 13))
        .draw()?;
    draw_lines(&mut chart, lines)
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
    let corner = legend_corner(chart, lines);
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// The plot's corner whose legend-sized box the lines cross least (the upper left on a
/// tie), so that the legend hides as little of them as it can.
fn legend_corner<X, Y>(
    chart: &ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    lines: &[Line],
) -> SeriesLabelPosition
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    // The legend's size, as plotters lays it out for 13-pixel labels, by estimate.
    let longest = lines
        .iter()
        .map(|l| l.name.chars().count())
        .max()
        .unwrap_or(0);
    let w = 40 + 8 * i32::try_from(longest).unwrap_or(i32::MAX / 16);
    let h = 12 + 18 * i32::try_from(lines.len()).unwrap_or(i32::MAX / 32);
    // Pixels along every segment of every line.
    let mut pixels = Vec::new();
    for line in lines {
        let at: Vec<(i32, i32)> = line.points.iter().map(|p| chart.backend_coord(p)).collect();
        pixels.extend(at.first().copied());
        for pair in at.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            pixels.extend((1..=16).map(|i| (x0 + (x1 - x0) * i / 16, y0 + (y1 - y0) * i / 16)));
        }
    }
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let corners = [
        (SeriesLabelPosition::UpperLeft, xs.start, ys.start),
        (SeriesLabelPosition::UpperRight, xs.end - w, ys.start),
        (SeriesLabelPosition::LowerLeft, xs.start, ys.end - h),
        (SeriesLabelPosition::LowerRight, xs.end - w, ys.end - h),
    ];
    corners
        .into_iter()
        .min_by_key(|&(_, x, y)| {
            let inside =
                |&&(px, py): &&(i32, i32)| (x..x + w).contains(&px) && (y..y + h).contains(&py);
            pixels.iter().filter(inside).count()
        })
        .map_or(SeriesLabelPosition::UpperLeft, |c| c.0)
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
    use plotters::prelude::*;

    use super::{bars, builder, legend_corner, lines, Axis, Line, COLORS};

    #[test]
    fn the_legend_goes_where_the_lines_are_not() {
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, super::SIZE).into_drawing_area();
        let chart = builder(&root, "corners")
            .build_cartesian_2d(0.0..10.0, 0.0..10.0)
            .unwrap();
        let line = |points: Vec<(f64, f64)>| Line {
            name: "a line".into(),
            color: COLORS[0],
            points,
        };
        // Along the top, and along the bottom's left half: the lower right is free.
        let lines = [
            line(vec![(0.0, 9.5), (10.0, 9.5)]),
            line(vec![(0.0, 0.5), (5.0, 0.5)]),
        ];
        assert!(matches!(
            legend_corner(&chart, &lines),
            SeriesLabelPosition::LowerRight
        ));
        // Rising from the lower left to the upper right: either other corner is free, and
        // the upper left wins the tie.
        let rising = [line(vec![(0.0, 0.0), (10.0, 10.0)])];
        assert!(matches!(
            legend_corner(&chart, &rising),
            SeriesLabelPosition::UpperLeft
        ));
    }

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
        let axis = |desc, log, label| Axis { desc, log, label };
        lines(
            &line_path,
            "latency",
            (
                axis("processes", true, super::figure),
                axis("ns", true, super::nanos),
            ),
            &[line("p50", 10.0), line("p99", 100.0)],
        )
        .unwrap();
        for path in [bar_path, line_path] {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<text"), "{svg}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
