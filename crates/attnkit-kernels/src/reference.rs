//! The reference implementation: attention written out loop by loop in `f64`.
//!
//! This is the oracle the Burn modules are tested against. It is deliberately naive —
//! no blocking, no fusion, no tricks beyond the max-subtracting softmax — so that each
//! line can be checked against the formula by eye. Matrices are row-major slices with
//! their dimensions passed alongside; every length is checked and a mismatch is an
//! error naming the buffer, never a panic.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{KernelError, check_len};
use crate::rng::SplitMix64;
use crate::softmax::softmax_in_place;

/// `a[m,k] · b[k,n]`.
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

/// Output and attention weights of an attention call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionResult {
    /// The attended values.
    pub output: Vec<f64>,
    /// The attention weights (rows sum to 1, or are all 0 where every key is masked).
    pub weights: Vec<f64>,
}

/// Single-head self-attention from scratch (the numpy exercise this crate answers):
/// Q = X·W_q, K = X·W_k, V = X·W_v, A = softmax(Q·Kᵀ / √dims), output = (A·V)·W_o.
///
/// ```
/// use attnkit_kernels::reference::SelfAttention;
/// let layer = SelfAttention::new(4, 0).unwrap();
/// let x = vec![0.5; 3 * 4]; // n = 3 tokens of 4 dims
/// let out = layer.forward(&x, 3).unwrap();
/// assert_eq!(out.len(), 3 * 4);
/// ```
#[derive(Debug, Clone)]
pub struct SelfAttention {
    dims: usize,
    /// `[dims, dims]`, multiplied on the right: Q = X·W_q.
    pub w_q: Vec<f64>,
    /// `[dims, dims]`.
    pub w_k: Vec<f64>,
    /// `[dims, dims]`.
    pub w_v: Vec<f64>,
    /// `[dims, dims]`.
    pub w_o: Vec<f64>,
}

impl SelfAttention {
    /// Weights W_q, W_k, W_v, W_o drawn in that order from N(0, 1) by a generator seeded
    /// with `seed`.
    pub fn new(dims: usize, seed: u64) -> Result<Self, KernelError> {
        if dims == 0 {
            return Err(KernelError::Invalid {
                what: "dims",
                why: "must be at least 1",
            });
        }
        let mut rng = SplitMix64::new(seed);
        let mut draw = || {
            let mut w = vec![0.0; dims * dims];
            rng.fill_normal(&mut w, 0.0, 1.0);
            w
        };
        let (w_q, w_k, w_v, w_o) = (draw(), draw(), draw(), draw());
        Ok(Self {
            dims,
            w_q,
            w_k,
            w_v,
            w_o,
        })
    }

    /// A layer with the given `[dims, dims]` weights.
    pub fn from_weights(
        dims: usize,
        w_q: Vec<f64>,
        w_k: Vec<f64>,
        w_v: Vec<f64>,
        w_o: Vec<f64>,
    ) -> Result<Self, KernelError> {
        for (what, w) in [("w_q", &w_q), ("w_k", &w_k), ("w_v", &w_v), ("w_o", &w_o)] {
            check_len(what, w, dims * dims)?;
        }
        Ok(Self {
            dims,
            w_q,
            w_k,
            w_v,
            w_o,
        })
    }

    /// The model width.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Forward pass.
    ///
    /// - `x`: `(n, dims)` row-major
    /// - returns: `(n, dims)`
    pub fn forward(&self, x: &[f64], n: usize) -> Result<Vec<f64>, KernelError> {
        Ok(self.forward_with_weights(x, n)?.output)
    }

    /// Forward pass that also returns the `(n, n)` attention weights.
    pub fn forward_with_weights(
        &self,
        x: &[f64],
        n: usize,
    ) -> Result<AttentionResult, KernelError> {
        let d = self.dims;
        check_len("x", x, n * d)?;
        let q = matmul(x, &self.w_q, n, d, d)?;
        let k = matmul(x, &self.w_k, n, d, d)?;
        let v = matmul(x, &self.w_v, n, d, d)?;
        let scale = 1.0 / crate::math::sqrt(d as f64);
        let mut weights = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..d {
                    s += q[i * d + p] * k[j * d + p];
                }
                weights[i * n + j] = s * scale;
            }
            softmax_in_place(&mut weights[i * n..(i + 1) * n]);
        }
        let attended = matmul(&weights, &v, n, n, d)?;
        let output = matmul(&attended, &self.w_o, n, d, d)?;
        Ok(AttentionResult { output, weights })
    }
}

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

/// Softmax attention of one fixed query over every prefix, computed directly: for each
/// position t a fresh two-pass softmax over the unmasked scores s_i, i ≤ t. O(L²·D), no
/// recurrence and no scan — the definition the Aaren forms are checked against.
///
/// - `scores`: `[L]`; `values`: `[L, D]`; `mask`: `[L]`, `true` = ignore this token
/// - returns `[L, D]`: o_t, zeros where no token up to t is unmasked
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

/// Weights of an Aaren layer (SPEC §9).
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

/// The Aaren layer of SPEC §9, directly: q = W_q·query + b_q, k_i = W_k·x_i + b_k,
/// v_i = W_v·x_i + b_v, per head s_i = q_h·k_ih/√d and [`prefix_attention`], heads
/// concatenated, then the output projection.
///
/// - `x`: `[B, L, E]`; `key_padding_mask`: `[B, L]`, `true` = ignore
/// - returns `[B, L, E]`
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
    use alloc::string::ToString;

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
        }
    }

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
    fn self_attention_by_hand() {
        // dims = 2, identity W_q, W_k, W_v, W_o; x = [[1,0],[0,1]].
        // Q = K = V = x, scores = x·xᵀ/√2 = [[1/√2, 0], [0, 1/√2]].
        // Row 0: softmax([0.70711, 0]) = [0.66976, 0.33024] (1/(1+e^-0.70711)); output row 0 is the same.
        let id = vec![1.0, 0.0, 0.0, 1.0];
        let layer = SelfAttention::from_weights(2, id.clone(), id.clone(), id.clone(), id).unwrap();
        let r = layer
            .forward_with_weights(&[1.0, 0.0, 0.0, 1.0], 2)
            .unwrap();
        let a = 1.0 / (1.0 + (-(0.5f64).sqrt()).exp());
        assert_close(&r.weights, &[a, 1.0 - a, 1.0 - a, a], 1e-15);
        assert_close(&r.output, &[a, 1.0 - a, 1.0 - a, a], 1e-15);
        assert!((a - 0.669_761_549_326_656_9).abs() < 1e-15);
    }

    #[test]
    fn self_attention_w_o_is_applied_last() {
        // With W_o = 2·I the output doubles and the weights do not change.
        let id = vec![1.0, 0.0, 0.0, 1.0];
        let two = vec![2.0, 0.0, 0.0, 2.0];
        let base = SelfAttention::from_weights(2, id.clone(), id.clone(), id.clone(), id.clone())
            .unwrap()
            .forward_with_weights(&[1.0, 2.0, 3.0, -1.0], 2)
            .unwrap();
        let doubled = SelfAttention::from_weights(2, id.clone(), id.clone(), id, two)
            .unwrap()
            .forward_with_weights(&[1.0, 2.0, 3.0, -1.0], 2)
            .unwrap();
        assert_eq!(base.weights, doubled.weights);
        let want: Vec<f64> = base.output.iter().map(|x| 2.0 * x).collect();
        assert_close(&doubled.output, &want, 1e-15);
    }

    #[test]
    fn seeded_weights_are_standard_normal_and_reproducible() {
        let a = SelfAttention::new(64, 9).unwrap();
        let b = SelfAttention::new(64, 9).unwrap();
        assert_eq!(a.w_q, b.w_q);
        assert_ne!(a.w_q, a.w_k);
        let all: Vec<f64> = [&a.w_q, &a.w_k, &a.w_v, &a.w_o]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / all.len() as f64;
        // 16384 draws: standard errors 0.008 (mean) and 0.011 (variance); 5 of them allowed.
        assert!(
            mean.abs() < 0.04 && (var - 1.0).abs() < 0.06,
            "mean {mean} var {var}"
        );
    }

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

    #[test]
    fn layer_norm_by_hand() {
        // Row [1, 3]: mean 2, var 1 -> [-1, 1]/sqrt(1 + eps).
        let y = layer_norm(&[1.0, 3.0], 1, 2, &[1.0, 1.0], &[0.0, 0.0], 0.0).unwrap();
        assert_close(&y, &[-1.0, 1.0], 1e-15);
    }
}
