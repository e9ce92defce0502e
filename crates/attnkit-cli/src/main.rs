//! `attnkit`: attention mechanisms, recurrent baselines and Attention as an RNN.

mod aaren;
mod bench;
mod chart;
mod data;
mod device;
mod download;
mod enhance;
mod export;
mod forward;
mod prepare_speech;
mod tour;
mod train;

use clap::{Parser, Subcommand};

// Keeps freed pages for reuse: large tensors are allocated and freed every forward pass,
// and the system allocator returns them to the OS, so each pass pays its page faults again.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Attention mechanisms, recurrent baselines and Attention as an RNN (Aaren).
#[derive(Parser)]
#[command(name = "attnkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every capability on built-in data and print a report of each check.
    Tour(tour::TourArgs),
    /// Run one module on the tensors of a safetensors file (the module contract).
    Forward(forward::ForwardArgs),
    /// Attention as an RNN: compare its iterative and parallel forms.
    Aaren(aaren::AarenArgs),
    /// Train an example task (progress bar, checkpoints, --resume, --summary).
    Train(train::TrainArgs),
    /// Write a module (or a trained checkpoint) as ONNX.
    Export(export::ExportArgs),
    /// Time one workload (the benchmark contract; --json for machines).
    Bench(bench::BenchArgs),
    /// Build and inspect the IMDB and GloVe data, and the speech-enhancement data.
    Data(data::DataArgs),
    /// Denoise speech: WAV files, folders, or a live PCM stream (--stream).
    Enhance(enhance::EnhanceArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tour(args) => tour::run(args),
        Command::Forward(args) => forward::run(args),
        Command::Aaren(args) => aaren::run(args),
        Command::Train(args) => train::run(args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Data(args) => data::run(args),
        Command::Enhance(args) => enhance::run(args),
    };
    if let Err(e) = result {
        // One line: the context chain joined by ": ", skipping a cause whose text the
        // message already carries (our file errors name their OS error themselves).
        let mut msg = e.to_string();
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !msg.contains(&c) {
                msg.push_str(": ");
                msg.push_str(&c);
            }
        }
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
