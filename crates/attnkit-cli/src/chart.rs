//! Line charts as PNG (plotters, with a bundled DejaVu Sans so no system font is needed).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("cannot load the bundled font"))
    }
}

/// One line of a chart.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// (x, y) points.
    pub points: &'a [(f64, f64)],
    /// Line colour.
    pub color: RGBColor,
}

/// The axes of a line chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Both axes linear.
    Linear,
    /// The y axis on a log scale.
    LogY,
    /// Both axes on log scales (power laws become straight lines).
    LogLog,
}

/// Writes a line chart with a title, axis labels and a legend to `path` (PNG, 900×540),
/// on the axes `scale` names. Written to a temporary file, then renamed.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    scale: Scale,
) -> Result<()> {
    let (log_x, log_y) = (scale == Scale::LogLog, scale != Scale::Linear);
    // Growth curves leave the upper left empty on log-log axes; others the upper right.
    let legend = if log_x {
        SeriesLabelPosition::UpperLeft
    } else {
        SeriesLabelPosition::UpperRight
    };
    ensure_font()?;
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        if !(x.is_finite() && y.is_finite()) || (log_y && y <= 0.0) || (log_x && x <= 0.0) {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Err(anyhow!("{}: nothing to plot", path.display()));
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    if y0 == y1 {
        y1 = y0 + 1.0;
    }
    // The encoder picks the format from the extension, so the temporary name ends in .png.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial.png"));
    {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80);
        if log_x {
            let mut chart = builder
                .build_cartesian_2d(
                    (x0 * 0.8..x1 * 1.25).log_scale(),
                    (y0 * 0.8..y1 * 1.25).log_scale(),
                )
                .map_err(|e| anyhow!("{e:?}"))?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            draw_lines(&mut chart, series, legend)?;
        } else if log_y {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, (y0 * 0.8..y1 * 1.25).log_scale())
                .map_err(|e| anyhow!("{e:?}"))?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            draw_lines(&mut chart, series, legend)?;
        } else {
            let pad = (y1 - y0) * 0.05;
            let mut chart = builder
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(|e| anyhow!("{e:?}"))?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            draw_lines(&mut chart, series, legend)?;
        }
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn draw_lines<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series<'_>],
    legend: SeriesLabelPosition,
) -> Result<()> {
    for s in series {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(legend)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// One group of bars (one colour) in a grouped bar chart.
pub struct BarGroup<'a> {
    /// Legend label.
    pub label: &'a str,
    /// One value per category.
    pub values: &'a [f64],
    /// Bar colour.
    pub color: RGBColor,
}

/// Writes a grouped bar chart (PNG, 900×540): one cluster per category, one bar per
/// group, y from `y_range`. Written to a temporary file, then renamed.
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[&str],
    groups: &[BarGroup<'_>],
    y_range: (f64, f64),
) -> Result<()> {
    ensure_font()?;
    if categories.is_empty() || groups.iter().any(|g| g.values.len() != categories.len()) {
        return Err(anyhow!(
            "{}: every group needs one value per category",
            path.display()
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial.png"));
    {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let n = categories.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, y_range.0..y_range.1)
            .map_err(|e| anyhow!("{e:?}"))?;
        let label = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                categories[i as usize].to_string()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        let width = 0.8 / groups.len() as f64;
        for (k, g) in groups.iter().enumerate() {
            let offset = -0.4 + width * (k as f64 + 0.5);
            let color = g.color;
            chart
                .draw_series(g.values.iter().enumerate().map(|(i, &v)| {
                    let x = i as f64 + offset;
                    Rectangle::new(
                        [(x - width * 0.45, y_range.0), (x + width * 0.45, v)],
                        color.filled(),
                    )
                }))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(g.label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Spectrograms of 16 kHz signals stacked one above another (PNG, 1000 px wide): the
/// power of each bin of a 20 ms / 10 ms STFT in dB, −100 dB (dark) to the loudest bin
/// of all panels (bright). Written to a temporary file, then renamed.
pub fn spectrograms(path: &Path, title: &str, panels: &[(&str, &[f32])]) -> Result<()> {
    ensure_font()?;
    let stft = attnkit_audio::stft::Stft::speech();
    let specs: Vec<Vec<f32>> = panels
        .iter()
        .map(|(_, x)| {
            stft.analyze(&stft.pad(x))
                .power()
                .iter()
                .map(|p| 10.0 * (p + 1e-12).log10())
                .collect()
        })
        .collect();
    let bins = stft.bins();
    let top = specs.iter().flatten().fold(f32::MIN, |m, &v| m.max(v));
    let floor = top - 80.0;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial.png"));
    {
        let height = 60 + 260 * panels.len() as u32;
        let root = BitMapBackend::new(&tmp, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow!("{e:?}"))?;
        let areas = root.split_evenly((panels.len(), 1));
        for ((area, (label, _)), spec) in areas.iter().zip(panels).zip(&specs) {
            let frames = spec.len() / bins;
            let seconds = frames as f64 * 0.01;
            let mut chart = ChartBuilder::on(area)
                .caption(*label, ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..seconds, 0.0..8.0)
                .map_err(|e| anyhow!("{e:?}"))?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("time (s)")
                .y_desc("kHz")
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            let cells = (0..frames).flat_map(|t| (0..bins).map(move |k| (t, k)));
            chart
                .draw_series(cells.map(|(t, k)| {
                    let v = ((spec[t * bins + k] - floor) / (top - floor)).clamp(0.0, 1.0) as f64;
                    // Dark blue → green → yellow, like the common perceptual maps.
                    let color = RGBColor(
                        (255.0 * (1.6 * v - 0.6).clamp(0.0, 1.0)) as u8,
                        (255.0 * (1.2 * v).min(1.0) * (0.35 + 0.65 * v)) as u8,
                        (255.0 * (0.45 * (1.0 - v) + 0.1)) as u8,
                    );
                    let (t0, f0) = (t as f64 * 0.01, k as f64 * 0.05);
                    Rectangle::new([(t0, f0), (t0 + 0.01, f0 + 0.05)], color.filled())
                }))
                .map_err(|e| anyhow!("{e:?}"))?;
        }
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
