//! Whole-signal enhancement: the STFT on the host, the network on a Burn device.

use attnkit_audio::stft::Stft;
use burn::prelude::*;

use super::{BINS, Enhancer, features};
use crate::error::{AttnError, Result};

/// Enhances signals of any lengths in one batch (each padded at its end to the longest;
/// the network is causal, so the padding changes nothing before it).
///
/// - `signals`: 16 kHz samples, any lengths ≥ 1
/// - returns: the enhanced signals, each as long as its input and sample-aligned with it
///
/// # Errors
///
/// [`AttnError::Config`] if a signal is empty; whatever the network refuses.
pub fn enhance_batch(
    model: &Enhancer,
    signals: &[&[f32]],
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let stft = Stft::speech();
    if signals.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(i) = signals.iter().position(|s| s.is_empty()) {
        return Err(AttnError::Config(format!("signal {i} is empty")));
    }
    let specs: Vec<_> = signals.iter().map(|s| stft.analyze(&stft.pad(s))).collect();
    let frames = specs.iter().map(|s| s.frames).max().unwrap_or(0);
    let b = signals.len();
    let mut input = Vec::with_capacity(b * frames * BINS);
    for spec in &specs {
        input.extend(features(&spec.re, &spec.im));
        input.extend(std::iter::repeat_n(
            super::feature(0.0, 0.0),
            (frames - spec.frames) * BINS,
        ));
    }
    let x = Tensor::<3>::from_data(TensorData::new(input, [b, frames, BINS]), device);
    let gains: Vec<f32> =
        model
            .forward(x)?
            .try_into_vec_as::<f32>()
            .map_err(|e| AttnError::Value {
                what: "gains".into(),
                why: format!("{e:?}"),
            })?;
    specs
        .into_iter()
        .zip(signals)
        .enumerate()
        .map(|(i, (mut spec, signal))| {
            let g = &gains[i * frames * BINS..][..spec.frames * BINS];
            spec.re.iter_mut().zip(g).for_each(|(r, g)| *r *= g);
            spec.im.iter_mut().zip(g).for_each(|(r, g)| *r *= g);
            let out = stft
                .synthesize(&spec)
                .map_err(|e| AttnError::Config(e.to_string()))?;
            Ok(stft.unpad(&out, signal.len()))
        })
        .collect()
}

/// [`enhance_batch`] of one signal.
///
/// # Errors
///
/// As [`enhance_batch`].
pub fn enhance_signal(model: &Enhancer, signal: &[f32], device: &Device) -> Result<Vec<f32>> {
    Ok(enhance_batch(model, &[signal], device)?.remove(0))
}
