//! `attnkit tour`: every capability on built-in data, with a report.
//!
//! Each check prints one line as it finishes; the tour ends with a table of what ran,
//! its key number and where its files are, and writes the same as `tour.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnkit::aaren::{AarenConfig, AarenMode, TokenStream};
use attnkit::attention::{
    AttentionMask, MultiHeadAttentionConfig, ScaledDotProductAttentionConfig,
};
use attnkit::contract;
use attnkit::store::{TensorStore, TorchWeights};
use attnkit::tasks::counting::{CountConfig, Mixer};
use attnkit::tasks::pe_regression::PeRegressionConfig;
use attnkit::verify::{self, Agreement};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;
use clap::Args;
use serde_json::json;

/// Arguments of `attnkit tour`.
#[derive(Args)]
pub struct TourArgs {
    /// Folder for the tour's files (created if missing).
    #[arg(long, default_value = "attnkit-out/tour")]
    out: PathBuf,
    /// Seed of the random data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of PyTorch fixtures to replay (skipped if absent).
    #[arg(long, default_value = "tools/fixtures/attention")]
    fixtures: PathBuf,
}

/// A check's outcome. A skipped check did not run: it is reported, never counted as
/// passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Passed => "ok",
            Self::Failed => "FAIL",
            Self::Skipped => "skip",
        }
    }
}

/// Returned (as an error) by a check that cannot run here, saying why.
#[derive(Debug)]
struct Skipped(String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skipped {}

struct Check {
    name: &'static str,
    result: String,
    status: Status,
    files: String,
    seconds: f64,
}

fn agreement_line(a: &Agreement, tol: f64, rel: bool) -> (String, bool) {
    let err = if rel { a.max_rel } else { a.max_abs };
    let kind = if rel { "max rel err" } else { "max abs err" };
    (
        format!("{kind} {err:.1e} over {} values (tol {tol:.0e})", a.count),
        a.finite && err <= tol,
    )
}

pub fn run(args: TourArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    let device = Device::flex();
    let started = Instant::now();
    println!(
        "attnkit tour: checks against independent implementations (seed {})\n",
        args.seed
    );
    let mut checks: Vec<Check> = Vec::new();
    let mut record = |name: &'static str, f: &mut dyn FnMut() -> Result<(String, bool, String)>| {
        let t = Instant::now();
        let (result, status, files) = match f() {
            Ok((r, true, files)) => (r, Status::Passed, files),
            Ok((r, false, files)) => (r, Status::Failed, files),
            Err(e) => match e.downcast_ref::<Skipped>() {
                Some(skip) => (skip.to_string(), Status::Skipped, String::new()),
                None => (format!("error: {e:#}"), Status::Failed, String::new()),
            },
        };
        let seconds = t.elapsed().as_secs_f64();
        println!("  [{}] {name}: {result} ({seconds:.2}s)", status.label());
        checks.push(Check {
            name,
            result,
            status,
            files,
            seconds,
        });
    };

    record("softmax, written by hand (kernels)", &mut || {
        let mut row = [1.0f64, 2.0, 3.0];
        attnkit_kernels::softmax::softmax_in_place(&mut row);
        // Values of e^i / (e + e² + e³), computed independently to 17 digits.
        let want = [
            0.090_030_573_170_380_46,
            0.244_728_471_054_797_6,
            0.665_240_955_774_821_9,
        ];
        let err = row
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        Ok((
            format!("softmax([1,2,3]) max err {err:.1e}"),
            err < 1e-15,
            String::new(),
        ))
    });
    record(
        "self-attention exercise (numpy) vs MHA (1 head)",
        &mut || {
            let a = verify::exercise_self_attention_vs_reference(&device, args.seed)?;
            let (line, ok) = agreement_line(&a, 1e-5, true);
            Ok((line, ok, String::new()))
        },
    );
    record(
        "scaled dot-product attention, causal + padding",
        &mut || {
            let a = verify::sdpa_vs_reference(&device, args.seed, 1.0)?;
            let (line, ok) = agreement_line(&a, 1e-5, false);
            Ok((line, ok, String::new()))
        },
    );
    record("scaled dot-product attention, logits ~1e4", &mut || {
        let a = verify::sdpa_vs_reference(&device, args.seed, 40.0)?;
        let (line, ok) = agreement_line(&a, 5e-3, false);
        Ok((
            format!("{line}, all finite: {}", a.finite),
            ok,
            String::new(),
        ))
    });
    record("multi-head cross attention + padding", &mut || {
        let a = verify::mha_vs_reference(&device, args.seed)?;
        let (line, ok) = agreement_line(&a, 1e-5, false);
        Ok((line, ok, String::new()))
    });
    record("fully masked query rows give zeros, not NaN", &mut || {
        fully_masked(&device)
    });
    record("Aaren layer vs f64 definition: parallel scan", &mut || {
        let a = verify::aaren_vs_reference(&device, args.seed, 256, 100.0, AarenMode::Parallel)?;
        let (line, ok) = agreement_line(&a, 1e-3, true);
        Ok((
            format!("{line}; 256 tokens, padding, |scores| ~1e2"),
            ok,
            String::new(),
        ))
    });
    record("Aaren layer vs f64 definition: iterative cell", &mut || {
        let a = verify::aaren_vs_reference(&device, args.seed, 64, 100.0, AarenMode::Iterative)?;
        let (line, ok) = agreement_line(&a, 1e-3, true);
        Ok((format!("{line}; 64 tokens, padding"), ok, String::new()))
    });
    record("Aaren forms at 10^5 tokens, scores to ~5e4", &mut || {
        aaren_forms(&args.out, args.seed, &device)
    });
    record("Aaren stream: 10^5 tokens in constant memory", &mut || {
        aaren_stream(args.seed, &device)
    });
    record("counting task, self-attention encoder", &mut || {
        count_task(&args.out, args.seed, Mixer::Attention)
    });
    record("counting task, Aaren encoder", &mut || {
        count_task(&args.out, args.seed, Mixer::Aaren)
    });
    record("ONNX export of both trained counting networks", &mut || {
        onnx_export(&args.out)
    });
    record("positional-encoding regression", &mut || {
        pe_regression(&args.out, args.seed)
    });
    record("PyTorch fixtures through the module contract", &mut || {
        replay_fixtures(&args.fixtures, &device)
    });
    record("attnkit forward example (mha)", &mut || {
        contract_example(&args.out, args.seed, &device)
    });
    record(
        "speech enhancement: built-in model, held-out mixture",
        &mut || enhance_example(&args.out, &device),
    );

    let count = |status: Status| checks.iter().filter(|c| c.status == status).count();
    let (passed, failed, skipped) = (
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Skipped),
    );
    println!("\n{:<52} {:<6} {:>7}  files", "check", "status", "seconds");
    for c in &checks {
        println!(
            "{:<52} {:<6} {:>7.2}  {}",
            c.name,
            c.status.label(),
            c.seconds,
            if c.files.is_empty() { "-" } else { &c.files }
        );
    }
    let report = json!({
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "total": checks.len(),
        "seed": args.seed,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "checks": checks.iter().map(|c| json!({
            "check": c.name, "result": c.result, "passed": c.status == Status::Passed,
            "skipped": c.status == Status::Skipped,
            "files": c.files, "seconds": c.seconds,
        })).collect::<Vec<_>>(),
    });
    let report_path = args.out.join("tour.json");
    attnkit::store::write_atomically(
        &report_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let skipped_note = if skipped > 0 {
        format!(" ({skipped} skipped: did not run, not counted as passed)")
    } else {
        String::new()
    };
    println!(
        "\n{passed}/{} checks passed{skipped_note} in {:.1}s; report: {}",
        checks.len(),
        started.elapsed().as_secs_f64(),
        report_path.display()
    );
    if failed > 0 {
        bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

/// The Aaren forms on 10^5 tokens at two score scales (`attnkit aaren compare`).
fn aaren_forms(out: &Path, seed: u64, device: &Device) -> Result<(String, bool, String)> {
    let eps = f32::EPSILON as f64;
    let mut parts = Vec::new();
    let mut ok = true;
    let mut rows = Vec::new();
    for scale in [10.0, 1.0e4] {
        let r = verify::compare_aaren_forms(
            device,
            verify::AarenCompareSpec {
                batch: 1,
                heads: 2,
                len: 100_000,
                d_head: 8,
                score_scale: scale,
                seed,
            },
        )?;
        let all = [
            r.parallel_vs_iterative,
            r.parallel_vs_reference,
            r.iterative_vs_reference,
            r.compensated_vs_reference,
        ];
        ok &= all.iter().all(|a| a.finite)
            && r.parallel_vs_reference.max_rel <= 16.0 * eps
            && r.compensated_vs_reference.max_rel <= 16.0 * eps;
        parts.push(format!(
            "σ={scale:e}: parallel {:.1} eps, iterative {:.1}, compensated {:.1}",
            r.parallel_vs_reference.max_rel / eps,
            r.iterative_vs_reference.max_rel / eps,
            r.compensated_vs_reference.max_rel / eps
        ));
        rows.push(json!({
            "score_scale": scale, "len": r.spec.len, "max_abs_score": r.max_abs_score,
            "parallel_vs_f64_eps": r.parallel_vs_reference.max_rel / eps,
            "iterative_vs_f64_eps": r.iterative_vs_reference.max_rel / eps,
            "compensated_vs_f64_eps": r.compensated_vs_reference.max_rel / eps,
            "parallel_vs_iterative_eps": r.parallel_vs_iterative.max_rel / eps,
        }));
    }
    let path = out.join("aaren-compare.json");
    attnkit::store::write_atomically(&path, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    Ok((
        format!("vs f64, in f32 eps: {}; no NaN", parts.join("; ")),
        ok,
        path.display().to_string(),
    ))
}

/// 10^5 tokens through the allocation-free kernel stream: the state keeps its size and
/// the last output matches the parallel scan over the whole sequence.
fn aaren_stream(seed: u64, device: &Device) -> Result<(String, bool, String)> {
    let (l, e, h) = (100_000, 16, 2);
    device.seed(seed);
    let layer = AarenConfig::new(e, h).init(device)?;
    let mut rng = SplitMix64::new(seed);
    let x: Vec<f32> = (0..l * e).map(|_| rng.normal() as f32).collect();
    let mut stream = TokenStream::<f32>::new(&layer)?;
    let before = stream.state().len();
    let mut last = Vec::new();
    for t in 0..l {
        last = stream.push(&x[t * e..(t + 1) * e], false)?.to_vec();
    }
    let after = stream.state().len();
    let full = layer.forward(
        Tensor::from_data(TensorData::new(x, [1, l, e]), device),
        None,
    )?;
    let want = attnkit::store::StoredTensor::from_tensor(full.narrow(1, l - 1, 1)).data;
    let a = Agreement::measure(&last, &want.iter().map(|&v| v as f64).collect::<Vec<_>>())?;
    Ok((
        format!(
            "state {before} → {after} floats ({} bytes) after {l} tokens; last output vs parallel scan max rel {:.1e}",
            after * 4,
            a.max_rel
        ),
        before == after && a.finite && a.max_rel < 1e-4,
        String::new(),
    ))
}

/// Trains the counting task until 2,000 validation sequences are 99.5% right (at most
/// 20,000 steps), then measures 10,000 fresh held-out sequences: the code of
/// `attnkit train count`, with the tour's stopping rule.
fn count_task(out: &Path, seed: u64, mixer: Mixer) -> Result<(String, bool, String)> {
    let name = match mixer {
        Mixer::Attention => "count-attention",
        Mixer::Aaren => "count-aaren",
    };
    let o = crate::train::count::train(&crate::train::count::CountOptions {
        config: CountConfig {
            mixer,
            seed,
            ..CountConfig::default()
        },
        steps: 20_000,
        stop_at: Some(0.995),
        log_every: 250,
        checkpoint_every: 20_000,
        eval_sequences: 10_000,
        exhaustive: false,
        out: out.to_path_buf(),
        name: name.into(),
        resume: false,
        quiet: false,
        device: Device::flex(),
    })?;
    let first = o
        .trainer
        .first_step_reaching("val_accuracy", 0.99)
        .map_or("never".to_string(), |s| s.to_string());
    Ok((
        format!(
            "held-out accuracy {:.4} (10,000 sequences) after {} steps ({:.0}s); validation ≥ 99% first at step {first}",
            o.eval_accuracy,
            o.trainer.step(),
            o.wall_seconds
        ),
        o.eval_accuracy >= 0.99,
        o.checkpoint.display().to_string(),
    ))
}

/// Exports the two counting checkpoints the tour just trained and reads the files
/// back. Running them is `tools/onnx_check.py --checkpoints DIR` (onnxruntime) and the
/// `attnkit-onnx` tests (tract).
fn onnx_export(out: &Path) -> Result<(String, bool, String)> {
    let mut parts = Vec::new();
    let mut files = Vec::new();
    let mut ok = true;
    for name in ["count-attention", "count-aaren"] {
        let exported = attnkit_onnx::export_checkpoint(&out.join(format!("{name}.ckpt")))?;
        let path = out.join(format!("{name}.onnx"));
        attnkit_onnx::save_model(&exported.model, &path)?;
        let back = attnkit_onnx::decode_model(&path)?;
        ok &= back == exported.model && exported.warnings.is_empty();
        let nodes = back.graph.as_ref().map_or(0, |g| g.node.len());
        let bytes = std::fs::metadata(&path)?.len();
        parts.push(format!(
            "{name}.onnx {nodes} nodes, {:.0} KB",
            bytes as f64 / 1e3
        ));
        files.push(path.display().to_string());
    }
    Ok((
        format!(
            "{} (opset 17; tokens [B,7] -> logits [B,11])",
            parts.join("; ")
        ),
        ok,
        files.join(", "),
    ))
}

/// The positional-encoding regression with its loss chart: the code of
/// `attnkit train pe-regression` with its defaults (60 epochs).
fn pe_regression(out: &Path, seed: u64) -> Result<(String, bool, String)> {
    let dir = out.join("pe-regression");
    let config = PeRegressionConfig {
        seed,
        ..PeRegressionConfig::default()
    };
    let o = crate::train::pe_regression::train(config, 60, &dir, false, true, &Device::flex())?;
    let (v0, v1, t1) = (
        o.initial_val_loss,
        o.trainer.last("val_loss").unwrap_or(f64::NAN),
        o.trainer.last("train_loss").unwrap_or(f64::NAN),
    );
    Ok((
        format!(
            "validation MSE {v0:.3e} → {v1:.3e} (train {t1:.3e}) in 60 epochs; chart pe-regression-loss.png"
        ),
        v1 < 0.2 * v0,
        dir.display().to_string(),
    ))
}

/// A batch whose second sequence is all padding: its outputs must be exactly zero.
fn fully_masked(device: &Device) -> Result<(String, bool, String)> {
    let (b, h, l, d) = (2, 2, 4, 3);
    let x = Tensor::<4>::random(
        [b, h, l, d],
        burn::tensor::Distribution::Normal(0.0, 1e4),
        device,
    );
    let pad: Vec<bool> = (0..b * l).map(|i| i >= l).collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, l]), device);
    let out = ScaledDotProductAttentionConfig::new()
        .init(device)
        .forward(x.clone(), x.clone(), x, Some(mask))?;
    let ctx = attnkit::store::StoredTensor::from_tensor(out.context);
    let half = ctx.data.len() / 2;
    let finite = ctx.data.iter().all(|v| v.is_finite());
    let zeros = ctx.data[half..].iter().all(|v| *v == 0.0);
    Ok((
        format!("padded sequence output all zero: {zeros}, no NaN with |logits| ~1e8: {finite}"),
        finite && zeros,
        String::new(),
    ))
}

/// Replays the committed PyTorch/numpy fixtures of the contract modules.
fn replay_fixtures(dir: &Path, device: &Device) -> Result<(String, bool, String)> {
    if !dir.exists() {
        return Err(Skipped(format!(
            "`{}` not found (run from the repository root, or pass --fixtures DIR)",
            dir.display()
        ))
        .into());
    }
    // Every case loads (a damaged one fails the check); those of the contract's modules
    // run, each reported with its worst element and every failure in full.
    let mut summary = verify::FixtureSummary::new();
    let mut modules: Vec<String> = Vec::new();
    for case in verify::Fixture::load_all(dir)? {
        if !contract::MODULES.contains(&case.module.as_str()) {
            continue;
        }
        let report = match contract::forward(
            &case.module,
            &case.config,
            case.weights.as_ref(),
            &case.inputs,
            device,
        ) {
            Ok(r) => case.check(&r.outputs),
            Err(e) => verify::CaseReport::not_run(&case.name, e),
        };
        if !modules.contains(&case.module) {
            modules.push(case.module.clone());
        }
        summary.push(report);
    }
    Ok((
        format!("{summary}; modules {}", modules.join(", ")),
        summary.passed(),
        dir.display().to_string(),
    ))
}

/// Writes a complete `attnkit forward` example (config, weights, inputs), runs the
/// contract on it and writes the outputs, so the files show how to call the command.
fn contract_example(out: &Path, seed: u64, device: &Device) -> Result<(String, bool, String)> {
    let dir = out.join("forward-mha");
    std::fs::create_dir_all(&dir)?;
    let (e, h, b, l) = (16, 4, 2, 6);
    device.seed(seed);
    let mha = MultiHeadAttentionConfig::new(e, h).init(device)?;
    let mut weights = TensorStore::new("weights");
    mha.save_weights(&mut weights, "");
    let mut rng = SplitMix64::new(seed);
    let mut inputs = TensorStore::new("inputs");
    inputs.insert(
        "query",
        vec![b, l, e],
        (0..b * l * e).map(|_| rng.normal() as f32).collect(),
    )?;
    let mask: Vec<f32> = (0..b * l)
        .map(|i| if i == 2 * l - 1 { 1.0 } else { 0.0 })
        .collect();
    inputs.insert("key_padding_mask", vec![b, l], mask)?;
    let config = json!({"embed_dim": e, "num_heads": h});
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    weights.save(&dir.join("weights.safetensors"))?;
    inputs.save(&dir.join("input.safetensors"))?;
    let result = contract::forward("mha", &config, Some(&weights), &inputs, device)?;
    result.outputs.save(&dir.join("output.safetensors"))?;
    // The library call and the module agree (the contract adds only I/O).
    let direct = mha
        .forward_self(
            inputs.require("query")?.to_tensor::<3>("query", device)?,
            &AttentionMask::none().with_key_padding(attnkit::attention::mask_from_floats(
                "key_padding_mask",
                inputs
                    .require("key_padding_mask")?
                    .to_tensor::<2>("key_padding_mask", device)?,
            )?),
        )?
        .output;
    let a = Agreement::measure(
        &result.outputs.require("output")?.data,
        &attnkit::store::StoredTensor::from_tensor(direct)
            .data
            .iter()
            .map(|&v| v as f64)
            .collect::<Vec<_>>(),
    )?;
    Ok((
        format!(
            "wrote config, weights, input and output; contract vs library max err {:.1e}",
            a.max_abs
        ),
        a.max_abs == 0.0,
        dir.display().to_string(),
    ))
}

/// A held-out mixture shipped with the binary (a voice, language and noise the built-in
/// model never trained on; docs/enhance.md says which), its clean speech.
const EXAMPLE_NOISY: &[u8] = include_bytes!("../assets/enhance-example-noisy.wav");
const EXAMPLE_CLEAN: &[u8] = include_bytes!("../assets/enhance-example-clean.wav");

/// Enhances the built-in mixture with the built-in model, in the file mode and as a
/// stream: the SI-SDR gain, and the two forms' agreement in 16-bit samples.
fn enhance_example(out: &Path, device: &Device) -> Result<(String, bool, String)> {
    use attnkit_audio::metrics::si_sdr;
    use attnkit_audio::wav::{read_wav_bytes, to_i16, write_wav};
    let noisy = read_wav_bytes(EXAMPLE_NOISY, Path::new("enhance-example-noisy.wav"))?.samples;
    let clean = read_wav_bytes(EXAMPLE_CLEAN, Path::new("enhance-example-clean.wav"))?.samples;
    let (model, config) = crate::enhance::load_model(None, device)?;
    let file = attnkit::tasks::enhance::enhance_signal(&model, &noisy, device)?;
    let streamed =
        attnkit::tasks::enhance::EnhancerStream::new(&model, &config)?.enhance(&noisy)?;
    let lsb = file
        .iter()
        .zip(&streamed)
        .map(|(&a, &b)| (i32::from(to_i16(a)) - i32::from(to_i16(b))).abs())
        .max()
        .unwrap_or(0);
    let (before, after) = (si_sdr(&noisy, &clean)?, si_sdr(&file, &clean)?);
    let dir = out.join("enhance");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("enhanced.wav");
    write_wav(&path, 16_000, &file)?;
    write_wav(&dir.join("noisy.wav"), 16_000, &noisy)?;
    Ok((
        format!(
            "SI-SDR {before:.2} → {after:.2} dB ({:+.2} dB) with the {} model; stream vs file max {lsb} LSB",
            after - before,
            config.model.name()
        ),
        after - before >= 3.0 && lsb <= 2,
        path.display().to_string(),
    ))
}
