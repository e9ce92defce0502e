//! `attnkit aaren`: the Aaren forms side by side.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use attnkit::store::write_atomically;
use attnkit::verify::{
    AarenCompareSpec, AarenForms, DIRECT_REFERENCE_MAX_LEN, compare_aaren_forms,
};
use burn::prelude::*;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// `attnkit aaren …`.
#[derive(Args)]
pub struct AarenArgs {
    #[command(subcommand)]
    command: AarenCommand,
}

#[derive(Subcommand)]
enum AarenCommand {
    /// Iterative cell vs parallel scan vs a float64 reference on dummy input: max
    /// absolute and relative errors for each length.
    Compare(CompareArgs),
    /// Per-token cost and memory of decoding: an Aaren stream vs a Transformer with a
    /// KV cache, at growing numbers of tokens seen.
    Decode(DecodeArgs),
    /// Time of one full-sequence forward pass: causal multi-head attention vs the Aaren
    /// layer (parallel scan and iterative cell) vs the kernel stream.
    Sequence(SequenceArgs),
}

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
struct CompareArgs {
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
}

pub fn run(args: AarenArgs) -> Result<()> {
    match args.command {
        AarenCommand::Compare(a) => compare(a),
        AarenCommand::Decode(a) => decode(a),
        AarenCommand::Sequence(a) => sequence(a),
    }
}

fn compare(args: CompareArgs) -> Result<()> {
    if args.len.is_empty() {
        bail!("--len: give at least one length");
    }
    if !(args.score_scale.is_finite() && args.score_scale > 0.0) {
        bail!(
            "--score-scale must be a positive number, got {}",
            args.score_scale
        );
    }
    let device = Device::flex();
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

#[derive(Args)]
#[command(
    after_help = "Both run one layer of width E with H heads, f32, one thread, with the same \
plain loops (attnkit-kernels): the Aaren stream folds its weights once and keeps H·(E/H + 2) numbers; \
the decoder keeps every past key and value (2·E numbers per token). At each length L the Aaren stream \
has really consumed L tokens; the KV cache is filled with L random keys/values and then timed for \
--steps decoding steps. Times are medians over --steps steps.

Example:
  attnkit aaren decode --len 1000,10000,100000,1000000"
)]
struct DecodeArgs {
    /// Embedding width E.
    #[arg(long, default_value_t = 64)]
    embed: usize,
    /// Heads H (divides E).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Tokens seen before the timed steps, comma separated, increasing.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    len: Vec<usize>,
    /// Steps timed at each length.
    #[arg(long, default_value_t = 32)]
    steps: usize,
    /// Seed of the weights and tokens.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw the charts into this folder: decode-time.png (µs per token) and
    /// decode-memory.png (bytes of state or cache), both against tokens seen.
    #[arg(long)]
    charts: Option<PathBuf>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn decode(args: DecodeArgs) -> Result<()> {
    use attnkit::aaren::{AarenConfig, TokenStream};
    use attnkit_kernels::kv_cache::KvCacheDecoder;
    use attnkit_kernels::rng::SplitMix64;
    use std::time::Instant;

    if args.len.is_empty() || args.len.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--len: give increasing lengths, e.g. 1000,10000,100000");
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let (e, h) = (args.embed, args.heads);
    let device = Device::flex();
    let layer = AarenConfig::new(e, h).init(&device)?;
    let mut stream = TokenStream::<f32>::new(&layer)?;
    let mut rng = SplitMix64::new(args.seed);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32).collect() };
    let w_in = draw(3 * e * e)
        .iter()
        .map(|w| w / (e as f32).sqrt())
        .collect::<Vec<_>>();
    let (b_in, w_out, b_out) = (draw(3 * e), draw(e * e), draw(e));
    let token = draw(e);
    let mut out = vec![0.0f32; e];
    println!(
        "Decoding one token: Aaren stream vs KV-cache attention (E {e}, H {h}, f32, 1 thread)"
    );
    println!(
        "{:>9}  {:>14}  {:>14}  {:>7}  {:>14}  {:>14}",
        "tokens", "aaren µs/token", "kv µs/token", "ratio", "aaren state B", "kv cache B"
    );
    let bar = ProgressBar::new(*args.len.last().unwrap_or(&0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} tokens streamed [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    let mut points = DecodePoints::default();
    let mut fed = 0usize;
    for &len in &args.len {
        // Stream up to `len` tokens, the last `steps` of them timed one by one.
        let mut aaren_times = Vec::new();
        let timed_from = len.saturating_sub(args.steps);
        while fed < len {
            let started = Instant::now();
            stream.push(&token, false)?;
            if fed >= timed_from {
                aaren_times.push(started.elapsed().as_secs_f64());
            }
            fed += 1;
            if fed % 4096 == 0 {
                bar.set_position(fed as u64);
            }
        }
        let mut kv = KvCacheDecoder::new(e, h, &w_in, &b_in, &w_out, &b_out)?;
        let (k, v) = (draw_fixed(e, 0.5), draw_fixed(e, -0.25));
        for _ in 0..len.saturating_sub(1) {
            kv.push_cached(&k, &v)?;
        }
        let mut kv_times = Vec::new();
        for _ in 0..args.steps {
            let started = Instant::now();
            kv.step(&token, &mut out)?;
            kv_times.push(started.elapsed().as_secs_f64());
        }
        let kv_bytes = kv.cache_len() * std::mem::size_of::<f32>();
        drop(kv);
        let (a, k) = (median(aaren_times) * 1e6, median(kv_times) * 1e6);
        let state_bytes = std::mem::size_of_val(stream.state());
        bar.suspend(|| {
            println!(
                "{len:>9}  {a:>14.2}  {k:>14.2}  {:>7.1}  {state_bytes:>14}  {kv_bytes:>14}",
                k / a
            )
        });
        let x = len as f64;
        points.aaren_time.push((x, a));
        points.kv_time.push((x, k));
        points.aaren_bytes.push((x, state_bytes as f64));
        points.kv_bytes.push((x, kv_bytes as f64));
        rows.push(json!({
            "tokens": len, "aaren_us_per_token": a, "kv_cache_us_per_token": k,
            "aaren_state_bytes": state_bytes, "kv_cache_bytes": kv_bytes,
        }));
    }
    bar.finish_and_clear();
    println!("ratio = KV-cache time / Aaren time; state and cache sizes in bytes");
    if let Some(path) = &args.json {
        let doc = json!({"embed": e, "heads": h, "steps": args.steps, "results": rows});
        write_atomically(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.charts {
        points.draw(dir, e, h)?;
    }
    Ok(())
}

/// The decoding measurements as chart lines, x = tokens seen.
#[derive(Default)]
struct DecodePoints {
    aaren_time: Vec<(f64, f64)>,
    kv_time: Vec<(f64, f64)>,
    aaren_bytes: Vec<(f64, f64)>,
    kv_bytes: Vec<(f64, f64)>,
}

impl DecodePoints {
    fn draw(&self, dir: &std::path::Path, e: usize, h: usize) -> Result<()> {
        use crate::chart::{Scale, Series, line_chart};
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let time = dir.join("decode-time.png");
        line_chart(
            &time,
            &format!("Decoding one token after N (E {e}, H {h}, 1 thread)"),
            "tokens seen N",
            "µs per token",
            &[
                Series {
                    label: "Aaren stream",
                    points: &self.aaren_time,
                    color: AAREN_COLOR,
                },
                Series {
                    label: "Transformer with a KV cache",
                    points: &self.kv_time,
                    color: MHA_COLOR,
                },
            ],
            Scale::LogLog,
        )?;
        let memory = dir.join("decode-memory.png");
        line_chart(
            &memory,
            &format!("Memory kept between tokens (E {e}, H {h}, f32)"),
            "tokens seen N",
            "bytes",
            &[
                Series {
                    label: "Aaren state",
                    points: &self.aaren_bytes,
                    color: AAREN_COLOR,
                },
                Series {
                    label: "KV cache",
                    points: &self.kv_bytes,
                    color: MHA_COLOR,
                },
            ],
            Scale::LogLog,
        )?;
        println!("wrote {} and {}", time.display(), memory.display());
        Ok(())
    }
}

const AAREN_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(31, 119, 180);
const MHA_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(214, 39, 40);

#[derive(Args)]
#[command(
    after_help = "One layer of width E with H heads on a batch of B random sequences of L tokens, \
f32, on Burn's CPU backend (its own thread pool) except the stream, which runs the \
no_std kernel token by token on one thread. Causal MHA is nn.MultiheadAttention with a causal \
mask: it materialises the L×L weights of every head; fused causal MHA is the same layer's \
inference path (forward_context: a tiled kernel, no weights tensor). Aaren fused is the fused \
CPU form (matmuls, then the recurrence per sequence and head). Times are medians of --runs runs after one \
warm-up; the iterative Burn cell is skipped above --max-iterative tokens (it is one tensor step per token).

Example:
  attnkit aaren sequence --len 256,1024,4096"
)]
struct SequenceArgs {
    /// Sequences per batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Embedding width E.
    #[arg(long, default_value_t = 64)]
    embed: usize,
    /// Heads H (divides E).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Sequence lengths, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "256,1024,4096")]
    len: Vec<usize>,
    /// Timed runs per measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Longest sequence the iterative Burn cell is timed on.
    #[arg(long, default_value_t = 4096)]
    max_iterative: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw sequence-time.png (ms per forward pass against L, log-log) into this
    /// folder.
    #[arg(long)]
    charts: Option<PathBuf>,
}

fn time_median(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    use std::time::Instant;
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn sequence(args: SequenceArgs) -> Result<()> {
    use attnkit::aaren::{AarenConfig, AarenMode, TokenStream};
    use attnkit::attention::{AttentionMask, MultiHeadAttentionConfig};

    if args.len.is_empty() || args.len.contains(&0) || args.runs == 0 || args.batch == 0 {
        bail!("--len, --runs and --batch must be at least 1");
    }
    let (b, e, h) = (args.batch, args.embed, args.heads);
    let device = Device::flex();
    let mha = MultiHeadAttentionConfig::new(e, h).init(&device)?;
    let parallel = AarenConfig::new(e, h).init(&device)?;
    let iterative = parallel.clone().with_mode(AarenMode::Iterative);
    let fused = parallel.clone().with_mode(AarenMode::Fused);
    println!(
        "One forward pass over L tokens (B {b}, E {e}, H {h}, f32), median ms of {} runs",
        args.runs
    );
    println!(
        "{:>8}  {:>10}  {:>10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>10}",
        "L",
        "causal MHA",
        "MHA fused",
        "Aaren par",
        "Aaren it",
        "Aaren fus",
        "stream",
        "weights MB"
    );
    let mut rows = Vec::new();
    let mut lines: [Vec<(f64, f64)>; 6] = Default::default();
    for &l in &args.len {
        let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
        let sync = |t: Tensor<3>| -> Result<()> {
            // Reading one value forces the (possibly lazy) computation to finish.
            let _ = t.narrow(1, 0, 1).into_data();
            Ok(())
        };
        let causal = AttentionMask::none().with_causal(true);
        let t_mha = time_median(args.runs, || {
            sync(mha.forward_self(x.clone(), &causal)?.output)
        })?;
        let t_mha_fused = time_median(args.runs, || {
            sync(mha.forward_self_context(x.clone(), &causal)?)
        })?;
        let t_par = time_median(args.runs, || sync(parallel.forward(x.clone(), None)?))?;
        let t_fused = time_median(args.runs, || sync(fused.forward(x.clone(), None)?))?;
        let t_it = if l <= args.max_iterative {
            Some(time_median(args.runs, || {
                sync(iterative.forward(x.clone(), None)?)
            })?)
        } else {
            None
        };
        let host: Vec<f32> = x
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let t_stream = time_median(args.runs, || {
            for seq in host.chunks_exact(l * e) {
                let mut stream = TokenStream::<f32>::new(&parallel)?;
                for tok in seq.chunks_exact(e) {
                    stream.push(tok, false)?;
                }
            }
            Ok(())
        })?;
        let weights_mb = (b * h * l * l * 4) as f64 / 1e6;
        let ms = |t: f64| format!("{:.2}", t * 1e3);
        println!(
            "{l:>8}  {:>10}  {:>10}  {:>9}  {:>9}  {:>9}  {:>9}  {weights_mb:>10.1}",
            ms(t_mha),
            ms(t_mha_fused),
            ms(t_par),
            t_it.map(ms).unwrap_or_else(|| "-".into()),
            ms(t_fused),
            ms(t_stream)
        );
        let x = l as f64;
        for (line, t) in lines.iter_mut().zip([
            Some(t_mha),
            Some(t_mha_fused),
            Some(t_par),
            t_it,
            Some(t_fused),
            Some(t_stream),
        ]) {
            if let Some(t) = t {
                line.push((x, t * 1e3));
            }
        }
        rows.push(json!({
            "len": l, "causal_mha_ms": t_mha * 1e3, "causal_mha_fused_ms": t_mha_fused * 1e3,
            "aaren_parallel_ms": t_par * 1e3, "aaren_fused_ms": t_fused * 1e3,
            "aaren_iterative_ms": t_it.map(|t| t * 1e3), "aaren_stream_ms": t_stream * 1e3,
            "mha_weights_bytes": b * h * l * l * 4,
        }));
    }
    if let Some(path) = &args.json {
        let doc = json!({"batch": b, "embed": e, "heads": h, "runs": args.runs, "results": rows});
        write_atomically(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.charts {
        use crate::chart::{Scale, Series, line_chart};
        use plotters::style::RGBColor;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let names = [
            ("causal MHA (weights)", MHA_COLOR),
            ("causal MHA, fused", RGBColor(255, 127, 14)),
            ("Aaren parallel scan", RGBColor(148, 103, 189)),
            ("Aaren iterative cell", RGBColor(140, 86, 75)),
            ("Aaren fused", AAREN_COLOR),
            ("Aaren stream (1 thread)", RGBColor(44, 160, 44)),
        ];
        let series: Vec<Series<'_>> = names
            .iter()
            .zip(&lines)
            .filter(|(_, points)| !points.is_empty())
            .map(|((label, color), points)| Series {
                label,
                points,
                color: *color,
            })
            .collect();
        let path = dir.join("sequence-time.png");
        line_chart(
            &path,
            &format!("One forward pass over L tokens (B {b}, E {e}, H {h})"),
            "sequence length L",
            "ms",
            &series,
            Scale::LogLog,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A deterministic vector for prefilled cache entries (their values do not change the
/// cost of a step).
fn draw_fixed(n: usize, value: f32) -> Vec<f32> {
    vec![value; n]
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
