//! `attnkit train enhance`: the speech-enhancement network (Aaren, GRU or causal
//! attention) on the shared training loop.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnkit::tasks::enhance::{EnhanceConfig, EnhanceData, EnhanceTraining, TemporalModel};
use attnkit::train::{Every, OptimizerConfig, TrainPlan, Trainer};
use clap::Args;
use serde_json::json;

use super::{BLUE, BarProgress, Common, Curve, HistoryChart, ORANGE};

#[derive(Args)]
#[command(
    after_help = "The network: per-bin log power of a 20 ms / 10 ms STFT (161 bins) → linear 161→128 + \
ReLU → two temporal layers (Aaren blocks with feed-forward 128, a GRU, or causal Transformer layers \
with feed-forward 128; 4 heads) → linear 128→161 + sigmoid: a gain per bin. Loss: negative SI-SDR of \
the waveform after the inverse STFT. Adam lr 1e-3, 16 segments of 2 s per step, mixed on the fly at \
−5…15 dB. Every --log-every steps it scores the first 100 validation pairs (val_si_sdr, val_gain = \
the improvement over the noisy input). Writes DIR/enhance-MODEL.safetensors (what `attnkit enhance \
--checkpoint` reads), the checkpoint, the history and a chart.

Example:
  attnkit data prepare-speech --out attnkit-data/speech
  attnkit train enhance --data attnkit-data/speech --model aaren --steps 6000"
)]
pub struct EnhanceArgs {
    #[command(flatten)]
    common: Common,
    /// Training data: the folder `attnkit data prepare-speech` writes, a VoiceBank+DEMAND
    /// folder (clean_trainset_wav/, noisy_trainset_wav/), or any clean/ + noisy/ pair.
    #[arg(long, default_value = "attnkit-data/speech")]
    data: PathBuf,
    /// The temporal layers: aaren, gru or attention.
    #[arg(long, default_value = "aaren", value_parser = parse_model)]
    model: TemporalModel,
    /// Training steps.
    #[arg(long, default_value_t = 6000)]
    steps: u64,
    /// Log and validate every this many steps.
    #[arg(long, default_value_t = 250)]
    log_every: u64,
    /// Save a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Segments per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Frames (10 ms) per training segment.
    #[arg(long, default_value_t = 200)]
    segment_frames: usize,
    /// Width of every layer.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Temporal layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Start from these weights (an earlier run's DIR/enhance-MODEL.safetensors) with a
    /// fresh optimizer: a second stage at a lower --lr. Use another --out so the first
    /// stage's files stay.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Weight of the compressed-spectrum term (magnitudes and complex values to the power
    /// 0.3) added to the negative SI-SDR; 0 trains on SI-SDR alone.
    #[arg(long, default_value_t = 0.0)]
    spectral_weight: f64,
    /// Aaren only, beyond the paper: learn a forgetting rate per head (old frames fade;
    /// the state stays fixed). With --init from a model without it, the rates start at
    /// time constants of 0.5, 2, 8 and 32 s.
    #[arg(long)]
    forgetting: bool,
}

fn parse_model(s: &str) -> std::result::Result<TemporalModel, String> {
    s.parse().map_err(|e: attnkit::AttnError| e.to_string())
}

pub fn run(args: EnhanceArgs) -> Result<()> {
    if args.log_every == 0 || args.checkpoint_every == 0 {
        bail!("--log-every and --checkpoint-every must be at least 1");
    }
    let started = Instant::now();
    let config = EnhanceConfig {
        model: args.model,
        width: args.width,
        layers: args.layers,
        segment_frames: args.segment_frames,
        batch_size: args.batch,
        optimizer: OptimizerConfig::Adam { lr: args.lr },
        seed: args.common.seed,
        init: args.init.as_ref().map(|p| p.display().to_string()),
        spectral_weight: args.spectral_weight,
        forgetting: args.forgetting,
        ..EnhanceConfig::default()
    };
    config.validate()?;
    eprintln!("loading {} ...", args.data.display());
    let (data, valid) = EnhanceData::load(&args.data)?;
    let describe = match &data {
        EnhanceData::Mixing { speech, noise } => format!(
            "{} speech clips ({:.0} min) and {} noise clips ({:.0} min), mixed on the fly",
            speech.len(),
            speech.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 960_000.0,
            noise.len(),
            noise.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 960_000.0
        ),
        EnhanceData::Pairs(p) => format!("{} clean/noisy pairs", p.len()),
    };
    eprintln!(
        "{describe}; {} validation pairs (scoring {}) loaded in {:.0} s",
        valid.len(),
        config.validation_pairs.min(valid.len()),
        started.elapsed().as_secs_f64()
    );
    super::create_dir(&args.common.out)?;
    let name = format!("enhance-{}", config.model.name());
    let checkpoint = args.common.out.join(format!("{name}.ckpt"));
    let plan = TrainPlan {
        steps: args.steps,
        log: Every::Steps(args.log_every),
        checkpoint: Every::Steps(args.checkpoint_every),
        checkpoint_path: Some(checkpoint.clone()),
        stop_at: None,
    };
    let task = EnhanceTraining::new(config, data, valid, &args.common.device.init()?)?;
    let params = task.inference_model().parameters();
    eprintln!(
        "{name}: {params} parameters; noisy validation SI-SDR {:.2} dB",
        task.noisy_si_sdr()
    );
    let mut trainer = Trainer::start(task, plan, args.common.resume)?;
    if args.common.resume {
        eprintln!(
            "resumed {} at step {}",
            checkpoint.display(),
            trainer.step()
        );
    }
    let bar = super::progress_bar(args.steps, args.common.quiet);
    trainer.run(&mut BarProgress {
        bar: &bar,
        offset: 0,
        on_step: Box::new(|_, m| {
            m.iter()
                .find(|(k, _)| *k == "si_sdr")
                .map(|(_, v)| format!("batch SI-SDR {v:.2} dB"))
        }),
        on_log: Box::new(|r| {
            format!(
                "step {}: train SI-SDR {:.2} dB, validation {:.2} dB (gain {:+.2} dB)",
                r.step,
                r.get("train_si_sdr").unwrap_or(f64::NAN),
                r.get("val_si_sdr").unwrap_or(f64::NAN),
                r.get("val_gain").unwrap_or(f64::NAN)
            )
        }),
        print_logs: true,
    })?;
    bar.finish_and_clear();
    let run = trainer.task();
    let weights = args.common.out.join(format!("{name}.safetensors"));
    run.inference_model()
        .to_store(run.config())
        .save(&weights)
        .with_context(|| format!("writing {}", weights.display()))?;
    let files = super::write_run_files(
        &trainer,
        args.common.out.join(format!("{name}-history.csv")),
        args.common.out.join(format!("{name}-si-sdr.png")),
        &HistoryChart {
            title: format!(
                "Speech enhancement, {} layers: SI-SDR during training (seed {})",
                run.config().model.name(),
                run.config().seed
            ),
            x: "step",
            y_label: "SI-SDR (dB)",
            curves: &[
                Curve {
                    metric: "train_si_sdr",
                    label: "training batches",
                    color: BLUE,
                },
                Curve {
                    metric: "val_si_sdr",
                    label: "validation pairs",
                    color: ORANGE,
                },
            ],
            scale: crate::chart::Scale::Linear,
        },
    )?;
    let seconds = trainer.step_seconds();
    println!(
        "{name} (seed {}): {} steps, {:.0} s in steps ({:.2} steps/s), {:.0} s in all; validation SI-SDR {:.2} dB, \
gain {:+.2} dB over the noisy input",
        run.config().seed,
        trainer.step(),
        seconds,
        trainer.steps_this_run() as f64 / seconds.max(1e-9),
        started.elapsed().as_secs_f64(),
        trainer.last("val_si_sdr").unwrap_or(f64::NAN),
        trainer.last("val_gain").unwrap_or(f64::NAN),
    );
    println!(
        "files: {}, {}, {}, {}",
        weights.display(),
        checkpoint.display(),
        files.csv.display(),
        files.chart.unwrap_or_default().display()
    );
    if let Some(path) = &args.common.summary {
        let mut doc = trainer.summary();
        doc["parameters"] = json!(params);
        doc["weights"] = json!(weights);
        doc["noisy_val_si_sdr"] = json!(run.noisy_si_sdr());
        doc["wall_seconds"] = json!(started.elapsed().as_secs_f64());
        super::write_summary(path, &doc)?;
    }
    Ok(())
}
