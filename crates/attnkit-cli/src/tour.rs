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
use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
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

struct Check {
    name: &'static str,
    result: String,
    passed: bool,
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
        let (result, passed, files) = match f() {
            Ok(r) => r,
            Err(e) => (format!("error: {e:#}"), false, String::new()),
        };
        let seconds = t.elapsed().as_secs_f64();
        println!(
            "  [{}] {name}: {result} ({seconds:.2}s)",
            if passed { "ok" } else { "FAIL" }
        );
        checks.push(Check {
            name,
            result,
            passed,
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
        "seed self-attention: numpy exercise vs MHA (1 head)",
        &mut || {
            let a = verify::seed_self_attention_vs_reference(&device, args.seed)?;
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
    record(
        "counting task (seed 004), self-attention encoder",
        &mut || count_task(&args.out, args.seed, Mixer::Attention),
    );
    record("counting task, Aaren encoder (AAREN-5)", &mut || {
        count_task(&args.out, args.seed, Mixer::Aaren)
    });
    record("ONNX export of both trained counting networks", &mut || {
        onnx_export(&args.out)
    });
    record("positional-encoding regression (seed 001)", &mut || {
        pe_regression(&args.out, args.seed)
    });
    record("PyTorch fixtures through the module contract", &mut || {
        replay_fixtures(&args.fixtures, &device)
    });
    record("attnkit forward example (mha)", &mut || {
        contract_example(&args.out, args.seed, &device)
    });

    let passed = checks.iter().filter(|c| c.passed).count();
    println!("\n{:<52} {:<6} {:>7}  files", "check", "status", "seconds");
    for c in &checks {
        println!(
            "{:<52} {:<6} {:>7.2}  {}",
            c.name,
            if c.passed { "ok" } else { "FAIL" },
            c.seconds,
            if c.files.is_empty() { "-" } else { &c.files }
        );
    }
    let report = json!({
        "passed": passed,
        "total": checks.len(),
        "seed": args.seed,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "checks": checks.iter().map(|c| json!({
            "check": c.name, "result": c.result, "passed": c.passed,
            "files": c.files, "seconds": c.seconds,
        })).collect::<Vec<_>>(),
    });
    let report_path = args.out.join("tour.json");
    attnkit::store::write_atomically(
        &report_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!(
        "\n{passed}/{} checks passed in {:.1}s; report: {}",
        checks.len(),
        started.elapsed().as_secs_f64(),
        report_path.display()
    );
    if passed != checks.len() {
        bail!(
            "{} of {} checks failed",
            checks.len() - passed,
            checks.len()
        );
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
    let a = Agreement::measure(&last, &want.iter().map(|&v| v as f64).collect::<Vec<_>>());
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
/// 20,000 steps), then measures 10,000 fresh held-out sequences.
fn count_task(out: &Path, seed: u64, mixer: Mixer) -> Result<(String, bool, String)> {
    let config = CountConfig {
        mixer,
        seed,
        ..CountConfig::default()
    };
    let mut run = CountTraining::new(config, &Device::flex())?;
    let started = Instant::now();
    let bar = crate::train::progress(20_000, false);
    while run.step() < 20_000 {
        run.train_step()?;
        bar.inc(1);
        if run.step() % 250 == 0 {
            let l = run.log()?;
            bar.set_message(format!("val {:.3}", l.val_accuracy));
            if l.val_accuracy >= 0.995 {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let acc = run.test_accuracy(10_000)?;
    let name = match mixer {
        Mixer::Attention => "count-attention",
        Mixer::Aaren => "count-aaren",
    };
    let path = out.join(format!("{name}.ckpt"));
    run.save_checkpoint(&path)?;
    let first = run
        .first_step_reaching(0.99)
        .map_or("never".to_string(), |s| s.to_string());
    Ok((
        format!(
            "held-out accuracy {acc:.4} (10,000 sequences) after {} steps ({:.0}s); validation ≥ 99% first at step {first}",
            run.step(),
            seconds
        ),
        acc >= 0.99,
        path.display().to_string(),
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

/// The positional-encoding regression with its loss chart.
fn pe_regression(out: &Path, seed: u64) -> Result<(String, bool, String)> {
    let dir = out.join("pe-regression");
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "train",
            "pe-regression",
            "--quiet",
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&dir)
        .arg("--summary")
        .arg(dir.join("summary.json"))
        .output()?;
    if !status.status.success() {
        bail!("{}", String::from_utf8_lossy(&status.stderr).trim());
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json"))?)?;
    let (v0, v1, t1) = (
        s["initial_val_loss"].as_f64().unwrap_or(f64::NAN),
        s["final_val_loss"].as_f64().unwrap_or(f64::NAN),
        s["final_train_loss"].as_f64().unwrap_or(f64::NAN),
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
        return Ok((
            format!(
                "skipped: `{}` not found (run from the repository root)",
                dir.display()
            ),
            true,
            String::new(),
        ));
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").exists())
        .collect();
    cases.sort();
    let (mut run, mut worst, mut failures) = (0, 0.0f64, Vec::new());
    for case_dir in &cases {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case_dir.join("case.json"))?)?;
        let module = case["module"].as_str().unwrap_or_default();
        if !contract::MODULES.contains(&module) {
            continue;
        }
        let atol = case["tolerance"]["atol"].as_f64().unwrap_or(1e-5);
        let rtol = case["tolerance"]["rtol"].as_f64().unwrap_or(1e-4);
        let weights_path = case_dir.join("weights.safetensors");
        let weights = weights_path
            .exists()
            .then(|| TensorStore::load(&weights_path))
            .transpose()?;
        let inputs = TensorStore::load(&case_dir.join("input.safetensors"))?;
        let expected = TensorStore::load(&case_dir.join("expected.safetensors"))?;
        let got =
            contract::forward(module, &case["config"], weights.as_ref(), &inputs, device)?.outputs;
        run += 1;
        for name in expected.names() {
            let want = expected.require(name)?;
            let g = got.require(name)?;
            let ratio = g
                .data
                .iter()
                .zip(&want.data)
                .map(|(a, b)| (*a as f64 - *b as f64).abs() / (atol + rtol * (*b as f64).abs()))
                .fold(0.0, f64::max);
            if g.shape != want.shape || ratio > 1.0 {
                failures.push(format!("{}:{name}", case_dir.display()));
            }
            worst = worst.max(ratio);
        }
    }
    let line = format!(
        "{run} cases (mha, sdpa, external, aaren, lstm, gru, rnn), worst error {:.1}% of each case's tolerance{}",
        worst * 100.0,
        if failures.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", failures.join(", "))
        }
    );
    Ok((
        line,
        failures.is_empty() && run > 0,
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
    );
    Ok((
        format!(
            "wrote config, weights, input and output; contract vs library max err {:.1e}",
            a.max_abs
        ),
        a.max_abs == 0.0,
        dir.display().to_string(),
    ))
}
