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
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask, f32::NEG_INFINITY),
        None => scores,
    };
    let max = scores.clone().detach().max_dim(dim).clamp_min(f32::MIN);
    let exp = (scores - max).exp();
    let sum = exp.clone().sum_dim(dim).clamp_min(1.0);
    exp / sum
}

/// The inference form of [`masked_softmax`] over attention scores `[B, H, Lq, Lk]` (f32,
/// on a device without autodiff): one pass per row on the host, rows spread over threads,
/// in place over the scores' own buffer when the caller hands over a tensor it alone
/// holds (a fresh product does). Burn's `exp` is scalar and is most of a softmax's time;
/// here the maximum, the exponentials ([`expf_fast`](attnkit_kernels::math::expf_fast),
/// within 2 ulp) and the sum run as SIMD loops.
///
/// - `scores`: `[B, H, Lq, Lk]`, f32
/// - `key_padding`: `[B, Lk]`, `true` = ignore; `causal`: query i sees keys j <= i
/// - returns: the weights, `[B, H, Lq, Lk]`; rows with every key masked are all zero
pub(crate) fn attention_softmax_host(
    scores: Tensor<4>,
    key_padding: Option<&Tensor<2, Bool>>,
    causal: bool,
) -> Result<Tensor<4>, burn::tensor::DataError> {
    use rayon::prelude::*;
    let device = scores.device();
    let [_, h, lq, lk] = scores.dims();
    let padding: Option<Vec<bool>> = match key_padding {
        Some(m) => Some(m.clone().into_data().try_into_vec::<bool>()?),
        None => None,
    };
    let mut data = scores.into_data();
    let values = data.as_mut_slice::<f32>()?;
    if lk > 0 {
        values
            .par_chunks_mut(lk)
            .enumerate()
            .for_each(|(row_index, row)| {
                let i = row_index % lq;
                let batch = row_index / (h * lq);
                let pad = padding.as_ref().map(|p| &p[batch * lk..(batch + 1) * lk]);
                softmax_row(row, pad, causal.then_some(i));
            });
    }
    Ok(Tensor::from_data(data, &device))
}

/// Lanes of the explicit reductions: wide enough for 256-bit registers, and written as
/// independent accumulators so the compiler may vectorise them (a float fold may not be
/// reordered otherwise).
const LANES: usize = 8;

/// Masked softmax of one row in place; `last_key`: with a causal mask, the last key
/// this query may see.
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

    /// The host form against the f64 oracle of the kernels crate within 1e-6 absolute
    /// (weights are in [0, 1]), with padding, causal masks, a fully masked row, logits
    /// up to 1e4 and a row length that is not a multiple of the lanes.
    #[test]
    fn host_form_matches_the_oracle() {
        let device = Device::flex();
        let (b, h, lq, lk) = (2, 3, 5, 13);
        let mut rng = attnkit_kernels::rng::SplitMix64::new(5);
        let scores: Vec<f32> = (0..b * h * lq * lk)
            .map(|i| (rng.normal() * if i % 7 == 0 { 1e4 } else { 3.0 }) as f32)
            .collect();
        // Batch 1 has every key masked.
        let pad: Vec<bool> = (0..b * lk).map(|j| j % 4 == 1 || j >= lk).collect();
        for causal in [false, true] {
            let got = attention_softmax_host(
                Tensor::<4>::from_data(TensorData::new(scores.clone(), [b, h, lq, lk]), &device),
                Some(&Tensor::from_data(
                    TensorData::new(pad.clone(), [b, lk]),
                    &device,
                )),
                causal,
            )
            .unwrap();
            let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
            for (r, row) in scores.chunks(lk).enumerate() {
                let (i, batch) = (r % lq, r / (h * lq));
                let masked: Vec<bool> = (0..lk)
                    .map(|j| pad[batch * lk + j] || (causal && j > i))
                    .collect();
                let mut want: Vec<f64> = row.iter().map(|&x| x as f64).collect();
                attnkit_kernels::softmax::masked_softmax_in_place(&mut want, &masked).unwrap();
                for (j, (g, w)) in got[r * lk..(r + 1) * lk].iter().zip(&want).enumerate() {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-6,
                        "causal {causal} row {r} key {j}: {g} vs {w}"
                    );
                }
            }
        }
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
