//! `attnkit forward`: the module contract on files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use attnkit::contract;
use attnkit::store::TensorStore;
use burn::prelude::*;
use clap::Args;

/// Arguments of `attnkit forward`.
#[derive(Args)]
#[command(
    after_help = "Modules and their tensors (all float32; masks are 0/1, 1 = ignore the key):
  sdpa      config {causal, scale?}; no weights; inputs query [B,H,Lq,D], key [B,H,Lk,D],
            value [B,H,Lk,Dv], key_padding_mask [B,Lk]?; outputs output [B,H,Lq,Dv], weights [B,H,Lq,Lk]
  mha       config {embed_dim, num_heads}; weights in_proj_weight, in_proj_bias, out_proj.weight,
            out_proj.bias; inputs query [B,Lq,E], key, value [B,Lk,E], key_padding_mask [B,Lk]?;
            outputs output [B,Lq,E], weights [B,Lq,Lk] (mean over heads)
  external  config {d_model, memory}; weights mk.weight [S,d], mv.weight [d,S];
            inputs x [B,N,d]; outputs output [B,N,d]
  lstm, gru, rnn
            config {input_size, hidden_size, bidirectional, num_layers?}; weights as nn.LSTM/GRU/RNN
            (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, …_reverse); inputs x [B,L,In]
            (batch first); outputs output [B,L,dirs·H], h_n [dirs·layers,B,H] (+ c_n for lstm)
  aaren     config {embed_dim, num_heads, mode: iterative|parallel|fused}; weights query [E],
            in_proj_weight [3E,E], in_proj_bias [3E], out_proj.weight [E,E], out_proj.bias [E];
            inputs x [B,L,E], key_padding_mask [B,L]?; outputs output [B,L,E]

Example:
  attnkit forward --module mha --config '{\"embed_dim\": 8, \"num_heads\": 2}' \\
      --weights w.safetensors --input in.safetensors --output out.safetensors"
)]
pub struct ForwardArgs {
    /// Module name: sdpa, mha, external, aaren, lstm, gru or rnn.
    #[arg(long)]
    module: String,
    /// The module's config: a JSON object inline, or a path to a JSON file.
    #[arg(long)]
    config: String,
    /// Safetensors file with the module's weights, under PyTorch's names.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Safetensors file with the inputs.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the outputs (safetensors). Written only if everything succeeds.
    #[arg(long)]
    output: PathBuf,
    /// Arithmetic precision. `f32` computes as PyTorch does by default and as a deployed
    /// model runs; `f64` computes from the float32 files in double precision, so the
    /// outputs are the exact answer rounded once to float32. `auto` (default): f32 for
    /// the modules PyTorch has (sdpa, mha, external), f64 for aaren, whose reference is
    /// the exact softmax over up to millions of tokens (f32 for aaren too on a GPU
    /// device).
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    precision: Precision,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// Floating-point precision of a computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// f32 for modules PyTorch has, f64 for Aaren.
    Auto,
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

/// `device` computing in `precision`. Must be called before any tensor exists.
pub fn device_with(precision: Precision, device: Device) -> Result<Device> {
    let mut device = device;
    if precision == Precision::F64 {
        device
            .configure(burn::tensor::FloatDType::F64)
            .map_err(|e| anyhow::anyhow!("cannot configure the device for f64: {e:?}"))?;
    }
    Ok(device)
}

/// Reads `--config`: inline JSON if it starts with `{`, a file path otherwise.
pub fn read_config(arg: &str) -> Result<serde_json::Value> {
    if arg.trim_start().starts_with('{') {
        return Ok(contract::parse_config(arg, "inline config")?);
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config: cannot read `{}`", path.display()))?;
    Ok(contract::parse_config(&text, &path.display().to_string())?)
}

pub fn run(args: ForwardArgs) -> Result<()> {
    let config = read_config(&args.config)?;
    let weights = args.weights.as_deref().map(TensorStore::load).transpose()?;
    let inputs = TensorStore::load(&args.input)?;
    let precision = match args.precision {
        Precision::Auto if args.module == "aaren" && args.device.is_cpu() => Precision::F64,
        Precision::Auto => Precision::F32,
        p => p,
    };
    let device = device_with(precision, args.device.init()?)?;
    let result = contract::forward(&args.module, &config, weights.as_ref(), &inputs, &device)?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    let mut outputs = result.outputs;
    outputs.set_metadata("module", &args.module);
    outputs.set_metadata("producer", concat!("attnkit ", env!("CARGO_PKG_VERSION")));
    outputs.save(&args.output)?;
    Ok(())
}
