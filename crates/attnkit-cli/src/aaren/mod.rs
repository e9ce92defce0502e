//! `attnkit aaren`: the Aaren forms side by side.
//!
//! One file per subcommand: `compare` (the forms' agreement), `decode` (per-token cost
//! against a KV cache), `sequence` (whole-sequence time against MHA); `timing` and
//! `colors` are shared by the measurements and their charts.

use anyhow::Result;
use clap::{Args, Subcommand};

mod colors;
mod compare;
mod decode;
mod sequence;
mod timing;

use compare::{CompareArgs, compare};
use decode::{DecodeArgs, decode};
use sequence::{SequenceArgs, sequence};

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

pub fn run(args: AarenArgs) -> Result<()> {
    match args.command {
        AarenCommand::Compare(a) => compare(a),
        AarenCommand::Decode(a) => decode(a),
        AarenCommand::Sequence(a) => sequence(a),
    }
}
