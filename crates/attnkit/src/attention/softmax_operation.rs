//! The attention softmax as one backend operation, with its own backward pass.
//!
//! Written with Burn's ops, a masked softmax is a chain of element-wise passes (mask fill,
//! maximum, subtract, `exp`, sum, divide) over the `[B, H, Lq, Lk]` scores, and autodiff
//! records each one and replays a backward pass for each. Burn's `exp` is scalar, and
//! every pass reads and writes the whole score tensor. As one operation:
//!
//! - forward: one pass per row on the host (mask, maximum, vectorised exponentials within
//!   2 ulp, sum, scale), in place over the scores' buffer when it is not shared;
//! - backward: ∂L/∂s = p ⊙ (g − ⟨g, p⟩) per row, one pass in place over the incoming
//!   gradient, from the weights kept by the forward pass (nothing else is stored).
//!
//! Masked entries have p = 0, so their gradient is exactly 0, as with the composed ops
//! (whose mask fill stops the gradient there); a row with every key masked has zero
//! weights and zero gradient.
//!
//! The operation is registered for Burn's CPU backend (Flex) and for autodiff over it;
//! it handles f32, and [`attention_softmax`] falls back to the composed
//! [`masked_softmax`] for other float types.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;

use super::mask::{AttentionMask, key_padding_on_host};
use super::softmax::{masked_softmax, softmax_backward_rows, softmax_rows};
use crate::error::Result;

/// Which scores a row may not see: key padding per sequence and a causal limit.
#[derive(Debug, Clone, Default)]
pub struct SoftmaxMask {
    /// `[B · Lk]` row-major, `true` = ignore this key; `None`: no padding.
    pub key_padding: Option<Arc<[bool]>>,
    /// Query i sees keys j <= i only (top-left aligned).
    pub causal: bool,
}

/// The attention softmax as a backend operation (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait AttentionSoftmaxOps: Backend {
    /// Masked softmax over the last axis of f32 scores `[B, H, Lq, Lk]`; returns the
    /// weights, `[B, H, Lq, Lk]`.
    fn attention_softmax(scores: FloatTensor<Self>, mask: SoftmaxMask) -> FloatTensor<Self>;

    /// The softmax's backward pass: from the weights p and the gradient g with respect to
    /// them (both `[B, H, Lq, Lk]`, f32), the gradient with respect to the scores,
    /// p ⊙ (g − ⟨g, p⟩) per row.
    fn attention_softmax_backward(
        weights: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The dimensions `[B, H, Lq, Lk]` of a rank-4 primitive.
fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.shape();
    assert_eq!(shape.num_dims(), 4, "attention softmax wants rank 4");
    [shape[0], shape[1], shape[2], shape[3]]
}

impl AttentionSoftmaxOps for Flex {
    fn attention_softmax(scores: FloatTensor<Self>, mask: SoftmaxMask) -> FloatTensor<Self> {
        let [_, h, lq, lk] = dims4(&scores);
        // Zero-copy when the scores are contiguous and not shared (a fresh product is).
        let mut data = scores.into_data();
        let values = data
            .as_mut_slice::<f32>()
            .expect("attention softmax: f32 scores (checked by the caller)");
        softmax_rows(values, h, lq, lk, mask.key_padding.as_deref(), mask.causal);
        FlexTensor::from_data(data)
    }

    fn attention_softmax_backward(
        weights: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [_, _, _, lk] = dims4(&weights);
        let weights = if weights.as_slice::<f32>().is_some() {
            weights
        } else {
            weights.to_contiguous()
        };
        let p = weights
            .as_slice::<f32>()
            .expect("attention softmax: f32 weights, contiguous");
        let mut data = grad.into_data();
        let g = data
            .as_mut_slice::<f32>()
            .expect("attention softmax: f32 gradient");
        softmax_backward_rows(g, p, lk);
        FlexTensor::from_data(data)
    }
}

impl<B: Backend + AttentionSoftmaxOps, C: CheckpointStrategy> AttentionSoftmaxOps
    for Autodiff<B, C>
{
    fn attention_softmax(scores: FloatTensor<Self>, mask: SoftmaxMask) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SoftmaxBackward;

        impl<B: Backend + AttentionSoftmaxOps> Backward<B, 1> for SoftmaxBackward {
            // The weights: all the backward pass needs.
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let weights = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::attention_softmax_backward(weights, grad)
                });
            }
        }

        let guard = scores.node();
        let weights = B::attention_softmax(scores.into_primitive(), mask);
        match SoftmaxBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(weights.clone(), weights),
            OpsKind::UnTracked(prep) => prep.finish(weights),
        }
    }

    fn attention_softmax_backward(
        weights: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // A second derivative through attention is not needed by anything here; written
        // with differentiable ops so it is still correct if asked for.
        let dot = Self::float_sum_dim(Self::float_mul(grad.clone(), weights.clone()), 3);
        Self::float_mul(weights, Self::float_sub(grad, dot))
    }
}

/// Masked softmax of attention scores, as one operation with its own backward pass on
/// autodiff devices (see the module docs); the same as
/// [`masked_softmax`] over the mask these inputs
/// describe, within f32 rounding.
///
/// - `scores`: `[B, H, Lq, Lk]`
/// - `key_padding`: `[B, Lk]`, `true` = ignore this key; `causal`: query i sees keys j <= i
/// - returns: the weights, `[B, H, Lq, Lk]`; rows with every key masked are all zero
///
/// # Errors
///
/// [`AttnError::Shape`](crate::AttnError::Shape) if the mask does not broadcast to the scores.
pub fn attention_softmax(
    scores: Tensor<4>,
    key_padding: Option<&Tensor<2, Bool>>,
    causal: bool,
) -> Result<Tensor<4>> {
    let [b, _, lq, lk] = scores.dims();
    if !crate::device::uses_cpu_kernels(&scores) {
        let device = scores.device();
        let mask = AttentionMask {
            key_padding: key_padding.cloned(),
            causal,
        }
        .to_scores_mask(b, lq, lk, &device)?;
        return Ok(masked_softmax(scores, mask, 3));
    }
    let key_padding = key_padding
        .map(|p| key_padding_on_host(p, b, lk))
        .transpose()?;
    let mask = SoftmaxMask {
        key_padding: key_padding.map(Arc::from),
        causal,
    };
    let weights =
        <Dispatch as AttentionSoftmaxOps>::attention_softmax(scores.into_dispatch(), mask);
    Ok(Tensor::from_dispatch(weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnkit_kernels::rng::SplitMix64;
    use attnkit_kernels::softmax::masked_softmax_in_place;

    const B: usize = 2;
    const H: usize = 3;
    const LQ: usize = 5;
    // Not a multiple of the 8 lanes, so the remainders run too.
    const LK: usize = 13;

    /// Random scores; every 7th a logit of ±1e4 when `large`.
    fn scores(seed: u64, large: bool) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..B * H * LQ * LK)
            .map(|i| {
                let scale = if large && i % 7 == 0 { 1e4 } else { 3.0 };
                (rng.normal() * scale) as f32
            })
            .collect()
    }

    /// Every 4th key padded; batch 1 also pads everything from key 9 on, and with a
    /// causal mask its early queries then see keys that are all masked.
    fn padding() -> Vec<bool> {
        (0..B * LK)
            .map(|j| j % 4 == 1 || (j >= LK && j % LK >= 9))
            .collect()
    }

    /// Batch 1 with every key masked: for the fully masked rows.
    fn padding_all() -> Vec<bool> {
        (0..B * LK).map(|j| j % 4 == 1 || j >= LK).collect()
    }

    fn masked(pad: &[bool], causal: bool, row: usize) -> Vec<bool> {
        let (i, batch) = (row % LQ, row / (H * LQ));
        (0..LK)
            .map(|j| pad[batch * LK + j] || (causal && j > i))
            .collect()
    }

    /// The f64 oracle of the kernels crate, row by row.
    fn oracle(scores: &[f64], pad: &[bool], causal: bool) -> Vec<f64> {
        let mut out = scores.to_vec();
        for (r, row) in out.chunks_mut(LK).enumerate() {
            masked_softmax_in_place(row, &masked(pad, causal, r)).unwrap();
        }
        out
    }

    fn run(device: &Device, scores: &[f32], pad: &[bool], causal: bool) -> (Tensor<4>, Vec<f32>) {
        let s = Tensor::<4>::from_data(TensorData::new(scores.to_vec(), [B, H, LQ, LK]), device);
        let s = if device.is_autodiff() {
            s.require_grad()
        } else {
            s
        };
        let p = Tensor::<2, Bool>::from_data(TensorData::new(pad.to_vec(), [B, LK]), device);
        let w = attention_softmax(s.clone(), Some(&p), causal).unwrap();
        (s, w.into_data().try_to_vec().unwrap())
    }

    /// Forward on plain and autodiff devices against the f64 oracle within 1e-6 absolute
    /// (weights lie in [0, 1]): padding, causal masks, fully masked rows (zero), logits up
    /// to 1e4.
    #[test]
    fn forward_matches_the_oracle() {
        let x = scores(5, true);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for device in [Device::flex(), Device::flex().autodiff()] {
            for pad in [padding(), padding_all()] {
                for causal in [false, true] {
                    let (_, got) = run(&device, &x, &pad, causal);
                    let want = oracle(&x64, &pad, causal);
                    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-6,
                            "autodiff {} causal {causal} entry {k}: {g} vs {w}",
                            device.is_autodiff()
                        );
                    }
                }
            }
        }
    }

    /// The gradient of L = Σ w ⊙ R (R random) with respect to the scores against central
    /// finite differences of the f64 oracle (step 1e-5: truncation ~1e-10, rounding
    /// ~1e-11), within 2e-6 absolute (f32 weights and sums; |∂L/∂s| is below ~3 here).
    /// Masked scores get exactly zero.
    #[test]
    fn gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let x = scores(11, false);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut rng = SplitMix64::new(12);
        let r: Vec<f64> = (0..x.len()).map(|_| rng.normal()).collect();
        let loss = |s: &[f64], pad: &[bool], causal: bool| -> f64 {
            oracle(s, pad, causal)
                .iter()
                .zip(&r)
                .map(|(w, r)| w * r)
                .sum()
        };
        for pad in [padding(), padding_all()] {
            for causal in [false, true] {
                let (s, _) = run(&device, &x, &pad, causal);
                let rt = Tensor::<4>::from_data(
                    TensorData::new(
                        r.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                        [B, H, LQ, LK],
                    ),
                    &device,
                );
                let p =
                    Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [B, LK]), &device);
                let w = attention_softmax(s.clone(), Some(&p), causal).unwrap();
                let grads = (w * rt).sum().backward();
                let got: Vec<f32> = s.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
                let h = 1e-5;
                for k in 0..x.len() {
                    let mut plus = x64.clone();
                    plus[k] += h;
                    let mut minus = x64.clone();
                    minus[k] -= h;
                    let fd = (loss(&plus, &pad, causal) - loss(&minus, &pad, causal)) / (2.0 * h);
                    assert!(
                        (got[k] as f64 - fd).abs() <= 2e-6,
                        "causal {causal} entry {k}: {} vs {fd}",
                        got[k]
                    );
                    if masked(&pad, causal, k / LK)[k % LK] {
                        assert_eq!(got[k], 0.0, "masked entry {k}");
                    }
                }
            }
        }
    }

    /// Gradients equal those of the composed ops (Burn's autodiff of mask fill, max, exp,
    /// sum, divide) within 1e-6, and an f64 device takes the composed path.
    #[test]
    fn gradient_matches_the_composed_ops() {
        let device = Device::flex().autodiff();
        let x = scores(21, true);
        let pad = padding();
        let mut rng = SplitMix64::new(22);
        let r: Vec<f32> = (0..x.len()).map(|_| rng.normal() as f32).collect();
        let rt = Tensor::<4>::from_data(TensorData::new(r, [B, H, LQ, LK]), &device);
        let p = Tensor::<2, Bool>::from_data(TensorData::new(pad, [B, LK]), &device);
        for causal in [false, true] {
            let (s, _) = run(&device, &x, &padding(), causal);
            let w = attention_softmax(s.clone(), Some(&p), causal).unwrap();
            let g1: Vec<f32> = s
                .grad(&(w * rt.clone()).sum().backward())
                .unwrap()
                .into_data()
                .try_to_vec()
                .unwrap();
            let mask = AttentionMask {
                key_padding: Some(p.clone()),
                causal,
            }
            .to_scores_mask(B, LQ, LK, &device)
            .unwrap();
            let w = masked_softmax(s.clone(), mask, 3);
            let g2: Vec<f32> = s
                .grad(&(w * rt.clone()).sum().backward())
                .unwrap()
                .into_data()
                .try_to_vec()
                .unwrap();
            for (k, (a, b)) in g1.iter().zip(&g2).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "causal {causal} entry {k}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn wrong_padding_shape_is_an_error() {
        let device = Device::flex();
        let s = Tensor::<4>::zeros([B, H, LQ, LK], &device);
        let p = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false; LK + 1], [1, LK + 1]),
            &device,
        );
        let err = attention_softmax(s, Some(&p), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("key_padding_mask"), "{err}");
    }
}
