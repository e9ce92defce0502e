//! The short-time Fourier transform with perfect reconstruction, whole-signal and as a
//! fixed-buffer stream.
//!
//! Frames of `frame` samples every `hop = frame / 2` samples, each multiplied by the
//! periodic sqrt-Hann window w(n) = sin(πn/frame) before the real FFT and again after
//! the inverse; since w²(n) + w²(n + hop) = 1, overlap-adding the windowed inverse
//! frames gives the signal back exactly (up to f32 rounding). At 16 kHz,
//! [`Stft::speech`] is 20 ms frames every 10 ms: 161 frequency bins of 50 Hz.
//!
//! Alignment. [`Stft::pad`] puts `hop` zeros before the signal and enough after it that
//! frames 0..=B (B = ⌈len / hop⌉ blocks of `hop` samples) cover it; block j of the
//! signal is the overlap of frames j and j + 1, so [`Stft::unpad`] of the overlap-add
//! is sample-aligned with the input. [`StreamingStft`] does the same with one block in
//! and one block out per frame: the output lags the input by one block (10 ms; the
//! algorithmic delay is the 20 ms frame), and one block of zeros pushed after the last
//! flushes it, so a stream's samples equal the whole-signal form's.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::error::{AudioError, Result};

/// Complex spectra of consecutive frames, row-major `[frames, bins]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    /// Frames.
    pub frames: usize,
    /// Bins per frame: frame / 2 + 1.
    pub bins: usize,
    /// Real parts, `[frames, bins]`.
    pub re: Vec<f32>,
    /// Imaginary parts, `[frames, bins]`.
    pub im: Vec<f32>,
}

impl Spectrogram {
    /// |X|² of every bin, `[frames, bins]`.
    pub fn power(&self) -> Vec<f32> {
        self.re
            .iter()
            .zip(&self.im)
            .map(|(r, i)| r * r + i * i)
            .collect()
    }
}

/// A sqrt-Hann STFT at 50% overlap (see the module docs).
#[derive(Clone)]
pub struct Stft {
    frame: usize,
    hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("frame", &self.frame)
            .field("hop", &self.hop)
            .finish()
    }
}

impl Stft {
    /// 20 ms frames every 10 ms at 16 kHz: frame 320, hop 160, 161 bins.
    pub fn speech() -> Self {
        Self::new(320).expect("320 is even")
    }

    /// Frames of `frame` samples (even, at least 2) every `frame / 2`.
    ///
    /// # Errors
    ///
    /// [`AudioError::Config`] if `frame` is odd or below 2.
    pub fn new(frame: usize) -> Result<Self> {
        if frame < 2 || !frame.is_multiple_of(2) {
            return Err(AudioError::Config(format!(
                "the STFT frame must be even and at least 2 samples, got {frame}"
            )));
        }
        let window = (0..frame)
            .map(|n| (std::f64::consts::PI * n as f64 / frame as f64).sin() as f32)
            .collect();
        let mut planner = RealFftPlanner::<f32>::new();
        Ok(Self {
            frame,
            hop: frame / 2,
            window,
            forward: planner.plan_fft_forward(frame),
            inverse: planner.plan_fft_inverse(frame),
        })
    }

    /// Samples per frame.
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// Samples between frames (and per streamed block).
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Frequency bins per frame, frame / 2 + 1.
    pub fn bins(&self) -> usize {
        self.frame / 2 + 1
    }

    /// The analysis (and synthesis) window.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// Frames [`pad`](Self::pad) gives a signal of `len` samples: ⌈len / hop⌉ + 1.
    pub fn frames_for(&self, len: usize) -> usize {
        len.div_ceil(self.hop) + 1
    }

    /// `hop` zeros, the signal, then zeros up to `hop · (frames_for(len) + 1)` samples.
    pub fn pad(&self, signal: &[f32]) -> Vec<f32> {
        let total = self.hop * (self.frames_for(signal.len()) + 1);
        let mut padded = vec![0.0; total];
        padded[self.hop..self.hop + signal.len()].copy_from_slice(signal);
        padded
    }

    /// The `len` samples of an overlap-add that line up with the signal [`pad`](Self::pad)
    /// was given.
    pub fn unpad(&self, overlap_added: &[f32], len: usize) -> Vec<f32> {
        overlap_added[self.hop..self.hop + len].to_vec()
    }

    /// Windowed spectrum of one frame into `out` (`bins` numbers); `buf` (`frame`
    /// samples) is overwritten.
    fn analyze_frame(&self, buf: &mut [f32], out: &mut [Complex<f32>]) {
        for (x, w) in buf.iter_mut().zip(&self.window) {
            *x *= w;
        }
        self.forward
            .process(buf, out)
            .expect("buffer lengths match the plan");
    }

    /// Windowed inverse of one spectrum into `out` (`frame` samples); `spectrum` is
    /// overwritten. The imaginary parts of the DC and Nyquist bins are ignored.
    fn synthesize_frame(&self, spectrum: &mut [Complex<f32>], out: &mut [f32]) {
        let last = spectrum.len() - 1;
        spectrum[0].im = 0.0;
        spectrum[last].im = 0.0;
        self.inverse
            .process(spectrum, out)
            .expect("buffer lengths match the plan");
        let scale = 1.0 / self.frame as f32;
        for (x, w) in out.iter_mut().zip(&self.window) {
            *x *= w * scale;
        }
    }

    /// Spectra of the frames at 0, hop, 2·hop, … that fit in `signal`
    /// (⌊(len − frame) / hop⌋ + 1 of them; none if the signal is shorter than a frame).
    pub fn analyze(&self, signal: &[f32]) -> Spectrogram {
        let bins = self.bins();
        let frames = if signal.len() < self.frame {
            0
        } else {
            (signal.len() - self.frame) / self.hop + 1
        };
        let mut re = Vec::with_capacity(frames * bins);
        let mut im = Vec::with_capacity(frames * bins);
        let mut buf = vec![0.0; self.frame];
        let mut spectrum = vec![Complex::new(0.0, 0.0); bins];
        for t in 0..frames {
            buf.copy_from_slice(&signal[t * self.hop..t * self.hop + self.frame]);
            self.analyze_frame(&mut buf, &mut spectrum);
            re.extend(spectrum.iter().map(|c| c.re));
            im.extend(spectrum.iter().map(|c| c.im));
        }
        Spectrogram {
            frames,
            bins,
            re,
            im,
        }
    }

    /// Overlap-add of the windowed inverse frames: `hop · (frames + 1)` samples.
    ///
    /// # Errors
    ///
    /// [`AudioError::Shape`] if the spectrogram's bins are not this transform's.
    pub fn synthesize(&self, spec: &Spectrogram) -> Result<Vec<f32>> {
        let bins = self.bins();
        if spec.bins != bins
            || spec.re.len() != spec.frames * bins
            || spec.im.len() != spec.re.len()
        {
            return Err(AudioError::Shape {
                what: "spectrogram".into(),
                expected: format!("{bins} bins, re and im of frames × bins"),
                got: format!(
                    "{} bins, {} frames, re {} and im {} numbers",
                    spec.bins,
                    spec.frames,
                    spec.re.len(),
                    spec.im.len()
                ),
            });
        }
        let mut out = vec![0.0; self.hop * (spec.frames + 1)];
        let mut spectrum = vec![Complex::new(0.0, 0.0); bins];
        let mut frame = vec![0.0; self.frame];
        for t in 0..spec.frames {
            for (k, c) in spectrum.iter_mut().enumerate() {
                *c = Complex::new(spec.re[t * bins + k], spec.im[t * bins + k]);
            }
            self.synthesize_frame(&mut spectrum, &mut frame);
            for (o, x) in out[t * self.hop..t * self.hop + self.frame]
                .iter_mut()
                .zip(&frame)
            {
                *o += x;
            }
        }
        Ok(out)
    }

    /// `signal` through [`pad`](Self::pad), [`analyze`](Self::analyze),
    /// [`synthesize`](Self::synthesize) and [`unpad`](Self::unpad): the signal again, up
    /// to rounding.
    ///
    /// # Errors
    ///
    /// None in practice (the spectrogram is this transform's own).
    pub fn reconstruct(&self, signal: &[f32]) -> Result<Vec<f32>> {
        let spec = self.analyze(&self.pad(signal));
        Ok(self.unpad(&self.synthesize(&spec)?, signal.len()))
    }

    /// The inverse transform as two matrices `[bins, frame]`, window and 1/frame folded
    /// in: synthesized frame n = Σ_k re_k · cos[k, n] + im_k · sin[k, n]. For computing
    /// the inverse as a matrix product (in a training graph).
    pub fn synthesis_basis(&self) -> (Vec<f32>, Vec<f32>) {
        let (bins, n) = (self.bins(), self.frame);
        let mut cos = vec![0.0; bins * n];
        let mut sin = vec![0.0; bins * n];
        for k in 0..bins {
            let weight = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
            for t in 0..n {
                let phase = 2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                let w = self.window[t] as f64 * weight / n as f64;
                cos[k * n + t] = (w * phase.cos()) as f32;
                // The Nyquist bin's sine is zero at every sample (its imaginary part is
                // ignored); the DC bin's too.
                sin[k * n + t] = if k == 0 || k == bins - 1 {
                    0.0
                } else {
                    (-w * phase.sin()) as f32
                };
            }
        }
        (cos, sin)
    }
}

/// The STFT as a stream: blocks of `hop` samples in, the spectrum of the newest frame
/// to modify, blocks of `hop` samples out — all in buffers allocated once.
///
/// ```
/// use attnkit_audio::stft::{Stft, StreamingStft};
/// let mut stream = StreamingStft::new(Stft::speech());
/// let block = [0.1f32; 160];
/// stream.push(&block).unwrap();
/// // …modify stream.spectrum_mut() here (a mask)…
/// let first = stream.pull().to_vec(); // the padding before the signal: discard
/// stream.push(&block).unwrap();
/// let out = stream.pull(); // the first block, reconstructed
/// assert!((out[100] - 0.1).abs() < 1e-6);
/// # let _ = first;
/// ```
#[derive(Debug, Clone)]
pub struct StreamingStft {
    stft: Stft,
    input: Vec<f32>,
    scratch: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    frame: Vec<f32>,
    tail: Vec<f32>,
    out: Vec<f32>,
}

impl StreamingStft {
    /// A stream starting from silence (the `hop` zeros [`Stft::pad`] puts first).
    pub fn new(stft: Stft) -> Self {
        let (n, hop, bins) = (stft.frame(), stft.hop(), stft.bins());
        Self {
            stft,
            input: vec![0.0; n],
            scratch: vec![0.0; n],
            spectrum: vec![Complex::new(0.0, 0.0); bins],
            frame: vec![0.0; n],
            tail: vec![0.0; hop],
            out: vec![0.0; hop],
        }
    }

    /// The transform.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Takes the next block of `hop` samples and computes the spectrum of the frame
    /// that ends with it.
    ///
    /// # Errors
    ///
    /// [`AudioError::Shape`] if `block` does not hold `hop` samples.
    pub fn push(&mut self, block: &[f32]) -> Result<&mut [Complex<f32>]> {
        let hop = self.stft.hop();
        if block.len() != hop {
            return Err(AudioError::Shape {
                what: "block".into(),
                expected: format!("{hop} samples"),
                got: format!("{} samples", block.len()),
            });
        }
        self.input.copy_within(hop.., 0);
        self.input[hop..].copy_from_slice(block);
        self.scratch.copy_from_slice(&self.input);
        self.stft
            .analyze_frame(&mut self.scratch, &mut self.spectrum);
        Ok(&mut self.spectrum)
    }

    /// The newest frame's spectrum, as [`push`](Self::push) left it or as modified since.
    pub fn spectrum_mut(&mut self) -> &mut [Complex<f32>] {
        &mut self.spectrum
    }

    /// Synthesizes the (modified) newest frame and returns the block it completes: the
    /// block pushed before the newest one (after the first push, the padding).
    pub fn pull(&mut self) -> &[f32] {
        self.stft
            .synthesize_frame(&mut self.spectrum, &mut self.frame);
        let hop = self.stft.hop();
        for i in 0..hop {
            self.out[i] = self.tail[i] + self.frame[i];
        }
        self.tail.copy_from_slice(&self.frame[hop..]);
        &self.out
    }

    /// Bytes of state held between blocks (the input frame, the overlap tail, the
    /// spectrum and the scratch buffers): constant.
    pub fn state_bytes(&self) -> usize {
        4 * (self.input.len()
            + self.scratch.len()
            + self.frame.len()
            + self.tail.len()
            + self.out.len())
            + 8 * self.spectrum.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::rng::SplitMix64;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect()
    }

    #[test]
    fn reconstruction_is_perfect_for_any_length() {
        let stft = Stft::speech();
        for n in [1, 159, 160, 161, 320, 1000, 16_000] {
            let x = noise(n, n as u64);
            let y = stft.reconstruct(&x).unwrap();
            assert_eq!(y.len(), n);
            let worst = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            // f32 FFTs of 320 points: rounding near 1e-7 per sample.
            assert!(worst < 2e-6, "n = {n}: worst {worst}");
        }
    }

    #[test]
    fn window_squares_sum_to_one_at_half_overlap() {
        let stft = Stft::new(64).unwrap();
        let w = stft.window();
        for n in 0..32 {
            assert!((w[n] * w[n] + w[n + 32] * w[n + 32] - 1.0).abs() < 1e-6);
        }
        assert!(Stft::new(63).is_err());
    }

    #[test]
    fn spectrum_of_a_bin_centred_tone_is_one_line() {
        let stft = Stft::speech();
        // 1 kHz at 16 kHz is bin 20 of 320 points.
        let x: Vec<f32> = (0..320)
            .map(|n| (2.0 * std::f32::consts::PI * 20.0 * n as f32 / 320.0).cos())
            .collect();
        let spec = stft.analyze(&x);
        let p = spec.power();
        let peak = (0..161).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(peak, 20);
        // The sine (sqrt-Hann) window: sidelobes from -23 dB, so beyond ±3 bins lies about
        // 0.1% of the power.
        let far: f32 = p
            .iter()
            .enumerate()
            .filter(|(k, _)| k.abs_diff(20) > 3)
            .map(|(_, v)| v)
            .sum();
        assert!(far < 3e-3 * p[20], "leakage {far} vs {}", p[20]);
    }

    #[test]
    fn synthesis_basis_is_the_inverse_transform() {
        let stft = Stft::speech();
        let x = noise(320, 7);
        let spec = stft.analyze(&x);
        let (cos, sin) = stft.synthesis_basis();
        let mut by_fft: Vec<Complex<f32>> = (0..161)
            .map(|k| Complex::new(spec.re[k], spec.im[k]))
            .collect();
        let mut frame = vec![0.0; 320];
        stft.synthesize_frame(&mut by_fft, &mut frame);
        for n in 0..320 {
            let by_matrix: f64 = (0..161)
                .map(|k| {
                    spec.re[k] as f64 * cos[k * 320 + n] as f64
                        + spec.im[k] as f64 * sin[k * 320 + n] as f64
                })
                .sum();
            assert!(
                (by_matrix - frame[n] as f64).abs() < 1e-5,
                "n {n}: {by_matrix} vs {}",
                frame[n]
            );
        }
    }

    #[test]
    fn stream_equals_the_whole_signal_form_with_a_mask() {
        let stft = Stft::speech();
        let x = noise(4_321, 3);
        // A fixed mask per bin, applied in both forms.
        let mask: Vec<f32> = (0..161).map(|k| 0.2 + 0.8 * (k as f32 / 160.0)).collect();
        let mut spec = stft.analyze(&stft.pad(&x));
        for t in 0..spec.frames {
            for (k, m) in mask.iter().enumerate() {
                spec.re[t * 161 + k] *= m;
                spec.im[t * 161 + k] *= m;
            }
        }
        let whole = stft.unpad(&stft.synthesize(&spec).unwrap(), x.len());
        let mut stream = StreamingStft::new(stft.clone());
        let bytes = stream.state_bytes();
        let mut streamed = Vec::new();
        let blocks = x.len().div_ceil(160);
        for j in 0..=blocks {
            let mut block = [0.0f32; 160];
            for (i, b) in block.iter_mut().enumerate() {
                *b = x.get(j * 160 + i).copied().unwrap_or(0.0);
            }
            for (c, m) in stream.push(&block).unwrap().iter_mut().zip(&mask) {
                *c *= *m;
            }
            let out = stream.pull();
            if j > 0 {
                streamed.extend_from_slice(out);
            }
        }
        streamed.truncate(x.len());
        assert_eq!(streamed, whole);
        assert_eq!(stream.state_bytes(), bytes);
        assert!(stream.push(&[0.0; 10]).is_err());
    }
}
