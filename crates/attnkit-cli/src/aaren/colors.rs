//! The colours of the Aaren and attention series, the same in every chart.

pub(super) const AAREN_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(31, 119, 180);
pub(super) const MHA_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(214, 39, 40);
