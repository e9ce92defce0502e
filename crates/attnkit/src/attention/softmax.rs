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
