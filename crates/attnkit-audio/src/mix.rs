//! Mixing speech and noise at a chosen signal-to-noise ratio.

/// Mean power of `x` (0 for an empty slice).
pub fn power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64
}

/// The gain that puts `noise` at `snr_db` below `speech` (by mean power over the
/// whole clips); 0 for silent noise.
pub fn noise_gain(speech: &[f32], noise: &[f32], snr_db: f64) -> f64 {
    let (ps, pn) = (power(speech), power(noise));
    if pn == 0.0 {
        return 0.0;
    }
    (ps / (pn * 10f64.powf(snr_db / 10.0))).sqrt()
}

/// `speech + g · noise` with g from [`noise_gain`] (noise cycled if shorter), then
/// both the mixture and the speech scaled by one factor so the mixture peaks at
/// `peak` at most. Returns (mixture, clean speech as scaled).
pub fn mix_at_snr(speech: &[f32], noise: &[f32], snr_db: f64, peak: f32) -> (Vec<f32>, Vec<f32>) {
    let n = speech.len();
    let cycled: Vec<f32> = if noise.is_empty() {
        vec![0.0; n]
    } else {
        (0..n).map(|i| noise[i % noise.len()]).collect()
    };
    let g = noise_gain(speech, &cycled, snr_db) as f32;
    let mut mixture: Vec<f32> = speech.iter().zip(&cycled).map(|(s, v)| s + g * v).collect();
    let top = mixture.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if top > peak { peak / top } else { 1.0 };
    mixture.iter_mut().for_each(|v| *v *= scale);
    let clean = speech.iter().map(|s| s * scale).collect();
    (mixture, clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixture_has_the_requested_snr() {
        let speech: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.01).sin() * 0.3).collect();
        let noise: Vec<f32> = (0..3000)
            .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
            .collect();
        for snr in [-5.0, 0.0, 10.0] {
            let (mix, clean) = mix_at_snr(&speech, &noise, snr, 0.99);
            let residual: Vec<f32> = mix.iter().zip(&clean).map(|(m, c)| m - c).collect();
            let got = 10.0 * (power(&clean) / power(&residual)).log10();
            assert!((got - snr).abs() < 1e-3, "{got} vs {snr}");
            assert!(mix.iter().all(|v| v.abs() <= 0.99 + 1e-6));
        }
    }
}
