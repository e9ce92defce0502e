//! `attnkit aaren decode`: the per-token cost and memory of an Aaren stream against a
//! decoder with a KV cache.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use attnkit::store::write_atomically;
use burn::prelude::*;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::colors::{AAREN_COLOR, MHA_COLOR};
use super::timing::median;

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
pub(super) struct DecodeArgs {
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

pub(super) fn decode(args: DecodeArgs) -> Result<()> {
    use attnkit::aaren::{AarenConfig, TokenStream};
    use attnkit_kernels::kv_cache::KvCacheDecoder;
    use attnkit_kernels::rng::SplitMix64;
    use std::time::Instant;

    if args.len.is_empty() || args.len[0] == 0 || args.len.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--len: give increasing lengths of at least 1, e.g. 1000,10000,100000");
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

/// A deterministic vector for prefilled cache entries (their values do not change the
/// cost of a step).
fn draw_fixed(n: usize, value: f32) -> Vec<f32> {
    vec![value; n]
}
