//! `attnkit bench`: one workload timed after a warm-up (the benchmark contract).

use std::time::Instant;

use anyhow::{Result, bail};
use attnkit::aaren::{AarenConfig, AarenMode, TokenStream};
use attnkit::attention::{
    AttentionMask, MultiHeadAttentionConfig, ScaledDotProductAttentionConfig,
};
use attnkit::recurrent::RecurrentKind;
use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::train::{OptimizerConfig, TrainingTask, materialize, mse};
use attnkit_kernels::kv_cache::KvCacheDecoder;
use burn::prelude::*;
use clap::{Args, ValueEnum};

mod train_steps;
use serde_json::json;

/// The workloads of the benchmark contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Multi-head self-attention forward, [B, L, E], returning the weights.
    MhaForward,
    /// MHA forward for inference: the output only, by the fused attention kernel.
    MhaForwardFused,
    /// MHA forward, MSE backward and an Adam step (`--causal`: with a causal mask).
    MhaTrainStep,
    /// One Adam step (lr 2e-3) of a sentiment classifier: token ids → trained embedding
    /// [--vocab, E] → bidirectional LSTM (hidden --hidden) → both final states → linear →
    /// 2 classes, cross-entropy. Defaults B 64, L 200, E 50.
    BilstmTrainStep,
    /// The same classifier with a bidirectional GRU.
    BigruTrainStep,
    /// One Adam step (lr 1e-4) of the Aaren layer (learned query, projections, every
    /// prefix output) on [B, L, E], MSE against a target. Defaults B 4, H 4, L 4096, E 256.
    AarenTrainStep,
    /// The scan alone, trained: scores [B,H,L] and values [B,H,L,E/H] → every prefix
    /// output by the fused operation, the gradient of Σ output ⊙ R back to both (the
    /// reverse scan). Defaults as aaren-train-step.
    AarenScanTrainStep,
    /// The Aaren layer over [B, L, E] by the parallel scan.
    AarenParallel,
    /// The Aaren layer by the iterative cell (one tensor step per token).
    AarenIterative,
    /// The Aaren layer by the fused CPU kernel (inference: matmuls, then one pass per
    /// sequence and head, spread over threads).
    AarenFused,
    /// The scan alone (no projections) on random scores [B,H,L] and values [B,H,L,E/H]:
    /// Burn's parallel prefix scan.
    AarenScanParallel,
    /// The scan alone: Burn's recurrent cell, one tensor step per token.
    AarenScanIterative,
    /// The scan alone: the fused CPU kernel.
    AarenScanFused,
    /// One token through the kernel stream after --len tokens; ms per token.
    AarenStream,
    /// One decoding step of KV-cache attention with --len cached tokens; ms per token.
    KvCacheDecode,
    /// One optimizer step of the counting task (the median's inverse is steps/s).
    CountTrain,
    /// The machine's matrix product: [B·L, E] × [E, E] (what each projection costs).
    Gemm,
    /// The fused attention kernel alone: Q, K, V [B, H, L, E/H] → context, no weights.
    SdpaFused,
    /// Memory bandwidth: copies B·L·E floats into a buffer already touched.
    Copy,
}

impl Workload {
    /// Floating-point operations of one run (multiply and add counted apart; softmax and
    /// elementwise work left out), where matrix products dominate the workload.
    fn flop(self, b: usize, l: usize, e: usize) -> Option<f64> {
        let (b, l, e) = (b as f64, l as f64, e as f64);
        match self {
            // Four E×E projections and the two products QKᵀ and weights·V.
            Workload::MhaForward | Workload::MhaForwardFused => {
                Some(8.0 * b * l * e * e + 4.0 * b * l * l * e)
            }
            Workload::SdpaFused => Some(4.0 * b * l * l * e),
            // The key, value and output projections.
            Workload::AarenParallel | Workload::AarenIterative => Some(6.0 * b * l * e * e),
            // The value and output projections: the query is folded into the keys.
            Workload::AarenFused => Some(4.0 * b * l * e * e),
            Workload::Gemm => Some(2.0 * b * l * e * e),
            _ => None,
        }
    }

    /// Bytes that must cross memory in one run, where memory bounds the workload.
    fn bytes(self, b: usize, h: usize, l: usize, e: usize) -> Option<f64> {
        let (b, h, l, e) = (b as f64, h as f64, l as f64, e as f64);
        match self {
            // Scores and values read, outputs written, f32.
            Workload::AarenScanFused => Some(4.0 * (b * h * l + 2.0 * b * l * e)),
            // Read and written.
            Workload::Copy => Some(8.0 * b * l * e),
            _ => None,
        }
    }
}

/// Arguments of `attnkit bench`.
#[derive(Args)]
#[command(
    after_help = "Prints the median, min and max milliseconds of --runs timed runs after one \
warm-up; with --json one object: {workload, shape, threads, runs, median_ms, min_ms, max_ms} \
(plus peak_rss_bytes for aaren-stream and kv-cache-decode; gflop and gflops, the work of \
one run and its rate at the median, where matrix products dominate; gbytes and gbps where \
memory bounds the work: aaren-scan-fused, copy; tokens_per_s for the recurrent train \
steps). Defaults: B 4, H 8, L 512, E 512, except the train steps (see each). \
Peers in PyTorch: bench/peer_pytorch.py; both side by side: bench/compare.sh.

Examples:
  attnkit bench mha-forward --threads 2 --json
  attnkit bench bilstm-train-step --threads 2 --json
  attnkit bench mha-train-step --causal --batch 4 --heads 4 --len 4096 --embed 256 --runs 3
  attnkit bench aaren-stream --len 1000000 --embed 64 --heads 4 --json"
)]
pub struct BenchArgs {
    /// What to time.
    #[arg(value_enum)]
    workload: Workload,
    /// Batch B (default 4; 64 for the recurrent train steps).
    #[arg(long)]
    batch: Option<usize>,
    /// Heads H (default 8; 4 for the Aaren train steps).
    #[arg(long)]
    heads: Option<usize>,
    /// Sequence length L, tokens seen for the decoding workloads (default 512; 200 for
    /// the recurrent train steps, 4096 for the Aaren ones).
    #[arg(long)]
    len: Option<usize>,
    /// Embedding width E (default 512; 50 for the recurrent train steps, 256 for the
    /// Aaren ones).
    #[arg(long)]
    embed: Option<usize>,
    /// Hidden width of the recurrent train steps.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Vocabulary of the recurrent train steps (rows of the trained embedding).
    #[arg(long, default_value_t = 20_000)]
    vocab: usize,
    /// mha-train-step with a causal mask (query i sees keys j <= i).
    #[arg(long)]
    causal: bool,
    /// count-train with an Aaren encoder in place of self-attention.
    #[arg(long)]
    aaren: bool,
    /// Threads of the compute pool (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed runs.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

pub(crate) fn time_runs(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// As [`time_runs`], with fresh inputs from `make` for every run, made outside the timing:
/// each run owns its inputs, as a layer owns the tensors its projections just wrote.
fn time_runs_owned<I>(
    runs: usize,
    mut make: impl FnMut() -> I,
    mut f: impl FnMut(I) -> Result<()>,
) -> Result<Vec<f64>> {
    f(make())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let inputs = make();
        let t = Instant::now();
        f(inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// Forces a lazily evaluated result to be computed.
pub(crate) fn sync<const D: usize>(t: Tensor<D>) {
    let _ = t.into_data();
}

/// Peak resident memory of this process (Linux), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let [db, dh, dl, de] = match args.workload {
        Workload::BilstmTrainStep | Workload::BigruTrainStep => [64, 1, 200, 50],
        Workload::AarenTrainStep | Workload::AarenScanTrainStep => [4, 4, 4096, 256],
        _ => [4, 8, 512, 512],
    };
    let (b, h, l, e) = (
        args.batch.unwrap_or(db),
        args.heads.unwrap_or(dh),
        args.len.unwrap_or(dl),
        args.embed.unwrap_or(de),
    );
    if args.causal && args.workload != Workload::MhaTrainStep {
        bail!("--causal applies to mha-train-step only");
    }
    if args.aaren && args.workload != Workload::CountTrain {
        bail!("--aaren applies to count-train only");
    }
    if b == 0 || h == 0 || l == 0 || e == 0 || e % h != 0 || args.runs == 0 {
        bail!(
            "need B, H, L, E, --runs >= 1 and H dividing E; got B {b}, H {h}, L {l}, E {e}, runs {}",
            args.runs
        );
    }
    let threads = match args.threads {
        Some(t) => {
            if t == 0 {
                bail!("--threads must be at least 1");
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build_global()
                .map_err(|e| anyhow::anyhow!("cannot size the thread pool: {e}"))?;
            t
        }
        None => rayon::current_num_threads(),
    };
    if !args.device.is_cpu()
        && matches!(
            args.workload,
            Workload::AarenStream | Workload::KvCacheDecode | Workload::Copy
        )
    {
        bail!(
            "{:?} times host code (no Burn tensors): it runs on the CPU only, not on --device {}",
            args.workload,
            args.device.device
        );
    }
    let device = args.device.init()?;
    let mut peak = None;
    let times = match args.workload {
        Workload::MhaForward => {
            let mha = MultiHeadAttentionConfig::new(e, h).init(&device)?;
            let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
            time_runs(args.runs, || {
                sync(mha.forward_self(x.clone(), &AttentionMask::none())?.output);
                Ok(())
            })?
        }
        Workload::MhaForwardFused => {
            let mha = MultiHeadAttentionConfig::new(e, h).init(&device)?;
            let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
            time_runs(args.runs, || {
                sync(mha.forward_self_context(x.clone(), &AttentionMask::none())?);
                Ok(())
            })?
        }
        Workload::MhaTrainStep => {
            let ad = device.clone().autodiff();
            let mut mha = MultiHeadAttentionConfig::new(e, h).init(&ad)?;
            materialize(&mha);
            let mut optim = OptimizerConfig::Adam { lr: 1e-4 }.init()?;
            let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &ad);
            let y = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &ad);
            time_runs(args.runs, || {
                let mask = AttentionMask::none().with_causal(args.causal);
                let out = mha.forward_self(x.clone(), &mask)?.output;
                let loss = mse(out, y.clone())?;
                mha = optim.step(mha.clone(), loss);
                sync(mha.in_proj_weight.val());
                Ok(())
            })?
        }
        Workload::AarenParallel | Workload::AarenIterative | Workload::AarenFused => {
            let mode = match args.workload {
                Workload::AarenParallel => AarenMode::Parallel,
                Workload::AarenIterative => AarenMode::Iterative,
                _ => AarenMode::Fused,
            };
            let layer = AarenConfig::new(e, h).with_mode(mode).init(&device)?;
            let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
            time_runs(args.runs, || {
                sync(layer.forward(x.clone(), None)?);
                Ok(())
            })?
        }
        Workload::AarenScanParallel | Workload::AarenScanIterative | Workload::AarenScanFused => {
            let d = e / h.max(1);
            let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
            // Generated once; every run gets its own copy, made before its timing starts,
            // so no form pays for generating or copying its inputs.
            let s_host = Tensor::<3>::random([b, h, l], normal, &device).into_data();
            let v_host = Tensor::<4>::random([b, h, l, d], normal, &device).into_data();
            let make = || {
                (
                    Tensor::<3>::from_data(s_host.clone(), &device),
                    Tensor::<4>::from_data(v_host.clone(), &device),
                )
            };
            let workload = args.workload;
            time_runs_owned(args.runs, make, |(s, v)| {
                match workload {
                    Workload::AarenScanParallel => {
                        sync(attnkit::aaren::prefix_attention(s, v, None)?)
                    }
                    Workload::AarenScanFused => {
                        sync(attnkit::aaren::prefix_attention_fused(s, v, None)?)
                    }
                    _ => {
                        // As the cell's forward does: a step per token, outputs gathered.
                        let mut state = attnkit::aaren::AarenState::empty(b, h, d, &device);
                        let mut outputs = Vec::with_capacity(l);
                        for t in 0..l {
                            state = state.step(
                                s.clone().narrow(2, t, 1).reshape([b, h]),
                                v.clone().narrow(2, t, 1).reshape([b, h, d]),
                                None,
                            )?;
                            outputs.push(state.output().unsqueeze_dim::<4>(2));
                        }
                        sync(Tensor::cat(outputs, 2));
                    }
                }
                Ok(())
            })?
        }
        Workload::AarenStream => {
            let layer = AarenConfig::new(e, h).init(&device)?;
            let mut stream = TokenStream::<f32>::new(&layer)?;
            let token: Vec<f32> = (0..e).map(|i| (i as f32 * 0.37).sin()).collect();
            for _ in 0..l {
                stream.push(&token, false)?;
            }
            let per_run = 1000;
            let times = time_runs(args.runs, || {
                for _ in 0..per_run {
                    stream.push(&token, false)?;
                }
                Ok(())
            })?;
            peak = peak_rss_bytes();
            times.into_iter().map(|t| t / per_run as f64).collect()
        }
        Workload::KvCacheDecode => {
            let w = |n: usize, s: f32| -> Vec<f32> {
                (0..n).map(|i| (i as f32 * 0.11).sin() * s).collect()
            };
            let scale = 1.0 / (e as f32).sqrt();
            let mut dec = KvCacheDecoder::new(
                e,
                h,
                &w(3 * e * e, scale),
                &w(3 * e, 0.1),
                &w(e * e, scale),
                &w(e, 0.1),
            )?;
            let (k, v) = (w(e, 0.5), w(e, 0.25));
            for _ in 0..l.saturating_sub(1) {
                dec.push_cached(&k, &v)?;
            }
            let token = w(e, 1.0);
            let mut out = vec![0.0f32; e];
            let times = time_runs(args.runs, || {
                dec.step(&token, &mut out)?;
                Ok(())
            })?;
            peak = peak_rss_bytes();
            times
        }
        Workload::Gemm => {
            let x = Tensor::<2>::random([b * l, e], burn::tensor::Distribution::Default, &device);
            let w = Tensor::<2>::random([e, e], burn::tensor::Distribution::Default, &device);
            time_runs(args.runs, || {
                sync(x.clone().matmul(w.clone()));
                Ok(())
            })?
        }
        Workload::SdpaFused => {
            let d = e / h;
            let qkv =
                || Tensor::<4>::random([b, h, l, d], burn::tensor::Distribution::Default, &device);
            let (q, k, v) = (qkv(), qkv(), qkv());
            let sdpa = ScaledDotProductAttentionConfig::new().init(&device);
            time_runs(args.runs, || {
                sync(sdpa.forward_context(q.clone(), k.clone(), v.clone(), None)?);
                Ok(())
            })?
        }
        Workload::Copy => {
            let src: Vec<f32> = (0..b * l * e).map(|i| i as f32).collect();
            let mut dst = src.clone();
            let threads = rayon::current_num_threads().max(1);
            let chunk = src.len().div_ceil(threads).max(1);
            time_runs(args.runs, || {
                use rayon::prelude::*;
                dst.par_chunks_mut(chunk)
                    .zip(src.par_chunks(chunk))
                    .for_each(|(d, s)| d.copy_from_slice(s));
                std::hint::black_box(&dst);
                Ok(())
            })?
        }
        Workload::BilstmTrainStep | Workload::BigruTrainStep => {
            let kind = if args.workload == Workload::BilstmTrainStep {
                RecurrentKind::Lstm
            } else {
                RecurrentKind::Gru
            };
            let shape = train_steps::ClassifierShape {
                kind,
                batch: b,
                len: l,
                embed: e,
                hidden: args.hidden,
                vocab: args.vocab,
            };
            train_steps::recurrent_classifier(&shape, args.runs, &device)?
        }
        Workload::AarenTrainStep => train_steps::aaren_layer(b, h, l, e, args.runs, &device)?,
        Workload::AarenScanTrainStep => train_steps::aaren_scan(b, h, l, e, args.runs, &device)?,
        Workload::CountTrain => {
            let mut config = CountConfig::default();
            if args.aaren {
                config.mixer = Mixer::Aaren;
            }
            let mut run = CountTraining::new(config, &device)?;
            time_runs(args.runs, || {
                run.train_step()?;
                Ok(())
            })?
        }
    };
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let name = args
        .workload
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let shape = match args.workload {
        Workload::CountTrain => {
            json!({"batch": 64, "len": 7, "embed": 64, "heads": 4, "aaren": args.aaren})
        }
        Workload::BilstmTrainStep | Workload::BigruTrainStep => json!({
            "batch": b, "len": l, "embed": e, "hidden": args.hidden, "vocab": args.vocab
        }),
        Workload::MhaTrainStep if args.causal => {
            json!({"batch": b, "heads": h, "len": l, "embed": e, "causal": true})
        }
        Workload::AarenStream | Workload::KvCacheDecode => {
            json!({"batch": 1, "heads": h, "len": l, "embed": e})
        }
        _ => json!({"batch": b, "heads": h, "len": l, "embed": e}),
    };
    let flop = args.workload.flop(b, l, e);
    let bytes = args.workload.bytes(b, h, l, e);
    if args.json {
        let mut doc = json!({
            "workload": name, "shape": shape, "threads": threads, "runs": args.runs,
            "device": args.device.device.to_string(),
            "median_ms": median, "min_ms": min, "max_ms": max,
        });
        if let Some(p) = peak {
            doc["peak_rss_bytes"] = json!(p);
        }
        if matches!(
            args.workload,
            Workload::BilstmTrainStep | Workload::BigruTrainStep
        ) {
            doc["tokens_per_s"] = json!((b * l) as f64 / (median / 1e3));
        }
        if let Some(f) = flop {
            doc["gflop"] = json!(f / 1e9);
            doc["gflops"] = json!(f / 1e6 / median);
        }
        if let Some(by) = bytes {
            doc["gbytes"] = json!(by / 1e9);
            doc["gbps"] = json!(by / 1e6 / median);
        }
        println!("{doc}");
    } else {
        let rate = match (flop, bytes) {
            (Some(f), _) => format!(", {:.1} GFLOP/s", f / 1e6 / median),
            (None, Some(by)) => format!(", {:.1} GB/s", by / 1e6 / median),
            (None, None) => String::new(),
        };
        println!(
            "{name} {shape}: median {median:.3} ms (min {min:.3}, max {max:.3}) over {} runs, {}, {threads} threads{rate}{}",
            args.runs,
            args.device.device,
            peak.map_or(String::new(), |p| format!(
                ", peak RSS {:.1} MB",
                p as f64 / 1e6
            ))
        );
    }
    Ok(())
}
