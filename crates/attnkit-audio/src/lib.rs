//! Audio for attnkit's speech enhancement, without Burn.
//!
//! - [`wav`]: reading WAV files (mono; 8/16/24/32-bit integer or 32-bit float PCM) with
//!   one-line errors that name the file, and writing 16-bit files atomically.
//! - [`resample`]: any rate to 16 kHz (rubato's synchronous FFT resampler).
//! - [`stft`]: the short-time Fourier transform — 20 ms sqrt-Hann windows, 10 ms hop at
//!   16 kHz, perfect reconstruction — whole-signal and as a fixed-buffer stream
//!   ([`stft::StreamingStft`]) whose samples equal the whole-signal form's.
//! - [`mix`]: mixing speech and noise at a signal-to-noise ratio; [`noise`]: coloured,
//!   amplitude-modulated synthetic noise.
//! - [`metrics`]: SI-SDR, SNR and PESQ-WB.
//!
//! ```
//! use attnkit_audio::stft::Stft;
//! let stft = Stft::speech();
//! let x: Vec<f32> = (0..1600).map(|n| (n as f32 * 0.05).sin()).collect();
//! let y = stft.reconstruct(&x).unwrap();
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-5));
//! ```

pub mod corpus;
pub mod error;
pub mod metrics;
pub mod mix;
pub mod noise;
pub mod resample;
pub mod stft;
pub mod wav;

pub use error::{AudioError, Result};

/// The sample rate everything in attnkit's speech models runs at.
pub const SAMPLE_RATE: u32 = 16_000;
