//! `attnkit train pe-regression`: the positional-encoding regression and its loss
//! curves.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use attnkit::tasks::pe_regression::{PeRegressionConfig, PeRegressionTraining};
use attnkit::train::{OptimizerConfig, TrainPlan, Trainer, TrainingTask};
use burn::prelude::*;
use clap::Args;
use serde_json::json;

use super::{BLUE, BarProgress, Common, Curve, HistoryChart, ORANGE, RunFiles};

#[derive(Args)]
#[command(
    after_help = "Dummy data with a target that needs positions: y = Σ_t c_t·Σ_j x_tj/√d with \
ramp weights c_t ∝ t + 1, x ~ N(0, 1), split 80/20 into training and validation once. Writes \
pe-regression-loss.png (train and validation MSE per epoch) and pe-regression-loss.csv to --out.

Example:
  attnkit train pe-regression --epochs 60 --summary pe.json"
)]
pub struct PeArgs {
    #[command(flatten)]
    common: Common,
    /// Passes over the training split (a checkpoint is saved after each).
    #[arg(long, default_value_t = 60)]
    epochs: u64,
    /// Adam learning rate (default: 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Sequences in the dummy dataset.
    #[arg(long, default_value_t = 2048)]
    samples: usize,
    /// Leave out the positional encoding (to see why it is needed).
    #[arg(long)]
    no_positional: bool,
}

/// What a regression run measured.
pub struct PeOutcome {
    /// The loop, its task and history.
    pub trainer: Trainer<PeRegressionTraining>,
    /// Validation MSE of the untrained model (same seed).
    pub initial_val_loss: f64,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// History CSV and chart.
    pub files: RunFiles,
    /// Seconds from start to end.
    pub wall_seconds: f64,
}

/// Trains (or resumes) the regression for `epochs` on the training loop, checkpointing
/// each epoch, and draws its loss curves; what `attnkit train pe-regression` and the
/// tour both run.
pub fn train(
    config: PeRegressionConfig,
    epochs: u64,
    out: &std::path::Path,
    resume: bool,
    quiet: bool,
    device: &Device,
) -> Result<PeOutcome> {
    if epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    super::create_dir(out)?;
    let started = Instant::now();
    let checkpoint = out.join("pe-regression.ckpt");
    // The loss before any training, from a fresh model of the same seed.
    let initial_val_loss = PeRegressionTraining::new(config.clone(), device)?.validation_loss()?;
    let task = PeRegressionTraining::new(config.clone(), device)?;
    let per_epoch = task.steps_per_epoch().unwrap_or(1);
    let (n_train, n_val) = task.split_sizes();
    let plan = TrainPlan::by_epochs(epochs, per_epoch, Some(checkpoint.clone()))?;
    let mut trainer = Trainer::start(task, plan, resume)?;
    if resume {
        eprintln!(
            "resumed {} after epoch {}",
            checkpoint.display(),
            trainer.step() / per_epoch
        );
    }
    let bar = super::progress_bar(trainer.plan().steps, quiet);
    trainer.run(&mut BarProgress {
        bar: &bar,
        offset: 0,
        on_step: Box::new(|_, _| None),
        on_log: Box::new(|r| {
            format!(
                "epoch {} train {:.4} val {:.4}",
                r.epoch.unwrap_or(0),
                r.get("train_loss").unwrap_or(f64::NAN),
                r.get("val_loss").unwrap_or(f64::NAN)
            )
        }),
        print_logs: false,
    })?;
    bar.finish_and_clear();
    let files = super::write_run_files(
        &trainer,
        out.join("pe-regression-loss.csv"),
        out.join("pe-regression-loss.png"),
        &HistoryChart {
            title: format!(
                "Positional-encoding regression: MSE per epoch (Adam lr {}, {} train / {} val{})",
                config.optimizer.lr(),
                n_train,
                n_val,
                if config.positional { "" } else { ", no PE" }
            ),
            x: "epoch",
            y_label: "MSE (log scale)",
            curves: &[
                Curve {
                    metric: "train_loss",
                    label: "train",
                    color: BLUE,
                },
                Curve {
                    metric: "val_loss",
                    label: "validation",
                    color: ORANGE,
                },
            ],
            scale: crate::chart::Scale::LogY,
        },
    )?;
    Ok(PeOutcome {
        trainer,
        initial_val_loss,
        checkpoint,
        files,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn run(args: PeArgs) -> Result<()> {
    let config = PeRegressionConfig {
        samples: args.samples,
        optimizer: OptimizerConfig::Adam { lr: args.lr },
        positional: !args.no_positional,
        seed: args.common.seed,
        ..PeRegressionConfig::default()
    };
    let o = train(
        config,
        args.epochs,
        &args.common.out,
        args.common.resume,
        args.common.quiet,
        &args.common.device.init()?,
    )?;
    let trainer = &o.trainer;
    println!(
        "pe-regression (seed {}{}): {} epochs, {} steps in {:.1}s; validation MSE {:.4e} → {:.4e}, train MSE {:.4e}",
        args.common.seed,
        if args.no_positional {
            ", no positional encoding"
        } else {
            ""
        },
        args.epochs,
        trainer.step(),
        o.wall_seconds,
        o.initial_val_loss,
        trainer.last("val_loss").unwrap_or(f64::NAN),
        trainer.last("train_loss").unwrap_or(f64::NAN),
    );
    println!(
        "files: {}, {}, {}",
        o.files.chart.clone().unwrap_or_default().display(),
        o.files.csv.display(),
        o.checkpoint.display()
    );
    if let Some(path) = &args.common.summary {
        let mut doc = trainer.summary();
        for (key, value) in [
            ("epochs", json!(args.epochs)),
            ("seed", json!(args.common.seed)),
            ("wall_seconds", json!(o.wall_seconds)),
            ("initial_val_loss", json!(o.initial_val_loss)),
            ("positional_encoding", json!(!args.no_positional)),
            ("chart", json!(o.files.chart)),
            ("csv", json!(o.files.csv)),
        ] {
            doc[key] = value;
        }
        super::write_summary(path, &doc)?;
    }
    Ok(())
}
