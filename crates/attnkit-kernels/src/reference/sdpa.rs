//! Scaled dot-product attention with key padding and causal masks.

use alloc::vec;

use super::AttentionResult;
use crate::error::{KernelError, check_len};

/// Dimensions of a scaled dot-product attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpaShape {
    /// Batch size B.
    pub batch: usize,
    /// Heads H.
    pub heads: usize,
    /// Query length Lq.
    pub len_q: usize,
    /// Key/value length Lk.
    pub len_k: usize,
    /// Query/key width D.
    pub d_k: usize,
    /// Value width Dv.
    pub d_v: usize,
}

/// Options of a scaled dot-product attention call.
#[derive(Debug, Clone, Copy, Default)]
pub struct SdpaOptions<'a> {
    /// Multiplier of Q·Kᵀ; `None` means 1/√D.
    pub scale: Option<f64>,
    /// Query i sees keys j <= i only (top-left aligned, as PyTorch's `is_causal`).
    pub causal: bool,
    /// `[B, Lk]`, `true` = ignore this key.
    pub key_padding_mask: Option<&'a [bool]>,
}

/// Naive scaled dot-product attention: softmax(scale·Q·Kᵀ + masks)·V per batch and head.
///
/// - `q`: `[B, H, Lq, D]`, `k`: `[B, H, Lk, D]`, `v`: `[B, H, Lk, Dv]`
/// - returns `output` `[B, H, Lq, Dv]` and `weights` `[B, H, Lq, Lk]`
///
/// A query row whose keys are all masked gets zero weights and a zero output.
///
/// # Errors
///
/// [`KernelError::Length`] if a buffer's length does not match the sizes given.
pub fn scaled_dot_product_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    shape: SdpaShape,
    options: SdpaOptions<'_>,
) -> Result<AttentionResult, KernelError> {
    let SdpaShape {
        batch,
        heads,
        len_q,
        len_k,
        d_k,
        d_v,
    } = shape;
    check_len("query", q, batch * heads * len_q * d_k)?;
    check_len("key", k, batch * heads * len_k * d_k)?;
    check_len("value", v, batch * heads * len_k * d_v)?;
    if let Some(mask) = options.key_padding_mask {
        check_len("key_padding_mask", mask, batch * len_k)?;
    }
    let scale = options
        .scale
        .unwrap_or_else(|| 1.0 / crate::math::sqrt(d_k as f64));
    let mut output = vec![0.0; batch * heads * len_q * d_v];
    let mut weights = vec![0.0; batch * heads * len_q * len_k];
    let mut masked = vec![false; len_k];
    for b in 0..batch {
        for h in 0..heads {
            let bh = b * heads + h;
            let qs = &q[bh * len_q * d_k..(bh + 1) * len_q * d_k];
            let ks = &k[bh * len_k * d_k..(bh + 1) * len_k * d_k];
            let vs = &v[bh * len_k * d_v..(bh + 1) * len_k * d_v];
            for i in 0..len_q {
                let row = &mut weights[(bh * len_q + i) * len_k..(bh * len_q + i + 1) * len_k];
                for j in 0..len_k {
                    let mut s = 0.0;
                    for p in 0..d_k {
                        s += qs[i * d_k + p] * ks[j * d_k + p];
                    }
                    row[j] = s * scale;
                    masked[j] = (options.causal && j > i)
                        || options.key_padding_mask.is_some_and(|m| m[b * len_k + j]);
                }
                crate::softmax::masked_softmax_in_place(row, &masked)?;
                let out = &mut output[(bh * len_q + i) * d_v..(bh * len_q + i + 1) * d_v];
                for j in 0..len_k {
                    for p in 0..d_v {
                        out[p] += row[j] * vs[j * d_v + p];
                    }
                }
            }
        }
    }
    Ok(AttentionResult { output, weights })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::assert_close;
    use alloc::string::ToString;

    #[test]
    fn sdpa_by_hand_with_masks() {
        // B = H = 1, Lq = 2, Lk = 3, D = 1, scale 1: q = [1, 2], k = [0, 1, 2], v = [10, 20, 30].
        let q = [1.0, 2.0];
        let k = [0.0, 1.0, 2.0];
        let v = [10.0, 20.0, 30.0];
        let shape = SdpaShape {
            batch: 1,
            heads: 1,
            len_q: 2,
            len_k: 3,
            d_k: 1,
            d_v: 1,
        };
        let opts = SdpaOptions {
            scale: Some(1.0),
            ..Default::default()
        };
        // Causal: query 0 sees key 0 only -> 10; query 1 sees keys 0,1 with scores [0, 2]:
        // weights [1/(1+e²), e²/(1+e²)] = [0.11920, 0.88080] -> 10·0.1192 + 20·0.8808.
        let r = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            shape,
            SdpaOptions {
                causal: true,
                ..opts
            },
        )
        .unwrap();
        let w = 1.0 / (1.0 + 2.0f64.exp());
        assert_close(&r.weights, &[1.0, 0.0, 0.0, w, 1.0 - w, 0.0], 1e-15);
        assert_close(&r.output, &[10.0, 10.0 * w + 20.0 * (1.0 - w)], 1e-12);
        // Padding the last key: query 0 scores [0, 1] -> weights [1/(1+e), e/(1+e)].
        let mask = [false, false, true];
        let r = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            shape,
            SdpaOptions {
                key_padding_mask: Some(&mask),
                ..opts
            },
        )
        .unwrap();
        let w0 = 1.0 / (1.0 + 1.0f64.exp());
        assert_close(&r.weights[..3], &[w0, 1.0 - w0, 0.0], 1e-15);
        // Everything masked: zeros, not NaN.
        let all = [true, true, true];
        let r = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            shape,
            SdpaOptions {
                key_padding_mask: Some(&all),
                ..opts
            },
        )
        .unwrap();
        assert_eq!(r.output, [0.0, 0.0]);
        assert_eq!(r.weights, [0.0; 6]);
    }

    #[test]
    fn sdpa_rejects_wrong_lengths() {
        let shape = SdpaShape {
            batch: 1,
            heads: 1,
            len_q: 2,
            len_k: 2,
            d_k: 2,
            d_v: 2,
        };
        let err = scaled_dot_product_attention(
            &[0.0; 4],
            &[0.0; 3],
            &[0.0; 4],
            shape,
            SdpaOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "`key`: expected 4 elements, got 3");
    }
}
