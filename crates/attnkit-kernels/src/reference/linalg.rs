//! The linear algebra the reference layers are built from: matrix product, PyTorch's
//! linear layer, layer normalisation.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{KernelError, check_len};

/// `a[m,k] · b[k,n]`.
///
/// # Errors
///
/// [`KernelError::Length`] if `a` or `b` does not hold the numbers its shape needs.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>, KernelError> {
    check_len("a", a, m * k)?;
    check_len("b", b, k * n)?;
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc += a[i * k + p] * b[p * n + j];
            }
            out[i * n + j] = acc;
        }
    }
    Ok(out)
}

/// `x[rows, d_in] · weightᵀ + bias` with PyTorch's layout: `weight` is `[d_out, d_in]`.
///
/// # Errors
///
/// [`KernelError::Length`] if `x`, `weight` or `bias` does not hold the numbers its shape
/// needs.
pub fn linear(
    x: &[f64],
    rows: usize,
    d_in: usize,
    weight: &[f64],
    bias: Option<&[f64]>,
    d_out: usize,
) -> Result<Vec<f64>, KernelError> {
    check_len("x", x, rows * d_in)?;
    check_len("weight", weight, d_out * d_in)?;
    if let Some(b) = bias {
        check_len("bias", b, d_out)?;
    }
    let mut out = vec![0.0; rows * d_out];
    for r in 0..rows {
        for o in 0..d_out {
            let mut acc = bias.map_or(0.0, |b| b[o]);
            for i in 0..d_in {
                acc += x[r * d_in + i] * weight[o * d_in + i];
            }
            out[r * d_out + o] = acc;
        }
    }
    Ok(out)
}

/// Layer normalisation of each row of `x[rows, d]` (biased variance, as PyTorch).
///
/// # Errors
///
/// [`KernelError::Length`] if `x`, `gamma` or `beta` does not hold the numbers its shape
/// needs.
pub fn layer_norm(
    x: &[f64],
    rows: usize,
    d: usize,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> Result<Vec<f64>, KernelError> {
    check_len("x", x, rows * d)?;
    check_len("gamma", gamma, d)?;
    check_len("beta", beta, d)?;
    let mut out = vec![0.0; rows * d];
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        let inv = 1.0 / crate::math::sqrt(var + eps);
        for i in 0..d {
            out[r * d + i] = (row[i] - mean) * inv * gamma[i] + beta[i];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::assert_close;

    #[test]
    fn matmul_and_linear_by_hand() {
        // [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]
        let c = matmul(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2, 2, 2).unwrap();
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        // x·Wᵀ + b with W = [[1,0],[1,1],[0,2]], b = [0,1,2]: x = [3,4] -> [3, 8, 10]
        let y = linear(
            &[3.0, 4.0],
            1,
            2,
            &[1.0, 0.0, 1.0, 1.0, 0.0, 2.0],
            Some(&[0.0, 1.0, 2.0]),
            3,
        )
        .unwrap();
        assert_eq!(y, [3.0, 8.0, 10.0]);
    }

    #[test]
    fn layer_norm_by_hand() {
        // Row [1, 3]: mean 2, var 1 -> [-1, 1]/sqrt(1 + eps).
        let y = layer_norm(&[1.0, 3.0], 1, 2, &[1.0, 1.0], &[0.0, 0.0], 0.0).unwrap();
        assert_close(&y, &[-1.0, 1.0], 1e-15);
    }
}
