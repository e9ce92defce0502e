//! Synthetic noise: coloured (power spectral density ∝ 1/f^β) and amplitude-modulated,
//! from a seeded generator.

use attnkit_kernels::rng::SplitMix64;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// `len` samples of noise with power spectral density ∝ 1/f^β (β = 0 white, 1 pink,
/// 2 brown), zero mean, unit RMS: Gaussian white noise shaped in the frequency domain.
pub fn coloured(len: usize, beta: f64, rng: &mut SplitMix64) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    let n = len.next_power_of_two().max(2);
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let inverse = planner.plan_fft_inverse(n);
    let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mut spectrum = vec![Complex::new(0.0, 0.0); n / 2 + 1];
    forward
        .process(&mut x, &mut spectrum)
        .expect("lengths match the plan");
    spectrum[0] = Complex::new(0.0, 0.0);
    for (k, c) in spectrum.iter_mut().enumerate().skip(1) {
        *c *= (k as f64).powf(-beta / 2.0);
    }
    let last = spectrum.len() - 1;
    spectrum[last].im = 0.0;
    inverse
        .process(&mut spectrum, &mut x)
        .expect("lengths match the plan");
    let x = &x[..len];
    let mean = x.iter().sum::<f64>() / len as f64;
    let rms = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len as f64).sqrt();
    let rms = if rms > 0.0 { rms } else { 1.0 };
    x.iter().map(|v| ((v - mean) / rms) as f32).collect()
}

/// Multiplies `x` by 1 + depth·sin(2π·rate·n/sample_rate + phase): a tremolo of
/// `depth` in [0, 1] at `rate` Hz (traffic passing, a fan's beat).
pub fn modulate(x: &mut [f32], depth: f64, rate: f64, phase: f64, sample_rate: f64) {
    for (n, v) in x.iter_mut().enumerate() {
        let g = 1.0
            + depth * (2.0 * std::f64::consts::PI * rate * n as f64 / sample_rate + phase).sin();
        *v *= g as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean power in octave [lo, 2·lo) of bins of an n-point spectrum.
    fn band_power(x: &[f32], lo: usize) -> f64 {
        let n = x.len();
        let mut planner = RealFftPlanner::<f64>::new();
        let f = planner.plan_fft_forward(n);
        let mut buf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut s = vec![Complex::new(0.0, 0.0); n / 2 + 1];
        f.process(&mut buf, &mut s).unwrap();
        s[lo..2 * lo].iter().map(|c| c.norm_sqr()).sum::<f64>() / lo as f64
    }

    #[test]
    fn pink_noise_loses_3_db_per_octave_and_brown_6() {
        let mut rng = SplitMix64::new(5);
        for (beta, db_per_octave) in [(0.0, 0.0), (1.0, -3.01), (2.0, -6.02)] {
            let x = coloured(1 << 16, beta, &mut rng);
            let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
            assert!((rms - 1.0).abs() < 1e-6);
            let slope = 10.0 * (band_power(&x, 2048) / band_power(&x, 256)).log10() / 3.0;
            // Averaged over hundreds of bins: within 0.5 dB per octave.
            assert!(
                (slope - db_per_octave).abs() < 0.5,
                "β {beta}: {slope} dB/octave"
            );
        }
    }

    #[test]
    fn modulation_follows_the_envelope() {
        let mut x = vec![1.0f32; 16_000];
        modulate(&mut x, 0.5, 2.0, 0.0, 16_000.0);
        assert!((x[2000] - 1.5).abs() < 1e-5);
        assert!((x[6000] - 0.5).abs() < 1e-5);
    }
}
