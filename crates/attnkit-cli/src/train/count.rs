//! `attnkit train count`: the counting task, with an attention or an Aaren encoder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::train::{Every, OptimizerConfig, TrainPlan, Trainer};
use burn::prelude::*;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{BLUE, BarProgress, Common, Curve, HistoryChart, ORANGE, RunFiles};

#[derive(Args)]
#[command(
    after_help = "The network: embedding (64), learnable positional encoding, one encoder layer \
(4-head self-attention + feed-forward 128, residual, LayerNorm; or Aaren with --mixer aaren), \
a decoder of one multi-head attention block with a learned query, a linear classifier; SGD lr 0.005 \
momentum 0.9, batch 64, fresh random sequences every step. Every --log-every steps it logs the mean \
training loss/accuracy and the accuracy on 2,000 fixed validation sequences; at the end it measures \
the accuracy on 10,000 freshly generated held-out sequences (eval_accuracy).

Example:
  attnkit train count --seed 0 --summary count.json"
)]
pub struct CountArgs {
    #[command(flatten)]
    common: Common,
    /// Training steps (upper bound with --stop-at).
    #[arg(long, default_value_t = 8000)]
    steps: u64,
    /// Stop early once the validation accuracy reaches this (e.g. 0.99).
    #[arg(long)]
    stop_at: Option<f64>,
    /// The encoder's token mixer.
    #[arg(long, value_enum, default_value_t = MixerArg::Attention)]
    mixer: MixerArg,
    /// Log (and check the validation accuracy) every this many steps.
    #[arg(long, default_value_t = 100)]
    log_every: u64,
    /// Save a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Held-out sequences for the final accuracy.
    #[arg(long, default_value_t = 10_000)]
    eval_sequences: usize,
    /// Learning rate (default: 0.005 for SGD).
    #[arg(long, default_value_t = 0.005)]
    lr: f64,
    /// Optimizer (default: SGD with momentum 0.9).
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
}

/// The encoder's token mixer.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum MixerArg {
    /// Multi-head self-attention (a Transformer encoder layer).
    Attention,
    /// Aaren, attention as an RNN, in the same block.
    Aaren,
}

/// Optimizer choice.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OptimizerArg {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam (β 0.9, 0.999).
    Adam,
}

/// A counting run: what to train, for how long, where its files go.
pub struct CountOptions {
    /// The task's configuration.
    pub config: CountConfig,
    /// Steps in all (an upper bound with `stop_at`).
    pub steps: u64,
    /// Stop at the first log whose validation accuracy is at least this.
    pub stop_at: Option<f64>,
    /// Validate every this many steps.
    pub log_every: u64,
    /// Save every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Held-out sequences for the final accuracy.
    pub eval_sequences: usize,
    /// Also score every possible sequence.
    pub exhaustive: bool,
    /// Folder of the files.
    pub out: PathBuf,
    /// Their name: `NAME.ckpt`, `NAME-history.csv`, `NAME-accuracy.png`.
    pub name: String,
    /// Continue from `NAME.ckpt`.
    pub resume: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Where it computes.
    pub device: Device,
}

/// What a counting run measured.
pub struct CountOutcome {
    /// The loop, its task and history.
    pub trainer: Trainer<CountTraining>,
    /// Accuracy on the fresh held-out sequences.
    pub eval_accuracy: f64,
    /// Accuracy on every possible sequence, and some it gets wrong (with `exhaustive`).
    pub exhaustive: Option<(f64, Vec<Vec<i64>>)>,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// History CSV and chart.
    pub files: RunFiles,
    /// Seconds from start to end, evaluation included.
    pub wall_seconds: f64,
}

/// Trains (or resumes) a counting run on the training loop and measures it; what
/// `attnkit train count` and the tour both run.
pub fn train(opts: &CountOptions) -> Result<CountOutcome> {
    if let Some(t) = opts.stop_at {
        if !(0.0..=1.0).contains(&t) {
            bail!("--stop-at must be an accuracy in [0, 1], got {t}");
        }
    }
    if opts.log_every == 0 || opts.checkpoint_every == 0 {
        bail!("--log-every and --checkpoint-every must be at least 1");
    }
    super::create_dir(&opts.out)?;
    let started = Instant::now();
    let checkpoint = opts.out.join(format!("{}.ckpt", opts.name));
    let plan = TrainPlan {
        steps: opts.steps,
        log: Every::Steps(opts.log_every),
        checkpoint: Every::Steps(opts.checkpoint_every),
        checkpoint_path: Some(checkpoint.clone()),
        stop_at: opts.stop_at.map(|t| ("val_accuracy".to_string(), t)),
    };
    let task = CountTraining::new(opts.config.clone(), &opts.device)?;
    let mut trainer = Trainer::start(task, plan, opts.resume)?;
    if opts.resume {
        eprintln!(
            "resumed {} at step {}",
            checkpoint.display(),
            trainer.step()
        );
    }
    let bar = super::progress_bar(opts.steps, opts.quiet);
    trainer.run(&mut BarProgress {
        bar: &bar,
        offset: 0,
        on_step: Box::new(|_, _| None),
        on_log: Box::new(|r| {
            format!(
                "loss {:.3} acc {:.3} val {:.3}",
                r.get("train_loss").unwrap_or(f64::NAN),
                r.get("train_accuracy").unwrap_or(f64::NAN),
                r.get("val_accuracy").unwrap_or(f64::NAN)
            )
        }),
        print_logs: false,
    })?;
    bar.finish_and_clear();
    let run = trainer.task();
    let eval_accuracy = run.test_accuracy(opts.eval_sequences)?;
    let exhaustive = opts
        .exhaustive
        .then(|| run.exhaustive_accuracy(10))
        .transpose()?;
    let files = super::write_run_files(
        &trainer,
        opts.out.join(format!("{}-history.csv", opts.name)),
        opts.out.join(format!("{}-accuracy.png", opts.name)),
        &HistoryChart {
            title: format!(
                "Counting task, {:?} encoder: accuracy during training (seed {})",
                run.config().mixer,
                run.config().seed
            ),
            x: "step",
            y_label: "accuracy",
            curves: &[
                Curve {
                    metric: "train_accuracy",
                    label: "training batches",
                    color: BLUE,
                },
                Curve {
                    metric: "val_accuracy",
                    label: "validation (2,000 sequences)",
                    color: ORANGE,
                },
            ],
            scale: crate::chart::Scale::Linear,
        },
    )?;
    Ok(CountOutcome {
        trainer,
        eval_accuracy,
        exhaustive,
        checkpoint,
        files,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn run(args: CountArgs) -> Result<()> {
    let config = CountConfig {
        mixer: match args.mixer {
            MixerArg::Attention => Mixer::Attention,
            MixerArg::Aaren => Mixer::Aaren,
        },
        optimizer: match args.optimizer {
            OptimizerArg::Sgd => OptimizerConfig::Sgd {
                lr: args.lr,
                momentum: 0.9,
            },
            OptimizerArg::Adam => OptimizerConfig::Adam { lr: args.lr },
        },
        seed: args.common.seed,
        ..CountConfig::default()
    };
    let outcome = train(&CountOptions {
        config,
        steps: args.steps,
        stop_at: args.stop_at,
        log_every: args.log_every,
        checkpoint_every: args.checkpoint_every,
        eval_sequences: args.eval_sequences,
        exhaustive: true,
        out: args.common.out.clone(),
        name: "count".into(),
        resume: args.common.resume,
        quiet: args.common.quiet,
        device: args.common.device.init()?,
    })?;
    let trainer = &outcome.trainer;
    let run = trainer.task();
    let first_99 = trainer.first_step_reaching("val_accuracy", 0.99);
    let train_seconds = trainer.step_seconds();
    println!(
        "count ({:?} mixer, seed {}): {} steps, {:.1}s in steps ({:.1} steps/s), {:.1}s in all; validation reached 99% at step {}; \
eval accuracy {:.4} on {} held-out sequences",
        run.config().mixer,
        run.config().seed,
        trainer.step(),
        train_seconds,
        trainer.steps_this_run() as f64 / train_seconds.max(1e-9),
        outcome.wall_seconds,
        first_99.map_or("never".to_string(), |s| s.to_string()),
        outcome.eval_accuracy,
        args.eval_sequences
    );
    let (all_accuracy, wrong) = outcome.exhaustive.clone().unwrap_or((f64::NAN, Vec::new()));
    println!(
        "all {} possible sequences: accuracy {all_accuracy:.5}{}",
        run.config().vocab.pow(run.config().seq_len as u32 + 2),
        if wrong.is_empty() {
            String::new()
        } else {
            format!("; e.g. wrong: {:?}", &wrong[..wrong.len().min(3)])
        }
    );
    let chart = outcome.files.chart.clone().unwrap_or_default();
    println!(
        "files: {}, {}, {}",
        outcome.checkpoint.display(),
        outcome.files.csv.display(),
        chart.display()
    );
    if let Some(path) = &args.common.summary {
        let mut doc = trainer.summary();
        for (key, value) in [
            ("seed", json!(run.config().seed)),
            ("mixer", json!(run.config().mixer)),
            ("wall_seconds", json!(outcome.wall_seconds)),
            ("eval_accuracy", json!(outcome.eval_accuracy)),
            ("eval_sequences", json!(args.eval_sequences)),
            ("all_sequences_accuracy", json!(all_accuracy)),
            ("wrong_examples", json!(wrong)),
            ("first_step_val_accuracy_99", json!(first_99)),
            ("history_csv", json!(outcome.files.csv)),
        ] {
            doc[key] = value;
        }
        super::write_summary(path, &doc)?;
    }
    Ok(())
}
