//! Attention as an RNN (Aaren; Feng et al. 2024, arXiv 2405.13956): softmax attention
//! of one fixed query over a growing prefix, computed in constant memory.
//!
//! For scores s_1..s_k and values v_1..v_k, the output o_k = Σ_i e^(s_i) v_i / Σ_i e^(s_i)
//! is carried as a state (m, c, a) per head: the running maximum m_k = max_i s_i, the
//! rescaled denominator c_k = Σ_i e^(s_i − m_k) and the rescaled numerator
//! a_k = Σ_i e^(s_i − m_k) v_i, so that o_k = a_k / c_k. One step is
//!
//! ```text
//! m_k = max(m_{k−1}, s_k)
//! a_k = a_{k−1}·e^(m_{k−1} − m_k) + v_k·e^(s_k − m_k)
//! c_k = c_{k−1}·e^(m_{k−1} − m_k) + e^(s_k − m_k)
//! ```
//!
//! with m_0 = −inf, c_0 = 0, a_0 = 0 — not m_0 = 0: with 0, a prefix of very negative
//! scores gives e^(s − 0) = 0 for every term and o = 0/0. The same triple is the element
//! of an associative scan: a token is the leaf (s, 1, v) and
//!
//! ```text
//! (m_A, w_A, u_A) ⊕ (m_B, w_B, u_B) = (M, w_A·e^(m_A−M) + w_B·e^(m_B−M), u_A·e^(m_A−M) + u_B·e^(m_B−M)),
//! M = max(m_A, m_B)
//! ```
//!
//! whose identity is (−inf, 0, 0). The step above is `state ⊕ leaf`. Where M = −inf
//! (both sides empty) the exponent −inf − (−inf) is NaN; [`combine`] returns the
//! identity there instead.
//!
//! Everything here works in caller-provided slices: no allocation, usable on `no_std`
//! targets. One head's state is `d_head + 2` numbers laid out `[m, c, a_0 .. a_{d−1}]`;
//! a layer of `heads` heads needs [`state_len`]`(heads, d_head)` = heads·(d_head + 2).

use crate::error::{KernelError, check_len};
use crate::real::{Real, dot};

/// Numbers of state per layer: heads·(d_head + 2).
pub const fn state_len(heads: usize, d_head: usize) -> usize {
    heads * (d_head + 2)
}

/// Sets one head's state (or a scan element) to the identity (m, c, a) = (−inf, 0, 0).
pub fn reset<T: Real>(element: &mut [T]) {
    element[0] = T::NEG_INFINITY;
    for x in element[1..].iter_mut() {
        *x = T::ZERO;
    }
}

/// `acc ← acc ⊕ right` for elements laid out `[m, c, a..]` of equal length.
///
/// Exact for every input the scan can produce: −inf maxima (empty prefixes) give the
/// identity, and no exponent is ever positive, so nothing overflows.
pub fn combine<T: Real>(acc: &mut [T], right: &[T]) {
    let (m_a, m_b) = (acc[0], right[0]);
    let m = if m_b > m_a { m_b } else { m_a };
    if m == T::NEG_INFINITY {
        // Both sides empty: the identity (acc already is, up to the right's zeros).
        return;
    }
    // e^(−inf − M) = 0 for an empty side; M finite here.
    let alpha = (m_a - m).exp();
    let beta = (m_b - m).exp();
    acc[0] = m;
    for (x, y) in acc[1..].iter_mut().zip(&right[1..]) {
        *x = *x * alpha + *y * beta;
    }
}

/// The new maximum m = max(m_prev, s) and the factors e^(m_prev − m) for the old sums and
/// e^(s − m) for the new token; `None` while both are −inf (nothing to add).
#[inline]
fn rescale<T: Real>(m_prev: T, score: T) -> Option<(T, T, T)> {
    let m = if score > m_prev { score } else { m_prev };
    if m == T::NEG_INFINITY {
        return None;
    }
    Some((m, (m_prev - m).exp(), (score - m).exp()))
}

/// One recurrent step for one head: `state ← state ⊕ (score, 1, value)`.
///
/// A score of −inf (a masked token) leaves the state unchanged.
pub fn update<T: Real>(state: &mut [T], score: T, value: &[T]) {
    debug_assert_eq!(state.len(), value.len() + 2);
    let Some((m, alpha, beta)) = rescale(state[0], score) else {
        return;
    };
    state[0] = m;
    state[1] = state[1] * alpha + beta;
    for (a, v) in state[2..].iter_mut().zip(value) {
        *a = *a * alpha + *v * beta;
    }
}

/// The head's output o = a / c, or zeros while no token has been seen (c = 0).
pub fn output<T: Real>(state: &[T], out: &mut [T]) {
    let c = state[1];
    if c == T::ZERO {
        out.iter_mut().for_each(|o| *o = T::ZERO);
        return;
    }
    for (o, a) in out.iter_mut().zip(&state[2..]) {
        *o = *a / c;
    }
}

/// A whole sequence for one head in one pass: for each token t,
/// `state ← state ⊕ (scores[t], 1, values[t])` and `out[t] = a / c` ([`output`]).
///
/// `state` (`d + 2` numbers: m, c, a) continues from wherever it is and ends as the
/// state after the last token; a score of −inf (a masked token) leaves it unchanged.
/// `values` and `out` are `[L, d]` row-major. This is the sequential scan a CPU runs
/// best: one read of each score and value, one write of each output, no temporaries.
///
/// ```
/// use attnkit_kernels::aaren::{reset, scan_head};
/// let mut state = [0.0f32; 3];
/// reset(&mut state);
/// let mut out = [0.0f32; 2];
/// scan_head(&[0.0, 0.0], &[1.0, 3.0], &mut state, &mut out).unwrap();
/// assert_eq!(out, [1.0, 2.0]); // equal scores: the running mean
/// ```
pub fn scan_head<T: Real>(
    scores: &[T],
    values: &[T],
    state: &mut [T],
    out: &mut [T],
) -> Result<(), KernelError> {
    if state.len() < 2 {
        return Err(KernelError::Length {
            what: "state",
            expected: 3,
            got: state.len(),
        });
    }
    let d = state.len() - 2;
    let l = scores.len();
    for (what, buf) in [("values", values.len()), ("out", out.len())] {
        if buf != l * d {
            return Err(KernelError::Length {
                what,
                expected: l * d,
                got: buf,
            });
        }
    }
    if d == 0 {
        return Ok(());
    }
    for ((&s, v), o) in scores
        .iter()
        .zip(values.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
    {
        update(state, s, v);
        output(state, o);
    }
    Ok(())
}

/// Numbers of one head's compensated state: `[m, c, a_0..a_{d−1}, c', a'_0..a'_{d−1}]`,
/// 2·d + 3.
pub const fn compensated_head_len(d_head: usize) -> usize {
    2 * d_head + 3
}

/// Kahan step: `sum + x`, carrying the rounding error of every addition in `comp`.
#[inline]
fn kahan_add<T: Real>(sum: &mut T, comp: &mut T, x: T) {
    let y = x - *comp;
    let t = *sum + y;
    *comp = (t - *sum) - y;
    *sum = t;
}

/// [`update`] with compensated (Kahan) sums, for long sequential streams.
///
/// Adding e^(s − m)·v to a running sum that is much larger loses the addend's low bits
/// at every step; over 10^5–10^6 tokens of which most carry small weights, those
/// losses add up to tens or hundreds of ulps (measured by `attnkit aaren compare`).
/// The compensation terms c', a' keep the lost low parts and feed them back, so the
/// error stays at a few ulps whatever the length, for twice the state. Layout:
/// [`compensated_head_len`]`(d)` numbers, reset with [`reset`].
pub fn update_compensated<T: Real>(state: &mut [T], score: T, value: &[T]) {
    let d = value.len();
    debug_assert_eq!(state.len(), compensated_head_len(d));
    let Some((m, alpha, beta)) = rescale(state[0], score) else {
        return;
    };
    state[0] = m;
    let (sums, comps) = state[1..].split_at_mut(d + 1);
    // Rescaling multiplies sum and compensation alike (a multiplication is exact to
    // half an ulp; there is no long chain of them).
    if alpha != T::ONE {
        sums.iter_mut().for_each(|x| *x *= alpha);
        comps.iter_mut().for_each(|x| *x *= alpha);
    }
    kahan_add(&mut sums[0], &mut comps[0], beta);
    for ((a, comp), v) in sums[1..].iter_mut().zip(&mut comps[1..]).zip(value) {
        kahan_add(a, comp, *v * beta);
    }
}

/// The output of a compensated head state: (a − a′)/(c − c′), zeros while empty.
pub fn output_compensated<T: Real>(state: &[T], out: &mut [T]) {
    let d = out.len();
    debug_assert_eq!(state.len(), compensated_head_len(d));
    let c = state[1] - state[d + 2];
    if state[1] == T::ZERO {
        out.iter_mut().for_each(|o| *o = T::ZERO);
        return;
    }
    for (j, o) in out.iter_mut().enumerate() {
        *o = (state[2 + j] - state[d + 3 + j]) / c;
    }
}

/// A constant-memory Aaren stream over a caller-provided state buffer.
///
/// ```
/// use attnkit_kernels::aaren::{AarenStream, state_len};
/// let (heads, d_head) = (2, 3);
/// let mut buf = [0.0f32; state_len(2, 3)];
/// let mut stream = AarenStream::new(heads, d_head, &mut buf).unwrap();
/// let mut out = [0.0f32; 6];
/// // Token 1: scores per head, values [heads·d_head].
/// stream.push(&[0.5, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut out).unwrap();
/// assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]); // one token: o = v
/// ```
#[derive(Debug)]
pub struct AarenStream<'s, T> {
    heads: usize,
    d_head: usize,
    state: &'s mut [T],
}

impl<'s, T: Real> AarenStream<'s, T> {
    /// A stream over `state`, which must hold exactly [`state_len`]`(heads, d_head)`
    /// numbers; it is reset to the empty prefix.
    pub fn new(heads: usize, d_head: usize, state: &'s mut [T]) -> Result<Self, KernelError> {
        let mut s = Self::resume(heads, d_head, state)?;
        s.reset();
        Ok(s)
    }

    /// A stream over a `state` buffer that already holds a state (from an earlier
    /// stream over it); nothing is reset.
    pub fn resume(heads: usize, d_head: usize, state: &'s mut [T]) -> Result<Self, KernelError> {
        if heads == 0 || d_head == 0 {
            return Err(KernelError::Invalid {
                what: "heads, d_head",
                why: "must be at least 1",
            });
        }
        check_len("state", state, state_len(heads, d_head))?;
        Ok(Self {
            heads,
            d_head,
            state,
        })
    }

    /// Forgets every token seen.
    pub fn reset(&mut self) {
        for head in self.state.chunks_exact_mut(self.d_head + 2) {
            reset(head);
        }
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Width of a head.
    pub fn d_head(&self) -> usize {
        self.d_head
    }

    /// The raw state `[heads][m, c, a_0..a_{d−1}]`.
    pub fn state(&self) -> &[T] {
        self.state
    }

    /// Feeds one token and writes the output of every head after it.
    ///
    /// - `scores`: `[heads]`, the query–key score of this token per head (−inf = masked)
    /// - `values`: `[heads·d_head]`
    /// - `out`: `[heads·d_head]`, o_k per head, concatenated (zeros before any token)
    pub fn push(&mut self, scores: &[T], values: &[T], out: &mut [T]) -> Result<(), KernelError> {
        let width = self.heads * self.d_head;
        check_len("scores", scores, self.heads)?;
        check_len("values", values, width)?;
        check_len("out", out, width)?;
        let d = self.d_head;
        for (h, head) in self.state.chunks_exact_mut(d + 2).enumerate() {
            update(head, scores[h], &values[h * d..(h + 1) * d]);
            output(head, &mut out[h * d..(h + 1) * d]);
        }
        Ok(())
    }

    /// Writes the current outputs without feeding a token.
    pub fn current(&self, out: &mut [T]) -> Result<(), KernelError> {
        check_len("out", out, self.heads * self.d_head)?;
        let d = self.d_head;
        for (h, head) in self.state.chunks_exact(d + 2).enumerate() {
            output(head, &mut out[h * d..(h + 1) * d]);
        }
        Ok(())
    }
}

/// The weights of an Aaren layer (SPEC §9) folded for streaming.
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

    /// Direct softmax in f64 over a prefix: the definition, no recurrence.
    fn direct(scores: &[f64], values: &[f64], d: usize) -> [f64; 4] {
        let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut num = [0.0; 4];
        let mut den = 0.0;
        for (i, s) in scores.iter().enumerate() {
            let w = (s - m).exp();
            den += w;
            for p in 0..d {
                num[p] += w * values[i * d + p];
            }
        }
        num.map(|x| x / den)
    }

    #[test]
    fn recurrence_matches_direct_softmax_on_every_prefix() {
        let scores = [0.3f64, -2.0, 5.0, 5.0, -1.0e4, 1.0e4, 7.5];
        let d = 4;
        let values: [f64; 28] = core::array::from_fn(|i| (i as f64 * 0.37).sin());
        let mut state = [0.0f64; 6];
        reset(&mut state);
        let mut out = [0.0f64; 4];
        for k in 0..scores.len() {
            update(&mut state, scores[k], &values[k * d..(k + 1) * d]);
            output(&state, &mut out);
            let want = direct(&scores[..=k], &values[..(k + 1) * d], d);
            for p in 0..d {
                assert!(
                    (out[p] - want[p]).abs() < 1e-13,
                    "prefix {k}: {out:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn all_very_negative_scores_do_not_give_nan() {
        // With m_0 = 0 every weight would underflow to 0 and o = 0/0.
        let mut state = [0.0f32; 3];
        reset(&mut state);
        update(&mut state, -1.0e4, &[3.0]);
        update(&mut state, -2.0e4, &[5.0]);
        let mut out = [0.0f32];
        output(&state, &mut out);
        assert_eq!(out, [3.0]);
    }

    #[test]
    fn combine_is_associative_and_has_an_identity() {
        let leaf = |s: f64, v: f64| [s, 1.0, v];
        let (a, b, c) = (leaf(1.0, 2.0), leaf(-3.0, 5.0), leaf(4.0, -1.0));
        let mut left = a;
        combine(&mut left, &b);
        combine(&mut left, &c);
        let mut bc = b;
        combine(&mut bc, &c);
        let mut right = a;
        combine(&mut right, &bc);
        for i in 0..3 {
            assert!((left[i] - right[i]).abs() < 1e-15);
        }
        let mut id = [0.0f64; 3];
        reset(&mut id);
        let mut x = a;
        combine(&mut x, &id);
        assert_eq!(x, a);
        let mut y = id;
        combine(&mut y, &a);
        assert_eq!(y, a);
        // identity ⊕ identity stays the identity (no −inf − −inf = NaN).
        let mut z = id;
        combine(&mut z, &id);
        assert_eq!(z[0], f64::NEG_INFINITY);
        assert_eq!(&z[1..], &[0.0, 0.0]);
    }

    #[test]
    fn masked_tokens_change_nothing_and_empty_prefix_is_zero() {
        let mut buf = [0.0f32; state_len(1, 2)];
        let mut s = AarenStream::new(1, 2, &mut buf).unwrap();
        let mut out = [9.0f32; 2];
        s.push(&[f32::NEG_INFINITY], &[1.0, 1.0], &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0]);
        s.push(&[2.0], &[4.0, 6.0], &mut out).unwrap();
        s.push(&[f32::NEG_INFINITY], &[100.0, 100.0], &mut out)
            .unwrap();
        assert_eq!(out, [4.0, 6.0]);
    }

    /// The folded streaming step against the layer's definition (SPEC §9) computed
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

    /// Many small weights after one large one: each f32 addition to the running sums
    /// loses the addend's low bits. Compensated sums recover them.
    #[test]
    fn compensated_sums_do_not_drift_over_long_streams() {
        let n = 200_000;
        let mut g = crate::rng::SplitMix64::new(3);
        let tokens: alloc::vec::Vec<(f64, f64)> =
            (0..n).map(|_| (g.normal() * 10.0, g.normal())).collect();
        let mut exact = [0.0f64; 3];
        let mut plain = [0.0f32; 3];
        let mut comp = [0.0f32; compensated_head_len(1)];
        reset(&mut exact);
        reset(&mut plain);
        reset(&mut comp);
        let (mut worst_plain, mut worst_comp, mut scale) = (0.0f64, 0.0f64, 0.0f64);
        for (s, v) in &tokens {
            let (s32, v32) = (*s as f32, *v as f32);
            update(&mut exact, s32 as f64, &[v32 as f64]);
            update(&mut plain, s32, &[v32]);
            update_compensated(&mut comp, s32, &[v32]);
            let mut o = [0.0f64];
            output(&exact, &mut o);
            let (mut p, mut c) = ([0.0f32], [0.0f32]);
            output(&plain, &mut p);
            output_compensated(&comp, &mut c);
            worst_plain = worst_plain.max((p[0] as f64 - o[0]).abs());
            worst_comp = worst_comp.max((c[0] as f64 - o[0]).abs());
            scale = scale.max(o[0].abs());
        }
        let eps = f32::EPSILON as f64;
        // Measured: plain 33.7 ulps, compensated 0.95 ulp of the output's scale.
        assert!(
            worst_plain > 8.0 * eps * scale,
            "plain {:.1} ulps",
            worst_plain / eps / scale
        );
        assert!(
            worst_comp < 2.0 * eps * scale,
            "compensated {:.1} ulps",
            worst_comp / eps / scale
        );
    }

    /// Self-attention from the cell (AAREN-5): for each query q_i, run a fresh cell over
    /// the keys k_1..k_i with scores q_i·k_j/√d; its output after token i is row i of
    /// causal scaled dot-product attention.
    #[test]
    fn causal_self_attention_from_the_cell() {
        use crate::reference::{SdpaOptions, SdpaShape, scaled_dot_product_attention};
        const L: usize = 6;
        const D: usize = 3;
        let mut g = crate::rng::SplitMix64::new(21);
        let mut draw = || -> [f64; L * D] { core::array::from_fn(|_| g.normal() * 2.0) };
        let (q, k, v) = (draw(), draw(), draw());
        let want = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            SdpaShape {
                batch: 1,
                heads: 1,
                len_q: L,
                len_k: L,
                d_k: D,
                d_v: D,
            },
            SdpaOptions {
                scale: None,
                causal: true,
                key_padding_mask: None,
            },
        )
        .unwrap();
        for i in 0..L {
            let mut buf = [0.0f64; state_len(1, D)];
            let mut cell = AarenStream::new(1, D, &mut buf).unwrap();
            let mut out = [0.0f64; D];
            for j in 0..=i {
                let s = crate::real::dot(&q[i * D..(i + 1) * D], &k[j * D..(j + 1) * D])
                    / crate::math::sqrt(D as f64);
                cell.push(&[s], &v[j * D..(j + 1) * D], &mut out).unwrap();
            }
            for (o, w) in out.iter().zip(&want.output[i * D..(i + 1) * D]) {
                assert!((o - w).abs() < 1e-12, "row {i}: {o} vs {w}");
            }
        }
    }

    #[test]
    fn buffer_sizes_are_checked() {
        let mut buf = [0.0f32; 7];
        let err = AarenStream::new(2, 2, &mut buf).unwrap_err();
        assert_eq!(
            err,
            KernelError::Length {
                what: "state",
                expected: 8,
                got: 7
            }
        );
    }
}
