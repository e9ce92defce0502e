//! Self-checks: each Burn module against the dependency-free `f64` reference of
//! `attnkit-kernels` on seeded random data. The tour runs these; users can run them on
//! their own platform or backend to see that the numbers hold there. [`fixture`] loads
//! the cases written by the PyTorch/numpy generators under `tools/fixtures/`, and
//! [`check`] compares outputs with them element-wise.

use attnkit_kernels::reference::{
    AarenWeights, MhaShape, MhaWeights, SdpaOptions, SdpaShape, SelfAttention, aaren_layer,
    multi_head_attention, scaled_dot_product_attention,
};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;

use crate::aaren::{AarenConfig, AarenMode};
use crate::attention::{AttentionMask, MultiHeadAttentionConfig, ScaledDotProductAttentionConfig};
use crate::error::Result;
use crate::store::{StoredTensor, TensorStore, TorchWeights};

mod agreement;
pub mod check;
pub mod fixture;

pub use agreement::Agreement;
pub use check::{CaseReport, FixtureSummary, TensorCheck, Tolerance, WorstElement};
pub use fixture::Fixture;

fn randn(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    StoredTensor::from_tensor(t).data
}

/// Burn's SDPA (causal, with padding) against the reference; inputs are N(0, `scale²`),
/// so logits reach about `scale²·√D`.
///
/// # Errors
///
/// An [`AttnError`](crate::AttnError) if a module refuses the generated case (which would be a bug), or the
/// reference does ([`AttnError::Kernel`](crate::AttnError::Kernel)).
pub fn sdpa_vs_reference(device: &Device, seed: u64, scale: f64) -> Result<Agreement> {
    let (b, h, l, d) = (2, 4, 16, 8);
    let mut rng = SplitMix64::new(seed);
    let q = randn(&mut rng, b * h * l * d, scale);
    let k = randn(&mut rng, b * h * l * d, scale);
    let v = randn(&mut rng, b * h * l * d, 1.0);
    // Pad the last three keys of the second sequence; its first query then sees only
    // itself, and a causal first row of an all-padded prefix would be fully masked.
    let pad: Vec<bool> = (0..b * l).map(|i| i >= 2 * l - 3).collect();
    let want = scaled_dot_product_attention(
        &to_f64(&q),
        &to_f64(&k),
        &to_f64(&v),
        SdpaShape {
            batch: b,
            heads: h,
            len_q: l,
            len_k: l,
            d_k: d,
            d_v: d,
        },
        SdpaOptions {
            scale: None,
            causal: true,
            key_padding_mask: Some(&pad),
        },
    )?;
    let t = |x: &[f32]| Tensor::<4>::from_data(TensorData::new(x.to_vec(), [b, h, l, d]), device);
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, l]), device);
    let out = ScaledDotProductAttentionConfig::new()
        .with_causal(true)
        .init(device)
        .forward(t(&q), t(&k), t(&v), Some(mask))?;
    Ok(Agreement::measure(&host(out.context), &want.output)?
        .worst(Agreement::measure(&host(out.weights), &want.weights)?))
}

/// The Aaren layer in `mode` against the direct f64 definition, with padding (the
/// second sequence starts with three padded tokens, so its first outputs have no token
/// to attend to) and scores of about ±`score_scale` (the query is drawn N(0, scale²)).
///
/// # Errors
///
/// An [`AttnError`](crate::AttnError) if a module refuses the generated case (which would be a bug), or the
/// reference does ([`AttnError::Kernel`](crate::AttnError::Kernel)).
pub fn aaren_vs_reference(
    device: &Device,
    seed: u64,
    len: usize,
    score_scale: f64,
    mode: AarenMode,
) -> Result<Agreement> {
    let (b, e, h) = (2, 16, 4);
    let mut rng = SplitMix64::new(seed);
    let mut weights = TensorStore::new("random weights");
    let query = randn(&mut rng, e, score_scale);
    let w_in = randn(&mut rng, 3 * e * e, 1.0 / (e as f64).sqrt());
    let b_in = randn(&mut rng, 3 * e, 0.1);
    let w_out = randn(&mut rng, e * e, 1.0 / (e as f64).sqrt());
    let b_out = randn(&mut rng, e, 0.1);
    weights.insert("query", vec![e], query.clone())?;
    weights.insert("in_proj_weight", vec![3 * e, e], w_in.clone())?;
    weights.insert("in_proj_bias", vec![3 * e], b_in.clone())?;
    weights.insert("out_proj.weight", vec![e, e], w_out.clone())?;
    weights.insert("out_proj.bias", vec![e], b_out.clone())?;
    let layer = AarenConfig::new(e, h)
        .with_mode(mode)
        .init(device)?
        .load_weights(&weights, "")?;
    let x = randn(&mut rng, b * len * e, 1.0);
    let pad: Vec<bool> = (0..b * len)
        .map(|i| i >= len && (i - len < 3 || rng.next_f64() < 0.2))
        .collect();
    let want = aaren_layer(
        &to_f64(&x),
        b,
        len,
        e,
        h,
        AarenWeights {
            query: &to_f64(&query),
            in_proj_weight: &to_f64(&w_in),
            in_proj_bias: &to_f64(&b_in),
            out_proj_weight: &to_f64(&w_out),
            out_proj_bias: &to_f64(&b_out),
        },
        Some(&pad),
    )?;
    let xt = Tensor::<3>::from_data(TensorData::new(x, [b, len, e]), device);
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, len]), device);
    let out = layer.forward(xt, Some(&mask))?;
    Agreement::measure(&host(out), &want)
}

/// The dummy input of [`compare_aaren_forms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AarenCompareSpec {
    /// Sequences B.
    pub batch: usize,
    /// Heads H.
    pub heads: usize,
    /// Tokens L.
    pub len: usize,
    /// Width of a head D.
    pub d_head: usize,
    /// Scores are N(0, score_scale²).
    pub score_scale: f64,
    /// Seed of the generator.
    pub seed: u64,
}

/// Direct O(L²) f64 softmax is used as the reference up to this length; beyond it, the
/// f64 recurrence (whose own rounding, ~L·1e-16, is far below f32's).
pub const DIRECT_REFERENCE_MAX_LEN: usize = 4096;

/// The forms of Aaren (parallel scan, iterative cell, compensated cell, f64 reference)
/// on the same dummy input, and how far apart they are.
#[derive(Debug, Clone, Copy)]
pub struct AarenForms {
    /// The input compared.
    pub spec: AarenCompareSpec,
    /// Burn's parallel scan (f32) against the kernels' iterative cell (f32). In every
    /// comparison,
    /// `max_rel` is relative to Σ_i p_i·|v_i| of each output (see `compare_aaren_forms`).
    pub parallel_vs_iterative: Agreement,
    /// Parallel scan (f32) against the f64 reference.
    pub parallel_vs_reference: Agreement,
    /// Iterative cell (f32) against the f64 reference.
    pub iterative_vs_reference: Agreement,
    /// Iterative cell with compensated (Kahan) sums (f32) against the f64 reference.
    pub compensated_vs_reference: Agreement,
    /// `"direct"` (two-pass softmax per prefix) or `"recurrence"` (the cell in f64).
    pub reference: &'static str,
    /// Wall seconds of the parallel scan, the iterative cell, the compensated cell and
    /// the reference.
    pub seconds: [f64; 4],
    /// max |s| over the generated scores.
    pub max_abs_score: f64,
}

/// Runs the parallel scan (Burn, f32, on `device`), the iterative cell (the no_std
/// kernel, f32) and an f64 reference on N(0, score_scale²) scores and N(0, 1) values,
/// every prefix output of every head compared.
///
/// # Errors
///
/// [`AttnError::Config`](crate::AttnError::Config) for a size the forms cannot take (no tokens, no heads); otherwise
/// as [`sdpa_vs_reference`].
pub fn compare_aaren_forms(device: &Device, spec: AarenCompareSpec) -> Result<AarenForms> {
    use std::time::Instant;
    let AarenCompareSpec {
        batch: b,
        heads: h,
        len: l,
        d_head: d,
        ..
    } = spec;
    if b == 0 || h == 0 || l == 0 || d == 0 {
        return Err(crate::AttnError::Config(format!(
            "batch, heads, len and dims must be at least 1, got {b}, {h}, {l}, {d}"
        )));
    }
    crate::error::check_size("the values [batch, heads, len, dims]", &[b, h, l, d])?;
    let mut rng = SplitMix64::new(spec.seed);
    let scores = randn(&mut rng, b * h * l, spec.score_scale);
    let values = randn(&mut rng, b * h * l * d, 1.0);
    let max_abs_score = scores.iter().fold(0.0f64, |m, s| m.max((*s as f64).abs()));

    let started = Instant::now();
    let st = Tensor::<3>::from_data(TensorData::new(scores.clone(), [b, h, l]), device);
    let vt = Tensor::<4>::from_data(TensorData::new(values.clone(), [b, h, l, d]), device);
    let parallel = host(crate::aaren::prefix_attention(st, vt, None)?);
    let t_parallel = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut iterative = vec![0.0f32; b * h * l * d];
    let mut state = vec![0.0f32; d + 2];
    for row in 0..b * h {
        attnkit_kernels::aaren::reset(&mut state);
        for t in 0..l {
            let i = row * l + t;
            attnkit_kernels::aaren::update(&mut state, scores[i], &values[i * d..(i + 1) * d]);
            attnkit_kernels::aaren::output(&state, &mut iterative[i * d..(i + 1) * d]);
        }
    }
    let t_iterative = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut compensated = vec![0.0f32; b * h * l * d];
    let mut state = vec![0.0f32; attnkit_kernels::aaren::compensated_head_len(d)];
    for row in 0..b * h {
        attnkit_kernels::aaren::reset(&mut state);
        for t in 0..l {
            let i = row * l + t;
            attnkit_kernels::aaren::update_compensated(
                &mut state,
                scores[i],
                &values[i * d..(i + 1) * d],
            );
            attnkit_kernels::aaren::output_compensated(
                &state,
                &mut compensated[i * d..(i + 1) * d],
            );
        }
    }
    let t_compensated = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (s64, v64) = (to_f64(&scores), to_f64(&values));
    let reference = |values: &[f64]| -> Result<Vec<f64>> {
        let mut out = vec![0.0f64; b * h * l * d];
        if l <= DIRECT_REFERENCE_MAX_LEN {
            for row in 0..b * h {
                let o = attnkit_kernels::reference::prefix_attention(
                    &s64[row * l..(row + 1) * l],
                    &values[row * l * d..(row + 1) * l * d],
                    d,
                    None,
                )?;
                out[row * l * d..(row + 1) * l * d].copy_from_slice(&o);
            }
        } else {
            let mut state = vec![0.0f64; d + 2];
            for row in 0..b * h {
                attnkit_kernels::aaren::reset(&mut state);
                for t in 0..l {
                    let i = row * l + t;
                    attnkit_kernels::aaren::update(&mut state, s64[i], &values[i * d..(i + 1) * d]);
                    attnkit_kernels::aaren::output(&state, &mut out[i * d..(i + 1) * d]);
                }
            }
        }
        Ok(out)
    };
    let kind = if l <= DIRECT_REFERENCE_MAX_LEN {
        "direct"
    } else {
        "recurrence"
    };
    let want = reference(&v64)?;
    // Σ_i p_i·|v_i| per output: the size of the terms each output sums, the scale at
    // which f32 can be expected to round it (an output near 0 may be a sum of large,
    // cancelling terms).
    let abs_v: Vec<f64> = v64.iter().map(|v| v.abs()).collect();
    let scale = reference(&abs_v)?;
    let t_reference = started.elapsed().as_secs_f64();

    Ok(AarenForms {
        spec,
        parallel_vs_iterative: Agreement::measure_scaled(&parallel, &to_f64(&iterative), &scale)?,
        parallel_vs_reference: Agreement::measure_scaled(&parallel, &want, &scale)?,
        iterative_vs_reference: Agreement::measure_scaled(&iterative, &want, &scale)?,
        compensated_vs_reference: Agreement::measure_scaled(&compensated, &want, &scale)?,
        reference: kind,
        seconds: [t_parallel, t_iterative, t_compensated, t_reference],
        max_abs_score,
    })
}

/// Burn's multi-head cross attention with padding against the reference.
///
/// # Errors
///
/// An [`AttnError`](crate::AttnError) if a module refuses the generated case (which would be a bug), or the
/// reference does ([`AttnError::Kernel`](crate::AttnError::Kernel)).
pub fn mha_vs_reference(device: &Device, seed: u64) -> Result<Agreement> {
    let (b, lq, lk, e, h) = (2, 7, 9, 32, 4);
    let mut rng = SplitMix64::new(seed);
    let mha = MultiHeadAttentionConfig::new(e, h).init(device)?;
    let mut weights = TensorStore::new("random weights");
    mha.save_weights(&mut weights, "");
    weights.insert("in_proj_bias", vec![3 * e], randn(&mut rng, 3 * e, 1.0))?;
    weights.insert("out_proj.bias", vec![e], randn(&mut rng, e, 1.0))?;
    let mha = mha.load_weights(&weights, "")?;
    let query = randn(&mut rng, b * lq * e, 1.0);
    let kv = randn(&mut rng, b * lk * e, 1.0);
    let pad: Vec<bool> = (0..b * lk).map(|i| i % 4 == 1).collect();
    let w = |n: &str| weights.get(n).map(|t| to_f64(&t.data)).unwrap_or_default();
    let (wi, bi, wo, bo) = (
        w("in_proj_weight"),
        w("in_proj_bias"),
        w("out_proj.weight"),
        w("out_proj.bias"),
    );
    let want = multi_head_attention(
        &to_f64(&query),
        &to_f64(&kv),
        &to_f64(&kv),
        MhaShape {
            batch: b,
            len_q: lq,
            len_k: lk,
            embed: e,
            heads: h,
        },
        MhaWeights {
            in_proj_weight: &wi,
            in_proj_bias: &bi,
            out_proj_weight: &wo,
            out_proj_bias: &bo,
        },
        Some(&pad),
        false,
    )?;
    let t = |x: &[f32], l: usize| {
        Tensor::<3>::from_data(TensorData::new(x.to_vec(), [b, l, e]), device)
    };
    let mask = AttentionMask::none()
        .with_key_padding(Tensor::from_data(TensorData::new(pad, [b, lk]), device));
    let out = mha.forward(t(&query, lq), t(&kv, lk), t(&kv, lk), &mask)?;
    Ok(
        Agreement::measure(&host(out.output.clone()), &want.output)?.worst(Agreement::measure(
            &host(out.mean_weights()),
            &want.weights,
        )?),
    )
}

/// The single-head self-attention exercise (N(0,1) weights, x·W convention) computed by
/// the reference and by Burn's multi-head attention with one head, zero biases and the
/// weights transposed into PyTorch's layout.
///
/// # Errors
///
/// An [`AttnError`](crate::AttnError) if a module refuses the generated case (which would be a bug), or the
/// reference does ([`AttnError::Kernel`](crate::AttnError::Kernel)).
pub fn exercise_self_attention_vs_reference(device: &Device, seed: u64) -> Result<Agreement> {
    let (n, dims) = (10, 16);
    let reference = SelfAttention::new(dims, seed)?;
    let mut rng = SplitMix64::new(seed ^ 0x5eed);
    let x: Vec<f32> = (0..n * dims).map(|_| rng.next_f64() as f32).collect();
    let want = reference.forward(&to_f64(&x), n)?;
    // PyTorch's layout multiplies by Wᵀ, the exercise by W: transpose each [dims, dims] block.
    let transpose = |w: &[f64]| -> Vec<f32> {
        (0..dims * dims)
            .map(|i| w[(i % dims) * dims + i / dims] as f32)
            .collect()
    };
    let mut store = TensorStore::new("exercise weights");
    let mut in_proj = transpose(&reference.w_q);
    in_proj.extend(transpose(&reference.w_k));
    in_proj.extend(transpose(&reference.w_v));
    store.insert("in_proj_weight", vec![3 * dims, dims], in_proj)?;
    store.insert(
        "out_proj.weight",
        vec![dims, dims],
        transpose(&reference.w_o),
    )?;
    let mha = MultiHeadAttentionConfig::new(dims, 1)
        .with_bias(false)
        .init(device)?
        .load_weights(&store, "")?;
    let xt = Tensor::<3>::from_data(TensorData::new(x, [1, n, dims]), device);
    let out = mha.forward_self(xt, &AttentionMask::none())?;
    Agreement::measure(&host(out.output), &want)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tolerances below are the tour's; they bound f32 rounding against the f64 oracle.
    #[test]
    fn checks_pass_at_f32_rounding_level() {
        let device = Device::flex();
        let a = sdpa_vs_reference(&device, 1, 1.0).unwrap();
        assert!(a.finite && a.max_abs < 1e-5, "{a:?}");
        let a = mha_vs_reference(&device, 2).unwrap();
        assert!(a.finite && a.max_abs < 1e-5, "{a:?}");
        let a = exercise_self_attention_vs_reference(&device, 3).unwrap();
        assert!(a.finite && a.max_rel < 1e-5, "{a:?}");
    }

    #[test]
    fn huge_logits_stay_finite_and_accurate() {
        // scale 40: logits ~ 40²·√8 ≈ 4.5e3, up to ~1e4 in the tails.
        let a = sdpa_vs_reference(&Device::flex(), 4, 40.0).unwrap();
        assert!(a.finite, "{a:?}");
        // f32 logits of size 1e4 carry absolute rounding ~1e-3, which moves the weights
        // of near-ties by ~1e-3; the outputs are bounded by |v| ~ 3.
        assert!(a.max_abs < 5e-3, "{a:?}");
    }
}
