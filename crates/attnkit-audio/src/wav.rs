//! WAV files: reading mono PCM of any common sample format as `f32` in [−1, 1], and
//! writing 16-bit PCM through a temporary file (a failed write leaves nothing behind).

use std::io::Cursor;
use std::path::Path;

use crate::error::{AudioError, Result};

/// Mono audio: samples in [−1, 1] at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

fn wav_error(path: &Path, why: impl Into<String>) -> AudioError {
    AudioError::Wav {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Reads a mono WAV file: integer PCM of 8, 16, 24 or 32 bits, or 32-bit float.
///
/// # Errors
///
/// [`AudioError::Wav`] naming the file when it cannot be opened, is not a WAV file,
/// has more than one channel, has another sample format, holds no samples, or ends
/// before the length its header gives (truncated).
pub fn read_wav(path: &Path) -> Result<Audio> {
    let bytes = std::fs::read(path).map_err(|e| wav_error(path, format!("cannot read: {e}")))?;
    read_wav_bytes(&bytes, path)
}

/// [`read_wav`] of bytes already in memory; `path` names them in errors.
///
/// # Errors
///
/// As [`read_wav`].
pub fn read_wav_bytes(bytes: &[u8], path: &Path) -> Result<Audio> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| {
        wav_error(
            path,
            match e {
                hound::Error::FormatError(why) => format!("not a WAV file ({why})"),
                hound::Error::Unsupported => {
                    "unsupported WAV encoding: expected PCM integer or 32-bit float".into()
                }
                other => format!("not a readable WAV file ({other})"),
            },
        )
    })?;
    let spec = reader.spec();
    if spec.channels != 1 {
        return Err(wav_error(
            path,
            format!(
                "expected 1 channel (mono), got {} channels: mix it down first (for example \
                 `sox in.wav -c 1 out.wav`)",
                spec.channels
            ),
        ));
    }
    if spec.sample_rate == 0 {
        return Err(wav_error(path, "sample rate 0 in the header"));
    }
    let declared = reader.len() as usize;
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| (s as f64 * scale) as f32))
                .collect::<std::result::Result<_, _>>()
        }
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<std::result::Result<_, _>>(),
        (format, bits) => {
            return Err(wav_error(
                path,
                format!(
                    "expected 8/16/24/32-bit integer or 32-bit float samples, got {bits}-bit {}",
                    match format {
                        hound::SampleFormat::Int => "integer",
                        hound::SampleFormat::Float => "float",
                    }
                ),
            ));
        }
    }
    .map_err(|e| match e {
        hound::Error::IoError(_) => wav_error(
            path,
            format!("truncated: the header promises {declared} samples, the file ends before"),
        ),
        other => wav_error(path, format!("bad sample data ({other})")),
    })?;
    if samples.len() < declared {
        return Err(wav_error(
            path,
            format!(
                "truncated: the header promises {declared} samples, the file holds {}",
                samples.len()
            ),
        ));
    }
    if samples.is_empty() {
        return Err(wav_error(path, "empty: no samples"));
    }
    Ok(Audio {
        rate: spec.sample_rate,
        samples,
    })
}

/// `x` in [−1, 1] as a 16-bit sample: scaled by 32768, rounded to nearest, clipped.
pub fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// 16-bit samples as `f32` in [−1, 1).
pub fn from_i16(x: i16) -> f32 {
    x as f32 / 32768.0
}

/// The bytes of a mono 16-bit PCM WAV file of `samples` at `rate` Hz ([`to_i16`]).
///
/// # Errors
///
/// [`AudioError::Config`] if the samples do not fit a WAV file (over 2^31 bytes).
pub fn wav_bytes(rate: u32, samples: &[f32]) -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    let encode = |e: hound::Error| AudioError::Config(format!("encoding a WAV file: {e}"));
    {
        let mut writer = hound::WavWriter::new(&mut bytes, spec).map_err(encode)?;
        let mut w = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w.write_sample(to_i16(s));
        }
        w.flush().map_err(encode)?;
        writer.finalize().map_err(encode)?;
    }
    Ok(bytes.into_inner())
}

/// Writes `samples` as a mono 16-bit WAV file at `rate` Hz, atomically (temporary file,
/// then rename).
///
/// # Errors
///
/// [`AudioError::File`] naming the file the system refused.
pub fn write_wav(path: &Path, rate: u32, samples: &[f32]) -> Result<()> {
    let bytes = wav_bytes(rate, samples)?;
    attnkit_formats::write_atomically(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_of(spec: hound::WavSpec, n: usize) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
            for i in 0..n * spec.channels as usize {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(i as f32 / 1000.0).unwrap(),
                    hound::SampleFormat::Int => w.write_sample(i as i32).unwrap(),
                }
            }
            w.finalize().unwrap();
        }
        bytes.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 16_000,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn round_trip_is_exact_for_16_bit_samples() {
        let samples: Vec<f32> = (-300..300).map(|i| from_i16(i * 97)).collect();
        let bytes = wav_bytes(16_000, &samples).unwrap();
        let back = read_wav_bytes(&bytes, Path::new("x.wav")).unwrap();
        assert_eq!(back.rate, 16_000);
        assert_eq!(back.samples, samples);
    }

    #[test]
    fn integer_and_float_formats_scale_to_unit_range() {
        let p = Path::new("a.wav");
        let a = read_wav_bytes(&wav_of(spec(1, 24, hound::SampleFormat::Int), 10), p).unwrap();
        assert_eq!(a.samples[3], 3.0 / 8_388_608.0);
        let f = read_wav_bytes(&wav_of(spec(1, 32, hound::SampleFormat::Float), 10), p).unwrap();
        assert_eq!(f.samples[3], 0.003);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let p = Path::new("bad.wav");
        let msg = |b: &[u8]| read_wav_bytes(b, p).unwrap_err().to_string();
        assert!(msg(b"hello, this is text").starts_with("bad.wav: not a WAV file"));
        let stereo = wav_of(spec(2, 16, hound::SampleFormat::Int), 10);
        assert!(msg(&stereo).contains("expected 1 channel (mono), got 2 channels"));
        let empty = wav_of(spec(1, 16, hound::SampleFormat::Int), 0);
        assert_eq!(msg(&empty), "bad.wav: empty: no samples");
        let full = wav_of(spec(1, 16, hound::SampleFormat::Int), 100);
        let cut = &full[..full.len() - 51];
        assert!(msg(cut).contains("truncated"), "{}", msg(cut));
    }

    #[test]
    fn write_wav_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        write_wav(&path, 16_000, &[0.0, 0.5, -0.5, 1.5]).unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.samples, vec![0.0, 0.5, -0.5, 32767.0 / 32768.0]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/out.wav");
        assert!(write_wav(&missing, 16_000, &[0.0]).is_err());
        assert!(!missing.exists());
    }
}
