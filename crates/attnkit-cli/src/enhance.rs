//! `attnkit enhance`: denoise WAV files, a folder of them, or a live PCM stream.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnkit::store::TensorStore;
use attnkit::tasks::enhance::{EnhanceConfig, Enhancer, EnhancerStream, HOP, enhance_signal};
use attnkit_audio::SAMPLE_RATE;
use attnkit_audio::corpus::{read_16k, wav_files};
use attnkit_audio::metrics::{pesq_wb, si_sdr};
use attnkit_audio::wav::{from_i16, to_i16, write_wav};
use burn::prelude::*;
use clap::Args;
use serde_json::json;

/// The default model, built into the binary: Aaren, trained by
/// `attnkit train enhance` (command and seed in docs/enhance.md).
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../models/enhance-default.safetensors");

/// `attnkit enhance`.
#[derive(Args)]
#[command(after_help = "Examples:
  attnkit enhance --input noisy.wav --output clean.wav
  attnkit enhance --input noisy/ --output enhanced/ --reference clean/ --report report.json
  arecord -f S16_LE -r 16000 -c 1 -t raw | attnkit enhance --stream | aplay -f S16_LE -r 16000 -c 1 -t raw

Output is 16 kHz mono 16-bit, as long as the input and sample-aligned with it (the 10 ms
delay of the overlap-add is compensated). --stream reads raw 16-bit little-endian 16 kHz
mono PCM on stdin and writes the same on stdout, one 10 ms block at a time (output lags
input by one block); its samples equal the file mode's within 2 LSB. At the end it prints
the real-time factor, the time per block and the memory it held on stderr.")]
pub struct EnhanceArgs {
    /// A WAV file (any rate, mono) or a folder of them.
    #[arg(long, required_unless_present = "stream")]
    input: Option<PathBuf>,
    /// Where the enhanced audio goes: a WAV file for a file, a folder for a folder.
    #[arg(long, required_unless_present = "stream")]
    output: Option<PathBuf>,
    /// Weights from `attnkit train enhance` (DIR/enhance-MODEL.safetensors). Default:
    /// the model built into the binary.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Raw PCM on stdin → raw PCM on stdout, block by block.
    #[arg(long, conflicts_with_all = ["input", "output", "reference"])]
    stream: bool,
    /// Clean references to score against: a WAV file (for a file) or a folder with the
    /// same relative names (for a folder).
    #[arg(long, requires = "report")]
    reference: Option<PathBuf>,
    /// Write SI-SDR and PESQ-WB of the noisy input and the enhanced output, per file and
    /// on average, here (JSON).
    #[arg(long, requires = "reference")]
    report: Option<PathBuf>,
    /// For one input file: write spectrograms of the noisy input, the enhanced output
    /// and (with --reference) the clean speech to this PNG.
    #[arg(long, conflicts_with = "stream")]
    spectrogram: Option<PathBuf>,
    // The whole-file form's device (`--stream` runs the host kernels on the CPU).
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// The model and its configuration: from `--checkpoint`, or the built-in one.
pub fn load_model(checkpoint: Option<&Path>, device: &Device) -> Result<(Enhancer, EnhanceConfig)> {
    let store = match checkpoint {
        Some(path) => TensorStore::load(path)?,
        None => TensorStore::from_bytes(DEFAULT_MODEL, Path::new("<built-in model>"))?,
    };
    let what = checkpoint.map_or("the built-in model".to_string(), |p| {
        p.display().to_string()
    });
    Enhancer::from_store(&store, device).with_context(|| format!("loading {what}"))
}

pub fn run(args: EnhanceArgs) -> Result<()> {
    if args.stream && !args.device.is_cpu() {
        bail!(
            "--stream runs the host kernels one block at a time on the CPU; drop --device {}",
            args.device.device
        );
    }
    let device = args.device.init()?;
    let (model, config) = load_model(args.checkpoint.as_deref(), &device)?;
    if args.stream {
        return stream(&model, &config);
    }
    let (input, output) = match (&args.input, &args.output) {
        (Some(i), Some(o)) => (i, o),
        _ => bail!("--input and --output are both needed (or --stream)"),
    };
    if args.spectrogram.is_some() && input.is_dir() {
        bail!("--spectrogram draws one file: give --input a WAV file");
    }
    let jobs: Vec<(PathBuf, PathBuf, Option<PathBuf>)> = if input.is_dir() {
        let files = wav_files(input)?;
        if files.is_empty() {
            bail!("{}: no .wav files in this folder", input.display());
        }
        if output.is_file() {
            bail!(
                "{}: the input is a folder, so the output must be a folder too",
                output.display()
            );
        }
        files
            .into_iter()
            .map(|f| {
                let rel = f.strip_prefix(input).unwrap_or(&f).to_path_buf();
                let reference = args.reference.as_ref().map(|r| r.join(&rel));
                (f, output.join(&rel), reference)
            })
            .collect()
    } else {
        if output.is_dir() {
            bail!(
                "{}: the input is a file, so the output must be a file too",
                output.display()
            );
        }
        vec![(input.clone(), output.clone(), args.reference.clone())]
    };
    let started = Instant::now();
    let mut audio_seconds = 0.0;
    let mut rows = Vec::new();
    let bar = crate::train::progress_bar(jobs.len() as u64, jobs.len() < 2);
    for (inp, out, reference) in &jobs {
        let noisy = read_16k(inp)?;
        let enhanced = enhance_signal(&model, &noisy, &device)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_wav(out, SAMPLE_RATE, &enhanced)?;
        if let Some(png) = &args.spectrogram {
            let clean = reference.as_deref().map(read_16k).transpose()?;
            let mut panels: Vec<(&str, &[f32])> =
                vec![("noisy input", &noisy), ("enhanced", &enhanced)];
            if let Some(c) = &clean {
                panels.push(("clean reference", c));
            }
            let title = format!("{} — {} model", inp.display(), config.model.name());
            crate::chart::spectrograms(png, &title, &panels)?;
        }
        audio_seconds += noisy.len() as f64 / SAMPLE_RATE as f64;
        if let Some(reference) = reference {
            let clean = read_16k(reference)?;
            if clean.len() != noisy.len() {
                bail!(
                    "{}: {} samples at 16 kHz, but its input {} has {}",
                    reference.display(),
                    clean.len(),
                    inp.display(),
                    noisy.len()
                );
            }
            // Score what was written: the 16-bit file.
            let written: Vec<f32> = enhanced.iter().map(|&x| from_i16(to_i16(x))).collect();
            let score =
                |x: &[f32]| -> Result<(f64, f64)> { Ok((si_sdr(x, &clean)?, pesq_wb(x, &clean)?)) };
            let (sn, pn) = score(&noisy).with_context(|| format!("scoring {}", inp.display()))?;
            let (se, pe) = score(&written).with_context(|| format!("scoring {}", out.display()))?;
            rows.push(json!({
                "file": inp.strip_prefix(input).unwrap_or(inp),
                "noisy": {"si_sdr": sn, "pesq_wb": pn},
                "enhanced": {"si_sdr": se, "pesq_wb": pe},
            }));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "enhanced {} file(s), {:.1} s of audio in {:.2} s ({:.0}× real time) with the {} model ({} parameters)",
        jobs.len(),
        audio_seconds,
        seconds,
        audio_seconds / seconds.max(1e-9),
        config.model.name(),
        model.parameters()
    );
    if let Some(report) = &args.report {
        let mean = |side: &str, key: &str| {
            rows.iter()
                .map(|r| r[side][key].as_f64().unwrap_or(f64::NAN))
                .sum::<f64>()
                / rows.len() as f64
        };
        let summary = json!({
            "model": config.model.name(),
            "checkpoint": args.checkpoint.as_ref().map_or("built-in".to_string(), |p| p.display().to_string()),
            "files": rows.len(),
            "mean": {
                "noisy": {"si_sdr": mean("noisy", "si_sdr"), "pesq_wb": mean("noisy", "pesq_wb")},
                "enhanced": {"si_sdr": mean("enhanced", "si_sdr"), "pesq_wb": mean("enhanced", "pesq_wb")},
            },
            "per_file": rows,
        });
        crate::train::write_summary(report, &summary)?;
        eprintln!(
            "SI-SDR {:.2} → {:.2} dB, PESQ-WB {:.2} → {:.2} (mean of {} files); report: {}",
            mean("noisy", "si_sdr"),
            mean("enhanced", "si_sdr"),
            mean("noisy", "pesq_wb"),
            mean("enhanced", "pesq_wb"),
            rows.len(),
            report.display()
        );
    }
    Ok(())
}

/// Block times in whole microseconds, counted in a fixed table (the stream's memory
/// must not grow with its length); times beyond the table land in its last slot.
struct BlockTimes {
    counts: Vec<u64>,
    total: u64,
    sum_us: f64,
    max_us: f64,
}

impl BlockTimes {
    fn new() -> Self {
        Self {
            counts: vec![0; 100_000],
            total: 0,
            sum_us: 0.0,
            max_us: 0.0,
        }
    }

    fn record(&mut self, us: f64) {
        let slot = (us as usize).min(self.counts.len() - 1);
        self.counts[slot] += 1;
        self.total += 1;
        self.sum_us += us;
        self.max_us = self.max_us.max(us);
    }

    fn quantile(&self, q: f64) -> f64 {
        let target = (q * self.total as f64).ceil() as u64;
        let mut seen = 0;
        for (us, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return us as f64;
            }
        }
        f64::NAN
    }
}

/// Peak resident memory of this process in KiB (Linux), if the system says.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads up to one block of 16-bit samples (a pipe may deliver it in pieces); fewer
/// than a block means the input ended.
fn read_block(
    input: &mut impl Read,
    bytes: &mut [u8; 2 * HOP],
    block: &mut [f32; HOP],
) -> Result<usize> {
    let mut filled = 0;
    while filled < bytes.len() {
        match input.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading PCM from stdin"),
        }
    }
    let got = filled / 2;
    for (i, b) in block.iter_mut().enumerate() {
        *b = if i < got {
            from_i16(i16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
        } else {
            0.0
        };
    }
    Ok(got)
}

/// The stream's plumbing: blocks in, the enhanced block before each out, timed.
struct PcmStream<'a> {
    stream: EnhancerStream,
    times: BlockTimes,
    out: [u8; 2 * HOP],
    samples_in: u64,
    samples_out: u64,
    pushes: u64,
    sink: std::io::StdoutLock<'a>,
    closed: bool,
}

impl PcmStream<'_> {
    /// Pushes a block and writes the block it completes (none after the first push),
    /// cut to the samples read so far.
    fn push(&mut self, block: &[f32; HOP]) -> Result<()> {
        let t = Instant::now();
        let y = self.stream.push(block)?;
        self.times.record(t.elapsed().as_secs_f64() * 1e6);
        self.pushes += 1;
        if self.pushes == 1 || self.closed {
            return Ok(());
        }
        let keep = (self.samples_in - self.samples_out).min(HOP as u64) as usize;
        for (i, &v) in y[..keep].iter().enumerate() {
            self.out[2 * i..2 * i + 2].copy_from_slice(&to_i16(v).to_le_bytes());
        }
        match self
            .sink
            .write_all(&self.out[..2 * keep])
            .and_then(|()| self.sink.flush())
        {
            Ok(()) => {}
            // The reader went away (`| head`): stop writing quietly, like other filters.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => return Err(e).context("writing PCM to stdout"),
        }
        self.samples_out += keep as u64;
        Ok(())
    }
}

fn stream(model: &Enhancer, config: &EnhanceConfig) -> Result<()> {
    let stream = EnhancerStream::new(model, config)?;
    let state_at_start = stream.state_bytes();
    let rss_at_start = peak_rss_kib();
    let started = Instant::now();
    let mut stdin = std::io::stdin().lock();
    let mut pcm = PcmStream {
        stream,
        times: BlockTimes::new(),
        out: [0u8; 2 * HOP],
        samples_in: 0,
        samples_out: 0,
        pushes: 0,
        sink: std::io::stdout().lock(),
        closed: false,
    };
    let mut bytes = [0u8; 2 * HOP];
    let mut block = [0.0f32; HOP];
    loop {
        let got = read_block(&mut stdin, &mut bytes, &mut block)?;
        if got == 0 && pcm.pushes == 0 {
            break;
        }
        pcm.samples_in += got as u64;
        pcm.push(&block)?;
        if got == 0 || pcm.closed {
            // That push was a block of zeros: it flushed the last one.
            break;
        }
        if got < HOP {
            pcm.push(&[0.0; HOP])?;
            break;
        }
    }
    let audio = pcm.samples_in as f64 / SAMPLE_RATE as f64;
    let times = &pcm.times;
    eprintln!(
        "stream: {:.1} s of audio in {} blocks of 10 ms; per block median {:.0} µs, p99 {:.0} µs, max {:.0} µs; \
real-time factor {:.4} (compute / audio); state {} bytes at the start and {} at the end (recurrent part {}), \
weights {} bytes; peak RSS {} KiB at the start, {} KiB at the end; wall {:.1} s",
        audio,
        times.total,
        times.quantile(0.5),
        times.quantile(0.99),
        times.max_us,
        times.sum_us / 1e6 / audio.max(1e-9),
        state_at_start,
        pcm.stream.state_bytes(),
        pcm.stream.recurrent_state_bytes(),
        pcm.stream.weight_bytes(),
        rss_at_start.map_or("?".into(), |k| k.to_string()),
        peak_rss_kib().map_or("?".into(), |k| k.to_string()),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
