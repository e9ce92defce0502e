//! `attnkit train imdb`: IMDB sentiment with GloVe or one-hot embeddings, one model or
//! the whole comparison table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use attnkit::data::{Glove, ReviewLoaderConfig, Split, Vocabulary, load_reviews, tokenize};
use attnkit::store::write_atomically;
use attnkit::tasks::sentiment::{
    EmbeddingKind, KeepTokens, SentimentConfig, SentimentModel, SentimentTraining, encode_keeping,
};
use attnkit::train::{OptimizerConfig, TrainPlan, Trainer, TrainingTask};
use clap::Args;
use serde_json::json;

use super::{BarProgress, Common, parse_lowercase};

#[derive(Args)]
#[command(
    after_help = "Reads DIR/aclImdb/ (see `attnkit data prepare`) and DIR/glove.6B.50d.txt. \
Validation: a seeded stratified 10% of train/. eval_accuracy is the accuracy on test/ — with the \
prepared data, a split carved from the IMDB train split, not the published test split. \
A checkpoint is saved after every epoch; --resume continues each run from its checkpoint in --out \
(with --compare, runs without a checkpoint start fresh).

Example:
  attnkit train imdb --data attnkit-data --model bilstm --embedding glove --summary imdb.json"
)]
pub struct ImdbArgs {
    #[command(flatten)]
    common: Common,
    /// Folder with aclImdb/ and the GloVe file.
    #[arg(long, default_value = "attnkit-data")]
    data: PathBuf,
    /// GloVe file name inside --data.
    #[arg(long, default_value = "glove.6B.50d.txt")]
    glove: String,
    /// The sequence model: rnn, lstm, gru, birnn, bilstm, bigru, attention or aaren.
    #[arg(long, default_value = "bilstm", value_parser = parse_lowercase::<SentimentModel>)]
    model: SentimentModel,
    /// Word vectors: glove (fine-tuned) or onehot.
    #[arg(long, default_value = "glove", value_parser = parse_lowercase::<EmbeddingKind>)]
    embedding: EmbeddingKind,
    /// Passes over the training reviews. The test accuracy reported is that of the
    /// network after the epoch with the best validation accuracy (saved as
    /// imdb-MODEL-EMBEDDING-best.ckpt).
    #[arg(long, default_value_t = 8)]
    epochs: u64,
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
    /// Dropout on the word vectors and on the features the classifier reads (training
    /// only)
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Which tokens of a review longer than --max-len are kept: first or last
    #[arg(long, default_value = "last", value_parser = parse_lowercase::<KeepTokens>)]
    keep: KeepTokens,
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

fn name(x: &dyn std::fmt::Debug) -> String {
    format!("{x:?}").to_lowercase()
}

pub fn run(args: ImdbArgs) -> Result<()> {
    if args.epochs == 0 || args.batch == 0 || args.max_len == 0 {
        bail!("--epochs, --batch and --max-len must be at least 1");
    }
    let started = Instant::now();
    let seed = args.common.seed;
    let device = args.common.device.init()?;
    let root = args.data.join("aclImdb");
    let mut train = load_reviews(&root, Split::Train, 0.1, seed)?;
    if args.limit > 0 && args.limit < train.len() {
        // Keep both classes: a seeded sample.
        attnkit_kernels::rng::SplitMix64::new(seed).shuffle(&mut train);
        train.truncate(args.limit);
    }
    let val = load_reviews(&root, Split::Validation, 0.1, seed)?;
    let test = load_reviews(&root, Split::Test, 0.1, seed)?;
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 2, 50_000);
    let vocab_arc = Arc::new(vocab.clone());
    let out = args.common.out.clone();
    super::create_dir(&out)?;
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
        encode_keeping(&train, &vocab, args.max_len, args.keep),
        encode_keeping(&val, &vocab, args.max_len, args.keep),
        encode_keeping(&test, &vocab, args.max_len, args.keep),
    );
    let tokens_per_epoch: usize = train_enc.lengths.iter().sum();
    let steps_per_epoch = train.len().div_ceil(args.batch) as u64;
    // Steps of one run, and of all runs on the one bar.
    let steps_per_run = TrainPlan::by_epochs(args.epochs, steps_per_epoch, None)?.steps;
    let all_steps = steps_per_run
        .checked_mul(runs.len() as u64)
        .ok_or_else(|| anyhow::anyhow!("--epochs {} is too many", args.epochs))?;
    let bar = super::progress_bar(all_steps, args.common.quiet);
    let mut rows = Vec::new();
    for (k, &(model, embedding)) in runs.iter().enumerate() {
        let config = SentimentConfig {
            model,
            embedding,
            hidden: args.hidden,
            max_len: args.max_len,
            batch_size: args.batch,
            optimizer: OptimizerConfig::Adam { lr: args.lr },
            seed,
            dropout: args.dropout,
            keep: args.keep,
        };
        let g = glove.as_ref().filter(|_| embedding == EmbeddingKind::Glove);
        let mut task =
            SentimentTraining::new(config.clone(), &vocab, g, train_enc.clone(), &device)?
                .with_validation(val_enc.clone())?;
        if args.workers > 0 {
            let loader = ReviewLoaderConfig::new(args.batch, args.max_len)
                .with_keep(args.keep)
                .with_shuffle(Some(seed))
                .with_workers(args.workers)
                .init(train.clone(), vocab_arc.clone(), task.device())?;
            task = task.with_loader(loader);
        }
        let per_epoch = task.steps_per_epoch().unwrap_or(steps_per_epoch);
        let ckpt_path = out.join(format!("imdb-{}-{}.ckpt", name(&model), name(&embedding)));
        let best_path = out.join(format!(
            "imdb-{}-{}-best.ckpt",
            name(&model),
            name(&embedding)
        ));
        if !args.common.resume {
            // A fresh run: a best network left by an earlier one is not this run's.
            let _ = std::fs::remove_file(&best_path);
        }
        let task = task.with_best_checkpoint(best_path.clone());
        // With --compare, a run that has no checkpoint yet starts fresh.
        let resume = args.common.resume && (!args.compare || ckpt_path.exists());
        let plan = TrainPlan::by_epochs(args.epochs, per_epoch, Some(ckpt_path.clone()))?;
        let mut trainer = Trainer::start(task, plan, resume)?;
        if resume {
            bar.suspend(|| {
                eprintln!(
                    "resumed {} after epoch {}",
                    ckpt_path.display(),
                    trainer.step() / per_epoch
                )
            });
        }
        let label = format!("{} + {}", name(&model), name(&embedding));
        trainer.run(&mut BarProgress {
            bar: &bar,
            offset: k as u64 * steps_per_run,
            on_step: Box::new(|step, m| {
                let loss = m.first().map_or(f64::NAN, |(_, v)| *v);
                Some(format!(
                    "{} {} epoch {} loss {loss:.3}",
                    name(&model),
                    name(&embedding),
                    step.div_ceil(per_epoch)
                ))
            }),
            on_log: Box::new(|r| {
                format!(
                    "{label} epoch {}: train loss {:.4} acc {:.4}, validation acc {:.4}",
                    r.epoch.unwrap_or(0),
                    r.get("train_loss").unwrap_or(f64::NAN),
                    r.get("train_accuracy").unwrap_or(f64::NAN),
                    r.get("val_accuracy").unwrap_or(f64::NAN)
                )
            }),
            print_logs: true,
        })?;
        let run = trainer.task();
        // The network of the epoch with the best validation accuracy (model selection on
        // the validation reviews; the test reviews are read once, here).
        let eval_accuracy = run.evaluate_best(&test_enc)?;
        let (best_step, best_val) = run.best_epoch().unwrap_or((trainer.step(), f64::NAN));
        let best_epoch = best_step / per_epoch.max(1);
        let step_seconds = trainer.step_seconds();
        let tokens_per_second = tokens_per_epoch as f64 * trainer.steps_this_run() as f64
            / per_epoch.max(1) as f64
            / step_seconds.max(1e-9);
        bar.suspend(|| {
            println!(
                "{label}: test accuracy {eval_accuracy:.4} ({} reviews) at epoch {best_epoch} (best validation accuracy, {best_val:.4}), {} parameters, {:.0}s training, {:.0} tokens/s",
                test.len(),
                run.num_params(),
                step_seconds,
                tokens_per_second
            )
        });
        let history: Vec<serde_json::Value> = trainer
            .history()
            .iter()
            .map(|r| {
                json!({
                    "epoch": r.epoch,
                    "train_loss": r.get("train_loss"),
                    "train_accuracy": r.get("train_accuracy"),
                    "val_accuracy": r.get("val_accuracy"),
                })
            })
            .collect();
        rows.push(json!({
            "model": name(&model),
            "embedding": name(&embedding),
            "steps": trainer.step(),
            "train_seconds": step_seconds,
            "tokens_per_second": tokens_per_second,
            "parameters": run.num_params(),
            "eval_accuracy": eval_accuracy,
            "best_epoch": best_epoch,
            "best_val_accuracy": best_val,
            "best_checkpoint": best_path,
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
        write_comparison(&out, &rows, train.len(), args.epochs, args.max_len)?;
    }
    if let Some(path) = &args.common.summary {
        let mut doc = json!({
            "task": "imdb",
            "seed": seed,
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
        super::write_summary(path, &doc)?;
    }
    Ok(())
}

/// The comparison table (Markdown, CSV) and its chart: test accuracy per model, GloVe
/// next to one-hot.
fn write_comparison(
    out: &std::path::Path,
    rows: &[serde_json::Value],
    train_reviews: usize,
    epochs: u64,
    max_len: usize,
) -> Result<()> {
    let mut md = String::from(
        "| model | embedding | test accuracy | parameters | train time (s) | tokens/s |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
    );
    let mut csv =
        String::from("model,embedding,test_accuracy,parameters,train_seconds,tokens_per_second\n");
    for r in rows {
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
            "IMDB test accuracy ({train_reviews} train reviews, {epochs} epochs, {max_len} tokens)"
        ),
        "test accuracy",
        &categories,
        &[
            crate::chart::BarGroup {
                label: "GloVe",
                values: &glove_acc,
                color: super::BLUE,
            },
            crate::chart::BarGroup {
                label: "one-hot (learned)",
                values: &onehot_acc,
                color: super::ORANGE,
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
    Ok(())
}
