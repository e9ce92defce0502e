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

/// Multiplies the spectrum of `x` by `gain(frequency in Hz)` (one FFT of the whole
/// signal; the DC and Nyquist bins too).
pub fn filter(x: &mut [f32], sample_rate: f64, gain: impl Fn(f64) -> f64) {
    let n = x.len();
    if n < 2 {
        return;
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let inverse = planner.plan_fft_inverse(n);
    let mut buf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut spectrum = vec![Complex::new(0.0, 0.0); n / 2 + 1];
    forward
        .process(&mut buf, &mut spectrum)
        .expect("lengths match the plan");
    for (k, c) in spectrum.iter_mut().enumerate() {
        *c *= gain(k as f64 * sample_rate / n as f64);
    }
    spectrum[0].im = 0.0;
    if n.is_multiple_of(2) {
        let last = spectrum.len() - 1;
        spectrum[last].im = 0.0;
    }
    inverse
        .process(&mut spectrum, &mut buf)
        .expect("lengths match the plan");
    for (v, b) in x.iter_mut().zip(&buf) {
        *v = (*b / n as f64) as f32;
    }
}

/// A random equaliser: 1 to 4 bell-shaped boosts or cuts of up to ±12 dB at random
/// frequencies (50 Hz to 7 kHz, one octave wide or so) and a tilt of ±6 dB per decade.
pub fn random_equalizer(rng: &mut SplitMix64) -> impl Fn(f64) -> f64 + use<> {
    let bells: Vec<(f64, f64, f64)> = (0..1 + rng.below(4))
        .map(|_| {
            (
                rng.uniform(50f64.ln(), 7000f64.ln()),
                rng.uniform(-12.0, 12.0),
                rng.uniform(0.3, 1.0),
            )
        })
        .collect();
    let tilt = rng.uniform(-6.0, 6.0);
    move |f: f64| {
        let lf = f.max(20.0).ln();
        let db: f64 = bells
            .iter()
            .map(|&(c, g, w)| g * (-(lf - c).powi(2) / (2.0 * w * w)).exp())
            .sum::<f64>()
            + tilt * (f.max(20.0) / 1000.0).log10();
        10f64.powf(db / 20.0)
    }
}

/// Tonal noise: a hum (a fundamental of 50–400 Hz with a few harmonics) or 1–5 free
/// tones (100 Hz – 7 kHz), gated on and off as beeps half of the time. Unit RMS.
pub fn tonal(len: usize, sample_rate: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let mut tones: Vec<(f64, f64, f64)> = Vec::new();
    if rng.next_f64() < 0.5 {
        let f0 = rng.uniform(50.0, 400.0);
        for k in 1..=(2 + rng.below(6)) {
            tones.push((f0 * k as f64, rng.uniform(0.1, 1.0), rng.uniform(0.0, 6.3)));
        }
    } else {
        for _ in 0..1 + rng.below(5) {
            tones.push((
                rng.uniform(100.0, 7000.0),
                rng.uniform(0.2, 1.0),
                rng.uniform(0.0, 6.3),
            ));
        }
    }
    let gated = rng.next_f64() < 0.5;
    let (period, duty) = (rng.uniform(0.1, 1.5), rng.uniform(0.2, 0.8));
    let mut x: Vec<f32> = (0..len)
        .map(|n| {
            let t = n as f64 / sample_rate;
            if gated && (t / period).fract() > duty {
                return 0.0;
            }
            tones
                .iter()
                .map(|&(f, a, p)| a * (2.0 * std::f64::consts::PI * f * t + p).sin())
                .sum::<f64>() as f32
        })
        .collect();
    normalize(&mut x);
    x
}

/// Impulsive noise: bursts of coloured noise (knocks, clicks, clatter) with
/// exponential decays of 2–80 ms at random times, 1–10 per second. Unit RMS.
pub fn impulsive(len: usize, sample_rate: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let rate = rng.uniform(1.0, 10.0);
    let source = coloured(len, rng.uniform(0.0, 1.5), rng);
    let mut envelope = vec![0.0f32; len];
    let mut t = 0usize;
    loop {
        t += (-(1.0 - rng.next_f64()).ln() / rate * sample_rate) as usize;
        if t >= len {
            break;
        }
        let decay = rng.uniform(0.002, 0.08) * sample_rate;
        let amp = rng.uniform(0.2, 1.0) as f32;
        for (i, e) in envelope[t..]
            .iter_mut()
            .enumerate()
            .take((6.0 * decay) as usize)
        {
            *e += amp * (-(i as f64) / decay).exp() as f32;
        }
    }
    let mut x: Vec<f32> = source.iter().zip(&envelope).map(|(s, e)| s * e).collect();
    normalize(&mut x);
    x
}

/// Scales `x` to unit RMS (silence stays silent).
fn normalize(x: &mut [f32]) {
    let p = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    if p > 0.0 {
        let g = (1.0 / p.sqrt()) as f32;
        x.iter_mut().for_each(|v| *v *= g);
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
    fn filters_shape_the_spectrum_as_asked() {
        let mut rng = SplitMix64::new(8);
        let mut x = coloured(1 << 14, 0.0, &mut rng);
        let before_low = band_power(&x, 256);
        let before_high = band_power(&x, 2048);
        // Cut everything above 4 kHz (bin 4096 of 16384 points at 16 kHz).
        filter(&mut x, 16_000.0, |f| if f < 4_000.0 { 1.0 } else { 0.0 });
        assert!((band_power(&x, 256) / before_low - 1.0).abs() < 1e-9);
        // Bins 2048..4096 are 2–4 kHz (kept); above 4 kHz nothing is left but rounding.
        assert!((band_power(&x, 2048) / before_high - 1.0).abs() < 1e-3);
        let high: f64 = {
            let mut planner = RealFftPlanner::<f64>::new();
            let f = planner.plan_fft_forward(x.len());
            let mut buf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut s = vec![Complex::new(0.0, 0.0); x.len() / 2 + 1];
            f.process(&mut buf, &mut s).unwrap();
            s[4100..].iter().map(|c| c.norm_sqr()).sum()
        };
        assert!(high < 1e-6 * before_high, "{high}");
        for f in [
            tonal(16_000, 16_000.0, &mut rng),
            impulsive(16_000, 16_000.0, &mut rng),
        ] {
            let rms = (f.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / f.len() as f64).sqrt();
            assert!((rms - 1.0).abs() < 1e-5 || rms == 0.0, "{rms}");
        }
        let eq = random_equalizer(&mut rng);
        assert!((0.05..20.0).contains(&eq(1000.0)));
    }

    #[test]
    fn modulation_follows_the_envelope() {
        let mut x = vec![1.0f32; 16_000];
        modulate(&mut x, 0.5, 2.0, 0.0, 16_000.0);
        assert!((x[2000] - 1.5).abs() < 1e-5);
        assert!((x[6000] - 0.5).abs() < 1e-5);
    }
}
