//! Speech and noise recordings on disk: folders of WAV files, folder pairs of clean and
//! noisy files, on-the-fly mixtures for training, and the prepared layout that
//! `attnkit data prepare-speech` builds.
//!
//! The prepared layout (every file 16 kHz mono 16-bit):
//!
//! ```text
//! DIR/speech/{train,valid}/<source>/*.wav    speech, leading/trailing silence trimmed
//! DIR/noise/{train,valid}/<source>/*.wav     recorded noise
//! DIR/test-speech/<source>/*.wav             held-out voices and languages
//! DIR/test-noise/<source>/*.wav              held-out noises
//! DIR/valid/{clean,noisy}/NNNN.wav           fixed validation pairs, SNR −5…15 dB
//! DIR/test/{clean,noisy}/NNNN.wav            held-out pairs at 0, 5 and 10 dB
//! DIR/{valid,test}/mixtures.tsv              what each pair was made of
//! ```

use std::path::{Path, PathBuf};

use attnkit_kernels::rng::SplitMix64;

use crate::SAMPLE_RATE;
use crate::error::{AudioError, Result};
use crate::mix::{mix_at_snr, power};
use crate::noise::{coloured, filter, impulsive, modulate, random_equalizer, tonal};
use crate::resample::resample;
use crate::wav::{read_wav, write_wav};

/// A recording at 16 kHz and where it came from (its path under the folder it was
/// loaded from).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// Path relative to the folder.
    pub name: String,
    /// Samples at 16 kHz.
    pub samples: Vec<f32>,
}

/// Every `*.wav` under `dir` (recursively), sorted.
///
/// # Errors
///
/// [`AudioError::Config`] naming `dir` if it cannot be listed.
pub fn wav_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            AudioError::Config(format!("{}: cannot list the folder: {e}", d.display()))
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| AudioError::Config(format!("{}: {e}", d.display())))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a WAV file and resamples it to 16 kHz.
///
/// # Errors
///
/// As [`read_wav`] and [`resample`].
pub fn read_16k(path: &Path) -> Result<Vec<f32>> {
    let audio = read_wav(path)?;
    resample(&audio.samples, audio.rate, SAMPLE_RATE)
}

/// Every WAV file under `dir`, at 16 kHz.
///
/// # Errors
///
/// [`AudioError::Config`] if `dir` holds no WAV file; a file's own error otherwise.
pub fn load_folder(dir: &Path) -> Result<Vec<Clip>> {
    let files = wav_files(dir)?;
    if files.is_empty() {
        return Err(AudioError::Config(format!(
            "{}: no .wav files in this folder",
            dir.display()
        )));
    }
    files
        .iter()
        .map(|f| {
            Ok(Clip {
                name: relative(f, dir),
                samples: read_16k(f)?,
            })
        })
        .collect()
}

fn relative(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// A clean recording and its noisy version.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// File name, relative to the folders.
    pub name: String,
    /// Clean speech, 16 kHz.
    pub clean: Vec<f32>,
    /// The same speech with noise, 16 kHz, as long as `clean`.
    pub noisy: Vec<f32>,
}

/// Pairs the WAV files of `noisy_dir` with the files of the same relative name in
/// `clean_dir` (VoiceBank+DEMAND's `noisy_trainset_wav/` and `clean_trainset_wav/`,
/// or any such pair of folders), resampled to 16 kHz.
///
/// # Errors
///
/// [`AudioError::Config`] if `noisy_dir` holds no WAV files, a noisy file has no
/// clean one, or the two differ in length; a file's own error otherwise.
pub fn load_pairs(clean_dir: &Path, noisy_dir: &Path) -> Result<Vec<Pair>> {
    let files = wav_files(noisy_dir)?;
    if files.is_empty() {
        return Err(AudioError::Config(format!(
            "{}: no .wav files in this folder",
            noisy_dir.display()
        )));
    }
    files
        .iter()
        .map(|noisy_path| {
            let name = relative(noisy_path, noisy_dir);
            let clean_path = clean_dir.join(&name);
            if !clean_path.exists() {
                return Err(AudioError::Config(format!(
                    "{}: no clean file {} for it",
                    noisy_path.display(),
                    clean_path.display()
                )));
            }
            let clean = read_16k(&clean_path)?;
            let noisy = read_16k(noisy_path)?;
            if clean.len() != noisy.len() {
                return Err(AudioError::Config(format!(
                    "{}: {} samples at 16 kHz, but its clean file {} has {}",
                    noisy_path.display(),
                    noisy.len(),
                    clean_path.display(),
                    clean.len()
                )));
            }
            Ok(Pair { name, clean, noisy })
        })
        .collect()
}

/// `x` without its leading and trailing 10 ms blocks quieter than `threshold_db`
/// below the loudest block.
pub fn trim_silence(x: &[f32], threshold_db: f64) -> &[f32] {
    let blocks: Vec<f64> = x.chunks(160).map(power).collect();
    let top = blocks.iter().fold(0.0f64, |m, &p| m.max(p));
    if top == 0.0 {
        return &x[..0];
    }
    let floor = top * 10f64.powf(-threshold_db / 10.0);
    let first = blocks.iter().position(|&p| p > floor).unwrap_or(0);
    let last = blocks.iter().rposition(|&p| p > floor).unwrap_or(0);
    &x[first * 160..((last + 1) * 160).min(x.len())]
}

/// The kind of noise in a mixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseKind {
    /// A recorded noise clip.
    Recorded,
    /// Several other speakers summed (babble), from the speech pool.
    Babble,
    /// Coloured noise (1/f^β, β in [0, 2]), amplitude-modulated half of the time.
    Synthetic,
}

impl NoiseKind {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Babble => "babble",
            Self::Synthetic => "synthetic",
        }
    }
}

/// A mixture and what it was made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// Speech plus noise.
    pub noisy: Vec<f32>,
    /// The speech in it (scaled as in the mixture).
    pub clean: Vec<f32>,
    /// The SNR it was mixed at, dB.
    pub snr_db: f64,
    /// The noise's kind.
    pub kind: NoiseKind,
    /// The noise's clip name (recorded noise) or a description.
    pub noise: String,
}

/// Draws mixtures of speech and noise: how training data is made on the fly and how
/// the fixed validation and test pairs were made.
#[derive(Debug, Clone, Copy)]
pub struct MixtureSampler<'a> {
    /// Speech clips (babble comes from these too).
    pub speech: &'a [Clip],
    /// Recorded noise clips.
    pub noise: &'a [Clip],
    /// SNR range in dB, drawn uniformly.
    pub snr_db: (f64, f64),
    /// Probabilities of babble and of synthetic noise (the rest is recorded noise).
    pub babble: f64,
    /// See `babble`.
    pub synthetic: f64,
    /// Mixture RMS level range in dBFS, drawn uniformly.
    pub level_db: (f64, f64),
    /// Augmentation (training only): the probability of each of a random equaliser on
    /// the noise, a second noise added 0–10 dB below the first, and speech band-limited
    /// to 3.4–7 kHz as by a narrowband channel. 0 for fixed evaluation sets.
    pub augment: f64,
}

impl MixtureSampler<'_> {
    /// `len` samples of speech: random clips one after another, each after a random
    /// pause of 0–300 ms, from a random point of the first.
    fn speech_segment(&self, len: usize, rng: &mut SplitMix64) -> Vec<f32> {
        let mut out = Vec::with_capacity(len + 16_000);
        let first = &self.speech[rng.below(self.speech.len() as u64) as usize].samples;
        let start = rng.below((first.len() / 2).max(1) as u64) as usize;
        out.extend_from_slice(&first[start..]);
        while out.len() < len {
            let pause = rng.below(4_800) as usize;
            out.extend(std::iter::repeat_n(0.0, pause));
            let clip = &self.speech[rng.below(self.speech.len() as u64) as usize].samples;
            out.extend_from_slice(clip);
        }
        out.truncate(len);
        out
    }

    /// `len` samples of a recorded noise clip (looped), from a random point.
    fn recorded(&self, len: usize, rng: &mut SplitMix64) -> (Vec<f32>, String) {
        let clip = &self.noise[rng.below(self.noise.len() as u64) as usize];
        let x = &clip.samples;
        let start = rng.below(x.len() as u64) as usize;
        (
            (0..len).map(|i| x[(start + i) % x.len()]).collect(),
            clip.name.clone(),
        )
    }

    /// One noise of `len` samples, its kind and a description.
    fn noise_segment(&self, len: usize, rng: &mut SplitMix64) -> (NoiseKind, Vec<f32>, String) {
        let u = rng.next_f64();
        if u < self.babble {
            let talkers = 3 + rng.below(4) as usize;
            let mut sum = vec![0.0f32; len];
            for _ in 0..talkers {
                let s = self.speech_segment(len, rng);
                let g = 1.0 / power(&s).max(1e-8).sqrt() as f32;
                sum.iter_mut().zip(&s).for_each(|(a, b)| *a += g * b);
            }
            (
                NoiseKind::Babble,
                sum,
                format!("babble of {talkers} talkers"),
            )
        } else if u < self.babble + self.synthetic || self.noise.is_empty() {
            let sr = SAMPLE_RATE as f64;
            let v = rng.next_f64();
            if v < 0.5 {
                let beta = rng.uniform(0.0, 2.0);
                let mut x = coloured(len, beta, rng);
                let mut what = format!("1/f^{beta:.2} noise");
                if rng.next_f64() < 0.5 {
                    let (depth, rate) = (rng.uniform(0.3, 0.9), rng.uniform(0.2, 4.0));
                    modulate(&mut x, depth, rate, rng.uniform(0.0, 6.3), sr);
                    what.push_str(&format!(", modulated {depth:.2} at {rate:.2} Hz"));
                }
                (NoiseKind::Synthetic, x, what)
            } else if v < 0.75 {
                (
                    NoiseKind::Synthetic,
                    tonal(len, sr, rng),
                    "tonal noise".into(),
                )
            } else {
                (
                    NoiseKind::Synthetic,
                    impulsive(len, sr, rng),
                    "impulsive noise".into(),
                )
            }
        } else {
            let (x, name) = self.recorded(len, rng);
            (NoiseKind::Recorded, x, name)
        }
    }

    /// Draws one mixture of `len` samples.
    ///
    /// # Panics
    ///
    /// If the speech pool is empty, or the noise pool is empty while recorded noise
    /// is drawn (callers check the pools when they load them).
    pub fn sample(&self, len: usize, rng: &mut SplitMix64) -> Mixture {
        // Speech with some energy: a segment that is nearly all pause is drawn again.
        let mut speech = self.speech_segment(len, rng);
        for _ in 0..8 {
            if power(&speech) > 1e-6 {
                break;
            }
            speech = self.speech_segment(len, rng);
        }
        let (kind, mut noise, mut what) = self.noise_segment(len, rng);
        if rng.next_f64() < self.augment {
            let eq = random_equalizer(rng);
            filter(&mut noise, SAMPLE_RATE as f64, eq);
            what.push_str(", equalised");
        }
        if rng.next_f64() < self.augment {
            let (_, second, w) = self.noise_segment(len, rng);
            let g = (10f64.powf(-rng.uniform(0.0, 10.0) / 20.0)
                * (power(&noise) / power(&second).max(1e-12)).sqrt()) as f32;
            noise.iter_mut().zip(&second).for_each(|(a, b)| *a += g * b);
            what.push_str(&format!(" + {w}"));
        }
        if rng.next_f64() < self.augment {
            let cutoff = rng.uniform(3_400.0, 7_000.0);
            filter(&mut speech, SAMPLE_RATE as f64, |f| {
                if f < cutoff { 1.0 } else { 0.0 }
            });
            what.push_str(&format!(", speech band-limited to {cutoff:.0} Hz"));
        }
        if power(&noise) == 0.0 {
            // A silent stretch of a recording: fall back to white noise so the SNR holds.
            noise = coloured(len, 0.0, rng);
        }
        let snr_db = rng.uniform(self.snr_db.0, self.snr_db.1);
        let (mut noisy, mut clean) = mix_at_snr(&speech, &noise, snr_db, f32::INFINITY);
        let level = rng.uniform(self.level_db.0, self.level_db.1);
        let g = (10f64.powf(level / 20.0) / power(&noisy).max(1e-12).sqrt()) as f32;
        let peak = noisy.iter().fold(0.0f32, |m, v| m.max(v.abs())) * g;
        let g = if peak > 0.99 { g * 0.99 / peak } else { g };
        noisy.iter_mut().for_each(|v| *v *= g);
        clean.iter_mut().for_each(|v| *v *= g);
        Mixture {
            noisy,
            clean,
            snr_db,
            kind,
            noise: what,
        }
    }
}

/// Builds the prepared layout (module docs) under `out` from the decoded recordings
/// under `raw` (`raw/<role>/<source>/*.wav` at any rate, as `tools/prepare_speech.py`
/// writes them). `progress` receives one line per stage.
///
/// # Errors
///
/// A file's own error, or [`AudioError::Config`] if a role has no recordings.
pub fn prepare_layout(
    raw: &Path,
    out: &Path,
    seed: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut rng = SplitMix64::new(seed);
    let mut pools: Vec<(&str, Vec<Clip>, Vec<Clip>)> = Vec::new();
    for role in ["speech", "noise", "test-speech", "test-noise"] {
        let dir = raw.join(role);
        let mut clips = load_folder(&dir)?;
        if role.ends_with("speech") {
            for c in clips.iter_mut() {
                c.samples = trim_silence(&c.samples, 50.0).to_vec();
            }
            clips.retain(|c| c.samples.len() >= 8_000);
        }
        // 5% of each source's files for validation (training roles only).
        let mut train = Vec::new();
        let mut valid = Vec::new();
        if role.starts_with("test") {
            train = clips;
        } else {
            let mut by_source: std::collections::BTreeMap<String, Vec<Clip>> = Default::default();
            for c in clips {
                let source = c.name.split('/').next().unwrap_or("").to_string();
                by_source.entry(source).or_default().push(c);
            }
            for (_, mut list) in by_source {
                rng.shuffle(&mut list);
                let n_valid = (list.len() / 20).max(1);
                valid.extend(list.drain(..n_valid));
                train.extend(list);
            }
        }
        let seconds =
            |c: &[Clip]| c.iter().map(|c| c.samples.len()).sum::<usize>() as f64 / 16_000.0;
        progress(&format!(
            "{role}: {} files, {:.1} min{}",
            train.len() + valid.len(),
            (seconds(&train) + seconds(&valid)) / 60.0,
            if valid.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} files, {:.1} min for validation)",
                    valid.len(),
                    seconds(&valid) / 60.0
                )
            }
        ));
        let write = |clips: &[Clip], dir: &Path| -> Result<()> {
            for c in clips {
                let path = dir.join(&c.name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        AudioError::Config(format!("{}: cannot create: {e}", parent.display()))
                    })?;
                }
                write_wav(&path, SAMPLE_RATE, &c.samples)?;
            }
            Ok(())
        };
        if role.starts_with("test") {
            write(&train, &out.join(role))?;
        } else {
            write(&train, &out.join(role).join("train"))?;
            write(&valid, &out.join(role).join("valid"))?;
        }
        pools.push((role, train, valid));
    }
    let valid_sampler = MixtureSampler {
        speech: &pools[0].2,
        noise: &pools[1].2,
        snr_db: (-5.0, 15.0),
        babble: 0.15,
        synthetic: 0.25,
        level_db: (-35.0, -15.0),
        augment: 0.0,
    };
    write_pairs(&out.join("valid"), 400, &mut rng, |rng, _| {
        valid_sampler.sample(4 * 16_000, rng)
    })?;
    progress("valid: 400 pairs of 4 s, SNR uniform in [-5, 15] dB");
    let test_sampler = MixtureSampler {
        speech: &pools[2].1,
        noise: &pools[3].1,
        snr_db: (0.0, 0.0),
        babble: 0.0,
        synthetic: 0.0,
        level_db: (-30.0, -20.0),
        augment: 0.0,
    };
    write_pairs(&out.join("test"), 180, &mut rng, |rng, i| {
        let snr = [0.0, 5.0, 10.0][i % 3];
        MixtureSampler {
            snr_db: (snr, snr),
            ..test_sampler
        }
        .sample(5 * 16_000, rng)
    })?;
    progress("test: 180 pairs of 5 s of held-out voices and noises, 60 each at 0, 5 and 10 dB");
    Ok(())
}

fn write_pairs(
    dir: &Path,
    count: usize,
    rng: &mut SplitMix64,
    mut draw: impl FnMut(&mut SplitMix64, usize) -> Mixture,
) -> Result<()> {
    for sub in ["clean", "noisy"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
            AudioError::Config(format!("{}: cannot create: {e}", dir.join(sub).display()))
        })?;
    }
    let mut table = String::from("file\tsnr_db\tkind\tnoise\n");
    for i in 0..count {
        let m = draw(rng, i);
        let name = format!("{i:04}.wav");
        write_wav(&dir.join("clean").join(&name), SAMPLE_RATE, &m.clean)?;
        write_wav(&dir.join("noisy").join(&name), SAMPLE_RATE, &m.noisy)?;
        table.push_str(&format!(
            "{name}\t{:.2}\t{}\t{}\n",
            m.snr_db,
            m.kind.name(),
            m.noise
        ));
    }
    attnkit_formats::write_atomically(&dir.join("mixtures.tsv"), table.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(name: &str, n: usize, f: f32) -> Clip {
        Clip {
            name: name.into(),
            samples: (0..n).map(|i| (i as f32 * f).sin() * 0.3).collect(),
        }
    }

    #[test]
    fn sampled_mixtures_have_their_snr_level_and_length() {
        let speech = vec![clip("a/1.wav", 8000, 0.03), clip("a/2.wav", 12000, 0.05)];
        let noise = vec![clip("n/1.wav", 3000, 0.7)];
        let sampler = MixtureSampler {
            speech: &speech,
            noise: &noise,
            snr_db: (-5.0, 15.0),
            babble: 0.3,
            synthetic: 0.3,
            level_db: (-30.0, -20.0),
            augment: 0.3,
        };
        let mut rng = SplitMix64::new(1);
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..40 {
            let m = sampler.sample(32_000, &mut rng);
            assert_eq!((m.noisy.len(), m.clean.len()), (32_000, 32_000));
            let residual: Vec<f32> = m.noisy.iter().zip(&m.clean).map(|(a, b)| a - b).collect();
            let snr = 10.0 * (power(&m.clean) / power(&residual)).log10();
            assert!((snr - m.snr_db).abs() < 1e-3, "{snr} vs {}", m.snr_db);
            let level = 10.0 * power(&m.noisy).log10();
            assert!(level < -19.9, "{level}");
            kinds.insert(m.kind);
        }
        assert_eq!(kinds.len(), 3);
    }

    #[test]
    fn silence_is_trimmed_at_both_ends() {
        let mut x = vec![0.0f32; 1600];
        x.extend((0..3200).map(|i| (i as f32 * 0.1).sin()));
        x.extend(vec![1e-5f32; 1600]);
        let t = trim_silence(&x, 50.0);
        assert_eq!(t.len(), 3200);
    }

    #[test]
    fn pairs_match_by_name_and_refuse_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let (clean, noisy) = (dir.path().join("clean"), dir.path().join("noisy"));
        std::fs::create_dir_all(&clean).unwrap();
        std::fs::create_dir_all(&noisy).unwrap();
        write_wav(&clean.join("p1.wav"), 16_000, &[0.1; 500]).unwrap();
        write_wav(&noisy.join("p1.wav"), 16_000, &[0.2; 500]).unwrap();
        let pairs = load_pairs(&clean, &noisy).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].name, "p1.wav");
        write_wav(&noisy.join("p2.wav"), 16_000, &[0.2; 500]).unwrap();
        let err = load_pairs(&clean, &noisy).unwrap_err().to_string();
        assert!(
            err.contains("p2.wav") && err.contains("no clean file"),
            "{err}"
        );
        write_wav(&clean.join("p2.wav"), 16_000, &[0.2; 400]).unwrap();
        let err = load_pairs(&clean, &noisy).unwrap_err().to_string();
        assert!(
            err.contains("500 samples") && err.contains("has 400"),
            "{err}"
        );
    }
}
