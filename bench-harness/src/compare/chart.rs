//! Grouped bar charts as SVG. plotters is built with its SVG backend only: text is written
//! as SVG `<text>` and laid out by estimate, so no system fonts are needed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::scale::plot::{COLORS, FONT};
use crate::Error;

/// One chart: a group of bars per configuration, one bar per peer in each.
#[derive(Debug)]
pub(super) struct Bars {
    pub title: String,
    pub groups: Vec<String>,
    /// Each peer's figure per group, `None` where it has none.
    pub series: Vec<(&'static str, Vec<Option<f64>>)>,
}

/// Pixels right of the plot for the legend.
const LEGEND: u32 = 110;

/// Draws `bars` into an SVG file at `path`.
pub(super) fn bars(path: &Path, bars: &Bars) -> Result<(), Error> {
    let groups = bars.groups.len().max(1);
    let peers = bars.series.len().max(1);
    let width = u32::try_from(160 + groups * (peers * 22 + 40))
        .unwrap_or(u32::MAX)
        .max(520);
    let root = SVGBackend::new(path, (width + LEGEND, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(width);
    let top = bars
        .series
        .iter()
        .flat_map(|(_, values)| values.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&plot)
        .caption(&bars.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..groups as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .label_style((FONT, 13))
        .draw()?;

    let width = 0.8 / peers as f64;
    for (p, (_, values)) in bars.series.iter().enumerate() {
        let color = COLORS[p % COLORS.len()];
        let bars = values.iter().enumerate().filter_map(|(g, value)| {
            let x = g as f64 + 0.1 + p as f64 * width;
            value.map(|v| Rectangle::new([(x, 0.0), (x + width * 0.9, v)], color.filled()))
        });
        chart.draw_series(bars)?;
    }

    // The legend, beside the plot: only peers with a bar.
    let shown = bars
        .series
        .iter()
        .enumerate()
        .filter(|(_, (_, values))| values.iter().any(Option::is_some));
    let label = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (row, (p, (peer, _))) in shown.enumerate() {
        let y = 60 + 22 * i32::try_from(row).unwrap_or(0);
        let color = COLORS[p % COLORS.len()];
        legend.draw(&Rectangle::new([(8, y - 6), (20, y + 6)], color.filled()))?;
        legend.draw(&Text::new(*peer, (28, y), label.clone()))?;
    }

    // Group labels under the axis, centred on their bars.
    let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, label) in bars.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        plot.draw(&Text::new(label.as_str(), (x, y + 8), style.clone()))?;
    }
    root.present()?;
    Ok(())
}
