//! `attnkit train`: the seed tasks, with progress, checkpoints and summaries.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnkit::store::write_atomically;
use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::train::OptimizerConfig;
use burn::prelude::*;
use clap::{Args, Subcommand, ValueEnum};
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
    /// The counting task of seed 004: XY[0-5]{5} → #X − #Y, to ≥ 99% accuracy.
    Count(CountArgs),
    /// The positional-encoding regression of seed 001: learnable PE + MHA + mean pool +
    /// linear, MSE + Adam; writes loss curves (PNG, CSV).
    PeRegression(PeArgs),
    /// IMDB sentiment (seed 004): embeddings + RNN/LSTM/GRU (bi-), attention or Aaren.
    Imdb(ImdbArgs),
}

/// The encoder's token mixer.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum MixerArg {
    /// Multi-head self-attention (a Transformer encoder layer).
    Attention,
    /// Aaren, attention as an RNN, in the same block.
    Aaren,
}

/// Options every training command has.
#[derive(Args, Clone)]
struct Common {
    /// Seed of the weights and the data: the same seed gives the same numbers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for checkpoints, logs and charts.
    #[arg(long, default_value = "attnkit-out/train")]
    out: PathBuf,
    /// Write a JSON summary of the run here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Continue from the checkpoint in --out (it must be of the same task and options).
    #[arg(long)]
    resume: bool,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
#[command(
    after_help = "The network is the seed's: embedding (64), learnable positional encoding, one \
encoder layer (4-head self-attention + feed-forward 128, residual, LayerNorm; or Aaren with --mixer aaren), \
a decoder of one multi-head attention block with a learned query, a linear classifier; SGD lr 0.005 \
momentum 0.9, batch 64, fresh random sequences every step. Every --log-every steps it logs the mean \
training loss/accuracy and the accuracy on 2,000 fixed validation sequences; at the end it measures \
the accuracy on 10,000 freshly generated held-out sequences (eval_accuracy).

Example:
  attnkit train count --seed 0 --summary count.json"
)]
struct CountArgs {
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
    /// Learning rate (seed: 0.005 for SGD).
    #[arg(long, default_value_t = 0.005)]
    lr: f64,
    /// Optimizer (seed: SGD with momentum 0.9).
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
}

/// Optimizer choice.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OptimizerArg {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam (β 0.9, 0.999).
    Adam,
}

#[derive(Args)]
#[command(
    after_help = "Dummy data with a target that needs positions: y = Σ_t c_t·Σ_j x_tj/√d with \
ramp weights c_t ∝ t + 1, x ~ N(0, 1), split 80/20 into training and validation once. Writes \
pe-regression-loss.png (train and validation MSE per epoch) and pe-regression-loss.csv to --out.

Example:
  attnkit train pe-regression --epochs 60 --summary pe.json"
)]
struct PeArgs {
    #[command(flatten)]
    common: Common,
    /// Passes over the training split (a checkpoint is saved after each).
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Adam learning rate (seed: 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Sequences in the dummy dataset.
    #[arg(long, default_value_t = 2048)]
    samples: usize,
    /// Leave out the positional encoding (to see why it is needed).
    #[arg(long)]
    no_positional: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    match args.task {
        Task::Count(a) => count(a),
        Task::PeRegression(a) => pe_regression(a),
        Task::Imdb(a) => imdb(a),
    }
}

/// A progress bar on stderr, hidden when not a terminal or with --quiet.
pub fn progress(len: u64, quiet: bool) -> ProgressBar {
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

fn write_summary(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    write_atomically(path, serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("writing the summary {}", path.display()))
}

fn count(args: CountArgs) -> Result<()> {
    if args.log_every == 0 || args.checkpoint_every == 0 {
        bail!("--log-every and --checkpoint-every must be at least 1");
    }
    if let Some(t) = args.stop_at {
        if !(0.0..=1.0).contains(&t) {
            bail!("--stop-at must be an accuracy in [0, 1], got {t}");
        }
    }
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
    let out = &args.common.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let ckpt = out.join("count.ckpt");
    let device = Device::flex();
    let mut run = if args.common.resume {
        let r = CountTraining::resume(config, &ckpt, &device)?;
        eprintln!("resumed {} at step {}", ckpt.display(), r.step());
        r
    } else {
        CountTraining::new(config, &device)?
    };
    let started = Instant::now();
    let start_step = run.step();
    let bar = progress(args.steps, args.common.quiet);
    bar.set_position(run.step());
    let mut log_lines = Vec::new();
    // Time in optimizer steps only (validation and checkpoints excluded), the number the
    // PyTorch peer in bench/ reports.
    let mut step_seconds = 0.0;
    while run.step() < args.steps {
        let t = Instant::now();
        run.train_step()?;
        step_seconds += t.elapsed().as_secs_f64();
        if run.step() % args.log_every == 0 {
            let l = run.log()?;
            bar.set_message(format!(
                "loss {:.3} acc {:.3} val {:.3}",
                l.train_loss, l.train_accuracy, l.val_accuracy
            ));
            log_lines.push(l);
            if args.stop_at.is_some_and(|t| l.val_accuracy >= t) {
                bar.inc(1);
                break;
            }
        }
        if run.step() % args.checkpoint_every == 0 {
            run.save_checkpoint(&ckpt)?;
        }
        bar.inc(1);
    }
    run.save_checkpoint(&ckpt)?;
    bar.finish_and_clear();
    let train_seconds = step_seconds;
    let eval_accuracy = run.test_accuracy(args.eval_sequences)?;
    let history = run.history();
    let mut csv = String::from("step,train_loss,train_accuracy,val_accuracy\n");
    for l in history {
        csv.push_str(&format!(
            "{},{:.6},{:.6},{:.6}\n",
            l.step, l.train_loss, l.train_accuracy, l.val_accuracy
        ));
    }
    let csv_path = out.join("count-history.csv");
    write_atomically(&csv_path, csv.as_bytes())?;
    let (all_accuracy, wrong) = run.exhaustive_accuracy(10)?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let first_99 = run.first_step_reaching(0.99);
    let curve = |f: fn(&attnkit::tasks::counting::CountLog) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|l| (l.step as f64, f(l))).collect()
    };
    let (train_acc, val_acc) = (curve(|l| l.train_accuracy), curve(|l| l.val_accuracy));
    let png = out.join("count-accuracy.png");
    if !history.is_empty() {
        crate::chart::line_chart(
            &png,
            &format!(
                "Counting task, {:?} encoder: accuracy during training (seed {})",
                run.config().mixer,
                run.config().seed
            ),
            "step",
            "accuracy",
            &[
                crate::chart::Series {
                    label: "training batches",
                    points: &train_acc,
                    color: plotters::style::RGBColor(31, 119, 180),
                },
                crate::chart::Series {
                    label: "validation (2,000 sequences)",
                    points: &val_acc,
                    color: plotters::style::RGBColor(255, 127, 14),
                },
            ],
            crate::chart::Scale::Linear,
        )?;
    }
    let last = history.last().copied();
    println!(
        "count ({:?} mixer, seed {}): {} steps, {:.1}s in steps ({:.1} steps/s), {:.1}s in all; validation reached 99% at step {}; \
eval accuracy {:.4} on {} held-out sequences",
        run.config().mixer,
        run.config().seed,
        run.step(),
        train_seconds,
        (run.step() - start_step) as f64 / train_seconds.max(1e-9),
        started.elapsed().as_secs_f64(),
        first_99.map_or("never".to_string(), |s| s.to_string()),
        eval_accuracy,
        args.eval_sequences
    );
    println!(
        "all {} possible sequences: accuracy {all_accuracy:.5}{}",
        run.config().vocab.pow(run.config().seq_len as u32 + 2),
        if wrong.is_empty() {
            String::new()
        } else {
            format!("; e.g. wrong: {:?}", &wrong[..wrong.len().min(3)])
        }
    );
    println!(
        "files: {}, {}, {}",
        ckpt.display(),
        csv_path.display(),
        png.display()
    );
    if let Some(path) = &args.common.summary {
        write_summary(
            path,
            &json!({
                "task": "count",
                "all_sequences_accuracy": all_accuracy,
                "wrong_examples": wrong,
                "mixer": run.config().mixer,
                "steps": run.step(),
                "seed": run.config().seed,
                "wall_seconds": wall_seconds,
                "train_seconds": train_seconds,
                "steps_this_run": run.step() - start_step,
                "eval_accuracy": eval_accuracy,
                "eval_sequences": args.eval_sequences,
                "first_step_val_accuracy_99": first_99,
                "final_train_loss": last.map(|l| l.train_loss),
                "final_val_accuracy": last.map(|l| l.val_accuracy),
                "config": run.config_json(),
                "checkpoint": ckpt,
                "history_csv": csv_path,
            }),
        )?;
    }
    Ok(())
}

fn pe_regression(args: PeArgs) -> Result<()> {
    use attnkit::tasks::pe_regression::{PeRegressionConfig, PeRegressionTraining};
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let config = PeRegressionConfig {
        samples: args.samples,
        optimizer: OptimizerConfig::Adam { lr: args.lr },
        positional: !args.no_positional,
        seed: args.common.seed,
        ..PeRegressionConfig::default()
    };
    let out = &args.common.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let started = Instant::now();
    let ckpt = out.join("pe-regression.ckpt");
    let mut run = if args.common.resume {
        let r = PeRegressionTraining::resume(config.clone(), &ckpt, &Device::flex())?;
        eprintln!(
            "resumed {} after epoch {}",
            ckpt.display(),
            r.history().len()
        );
        r
    } else {
        PeRegressionTraining::new(config.clone(), &Device::flex())?
    };
    // The loss before any training, from a fresh model of the same seed.
    let initial_val = PeRegressionTraining::new(config, &Device::flex())?.validation_loss()?;
    let bar = progress(args.epochs as u64, args.common.quiet);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(run.history().len() as u64);
    while run.history().len() < args.epochs {
        let e = run.epoch()?;
        run.save_checkpoint(&ckpt)?;
        bar.set_message(format!("train {:.4} val {:.4}", e.train_loss, e.val_loss));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let wall_seconds = started.elapsed().as_secs_f64();
    let history = run.history();
    let mut csv = String::from("epoch,train_loss,val_loss\n");
    for e in history {
        csv.push_str(&format!(
            "{},{:.6e},{:.6e}\n",
            e.epoch, e.train_loss, e.val_loss
        ));
    }
    let csv_path = out.join("pe-regression-loss.csv");
    write_atomically(&csv_path, csv.as_bytes())?;
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .map(|e| (e.epoch as f64, e.val_loss))
        .collect();
    let png = out.join("pe-regression-loss.png");
    let (n_train, n_val) = run.split_sizes();
    crate::chart::line_chart(
        &png,
        &format!(
            "Positional-encoding regression: MSE per epoch (Adam lr {}, {} train / {} val{})",
            args.lr,
            n_train,
            n_val,
            if args.no_positional { ", no PE" } else { "" }
        ),
        "epoch",
        "MSE (log scale)",
        &[
            crate::chart::Series {
                label: "train",
                points: &train,
                color: plotters::style::RGBColor(31, 119, 180),
            },
            crate::chart::Series {
                label: "validation",
                points: &val,
                color: plotters::style::RGBColor(255, 127, 14),
            },
        ],
        crate::chart::Scale::LogY,
    )?;
    let last = history.last().copied();
    println!(
        "pe-regression (seed {}{}): {} epochs, {} steps in {:.1}s; validation MSE {:.4e} → {:.4e}, train MSE {:.4e}",
        args.common.seed,
        if args.no_positional {
            ", no positional encoding"
        } else {
            ""
        },
        args.epochs,
        run.steps(),
        wall_seconds,
        initial_val,
        last.map_or(f64::NAN, |e| e.val_loss),
        last.map_or(f64::NAN, |e| e.train_loss),
    );
    println!(
        "files: {}, {}, {}",
        png.display(),
        csv_path.display(),
        ckpt.display()
    );
    if let Some(path) = &args.common.summary {
        write_summary(
            path,
            &json!({
                "task": "pe-regression",
                "steps": run.steps(),
                "epochs": args.epochs,
                "seed": args.common.seed,
                "wall_seconds": wall_seconds,
                "initial_val_loss": initial_val,
                "final_train_loss": last.map(|e| e.train_loss),
                "final_val_loss": last.map(|e| e.val_loss),
                "positional_encoding": !args.no_positional,
                "config": run.config(),
                "chart": png,
                "csv": csv_path,
                "checkpoint": ckpt,
            }),
        )?;
    }
    Ok(())
}

#[derive(Args)]
#[command(
    after_help = "Reads DIR/aclImdb/ (see `attnkit data prepare`) and DIR/glove.6B.50d.txt. \
Validation: a seeded stratified 10% of train/. eval_accuracy is the accuracy on test/ — with the \
prepared data, a split carved from the IMDB train split, not the published test split.

Example:
  attnkit train imdb --data attnkit-data --model bilstm --embedding glove --epochs 3 --summary imdb.json"
)]
struct ImdbArgs {
    #[command(flatten)]
    common: Common,
    /// Folder with aclImdb/ and the GloVe file.
    #[arg(long, default_value = "attnkit-data")]
    data: PathBuf,
    /// GloVe file name inside --data.
    #[arg(long, default_value = "glove.6B.50d.txt")]
    glove: String,
    /// The sequence model: rnn, lstm, gru, birnn, bilstm, bigru, attention or aaren.
    #[arg(long, default_value = "bilstm", value_parser = parse_lowercase::<attnkit::tasks::sentiment::SentimentModel>)]
    model: attnkit::tasks::sentiment::SentimentModel,
    /// Word vectors: glove (fine-tuned) or onehot.
    #[arg(long, default_value = "glove", value_parser = parse_lowercase::<attnkit::tasks::sentiment::EmbeddingKind>)]
    embedding: attnkit::tasks::sentiment::EmbeddingKind,
    /// Passes over the training reviews.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Tokens kept per review.
    #[arg(long, default_value_t = 200)]
    max_len: usize,
    /// Reviews per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Use only this many training reviews (0 = all), for quick runs.
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Worker threads that tokenize and batch the training reviews through Burn's data
    /// loader while the model trains. 0 (default): encode once, shuffle with the run's
    /// own generator — the reproducible path; with workers, batch order varies by run.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Train every model with GloVe and with one-hot embeddings and write a table
    /// (imdb-compare.md, imdb-compare.csv in --out).
    #[arg(long)]
    compare: bool,
}

/// Parses a library enum from its lowercase serde name (`bilstm`, `glove`, …), listing
/// the accepted names on error.
fn parse_lowercase<T: serde::de::DeserializeOwned>(s: &str) -> std::result::Result<T, String> {
    serde_json::from_value(json!(s)).map_err(|e| {
        let msg = e.to_string();
        msg.split(" at line").next().unwrap_or(&msg).to_string()
    })
}

fn imdb(args: ImdbArgs) -> Result<()> {
    use attnkit::data::{Glove, ReviewLoaderConfig, Split, Vocabulary, load_reviews, tokenize};
    use attnkit::tasks::sentiment::{
        EmbeddingKind, SentimentConfig, SentimentModel, SentimentTraining, encode,
    };
    if args.epochs == 0 || args.batch == 0 || args.max_len == 0 {
        bail!("--epochs, --batch and --max-len must be at least 1");
    }
    let started = Instant::now();
    let root = args.data.join("aclImdb");
    let mut train = load_reviews(&root, Split::Train, 0.1, args.common.seed)?;
    if args.limit > 0 && args.limit < train.len() {
        // Keep both classes: a seeded sample.
        let mut rng = attnkit_kernels::rng::SplitMix64::new(args.common.seed);
        for i in (1..train.len()).rev() {
            train.swap(i, rng.below(i as u64 + 1) as usize);
        }
        train.truncate(args.limit);
    }
    let val = load_reviews(&root, Split::Validation, 0.1, args.common.seed)?;
    let test = load_reviews(&root, Split::Test, 0.1, args.common.seed)?;
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 2, 50_000);
    let vocab_arc = std::sync::Arc::new(vocab.clone());
    let out = args.common.out.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
    // Line i is the word of id i: what a deployed (exported) model needs to tokenize.
    let vocab_path = out.join("imdb-vocab.txt");
    let words: String = (0..vocab.len())
        .map(|i| format!("{}\n", vocab.word(i).unwrap_or("")))
        .collect();
    write_atomically(&vocab_path, words.as_bytes())?;
    let runs: Vec<(SentimentModel, EmbeddingKind)> = if args.compare {
        [EmbeddingKind::Glove, EmbeddingKind::Onehot]
            .into_iter()
            .flat_map(|e| SentimentModel::ALL.map(|m| (m, e)))
            .collect()
    } else {
        vec![(args.model, args.embedding)]
    };
    let glove = if runs.iter().any(|(_, e)| *e == EmbeddingKind::Glove) {
        Some(Glove::load(&args.data.join(&args.glove))?)
    } else {
        None
    };
    let (train_enc, val_enc, test_enc) = (
        encode(&train, &vocab, args.max_len),
        encode(&val, &vocab, args.max_len),
        encode(&test, &vocab, args.max_len),
    );
    let tokens_per_epoch: usize = train_enc.lengths.iter().sum();
    let steps_per_epoch = train.len().div_ceil(args.batch) as u64;
    let bar = progress(
        steps_per_epoch * args.epochs as u64 * runs.len() as u64,
        args.common.quiet,
    );
    let name = |x: &dyn std::fmt::Debug| format!("{x:?}").to_lowercase();
    let mut rows = Vec::new();
    for &(model_arg, embedding_arg) in &runs {
        let (model, embedding) = (model_arg, embedding_arg);
        let config = SentimentConfig {
            model,
            embedding,
            hidden: args.hidden,
            max_len: args.max_len,
            batch_size: args.batch,
            optimizer: OptimizerConfig::Adam { lr: args.lr },
            seed: args.common.seed,
        };
        let g = glove.as_ref().filter(|_| embedding == EmbeddingKind::Glove);
        let mut run = SentimentTraining::new(
            config.clone(),
            &vocab,
            g,
            train_enc.clone(),
            &Device::flex(),
        )?;
        let loader = (args.workers > 0)
            .then(|| {
                ReviewLoaderConfig::new(args.batch, args.max_len)
                    .with_shuffle(Some(args.common.seed))
                    .with_workers(args.workers)
                    .init(train.clone(), vocab_arc.clone(), run.device())
            })
            .transpose()?;
        let ckpt_path = out.join(format!(
            "imdb-{}-{}.ckpt",
            name(&model_arg),
            name(&embedding_arg)
        ));
        let mut history = Vec::new();
        let mut step_seconds = 0.0;
        for epoch in 1..=args.epochs {
            let t = Instant::now();
            let tick = |_: usize, _: usize, l: f64| {
                bar.inc(1);
                bar.set_message(format!(
                    "{} {} epoch {epoch} loss {l:.3}",
                    name(&model_arg),
                    name(&embedding_arg)
                ));
            };
            let (loss, acc) = match &loader {
                Some(loader) => run.epoch_from(loader.as_ref(), tick)?,
                None => run.epoch(tick)?,
            };
            step_seconds += t.elapsed().as_secs_f64();
            let val_acc = run.evaluate(&val_enc)?;
            bar.suspend(|| {
                println!(
                    "{} + {} epoch {epoch}: train loss {loss:.4} acc {acc:.4}, validation acc {val_acc:.4}",
                    name(&model_arg),
                    name(&embedding_arg)
                )
            });
            history.push(json!({"epoch": epoch, "train_loss": loss, "train_accuracy": acc, "val_accuracy": val_acc}));
            run.save_checkpoint(&ckpt_path)?;
        }
        let eval_accuracy = run.evaluate(&test_enc)?;
        let tokens_per_second =
            tokens_per_epoch as f64 * args.epochs as f64 / step_seconds.max(1e-9);
        bar.suspend(|| {
            println!(
                "{} + {}: test accuracy {eval_accuracy:.4} ({} reviews), {} parameters, {:.0}s training, {:.0} tokens/s",
                name(&model_arg),
                name(&embedding_arg),
                test.len(),
                run.num_params(),
                step_seconds,
                tokens_per_second
            )
        });
        rows.push(json!({
            "model": name(&model_arg),
            "embedding": name(&embedding_arg),
            "steps": run.steps(),
            "train_seconds": step_seconds,
            "tokens_per_second": tokens_per_second,
            "parameters": run.num_params(),
            "eval_accuracy": eval_accuracy,
            "history": history,
            "config": config,
            "checkpoint": ckpt_path,
        }));
    }
    bar.finish_and_clear();
    let wall_seconds = started.elapsed().as_secs_f64();
    println!(
        "test/ has {} reviews; with `attnkit data prepare` it is carved from the IMDB train split",
        test.len()
    );
    if args.compare {
        let out = &args.common.out;
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create `{}`", out.display()))?;
        let mut md = String::from(
            "| model | embedding | test accuracy | parameters | train time (s) | tokens/s |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
        );
        let mut csv = String::from(
            "model,embedding,test_accuracy,parameters,train_seconds,tokens_per_second\n",
        );
        for r in &rows {
            md.push_str(&format!(
                "| {} | {} | {:.4} | {} | {:.0} | {:.0} |\n",
                r["model"].as_str().unwrap_or_default(),
                r["embedding"].as_str().unwrap_or_default(),
                r["eval_accuracy"].as_f64().unwrap_or(f64::NAN),
                r["parameters"],
                r["train_seconds"].as_f64().unwrap_or(f64::NAN),
                r["tokens_per_second"].as_f64().unwrap_or(f64::NAN)
            ));
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                r["model"].as_str().unwrap_or_default(),
                r["embedding"].as_str().unwrap_or_default(),
                r["eval_accuracy"],
                r["parameters"],
                r["train_seconds"],
                r["tokens_per_second"]
            ));
        }
        println!("\n{md}");
        write_atomically(&out.join("imdb-compare.md"), md.as_bytes())?;
        write_atomically(&out.join("imdb-compare.csv"), csv.as_bytes())?;
        // Test accuracy per model, GloVe next to one-hot.
        let models: Vec<String> = SentimentModel::ALL.iter().map(|m| name(m)).collect();
        let accuracy_of = |embedding: &str| -> Vec<f64> {
            models
                .iter()
                .map(|m| {
                    rows.iter()
                        .find(|r| r["model"] == m.as_str() && r["embedding"] == embedding)
                        .and_then(|r| r["eval_accuracy"].as_f64())
                        .unwrap_or(f64::NAN)
                })
                .collect()
        };
        let (glove_acc, onehot_acc) = (accuracy_of("glove"), accuracy_of("onehot"));
        let lowest = glove_acc
            .iter()
            .chain(&onehot_acc)
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.5f64, f64::min);
        let png = out.join("imdb-compare.png");
        let categories: Vec<&str> = models.iter().map(String::as_str).collect();
        crate::chart::bar_chart(
            &png,
            &format!(
                "IMDB test accuracy ({} train reviews, {} epochs, {} tokens)",
                train.len(),
                args.epochs,
                args.max_len
            ),
            "test accuracy",
            &categories,
            &[
                crate::chart::BarGroup {
                    label: "GloVe",
                    values: &glove_acc,
                    color: plotters::style::RGBColor(31, 119, 180),
                },
                crate::chart::BarGroup {
                    label: "one-hot (learned)",
                    values: &onehot_acc,
                    color: plotters::style::RGBColor(255, 127, 14),
                },
            ],
            ((lowest - 0.05).max(0.0), 1.0),
        )?;
        println!(
            "files: {}, {}, {}",
            out.join("imdb-compare.md").display(),
            out.join("imdb-compare.csv").display(),
            png.display()
        );
    }
    if let Some(path) = &args.common.summary {
        let mut doc = json!({
            "task": "imdb",
            "seed": args.common.seed,
            "epochs": args.epochs,
            "wall_seconds": wall_seconds,
            "train_reviews": train.len(),
            "test_reviews": test.len(),
            "test_split_note": "test/ as found under --data; attnkit data prepare carves it from the IMDB train split",
            "runs": rows,
        });
        if let [only] = rows.as_slice() {
            for key in [
                "model",
                "embedding",
                "steps",
                "eval_accuracy",
                "parameters",
                "train_seconds",
                "tokens_per_second",
                "history",
                "config",
            ] {
                doc[key] = only[key].clone();
            }
        }
        write_summary(path, &doc)?;
    }
    Ok(())
}
