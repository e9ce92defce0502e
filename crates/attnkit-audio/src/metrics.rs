//! Scores of an enhanced signal against its clean reference: SI-SDR, SNR and PESQ-WB.

use crate::error::{AudioError, Result};
use crate::wav::to_i16;

fn same_length(estimate: &[f32], reference: &[f32]) -> Result<()> {
    if estimate.len() != reference.len() || reference.is_empty() {
        return Err(AudioError::Shape {
            what: "estimate and reference".into(),
            expected: "the same non-zero number of samples".into(),
            got: format!("{} and {}", estimate.len(), reference.len()),
        });
    }
    Ok(())
}

/// Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019): both
/// signals made zero-mean, the reference scaled by α = ⟨ŝ, s⟩ / ⟨s, s⟩ to best fit the
/// estimate, then 10·log₁₀(‖αs‖² / ‖αs − ŝ‖²). Computed in f64.
///
/// # Errors
///
/// [`AudioError::Shape`] if the lengths differ or are 0; [`AudioError::Config`] if the
/// reference is silent (all samples equal).
pub fn si_sdr(estimate: &[f32], reference: &[f32]) -> Result<f64> {
    same_length(estimate, reference)?;
    let n = reference.len() as f64;
    let me = estimate.iter().map(|&x| x as f64).sum::<f64>() / n;
    let mr = reference.iter().map(|&x| x as f64).sum::<f64>() / n;
    let (mut dot, mut energy) = (0.0, 0.0);
    for (&e, &r) in estimate.iter().zip(reference) {
        let (e, r) = (e as f64 - me, r as f64 - mr);
        dot += e * r;
        energy += r * r;
    }
    if energy == 0.0 {
        return Err(AudioError::Config(
            "SI-SDR of a silent reference is undefined".into(),
        ));
    }
    let alpha = dot / energy;
    let (mut target, mut error) = (0.0, 0.0);
    for (&e, &r) in estimate.iter().zip(reference) {
        let t = alpha * (r as f64 - mr);
        target += t * t;
        let d = t - (e as f64 - me);
        error += d * d;
    }
    Ok(10.0 * (target.max(1e-300) / error.max(1e-300)).log10())
}

/// Signal-to-noise ratio in dB of `estimate` against `reference`: 10·log₁₀(‖s‖² / ‖ŝ − s‖²).
///
/// # Errors
///
/// As [`si_sdr`].
pub fn snr(estimate: &[f32], reference: &[f32]) -> Result<f64> {
    same_length(estimate, reference)?;
    let signal: f64 = reference.iter().map(|&r| (r as f64).powi(2)).sum();
    let noise: f64 = estimate
        .iter()
        .zip(reference)
        .map(|(&e, &r)| (e as f64 - r as f64).powi(2))
        .sum();
    if signal == 0.0 {
        return Err(AudioError::Config(
            "SNR of a silent reference is undefined".into(),
        ));
    }
    Ok(10.0 * (signal / noise.max(1e-300)).log10())
}

/// Wideband PESQ (ITU-T P.862.2, MOS-LQO, about 1.0 to 4.64) of 16 kHz signals, by the
/// pure-Rust `pesq` crate on the signals rounded to 16 bits.
///
/// # Errors
///
/// [`AudioError::Shape`] if the lengths differ; [`AudioError::Config`] if PESQ refuses
/// the pair (too short, silent).
pub fn pesq_wb(estimate: &[f32], reference: &[f32]) -> Result<f64> {
    same_length(estimate, reference)?;
    let r: Vec<i16> = reference.iter().map(|&x| to_i16(x)).collect();
    let e: Vec<i16> = estimate.iter().map(|&x| to_i16(x)).collect();
    pesq::pesq_wb(&r, &e)
        .map(f64::from)
        .map_err(|err| AudioError::Config(format!("PESQ-WB: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::rng::SplitMix64;

    #[test]
    fn si_sdr_is_scale_invariant_and_matches_the_formula() {
        let mut rng = SplitMix64::new(1);
        let s: Vec<f32> = (0..1000).map(|_| rng.normal() as f32).collect();
        let n: Vec<f32> = (0..1000).map(|_| rng.normal() as f32).collect();
        // ŝ = s + 0.1 n: about 20 dB (n nearly orthogonal to s).
        let est: Vec<f32> = s.iter().zip(&n).map(|(a, b)| a + 0.1 * b).collect();
        let a = si_sdr(&est, &s).unwrap();
        let scaled: Vec<f32> = est.iter().map(|x| 3.0 * x).collect();
        let b = si_sdr(&scaled, &s).unwrap();
        assert!((a - b).abs() < 1e-6);
        assert!((a - 20.0).abs() < 1.0, "{a}");
        // SNR is not scale-invariant.
        assert!(snr(&scaled, &s).unwrap() < 0.0);
        assert!(si_sdr(&s, &s).unwrap() > 100.0);
        assert!(si_sdr(&[0.0; 3], &[1.0; 3]).is_err());
        assert!(si_sdr(&[0.0; 3], &[1.0; 2]).is_err());
    }
}
