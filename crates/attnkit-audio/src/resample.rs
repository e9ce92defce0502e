//! Resampling a whole clip to another rate with rubato's synchronous FFT resampler
//! (fixed ratio, anti-aliased), its start-up delay trimmed so that sample n of the
//! output lies at time n / rate_out like sample n·rate_in/rate_out of the input.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::{AudioError, Result};

/// `samples` at `rate_in` Hz resampled to `rate_out` Hz (returned unchanged when the
/// rates are equal). The output holds ⌈len · rate_out / rate_in⌉ samples.
///
/// # Errors
///
/// [`AudioError::Config`] if a rate is 0 or rubato refuses the ratio.
pub fn resample(samples: &[f32], rate_in: u32, rate_out: u32) -> Result<Vec<f32>> {
    if rate_in == 0 || rate_out == 0 {
        return Err(AudioError::Config(format!(
            "sample rates must be positive, got {rate_in} Hz to {rate_out} Hz"
        )));
    }
    if rate_in == rate_out || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let config =
        |e: String| AudioError::Config(format!("resampling {rate_in} Hz to {rate_out} Hz: {e}"));
    let mut resampler = Fft::<f32>::new(
        rate_in as usize,
        rate_out as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| config(e.to_string()))?;
    let input =
        InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| config(e.to_string()))?;
    let out = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| config(e.to_string()))?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<f32> {
        let n = (rate as f64 * seconds) as usize;
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_amplitude_and_length() {
        let w = 2.0 * std::f64::consts::PI * 440.0 / 16_000.0;
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let x = tone(rate, 440.0, 1.0);
            let y = resample(&x, rate, 16_000).unwrap();
            assert_eq!(y.len(), 16_000, "rate {rate}");
            // Fit a·sin + b·cos at 440 Hz away from the clip's edges: amplitude 1, phase
            // within half a sample (rubato trims its delay to whole output samples), and
            // what the fit leaves below 1e-3 (the filter's ripple, f32 FFTs).
            let inner = 800..15_200;
            let n = inner.len() as f64;
            let (mut a, mut b) = (0.0, 0.0);
            for i in inner.clone() {
                a += 2.0 / n * y[i] as f64 * (w * i as f64).sin();
                b += 2.0 / n * y[i] as f64 * (w * i as f64).cos();
            }
            let amplitude = a.hypot(b);
            assert!(
                (amplitude - 1.0).abs() < 2e-3,
                "rate {rate}: amplitude {amplitude}"
            );
            assert!(
                b.atan2(a).abs() < 0.5 * w,
                "rate {rate}: phase {}",
                b.atan2(a)
            );
            let worst = inner
                .map(|i| (y[i] as f64 - a * (w * i as f64).sin() - b * (w * i as f64).cos()).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-3, "rate {rate}: residual {worst}");
        }
    }

    #[test]
    fn tones_above_the_new_nyquist_are_removed() {
        let x = tone(48_000, 11_000.0, 1.0);
        let y = resample(&x, 48_000, 16_000).unwrap();
        let rms = (y[800..15_200].iter().map(|v| v * v).sum::<f32>() / 14_400.0).sqrt();
        assert!(rms < 1e-3, "alias rms {rms}");
    }

    #[test]
    fn zero_rates_are_refused() {
        assert!(resample(&[0.0], 0, 16_000).is_err());
        assert_eq!(resample(&[0.25], 16_000, 16_000).unwrap(), vec![0.25]);
    }
}
