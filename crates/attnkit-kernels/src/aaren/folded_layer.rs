//! A whole Aaren layer streamed token by token, with its learned query folded into the
//! key projection.

use super::state::{output, update};
use super::stream::AarenStream;
use crate::error::{KernelError, check_len};
use crate::real::{Real, dot};

/// The weights of an Aaren layer folded for streaming.
///
/// With an input-independent query, the score of head h is a linear function of the
/// token: s_h = q_h·(W_k,h·x + b_k,h)/√d = (W_k,hᵀ·q_h/√d)·x + q_h·b_k,h/√d. Folding the
/// query into the key projection once ([`fold_query`]) leaves one dot product of length
/// E per head and token instead of an E×E key projection.
#[derive(Debug, Clone, Copy)]
pub struct AarenLayerWeights<'w, T> {
    /// Embedding width E.
    pub embed: usize,
    /// Heads H (divides E).
    pub heads: usize,
    /// `[H, E]`: W_k,hᵀ·q_h/√d per head, from [`fold_query`].
    pub key_query: &'w [T],
    /// `[H]`: q_h·b_k,h/√d, from [`fold_query`].
    pub score_bias: &'w [T],
    /// `[E, E]`: W_v (rows 2E..3E of `in_proj_weight`).
    pub value_weight: &'w [T],
    /// `[E]`: b_v.
    pub value_bias: &'w [T],
    /// `[E, E]`: `out_proj.weight`.
    pub out_weight: &'w [T],
    /// `[E]`: `out_proj.bias`.
    pub out_bias: &'w [T],
}

/// Folds the learned query into the key projection (see [`AarenLayerWeights`]).
///
/// - `query`: `[E]`; `in_proj_weight`: `[3E, E]`; `in_proj_bias`: `[3E]`
/// - writes `key_query` `[H, E]` and `score_bias` `[H]`
///
/// # Errors
///
/// [`KernelError::Invalid`] if `heads` is 0 or does not divide `embed`;
/// [`KernelError::Length`] for a buffer of the wrong length.
pub fn fold_query<T: Real>(
    embed: usize,
    heads: usize,
    query: &[T],
    in_proj_weight: &[T],
    in_proj_bias: &[T],
    key_query: &mut [T],
    score_bias: &mut [T],
) -> Result<(), KernelError> {
    let e = embed;
    if heads == 0 || e % heads != 0 {
        return Err(KernelError::Invalid {
            what: "heads",
            why: "must be at least 1 and divide the embedding width",
        });
    }
    check_len("query", query, e)?;
    check_len("in_proj_weight", in_proj_weight, 3 * e * e)?;
    check_len("in_proj_bias", in_proj_bias, 3 * e)?;
    check_len("key_query", key_query, heads * e)?;
    check_len("score_bias", score_bias, heads)?;
    let d = e / heads;
    let inv_sqrt_d = T::ONE / T::from_f64(d as f64).sqrt();
    for h in 0..heads {
        let kq = &mut key_query[h * e..(h + 1) * e];
        kq.iter_mut().for_each(|x| *x = T::ZERO);
        let mut bias = T::ZERO;
        for i in 0..d {
            let row = h * d + i;
            // q = W_q·query + b_q, row by row.
            let mut q = in_proj_bias[row];
            for j in 0..e {
                q += in_proj_weight[row * e + j] * query[j];
            }
            let k_row = &in_proj_weight[(e + row) * e..(e + row + 1) * e];
            for j in 0..e {
                kq[j] += q * k_row[j];
            }
            bias += q * in_proj_bias[e + row];
        }
        kq.iter_mut().for_each(|x| *x *= inv_sqrt_d);
        score_bias[h] = bias * inv_sqrt_d;
    }
    Ok(())
}

/// One streaming step of a whole Aaren layer: a token in, the layer's output out.
///
/// - `x`: `[E]`, the token; `masked`: treat it as padding (the state does not change)
/// - `scratch`: `[2E]`, working space (values, then the concatenated head outputs)
/// - `out`: `[E]`, out_proj(o_k)
///
/// No allocation: the state lives in `stream`, the weights in `weights`.
///
/// # Errors
///
/// [`KernelError::Invalid`] if the weights' widths disagree with the stream's;
/// [`KernelError::Length`] for a buffer of the wrong length.
pub fn step_layer<T: Real>(
    weights: &AarenLayerWeights<'_, T>,
    stream: &mut AarenStream<'_, T>,
    x: &[T],
    masked: bool,
    scratch: &mut [T],
    out: &mut [T],
) -> Result<(), KernelError> {
    let (e, h) = (weights.embed, weights.heads);
    if stream.heads != h || stream.heads * stream.d_head != e {
        return Err(KernelError::Invalid {
            what: "stream",
            why: "heads and head width must match the layer's",
        });
    }
    check_len("x", x, e)?;
    check_len("scratch", scratch, 2 * e)?;
    check_len("out", out, e)?;
    check_len("key_query", weights.key_query, h * e)?;
    check_len("score_bias", weights.score_bias, h)?;
    check_len("value_weight", weights.value_weight, e * e)?;
    check_len("value_bias", weights.value_bias, e)?;
    check_len("out_weight", weights.out_weight, e * e)?;
    check_len("out_bias", weights.out_bias, e)?;
    let (values, heads_out) = scratch.split_at_mut(e);
    let d = stream.d_head;
    if !masked {
        for (r, v) in values.iter_mut().enumerate() {
            *v = weights.value_bias[r] + dot(&weights.value_weight[r * e..(r + 1) * e], x);
        }
    }
    for (hd, state) in stream.state.chunks_exact_mut(d + 2).enumerate() {
        if !masked {
            let kq = &weights.key_query[hd * e..(hd + 1) * e];
            let s = weights.score_bias[hd] + dot(kq, x);
            update(state, s, &values[hd * d..(hd + 1) * d]);
        }
        output(state, &mut heads_out[hd * d..(hd + 1) * d]);
    }
    for (r, o) in out.iter_mut().enumerate() {
        *o = weights.out_bias[r] + dot(&weights.out_weight[r * e..(r + 1) * e], heads_out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aaren::{direct_softmax as direct, state_len};

    /// The folded streaming step against the layer's definition computed
    /// directly in f64: q = W_q·query + b_q, k, v projections, per-head prefix softmax,
    /// output projection.
    #[test]
    fn layer_step_matches_the_definition() {
        const E: usize = 4;
        const H: usize = 2;
        const L: usize = 6;
        let mut g = crate::rng::SplitMix64::new(5);
        let mut draw = |n: usize, out: &mut [f64]| {
            for x in out.iter_mut().take(n) {
                *x = g.normal();
            }
        };
        let mut query = [0.0; E];
        let mut w_in = [0.0; 3 * E * E];
        let mut b_in = [0.0; 3 * E];
        let mut w_o = [0.0; E * E];
        let mut b_o = [0.0; E];
        let mut xs = [0.0; L * E];
        draw(E, &mut query);
        draw(3 * E * E, &mut w_in);
        draw(3 * E, &mut b_in);
        draw(E * E, &mut w_o);
        draw(E, &mut b_o);
        draw(L * E, &mut xs);
        let masked = [false, true, false, false, true, false];
        let mut kq = [0.0; H * E];
        let mut sb = [0.0; H];
        fold_query(E, H, &query, &w_in, &b_in, &mut kq, &mut sb).unwrap();
        let weights = AarenLayerWeights {
            embed: E,
            heads: H,
            key_query: &kq,
            score_bias: &sb,
            value_weight: &w_in[2 * E * E..],
            value_bias: &b_in[2 * E..],
            out_weight: &w_o,
            out_bias: &b_o,
        };
        let mut buf = [0.0; state_len(H, E / H)];
        let mut stream = AarenStream::new(H, E / H, &mut buf).unwrap();
        let mut scratch = [0.0; 2 * E];
        let mut out = [0.0; E];
        let lin = |w: &[f64], b: &[f64], x: &[f64], r: usize| {
            (0..E).map(|j| w[r * E + j] * x[j]).sum::<f64>() + b[r]
        };
        let q: [f64; E] = core::array::from_fn(|r| lin(&w_in, &b_in, &query, r));
        let d = E / H;
        for t in 0..L {
            step_layer(
                &weights,
                &mut stream,
                &xs[t * E..(t + 1) * E],
                masked[t],
                &mut scratch,
                &mut out,
            )
            .unwrap();
            // Definition: per head, softmax over unmasked tokens <= t.
            let mut concat = [0.0; E];
            for h in 0..H {
                let mut scores = [f64::NEG_INFINITY; L];
                let mut values = [0.0; L * 4];
                for i in 0..=t {
                    let x = &xs[i * E..(i + 1) * E];
                    let k: [f64; E] =
                        core::array::from_fn(|r| lin(&w_in[E * E..], &b_in[E..], x, r));
                    let v: [f64; E] =
                        core::array::from_fn(|r| lin(&w_in[2 * E * E..], &b_in[2 * E..], x, r));
                    if !masked[i] {
                        scores[i] = (0..d).map(|p| q[h * d + p] * k[h * d + p]).sum::<f64>()
                            / (d as f64).sqrt();
                    }
                    values[i * d..(i + 1) * d].copy_from_slice(&v[h * d..(h + 1) * d]);
                }
                if scores[..=t].iter().all(|s| *s == f64::NEG_INFINITY) {
                    continue;
                }
                let o = direct(&scores[..=t], &values[..(t + 1) * d], d);
                concat[h * d..(h + 1) * d].copy_from_slice(&o[..d]);
            }
            for (r, got) in out.iter().enumerate() {
                let want = lin(&w_o, &b_o, &concat, r);
                assert!((got - want).abs() < 1e-12, "t {t}, r {r}: {got} vs {want}");
            }
        }
    }
}
