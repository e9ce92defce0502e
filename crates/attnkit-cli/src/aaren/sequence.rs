//! `attnkit aaren sequence`: one whole-sequence forward pass of causal MHA and of each
//! Aaren form.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use attnkit::store::write_atomically;
use burn::prelude::*;
use clap::Args;
use serde_json::json;

use super::colors::{AAREN_COLOR, MHA_COLOR};
use super::timing::time_median;

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
pub(super) struct SequenceArgs {
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
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

pub(super) fn sequence(args: SequenceArgs) -> Result<()> {
    use attnkit::aaren::{AarenConfig, AarenMode, TokenStream};
    use attnkit::attention::{AttentionMask, MultiHeadAttentionConfig};

    if args.len.is_empty() || args.len.contains(&0) || args.runs == 0 || args.batch == 0 {
        bail!("--len, --runs and --batch must be at least 1");
    }
    let (b, e, h) = (args.batch, args.embed, args.heads);
    let device = args.device.init()?;
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
