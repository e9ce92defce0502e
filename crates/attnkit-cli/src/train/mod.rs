//! `attnkit train`: the example tasks on the library's one training loop, with a
//! progress bar, checkpoints, `--resume`, a history CSV, a chart and a JSON summary.

pub mod count;
pub mod enhance;
pub mod imdb;
pub mod pe_regression;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use attnkit::store::write_atomically;
use attnkit::train::{LogRow, Metrics, Progress, Trainer, TrainingTask};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// `attnkit train …`.
#[derive(Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The counting task: XY[0-5]{5} → #X − #Y, to ≥ 99% accuracy.
    Count(count::CountArgs),
    /// The positional-encoding regression: learnable PE + MHA + mean pool + linear,
    /// MSE + Adam; writes loss curves (PNG, CSV).
    PeRegression(pe_regression::PeArgs),
    /// IMDB sentiment: embeddings + RNN/LSTM/GRU (bi-), attention or Aaren.
    Imdb(imdb::ImdbArgs),
    /// Speech enhancement: a spectral mask from Aaren, GRU or causal attention layers,
    /// trained on the negative SI-SDR of the enhanced waveform.
    Enhance(enhance::EnhanceArgs),
}

/// Options every training command has.
#[derive(Args, Clone)]
pub struct Common {
    /// Seed of the weights and the data: the same seed gives the same numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for checkpoints, logs and charts.
    #[arg(long, default_value = "attnkit-out/train")]
    pub out: PathBuf,
    /// Write a JSON summary of the run here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Continue from the checkpoint in --out (it must be of the same task and options).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
}

pub fn run(args: TrainArgs) -> Result<()> {
    match args.task {
        Task::Count(a) => count::run(a),
        Task::PeRegression(a) => pe_regression::run(a),
        Task::Imdb(a) => imdb::run(a),
        Task::Enhance(a) => enhance::run(a),
    }
}

/// A progress bar on stderr, hidden when not a terminal or with `quiet`.
pub fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The bar's message after a step, from the step and its metrics (`None`: keep it).
pub type StepMessage<'a> = Box<dyn Fn(u64, &Metrics) -> Option<String> + 'a>;

/// The training loop's reports on a progress bar: position and a message after each
/// step, a message (and optionally a printed line) at each logging point.
pub struct BarProgress<'a> {
    /// The bar (shared by several runs of one command: `offset` places this run).
    pub bar: &'a ProgressBar,
    /// Steps of earlier runs on the same bar.
    pub offset: u64,
    /// The bar's message after a step, if any.
    pub on_step: StepMessage<'a>,
    /// The bar's message at a logging point.
    pub on_log: Box<dyn Fn(&LogRow) -> String + 'a>,
    /// Also print the logging point's message above the bar.
    pub print_logs: bool,
}

impl Progress for BarProgress<'_> {
    fn on_start(&mut self, done: u64, _total: u64) {
        self.bar.set_position(self.offset + done);
    }

    fn on_step(&mut self, step: u64, metrics: &Metrics) {
        self.bar.set_position(self.offset + step);
        if let Some(msg) = (self.on_step)(step, metrics) {
            self.bar.set_message(msg);
        }
    }

    fn on_log(&mut self, row: &LogRow) {
        let msg = (self.on_log)(row);
        if self.print_logs {
            self.bar.suspend(|| println!("{msg}"));
        } else {
            self.bar.set_message(msg);
        }
    }
}

/// Creates `dir` (and its parents) with an error naming it.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}

/// Writes a JSON summary atomically, creating its folder.
pub fn write_summary(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    write_atomically(path, serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("writing the summary {}", path.display()))
}

/// One line of a chart of the history: a metric, its legend label, its colour.
pub struct Curve {
    /// Metric name in the history (`train_loss`, `val_accuracy`, …).
    pub metric: &'static str,
    /// Legend label.
    pub label: &'static str,
    /// Line colour.
    pub color: plotters::style::RGBColor,
}

/// The first and second colours of every chart.
pub const BLUE: plotters::style::RGBColor = plotters::style::RGBColor(31, 119, 180);
/// See [`BLUE`].
pub const ORANGE: plotters::style::RGBColor = plotters::style::RGBColor(255, 127, 14);

/// The files every run leaves beside its checkpoint: the history as CSV and, when there
/// is a history, a chart of `curves` against `x` (`step` or `epoch`).
pub struct RunFiles {
    /// The history CSV.
    pub csv: PathBuf,
    /// The chart (absent when nothing was logged).
    pub chart: Option<PathBuf>,
}

/// How a run's history is drawn.
pub struct HistoryChart<'a> {
    /// The chart's title.
    pub title: String,
    /// The x axis: `step` or `epoch`.
    pub x: &'a str,
    /// The y axis label.
    pub y_label: &'a str,
    /// The lines.
    pub curves: &'a [Curve],
    /// Linear or log axes.
    pub scale: crate::chart::Scale,
}

/// Writes the history CSV and the chart of a finished run.
pub fn write_run_files<T: TrainingTask>(
    trainer: &Trainer<T>,
    csv: PathBuf,
    png: PathBuf,
    chart: &HistoryChart<'_>,
) -> Result<RunFiles> {
    let HistoryChart {
        title,
        x,
        y_label,
        curves,
        scale,
    } = chart;
    trainer.write_csv(&csv)?;
    let history = trainer.history();
    if history.is_empty() {
        return Ok(RunFiles { csv, chart: None });
    }
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            history
                .iter()
                .filter_map(|r| {
                    let at = if *x == "epoch" {
                        r.epoch.map(|e| e as f64)
                    } else {
                        Some(r.step as f64)
                    };
                    Some((at?, r.get(c.metric)?))
                })
                .collect()
        })
        .collect();
    let series: Vec<crate::chart::Series<'_>> = curves
        .iter()
        .zip(&points)
        .map(|(c, p)| crate::chart::Series {
            label: c.label,
            points: p,
            color: c.color,
        })
        .collect();
    crate::chart::line_chart(&png, title, x, y_label, &series, *scale)?;
    Ok(RunFiles {
        csv,
        chart: Some(png),
    })
}

/// Parses a library enum from its lowercase serde name (`bilstm`, `glove`, …), listing
/// the accepted names on error.
pub fn parse_lowercase<T: serde::de::DeserializeOwned>(s: &str) -> std::result::Result<T, String> {
    serde_json::from_value(json!(s)).map_err(|e| {
        let msg = e.to_string();
        msg.split(" at line").next().unwrap_or(&msg).to_string()
    })
}
