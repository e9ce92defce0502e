//! Softmax that stays finite for huge logits and fully masked rows.
//!
//! softmax(s)_j = e^(s_j - m) / Σ_k e^(s_k - m), m = max_k s_k. Masked entries are set
//! to -inf before the maximum is taken, so they contribute e^-inf = 0 exactly. Two
//! guards make a fully masked row (all -inf) give zeros instead of NaN:
//!
//! - the maximum is clamped to `f32::MIN`, so `-inf - m` is `-inf` (not `-inf + inf = NaN`);
//! - the sum is clamped to at least 1. For any row with an unmasked entry the largest term
//!   is exactly e^0 = 1, so this clamp never changes a valid row; for a fully masked row
//!   it turns 0/0 into 0/1.
//!
//! The maximum is detached from the autodiff graph: softmax does not depend on it, and
//! its gradient would be exactly zero anyway.

use burn::prelude::*;

/// Softmax along `dim` with entries where `mask` is `true` removed.
///
/// - `scores`: any shape
/// - `mask`: broadcastable to `scores`; `true` = ignore this entry
/// - returns: the shape of `scores`; rows with every entry masked are all zero
pub fn masked_softmax<const D: usize>(
    scores: Tensor<D>,
    mask: Option<Tensor<D, Bool>>,
    dim: usize,
) -> Tensor<D> {
    if scores.dims()[dim] == 0 {
        // Softmax over nothing (no keys): no weights, and no maximum to take.
        return scores;
    }
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask, f32::NEG_INFINITY),
        None => scores,
    };
    let max = scores.clone().detach().max_dim(dim).clamp_min(f32::MIN);
    let exp = (scores - max).exp();
    let sum = exp.clone().sum_dim(dim).clamp_min(1.0);
    exp / sum
}

/// Masked softmax of f32 attention scores `[B, H, Lq, Lk]` laid out row-major in
/// `values`, in place, rows spread over threads. Burn's `exp` is scalar and is most of a
/// softmax's time; here the maximum, the exponentials
/// ([`expf_fast`](attnkit_kernels::math::expf_fast), within 2 ulp) and the sum run as
/// SIMD loops.
///
/// - `key_padding`: `[B · Lk]`, `true` = ignore; `causal`: query i sees keys j <= i
/// - rows with every key masked become all zero
pub(crate) fn softmax_rows(
    values: &mut [f32],
    heads: usize,
    len_q: usize,
    len_k: usize,
    key_padding: Option<&[bool]>,
    causal: bool,
) {
    use rayon::prelude::*;
    if len_k == 0 {
        return;
    }
    let arch = pulp::Arch::new();
    values
        .par_chunks_mut(len_k)
        .enumerate()
        .for_each(|(row_index, row)| {
            let i = row_index % len_q;
            let batch = row_index / (heads * len_q);
            let pad = key_padding.map(|p| &p[batch * len_k..(batch + 1) * len_k]);
            arch.dispatch(SoftmaxRow {
                row,
                padding: pad,
                last_key: causal.then_some(i),
            });
        });
}

/// The backward pass of a softmax over rows of `len_k`: `grad` (the gradient with respect
/// to the weights) becomes the gradient with respect to the scores,
/// p ⊙ (g − ⟨g, p⟩) per row, in place; `weights` are the forward pass's p.
pub(crate) fn softmax_backward_rows(grad: &mut [f32], weights: &[f32], len_k: usize) {
    use rayon::prelude::*;
    assert_eq!(grad.len(), weights.len(), "softmax backward: shapes differ");
    if len_k == 0 {
        return;
    }
    let arch = pulp::Arch::new();
    grad.par_chunks_mut(len_k)
        .zip(weights.par_chunks(len_k))
        .for_each(|(g, p)| arch.dispatch(SoftmaxBackwardRow { g, p }));
}

/// One row of [`softmax_rows`], run through [`pulp`]'s dispatch so that the loops are
/// compiled for the widest SIMD the CPU has (AVX2 + FMA on x86-64) and chosen at run
/// time; the baseline build would use 4-lane SSE2.
struct SoftmaxRow<'a> {
    row: &'a mut [f32],
    padding: Option<&'a [bool]>,
    last_key: Option<usize>,
}

impl pulp::WithSimd for SoftmaxRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        softmax_row(self.row, self.padding, self.last_key);
    }
}

/// One row of [`softmax_backward_rows`], dispatched like [`SoftmaxRow`].
struct SoftmaxBackwardRow<'a> {
    g: &'a mut [f32],
    p: &'a [f32],
}

impl pulp::WithSimd for SoftmaxBackwardRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let SoftmaxBackwardRow { g, p } = self;
        let mut lanes = [0.0f32; LANES];
        let mut gc = g.chunks_exact(LANES);
        let mut pc = p.chunks_exact(LANES);
        for (gs, ps) in (&mut gc).zip(&mut pc) {
            for ((acc, &gi), &pi) in lanes.iter_mut().zip(gs).zip(ps) {
                *acc += gi * pi;
            }
        }
        let tail: f32 = gc
            .remainder()
            .iter()
            .zip(pc.remainder())
            .map(|(gi, pi)| gi * pi)
            .sum();
        let dot = lanes.iter().sum::<f32>() + tail;
        for (gi, &pi) in g.iter_mut().zip(p) {
            *gi = pi * (*gi - dot);
        }
    }
}

/// Lanes of the explicit reductions: wide enough for 256-bit registers, and written as
/// independent accumulators so the compiler may vectorise them (a float fold may not be
/// reordered otherwise).
const LANES: usize = 8;

/// Masked softmax of one row in place; `last_key`: with a causal mask, the last key
/// this query may see.
#[inline(always)]
fn softmax_row(row: &mut [f32], padding: Option<&[bool]>, last_key: Option<usize>) {
    if let Some(pad) = padding {
        for (x, &masked) in row.iter_mut().zip(pad) {
            if masked {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    if let Some(i) = last_key {
        for x in row.iter_mut().skip(i + 1) {
            *x = f32::NEG_INFINITY;
        }
    }
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = m.max(x);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    if max == f32::NEG_INFINITY {
        // Every key masked: zero weights, never NaN.
        row.fill(0.0);
        return;
    }
    for x in row.iter_mut() {
        *x = attnkit_kernels::math::expf_fast(*x - max);
    }
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, &x) in lanes.iter_mut().zip(chunk) {
            *s += x;
        }
    }
    let sum: f32 = chunks.remainder().iter().chain(&lanes).sum();
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(data: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(data, shape), &Device::flex())
    }

    fn vec(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn matches_the_kernels_oracle_on_large_logits() {
        let data = vec![1.0e4, 1.0e4 + 1.0, -1.0e4, 3.0, -2.0, 0.5];
        let got = vec(masked_softmax(t2(data.clone(), [2, 3]), None, 1));
        let mut want: Vec<f64> = data.iter().map(|&x| x as f64).collect();
        attnkit_kernels::softmax::softmax_rows(&mut want, 2, 3).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w).abs() <= 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn fully_masked_row_is_zero_and_gradients_are_finite() {
        let device = Device::flex().autodiff();
        let scores = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &device,
        )
        .require_grad();
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![true, true, false, true], [2, 2]),
            &device,
        );
        let w = masked_softmax(scores.clone(), Some(mask), 1);
        let values: Vec<f32> = w.clone().into_data().try_to_vec().unwrap();
        assert_eq!(values, [0.0, 0.0, 1.0, 0.0]);
        let grads = (w * Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &device,
        ))
        .sum()
        .backward();
        let g: Vec<f32> = scores
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    }
}
