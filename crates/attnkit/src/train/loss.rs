//! Losses and metrics.

use burn::prelude::*;

use crate::error::{Result, check_shape};

/// Mean squared error, averaged over every element.
///
/// - `pred`, `target`: the same shape
/// - returns: `[1]`
///
/// # Errors
///
/// [`AttnError::Shape`](crate::AttnError::Shape) if `pred` and `target` differ in shape.
pub fn mse<const D: usize>(pred: Tensor<D>, target: Tensor<D>) -> Result<Tensor<1>> {
    let dims = target.dims();
    let expected: Vec<Option<usize>> = dims.iter().map(|&d| Some(d)).collect();
    let names = ["…"; D];
    check_shape("prediction", &pred.dims(), &expected, &names)?;
    Ok((pred - target).powf_scalar(2.0).mean())
}

/// Cross-entropy of class logits against integer labels, averaged over the batch
/// (`nn.CrossEntropyLoss`): −log softmax(logits)\[label\], with the log-softmax computed
/// as logits − max − log Σ e^(logits − max) so that no logit overflows.
///
/// - `logits`: `[B, C]`; `labels`: `[B]` with values in `0..C`
/// - returns: `[1]`
///
/// # Errors
///
/// [`AttnError::Shape`](crate::AttnError::Shape) if `labels` is not `[B]` for `logits` `[B, C]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Result<Tensor<1>> {
    let [b, c] = logits.dims();
    check_shape("labels", &labels.dims(), &[Some(b)], &["B"])?;
    let _ = c;
    let max = logits.clone().detach().max_dim(1);
    let shifted = logits - max;
    let log_z = shifted.clone().exp().sum_dim(1).log();
    let picked = shifted.gather(1, labels.unsqueeze_dim(1));
    Ok((log_z - picked).mean())
}

/// Fraction of rows whose largest logit is at the label.
///
/// - `logits`: `[B, C]`; `labels`: `[B]`
pub fn accuracy(logits: Tensor<2>, labels: Tensor<1, Int>) -> f64 {
    let b = labels.dims()[0].max(1);
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    let correct: i64 = predicted.equal(labels).int().sum().into_scalar::<i64>();
    correct as f64 / b as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_by_hand_and_with_huge_logits() {
        let device = Device::flex();
        // Row [0, ln 3]: p = [1/4, 3/4]; label 1 → −ln 0.75.
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 3.0f32.ln(), 1.0e4, 0.0], [2, 2]),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
        let loss: f32 = cross_entropy(logits.clone(), labels.clone())
            .unwrap()
            .into_scalar();
        let want = (-(0.75f64.ln()) + 0.0) / 2.0;
        assert!((loss as f64 - want).abs() < 1e-6, "{loss} vs {want}");
        assert_eq!(accuracy(logits, labels), 1.0);
    }

    #[test]
    fn mse_checks_shapes() {
        let device = Device::flex();
        let a = Tensor::<2>::ones([2, 3], &device);
        let b = Tensor::<2>::zeros([3, 2], &device);
        assert!(mse(a.clone(), b).is_err());
        let l: f32 = mse(a.clone(), a * 3.0).unwrap().into_scalar();
        assert_eq!(l, 4.0);
    }
}
