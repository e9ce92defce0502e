//! The Aaren layer computed directly: softmax attention of one learned query over every
//! prefix, with no recurrence and no scan.

use alloc::vec;
use alloc::vec::Vec;

use super::linalg::linear;
use crate::error::{KernelError, check_len};

/// Softmax attention of one fixed query over every prefix, computed directly: for each
/// position t a fresh two-pass softmax over the unmasked scores s_i, i ≤ t. O(L²·D), no
/// recurrence and no scan — the definition the Aaren forms are checked against.
///
/// - `scores`: `[L]`; `values`: `[L, D]`; `mask`: `[L]`, `true` = ignore this token
/// - returns `[L, D]`: o_t, zeros where no token up to t is unmasked
///
/// # Errors
///
/// [`KernelError::Length`] if a buffer's length does not match the sizes given.
pub fn prefix_attention(
    scores: &[f64],
    values: &[f64],
    d: usize,
    mask: Option<&[bool]>,
) -> Result<Vec<f64>, KernelError> {
    let len = scores.len();
    check_len("values", values, len * d)?;
    if let Some(m) = mask {
        check_len("mask", m, len)?;
    }
    let keep = |i: usize| mask.is_none_or(|m| !m[i]);
    let mut out = vec![0.0; len * d];
    for t in 0..len {
        let max = (0..=t)
            .filter(|&i| keep(i))
            .map(|i| scores[i])
            .fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            continue;
        }
        let mut den = 0.0;
        let row = &mut out[t * d..(t + 1) * d];
        for i in 0..=t {
            if keep(i) {
                let w = crate::math::exp(scores[i] - max);
                den += w;
                for (o, v) in row.iter_mut().zip(&values[i * d..(i + 1) * d]) {
                    *o += w * v;
                }
            }
        }
        row.iter_mut().for_each(|o| *o /= den);
    }
    Ok(out)
}

/// Weights of an Aaren layer, named as in `attnkit`'s `Aaren` (PyTorch's MHA names).
#[derive(Debug, Clone, Copy)]
pub struct AarenWeights<'a> {
    /// `[E]`: the learned query.
    pub query: &'a [f64],
    /// `[3E, E]`: W_q, W_k, W_v stacked by rows.
    pub in_proj_weight: &'a [f64],
    /// `[3E]`.
    pub in_proj_bias: &'a [f64],
    /// `[E, E]`.
    pub out_proj_weight: &'a [f64],
    /// `[E]`.
    pub out_proj_bias: &'a [f64],
}

/// The Aaren layer, directly: q = W_q·query + b_q, k_i = W_k·x_i + b_k,
/// v_i = W_v·x_i + b_v, per head s_i = q_h·k_ih/√d and [`prefix_attention`], heads
/// concatenated, then the output projection.
///
/// - `x`: `[B, L, E]`; `key_padding_mask`: `[B, L]`, `true` = ignore
/// - returns `[B, L, E]`
///
/// # Errors
///
/// [`KernelError::Invalid`] if `heads` is 0 or does not divide E; [`KernelError::Length`]
/// if a buffer's length does not match the sizes given.
pub fn aaren_layer(
    x: &[f64],
    batch: usize,
    len: usize,
    embed: usize,
    heads: usize,
    weights: AarenWeights<'_>,
    key_padding_mask: Option<&[bool]>,
) -> Result<Vec<f64>, KernelError> {
    let e = embed;
    if heads == 0 || e % heads != 0 {
        return Err(KernelError::Invalid {
            what: "heads",
            why: "must be at least 1 and divide the embedding width",
        });
    }
    check_len("x", x, batch * len * e)?;
    check_len("query", weights.query, e)?;
    check_len("in_proj_weight", weights.in_proj_weight, 3 * e * e)?;
    check_len("in_proj_bias", weights.in_proj_bias, 3 * e)?;
    if let Some(m) = key_padding_mask {
        check_len("key_padding_mask", m, batch * len)?;
    }
    let (wq, rest) = weights.in_proj_weight.split_at(e * e);
    let (wk, wv) = rest.split_at(e * e);
    let (bq, rest) = weights.in_proj_bias.split_at(e);
    let (bk, bv) = rest.split_at(e);
    let q = linear(weights.query, 1, e, wq, Some(bq), e)?;
    let k = linear(x, batch * len, e, wk, Some(bk), e)?;
    let v = linear(x, batch * len, e, wv, Some(bv), e)?;
    let d = e / heads;
    let scale = 1.0 / crate::math::sqrt(d as f64);
    let mut concat = vec![0.0; batch * len * e];
    let mut scores = vec![0.0; len];
    let mut values = vec![0.0; len * d];
    for b in 0..batch {
        for h in 0..heads {
            for t in 0..len {
                let row = (b * len + t) * e + h * d;
                scores[t] = (0..d).map(|p| q[h * d + p] * k[row + p]).sum::<f64>() * scale;
                values[t * d..(t + 1) * d].copy_from_slice(&v[row..row + d]);
            }
            let mask = key_padding_mask.map(|m| &m[b * len..(b + 1) * len]);
            let o = prefix_attention(&scores, &values, d, mask)?;
            for t in 0..len {
                let row = (b * len + t) * e + h * d;
                concat[row..row + d].copy_from_slice(&o[t * d..(t + 1) * d]);
            }
        }
    }
    linear(
        &concat,
        batch * len,
        e,
        weights.out_proj_weight,
        Some(weights.out_proj_bias),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::assert_close;
    use alloc::vec::Vec;

    #[test]
    fn prefix_attention_by_hand() {
        // s = [0, ln 3, masked]: o_1 = v_1, o_2 = (1·v_1 + 3·v_2)/4, o_3 = o_2.
        let scores = [0.0, 3.0f64.ln(), 50.0];
        let values = [1.0, 5.0, 100.0];
        let out = prefix_attention(&scores, &values, 1, Some(&[false, false, true])).unwrap();
        assert_close(&out, &[1.0, 4.0, 4.0], 1e-15);
        // Nothing unmasked yet gives zeros.
        let out = prefix_attention(&scores, &values, 1, Some(&[true, false, false])).unwrap();
        assert_eq!(out[0], 0.0);
        assert_close(&out[1..2], &[5.0], 1e-15);
    }

    #[test]
    fn aaren_layer_by_hand() {
        // E = 2, H = 1, identity projections, query (1, 0): s_i = x_i0/√2.
        let eye = [1.0, 0.0, 0.0, 1.0];
        let w_in: Vec<f64> = eye.iter().chain(&eye).chain(&eye).copied().collect();
        let weights = AarenWeights {
            query: &[1.0, 0.0],
            in_proj_weight: &w_in,
            in_proj_bias: &[0.0; 6],
            out_proj_weight: &eye,
            out_proj_bias: &[0.5, 0.0],
        };
        let a = 2.0f64.sqrt() * 3.0f64.ln();
        let x = [0.0, 1.0, a, 2.0];
        let out = aaren_layer(&x, 1, 2, 2, 1, weights, None).unwrap();
        let o2 = [(3.0 * a) / 4.0 + 0.5, (1.0 + 3.0 * 2.0) / 4.0];
        assert_close(&out, &[0.5, 1.0, o2[0], o2[1]], 1e-14);
    }
}
