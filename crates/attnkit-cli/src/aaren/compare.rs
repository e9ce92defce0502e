//! `attnkit aaren compare`: the iterative cell, the parallel scan and the compensated
//! cell against a float64 reference.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use attnkit::store::write_atomically;
use attnkit::verify::{
    AarenCompareSpec, AarenForms, DIRECT_REFERENCE_MAX_LEN, compare_aaren_forms,
};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// f32 machine epsilon, the unit the relative errors are reported in.
const EPS_F32: f64 = f32::EPSILON as f64;

#[derive(Args)]
#[command(
    after_help = "Scores are N(0, score_scale²) and values N(0, 1), drawn in f64 and rounded to f32; \
the parallel scan (Burn, f32), the iterative cell (the no_std kernel, f32) and the same cell with \
compensated (Kahan) sums read the same f32 numbers, \
and so does the float64 reference: a direct two-pass softmax per prefix up to 4096 tokens, \
the recurrence in f64 beyond. Relative error = max over outputs of |error| / Σ_i p_i·|v_i| (the size of the terms that output sums, p = softmax weights), \
'eps' is its ratio to f32 machine epsilon (1.19e-7).

Example:
  attnkit aaren compare --len 1000,100000,1000000 --score-scale 10000"
)]
pub(super) struct CompareArgs {
    /// Sequences.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Heads.
    #[arg(long, default_value_t = 2)]
    heads: usize,
    /// Sequence lengths, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    len: Vec<usize>,
    /// Width of a head.
    #[arg(long, default_value_t = 8)]
    dims: usize,
    /// Standard deviation of the scores (1e4 gives |s| up to ~5e4).
    #[arg(long, default_value_t = 1.0)]
    score_scale: f64,
    /// Seed of the dummy input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

pub(super) fn compare(args: CompareArgs) -> Result<()> {
    if args.len.is_empty() {
        bail!("--len: give at least one length");
    }
    if !(args.score_scale.is_finite() && args.score_scale > 0.0) {
        bail!(
            "--score-scale must be a positive number, got {}",
            args.score_scale
        );
    }
    let device = args.device.init()?;
    println!(
        "Aaren forms on dummy input: batch {}, heads {}, head width {}, scores N(0, {}²), seed {}",
        args.batch, args.heads, args.dims, args.score_scale, args.seed
    );
    println!(
        "{:>9}  {:>9}  {:<22}  {:>9}  {:>9}  {:>7}  seconds (parallel / iterative / compensated / reference)",
        "len", "max |s|", "pair", "max abs", "rel", "eps",
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut results = Vec::new();
    let mut failed = false;
    for &len in &args.len {
        bar.set_message(format!("L = {len}"));
        let spec = AarenCompareSpec {
            batch: args.batch,
            heads: args.heads,
            len,
            d_head: args.dims,
            score_scale: args.score_scale,
            seed: args.seed,
        };
        let r = compare_aaren_forms(&device, spec)
            .with_context(|| format!("comparing at L = {len}"))?;
        bar.suspend(|| print_rows(&r));
        failed |= !(r.parallel_vs_iterative.finite
            && r.parallel_vs_reference.finite
            && r.iterative_vs_reference.finite
            && r.compensated_vs_reference.finite);
        results.push(r);
    }
    bar.finish_and_clear();
    println!(
        "reference: direct f64 softmax for L <= {DIRECT_REFERENCE_MAX_LEN}, f64 recurrence beyond"
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "batch": args.batch, "heads": args.heads, "dims": args.dims,
            "score_scale": args.score_scale, "seed": args.seed,
            "results": results.iter().map(to_json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc)?;
        write_atomically(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if failed {
        bail!("a form produced a non-finite output");
    }
    Ok(())
}

fn print_rows(r: &AarenForms) {
    let rows = [
        ("parallel vs iterative", r.parallel_vs_iterative),
        ("parallel vs f64", r.parallel_vs_reference),
        ("iterative vs f64", r.iterative_vs_reference),
        ("compensated vs f64", r.compensated_vs_reference),
    ];
    for (i, (pair, a)) in rows.iter().enumerate() {
        let (len, score, secs) = if i == 0 {
            (
                r.spec.len.to_string(),
                format!("{:.3e}", r.max_abs_score),
                format!(
                    "{:.3} / {:.3} / {:.3} / {:.3} ({})",
                    r.seconds[0], r.seconds[1], r.seconds[2], r.seconds[3], r.reference
                ),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        let finite = if a.finite { "" } else { "  NON-FINITE" };
        println!(
            "{len:>9}  {score:>9}  {pair:<22}  {:>9.2e}  {:>9.2e}  {:>7.1}  {secs}{finite}",
            a.max_abs,
            a.max_rel,
            a.max_rel / EPS_F32
        );
    }
}

fn to_json(r: &AarenForms) -> serde_json::Value {
    let pair = |a: &attnkit::verify::Agreement| json!({"max_abs": a.max_abs, "max_rel": a.max_rel, "finite": a.finite, "values": a.count});
    json!({
        "len": r.spec.len,
        "max_abs_score": r.max_abs_score,
        "parallel_vs_iterative": pair(&r.parallel_vs_iterative),
        "parallel_vs_reference": pair(&r.parallel_vs_reference),
        "iterative_vs_reference": pair(&r.iterative_vs_reference),
        "compensated_vs_reference": pair(&r.compensated_vs_reference),
        "reference": r.reference,
        "seconds": {"parallel": r.seconds[0], "iterative": r.seconds[1], "compensated": r.seconds[2], "reference": r.seconds[3]},
    })
}
