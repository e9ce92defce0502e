//! `attnkit export`: a module of the contract, or a trained checkpoint, as ONNX.

use std::path::PathBuf;

use anyhow::{Result, bail};
use attnkit::store::TensorStore;
use attnkit_onnx::{
    ExportOptions, MaskInput, export_checkpoint, export_enhancer_step, export_module, save_model,
    summary,
};
use clap::Args;

use crate::forward::read_config;

/// Arguments of `attnkit export`.
#[derive(Args)]
#[command(
    after_help = "Writes opset 17 (IR version 8) with the contract's input and output names
(see `attnkit forward --help`), batch and sequence lengths dynamic.

  key_padding_mask  sdpa, mha and aaren take it as a required input [B,Lk] (1 = ignore
                    that key); with no padding feed zeros, or export with --no-mask.

  aaren iterative   a Scan over tokens whose body is one step of the recurrence
  aaren parallel    the prefix scan by log-depth doubling (exact up to --max-len tokens;
                    longer sequences give NaN from position --max-len on)
  aaren --step      one token: inputs x [B,E], state_a [B,H,E/H], state_c [B,H],
                    state_m [B,H]; outputs output [B,E], next_state_a/c/m. Start from
                    a = 0, c = 0, m = -inf (or the most negative float).
  lstm, gru, rnn    ONNX's own LSTM/GRU/RNN operators, one per layer
  --checkpoint      a trained network. count: tokens [B,seq_len+2] int64 -> logits;
                    imdb: ids [B,L] int64 (0 = padding; line i of imdb-vocab.txt is the
                    word of id i) and lengths [B] int64 -> logits [B,2]
  --enhancer        the speech enhancer (weights from `attnkit train enhance`, or
                    `built-in`) as a one-frame cell: features [B,161] and every layer's
                    state in (Aaren: state_a_i [B,H,d], state_c_i [B,H], state_m_i [B,H]
                    starting at 0, 0, -inf; GRU: state_h_i [B,E] starting at 0); gains
                    [B,161] and next_state_* out. docs/onnx.md shows the loop around it.

Examples:
  attnkit export --module aaren --config '{\"embed_dim\": 8, \"num_heads\": 2, \"mode\": \"parallel\"}' \\
      --weights aaren.safetensors --out aaren.onnx
  attnkit export --module aaren --config aaren.json --weights aaren.safetensors --step --out cell.onnx
  attnkit export --enhancer built-in --out enhance-step.onnx"
)]
pub struct ExportArgs {
    /// Module name: sdpa, mha, external, aaren, lstm, gru or rnn.
    #[arg(long, required_unless_present_any = ["checkpoint", "enhancer"], requires = "config")]
    module: Option<String>,
    /// The module's config: a JSON object inline, or a path to a JSON file.
    #[arg(long)]
    config: Option<String>,
    /// A checkpoint written by `attnkit train count` or `attnkit train imdb`: the
    /// whole network, instead of a module.
    #[arg(long, conflicts_with_all = ["module", "config", "weights", "step", "no_mask"])]
    checkpoint: Option<PathBuf>,
    /// The speech enhancer's weights (`attnkit train enhance`'s .safetensors, or
    /// `built-in` for the model inside this binary), exported as its one-frame cell.
    #[arg(long, conflicts_with_all = ["module", "config", "weights", "step", "no_mask", "checkpoint"])]
    enhancer: Option<PathBuf>,
    /// Safetensors file with the module's weights, under PyTorch's names.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Where to write the model. Written only if the export succeeds.
    #[arg(long)]
    out: PathBuf,
    /// sdpa, mha and aaren: export without the `key_padding_mask` input (nothing is
    /// masked). Without this flag the mask is a required input: callers with no
    /// padding feed zeros.
    #[arg(long)]
    no_mask: bool,
    /// aaren only: export one step of the recurrence with the state as inputs and
    /// outputs, for devices that run one token at a time.
    #[arg(long)]
    step: bool,
    /// aaren parallel only: the longest sequence the unrolled scan covers exactly
    /// (rounded up to a power of two; each doubling adds one level of ~20 nodes).
    #[arg(long, default_value_t = 65_536)]
    max_len: usize,
    /// Print every node of the graph after writing it.
    #[arg(long)]
    list_nodes: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.max_len == 0 || args.max_len > 1 << 30 {
        bail!("--max-len must be between 1 and 2^30, got {}", args.max_len);
    }
    if args.out.extension().is_none_or(|e| e != "onnx") {
        eprintln!(
            "warning: `{}` does not end in .onnx; writing it anyway",
            args.out.display()
        );
    }
    let exported = match (&args.checkpoint, &args.module, &args.config) {
        _ if args.enhancer.is_some() => {
            let path = args.enhancer.as_deref().expect("checked");
            let store = if path == std::path::Path::new("built-in") {
                TensorStore::from_bytes(
                    crate::enhance::DEFAULT_MODEL,
                    std::path::Path::new("<built-in model>"),
                )?
            } else {
                TensorStore::load(path)?
            };
            export_enhancer_step(&store)?
        }
        (Some(path), _, _) => export_checkpoint(path)?,
        (None, Some(module), Some(config)) => {
            let config = read_config(config)?;
            let weights = args.weights.as_deref().map(TensorStore::load).transpose()?;
            let options = ExportOptions {
                mask: if args.no_mask {
                    MaskInput::Absent
                } else {
                    MaskInput::Required
                },
                aaren_step: args.step,
                max_len: args.max_len,
            };
            export_module(module, &config, weights.as_ref(), &options)?
        }
        _ => bail!("give --module with --config (and --weights), or --checkpoint"),
    };
    for w in &exported.warnings {
        eprintln!("warning: {w}");
    }
    save_model(&exported.model, &args.out)?;
    let nodes = exported.model.graph.as_ref().map_or(0, |g| g.node.len());
    println!(
        "wrote {} ({} nodes; {})",
        args.out.display(),
        nodes,
        summary::op_counts(&exported.model)
    );
    println!("{}", summary::signature(&exported.model));
    if args.list_nodes {
        print!("{}", summary::node_listing(&exported.model));
    }
    Ok(())
}
