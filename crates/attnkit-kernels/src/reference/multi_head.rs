//! Multi-head attention in `torch.nn.MultiheadAttention`'s layout.

use alloc::vec;

use super::AttentionResult;
use super::linalg::linear;
use super::sdpa::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
use crate::error::{KernelError, check_len};

/// Dimensions of a multi-head attention call (batch first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MhaShape {
    /// Batch size B.
    pub batch: usize,
    /// Query length Lq.
    pub len_q: usize,
    /// Key/value length Lk.
    pub len_k: usize,
    /// Embedding width E.
    pub embed: usize,
    /// Heads H (must divide E).
    pub heads: usize,
}

/// Weights of multi-head attention in `torch.nn.MultiheadAttention`'s layout.
#[derive(Debug, Clone, Copy)]
pub struct MhaWeights<'a> {
    /// `[3E, E]`: the rows of W_q, then W_k, then W_v.
    pub in_proj_weight: &'a [f64],
    /// `[3E]`.
    pub in_proj_bias: &'a [f64],
    /// `[E, E]`.
    pub out_proj_weight: &'a [f64],
    /// `[E]`.
    pub out_proj_bias: &'a [f64],
}

/// Multi-head attention as `torch.nn.MultiheadAttention(batch_first=True)` computes it.
///
/// - `query`: `[B, Lq, E]`, `key`, `value`: `[B, Lk, E]`, `key_padding_mask`: `[B, Lk]`
/// - returns `output` `[B, Lq, E]` and `weights` `[B, Lq, Lk]` averaged over heads
///
/// # Errors
///
/// [`KernelError::Invalid`] if the head count is 0 or does not divide E;
/// [`KernelError::Length`] if a buffer's length does not match the sizes given.
pub fn multi_head_attention(
    query: &[f64],
    key: &[f64],
    value: &[f64],
    shape: MhaShape,
    weights: MhaWeights<'_>,
    key_padding_mask: Option<&[bool]>,
    causal: bool,
) -> Result<AttentionResult, KernelError> {
    let MhaShape {
        batch,
        len_q,
        len_k,
        embed: e,
        heads,
    } = shape;
    if heads == 0 || e % heads != 0 {
        return Err(KernelError::Invalid {
            what: "heads",
            why: "must be at least 1 and divide the embedding width",
        });
    }
    check_len("in_proj_weight", weights.in_proj_weight, 3 * e * e)?;
    check_len("in_proj_bias", weights.in_proj_bias, 3 * e)?;
    let (wq, rest) = weights.in_proj_weight.split_at(e * e);
    let (wk, wv) = rest.split_at(e * e);
    let (bq, rest) = weights.in_proj_bias.split_at(e);
    let (bk, bv) = rest.split_at(e);
    let q = linear(query, batch * len_q, e, wq, Some(bq), e)?;
    let k = linear(key, batch * len_k, e, wk, Some(bk), e)?;
    let v = linear(value, batch * len_k, e, wv, Some(bv), e)?;
    let dh = e / heads;
    let split = |x: &[f64], len: usize| {
        // [B, L, H·dh] -> [B, H, L, dh]
        let mut out = vec![0.0; x.len()];
        for b in 0..batch {
            for l in 0..len {
                for h in 0..heads {
                    for p in 0..dh {
                        out[((b * heads + h) * len + l) * dh + p] =
                            x[(b * len + l) * e + h * dh + p];
                    }
                }
            }
        }
        out
    };
    let attn = scaled_dot_product_attention(
        &split(&q, len_q),
        &split(&k, len_k),
        &split(&v, len_k),
        SdpaShape {
            batch,
            heads,
            len_q,
            len_k,
            d_k: dh,
            d_v: dh,
        },
        SdpaOptions {
            scale: None,
            causal,
            key_padding_mask,
        },
    )?;
    // Combine heads: [B, H, Lq, dh] -> [B, Lq, E].
    let mut combined = vec![0.0; batch * len_q * e];
    for b in 0..batch {
        for h in 0..heads {
            for l in 0..len_q {
                for p in 0..dh {
                    combined[(b * len_q + l) * e + h * dh + p] =
                        attn.output[((b * heads + h) * len_q + l) * dh + p];
                }
            }
        }
    }
    let output = linear(
        &combined,
        batch * len_q,
        e,
        weights.out_proj_weight,
        Some(weights.out_proj_bias),
        e,
    )?;
    let mut mean_weights = vec![0.0; batch * len_q * len_k];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..len_q * len_k {
                mean_weights[b * len_q * len_k + i] +=
                    attn.weights[(b * heads + h) * len_q * len_k + i] / heads as f64;
            }
        }
    }
    Ok(AttentionResult {
        output,
        weights: mean_weights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::assert_close;

    #[test]
    fn mha_with_one_head_and_identity_weights_is_sdpa() {
        // E = 2, H = 1, identity projections, zero biases: MHA reduces to SDPA with scale 1/√2.
        let e = 2;
        let mut in_w = vec![0.0; 3 * e * e];
        for blk in 0..3 {
            in_w[blk * 4] = 1.0;
            in_w[blk * 4 + 3] = 1.0;
        }
        let out_w = [1.0, 0.0, 0.0, 1.0];
        let x = [0.3, -1.2, 2.0, 0.5, -0.7, 0.1];
        let mha = multi_head_attention(
            &x,
            &x,
            &x,
            MhaShape {
                batch: 1,
                len_q: 3,
                len_k: 3,
                embed: e,
                heads: 1,
            },
            MhaWeights {
                in_proj_weight: &in_w,
                in_proj_bias: &[0.0; 6],
                out_proj_weight: &out_w,
                out_proj_bias: &[0.0; 2],
            },
            None,
            false,
        )
        .unwrap();
        let sdpa = scaled_dot_product_attention(
            &x,
            &x,
            &x,
            SdpaShape {
                batch: 1,
                heads: 1,
                len_q: 3,
                len_k: 3,
                d_k: 2,
                d_v: 2,
            },
            SdpaOptions::default(),
        )
        .unwrap();
        assert_close(&mha.output, &sdpa.output, 1e-14);
        assert_close(&mha.weights, &sdpa.weights, 1e-15);
    }
}
