//! Training through the recurrence: every prefix output of a sequence and their
//! gradient, each in one pass over the tokens (O(L·d) per head, no scan tree).
//!
//! The output at position t is o_t = Σ_{i≤t} e^(s_i) v_i / Z_t with Z_t = Σ_{i≤t} e^(s_i)
//! (plus the starting state's share), so for g_t = ∂L/∂o_t
//!
//! ```text
//! ∂L/∂v_i = e^(s_i) Σ_{t≥i} g_t / Z_t
//! ∂L/∂s_i = e^(s_i) (v_i · Σ_{t≥i} g_t / Z_t − Σ_{t≥i} (g_t · o_t) / Z_t)
//! ```
//!
//! Both sums run from the end of the sequence backwards — a reverse scan. With the
//! forward state's m_t (running maximum) and c_t (Z_t = c_t e^(m_t)), they are carried
//! rescaled to the current position, R_i = Σ_{t≥i} (g_t / c_t) e^(m_i − m_t) and
//! likewise Q_i, so that
//!
//! ```text
//! R_i = g_i / c_i + e^(m_i − m_{i+1}) R_{i+1},   ∂L/∂v_i = e^(s_i − m_i) R_i,
//! Q_i = (g_i · o_i) / c_i + e^(m_i − m_{i+1}) Q_{i+1},   ∂L/∂s_i = e^(s_i − m_i) (v_i · R_i − Q_i)
//! ```
//!
//! Every exponent is ≤ 0 (m is non-decreasing), so nothing overflows at any score
//! magnitude. A masked token (score −inf) gets exactly zero gradient; positions before
//! any token (c = 0) output zero and pass no gradient. The starting state is a
//! constant: the gradient does not flow into it.
//!
//! Layout: one sequence token-major, as a projection writes it — scores `[H, L]`,
//! values, outputs and their gradients `[L, H, d]`.

use crate::real::Real;

use super::state::{output, rescale, update};

/// Every prefix output of one sequence, keeping each position's (m_t, c_t).
///
/// - `scores` `[H, L]` (−inf: masked); `values` `[L, H, d]`; `states` H·(d + 2), the
///   starting state per head, left as the state after the last token
/// - writes `outputs` `[L, H, d]` and `stats` `[H, L, 2]`
pub fn sequence_forward<T: Real>(
    scores: &[T],
    values: &[T],
    states: &mut [T],
    outputs: &mut [T],
    stats: &mut [T],
    heads: usize,
) {
    let d = states.len() / heads - 2;
    let l = scores.len() / heads;
    for t in 0..l {
        for (h, state) in states.chunks_exact_mut(d + 2).enumerate() {
            let at = (t * heads + h) * d;
            update(state, scores[h * l + t], &values[at..at + d]);
            output(state, &mut outputs[at..at + d]);
            stats[(h * l + t) * 2] = state[0];
            stats[(h * l + t) * 2 + 1] = state[1];
        }
    }
}

/// Each position's (m_t, c_t) alone, from the scores `[H, L]` and the starting (m, c) of
/// each head (`start` `[H, 2]`), into `stats` `[H, L, 2]`: what [`sequence_backward`]
/// needs, recomputed from the scores rather than kept by the forward pass.
pub fn sequence_stats<T: Real>(scores: &[T], start: &[T], stats: &mut [T], heads: usize) {
    let l = scores.len() / heads;
    for h in 0..heads {
        let (mut m, mut c) = (start[2 * h], start[2 * h + 1]);
        for t in 0..l {
            if let Some((m_new, alpha, beta)) = rescale(m, scores[h * l + t]) {
                m = m_new;
                c = c * alpha + beta;
            }
            stats[(h * l + t) * 2] = m;
            stats[(h * l + t) * 2 + 1] = c;
        }
    }
}

/// The gradients of one sequence's prefix outputs with respect to its scores and
/// values (see the module docs).
///
/// - `scores` `[H, L]`, `values` and `outputs` `[L, H, d]`, `stats` `[H, L, 2]` as
///   [`sequence_forward`] left them; `grad` `[L, H, d]`: ∂L/∂outputs
/// - writes `grad_scores` `[H, L]` and `grad_values` `[L, H, d]`; `carry` is scratch of
///   H·(d + 2)
#[allow(clippy::too_many_arguments)]
pub fn sequence_backward<T: Real>(
    scores: &[T],
    values: &[T],
    outputs: &[T],
    stats: &[T],
    grad: &[T],
    grad_scores: &mut [T],
    grad_values: &mut [T],
    carry: &mut [T],
    heads: usize,
) {
    let l = scores.len() / heads;
    let d = carry.len() / heads - 2;
    // Per head: [m of the position after, Q, R_0 .. R_{d−1}]; m = −inf: nothing after.
    for c in carry.chunks_exact_mut(d + 2) {
        c[0] = T::NEG_INFINITY;
        c[1..].iter_mut().for_each(|x| *x = T::ZERO);
    }
    for t in (0..l).rev() {
        for (h, c) in carry.chunks_exact_mut(d + 2).enumerate() {
            let at = (t * heads + h) * d;
            let (m, z) = (stats[(h * l + t) * 2], stats[(h * l + t) * 2 + 1]);
            let dv = &mut grad_values[at..at + d];
            if z == T::ZERO {
                // No token yet: the output is a constant 0, and so is every earlier one.
                c[0] = T::NEG_INFINITY;
                c[1..].iter_mut().for_each(|x| *x = T::ZERO);
                grad_scores[h * l + t] = T::ZERO;
                dv.iter_mut().for_each(|x| *x = T::ZERO);
                continue;
            }
            let keep = if c[0] == T::NEG_INFINITY {
                T::ZERO
            } else {
                (m - c[0]).exp()
            };
            let inv = T::ONE / z;
            let (g, o) = (&grad[at..at + d], &outputs[at..at + d]);
            let go = g.iter().zip(o).fold(T::ZERO, |acc, (&a, &b)| acc + a * b);
            c[0] = m;
            c[1] = go * inv + keep * c[1];
            for (r, &gi) in c[2..].iter_mut().zip(g) {
                *r = gi * inv + keep * *r;
            }
            let s = scores[h * l + t];
            if s == T::NEG_INFINITY {
                grad_scores[h * l + t] = T::ZERO;
                dv.iter_mut().for_each(|x| *x = T::ZERO);
                continue;
            }
            let w = (s - m).exp();
            let v = &values[at..at + d];
            let vr = v
                .iter()
                .zip(&c[2..])
                .fold(T::ZERO, |acc, (&a, &b)| acc + a * b);
            grad_scores[h * l + t] = w * (vr - c[1]);
            for (x, &r) in dv.iter_mut().zip(&c[2..]) {
                *x = w * r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::aaren::state::reset;
    use crate::rng::SplitMix64;

    const H: usize = 2;
    const L: usize = 7;
    const D: usize = 3;

    /// Scores with masked tokens (head 0's first two, so its first outputs are empty;
    /// head 1's fifth) at `scale`.
    fn inputs(seed: u64, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let mut s: Vec<f64> = (0..H * L).map(|_| rng.normal() * scale).collect();
        s[0] = f64::NEG_INFINITY;
        s[1] = f64::NEG_INFINITY;
        s[L + 4] = f64::NEG_INFINITY;
        let v = (0..L * H * D).map(|_| rng.normal()).collect();
        let g = (0..L * H * D).map(|_| rng.normal()).collect();
        (s, v, g)
    }

    /// A starting state: head 0 empty, head 1 as if it had seen one token.
    fn start() -> Vec<f64> {
        let mut st = vec![0.0; H * (D + 2)];
        reset(&mut st[..D + 2]);
        st[D + 2..].copy_from_slice(&[0.3, 2.0, 0.4, -1.0, 0.6]);
        st
    }

    fn loss(s: &[f64], v: &[f64], g: &[f64]) -> f64 {
        let mut st = start();
        let mut out = vec![0.0; L * H * D];
        let mut stats = vec![0.0; H * L * 2];
        sequence_forward(s, v, &mut st, &mut out, &mut stats, H);
        out.iter().zip(g).map(|(a, b)| a * b).sum()
    }

    /// f64 gradients against central finite differences (step 1e-6: truncation ~1e-12,
    /// rounding ~1e-10) within 1e-7·(1 + |fd|), at scores of unit size and of size 1e4
    /// (where the exponentials over- and underflow unless rescaled); masked scores and
    /// their values get exactly zero.
    #[test]
    fn gradients_match_finite_differences() {
        for (seed, scale) in [(1, 1.0), (2, 1e4)] {
            let (s, v, g) = inputs(seed, scale);
            let mut st = start();
            let mut out = vec![0.0; L * H * D];
            let mut stats = vec![0.0; H * L * 2];
            sequence_forward(&s, &v, &mut st, &mut out, &mut stats, H);
            let mut again = vec![0.0; H * L * 2];
            let st0 = start();
            let mc = [st0[0], st0[1], st0[D + 2], st0[D + 3]];
            sequence_stats(&s, &mc, &mut again, H);
            assert_eq!(
                again, stats,
                "the statistics recomputed from the scores alone"
            );
            let mut gs = vec![f64::NAN; H * L];
            let mut gv = vec![f64::NAN; L * H * D];
            let mut carry = vec![0.0; H * (D + 2)];
            sequence_backward(&s, &v, &out, &stats, &g, &mut gs, &mut gv, &mut carry, H);
            let step = if scale > 1.0 { 1e-3 } else { 1e-6 };
            for i in 0..s.len() {
                if s[i] == f64::NEG_INFINITY {
                    assert_eq!(gs[i], 0.0, "masked score {i}");
                    let (h, t) = (i / L, i % L);
                    assert!(
                        gv[(t * H + h) * D..(t * H + h + 1) * D]
                            .iter()
                            .all(|&x| x == 0.0)
                    );
                    continue;
                }
                let (mut p, mut m) = (s.clone(), s.clone());
                p[i] += step;
                m[i] -= step;
                let fd = (loss(&p, &v, &g) - loss(&m, &v, &g)) / (2.0 * step);
                assert!(
                    (gs[i] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                    "scale {scale} s[{i}]: {} vs {fd}",
                    gs[i]
                );
            }
            for i in 0..v.len() {
                let (mut p, mut m) = (v.clone(), v.clone());
                p[i] += 1e-6;
                m[i] -= 1e-6;
                let fd = (loss(&s, &p, &g) - loss(&s, &m, &g)) / 2e-6;
                assert!(
                    (gv[i] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                    "scale {scale} v[{i}]: {} vs {fd}",
                    gv[i]
                );
            }
        }
    }
}
