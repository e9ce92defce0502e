//! One step of each recurrence for one sequence, forward and backward, on the host.
//!
//! The forward step takes the two projections (`xp` = W_ih·x + b_ih, `hp` = W_hh·h +
//! b_hh, both `[G·H]`), updates h (and c) in place and keeps what the backward step
//! needs, so backpropagation through time recomputes nothing:
//!
//! | kind | kept per step (`saved_len` numbers) |
//! | --- | --- |
//! | LSTM | σ(i), σ(f), tanh(g), σ(o), tanh(c_t), c_{t−1}, h_{t−1} (7H) |
//! | GRU | r, z, n, W_hn·h + b_hn, h_{t−1} (5H) |
//! | RNN | h_t, h_{t−1} (2H) |
//!
//! h_{t−1} is always the last H numbers (the weight gradient reads it there).

use attnkit_kernels::math::expf_fast;

use crate::recurrent::RecurrentKind;

/// Numbers kept per step and sequence for the backward pass.
pub(crate) fn saved_len(kind: RecurrentKind, hidden: usize) -> usize {
    hidden
        * match kind {
            RecurrentKind::Lstm => 7,
            RecurrentKind::Gru => 5,
            RecurrentKind::Rnn => 2,
        }
}

/// 1 / (1 + e^−x), from the vectorisable exponential (within a few ulp).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + expf_fast(-x))
}

/// tanh x: its Taylor series up to x⁹ below |x| = 1/4 (relative error < 1e-8 there,
/// where (1 − e^−2|x|) would cancel), (1 − e^−2|x|) / (1 + e^−2|x|) above, sign restored.
/// Branch-free, so a loop over a row vectorises.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let e = expf_fast(-2.0 * ax);
    let far = (1.0 - e) / (1.0 + e);
    let x2 = ax * ax;
    let near = ax
        * (1.0
            + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let t = if ax < 0.25 { near } else { far };
    t.copysign(x)
}

/// One forward step of one sequence: h (and for LSTM c), each `[H]`, updated in place;
/// `saved` gets the [`saved_len`] numbers of this step (a scratch row when the caller
/// keeps nothing: writing unconditionally keeps the loop free of branches).
#[inline(always)]
pub(crate) fn step(
    kind: RecurrentKind,
    xp: &[f32],
    hp: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    saved: &mut [f32],
) {
    let n = h.len();
    // Lengths up front let the compiler drop the bounds checks in the loops.
    let width = kind.gates() * n;
    assert!(xp.len() >= width && hp.len() >= width && saved.len() >= saved_len(kind, n));
    match kind {
        RecurrentKind::Lstm => {
            assert!(c.len() >= n);
            for j in 0..n {
                let i = sigmoid(xp[j] + hp[j]);
                let f = sigmoid(xp[n + j] + hp[n + j]);
                let g = tanh(xp[2 * n + j] + hp[2 * n + j]);
                let o = sigmoid(xp[3 * n + j] + hp[3 * n + j]);
                let c_prev = c[j];
                let c_new = f * c_prev + i * g;
                let tc = tanh(c_new);
                saved[j] = i;
                saved[n + j] = f;
                saved[2 * n + j] = g;
                saved[3 * n + j] = o;
                saved[4 * n + j] = tc;
                saved[5 * n + j] = c_prev;
                saved[6 * n + j] = h[j];
                c[j] = c_new;
                h[j] = o * tc;
            }
        }
        RecurrentKind::Gru => {
            for j in 0..n {
                let r = sigmoid(xp[j] + hp[j]);
                let z = sigmoid(xp[n + j] + hp[n + j]);
                let hn = hp[2 * n + j];
                let g = tanh(xp[2 * n + j] + r * hn);
                saved[j] = r;
                saved[n + j] = z;
                saved[2 * n + j] = g;
                saved[3 * n + j] = hn;
                saved[4 * n + j] = h[j];
                h[j] = (1.0 - z) * g + z * h[j];
            }
        }
        RecurrentKind::Rnn => {
            for j in 0..n {
                let h_new = tanh(xp[j] + hp[j]);
                saved[j] = h_new;
                saved[n + j] = h[j];
                h[j] = h_new;
            }
        }
    }
}

/// One backward step of one sequence, from the numbers [`step`] kept.
///
/// - `dh` `[H]`: in, ∂L/∂h_t (everything that reaches h_t); out, the part of
///   ∂L/∂h_{t−1} that does not pass through W_hh (GRU: z·dh; otherwise 0) — the caller
///   adds `dhp·W_hh`
/// - `dc` `[H]` (LSTM): in, ∂L/∂c_t from later steps; out, ∂L/∂c_{t−1}
/// - `dx`, `dhp` `[G·H]`: out, ∂L/∂xp and ∂L/∂hp of this step (they differ only in the
///   GRU's n block, where hp enters multiplied by r)
#[inline(always)]
pub(crate) fn step_backward(
    kind: RecurrentKind,
    saved: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dx: &mut [f32],
    dhp: &mut [f32],
) {
    let n = dh.len();
    let width = kind.gates() * n;
    assert!(dx.len() >= width && dhp.len() >= width && saved.len() >= saved_len(kind, n));
    match kind {
        RecurrentKind::Lstm => {
            assert!(dc.len() >= n);
            for j in 0..n {
                let (i, f, g, o) = (saved[j], saved[n + j], saved[2 * n + j], saved[3 * n + j]);
                let (tc, c_prev) = (saved[4 * n + j], saved[5 * n + j]);
                let d_o = dh[j] * tc;
                let d_c = dc[j] + dh[j] * o * (1.0 - tc * tc);
                let (ai, af) = (d_c * g * i * (1.0 - i), d_c * c_prev * f * (1.0 - f));
                let ag = d_c * i * (1.0 - g * g);
                let ao = d_o * o * (1.0 - o);
                dx[j] = ai;
                dx[n + j] = af;
                dx[2 * n + j] = ag;
                dx[3 * n + j] = ao;
                dhp[j] = ai;
                dhp[n + j] = af;
                dhp[2 * n + j] = ag;
                dhp[3 * n + j] = ao;
                dc[j] = d_c * f;
                dh[j] = 0.0;
            }
        }
        RecurrentKind::Gru => {
            for j in 0..n {
                let (r, z, g, hn) = (saved[j], saved[n + j], saved[2 * n + j], saved[3 * n + j]);
                let h_prev = saved[4 * n + j];
                let d = dh[j];
                let an = d * (1.0 - z) * (1.0 - g * g);
                let ar = an * hn * r * (1.0 - r);
                let az = d * (h_prev - g) * z * (1.0 - z);
                dx[j] = ar;
                dx[n + j] = az;
                dx[2 * n + j] = an;
                dhp[j] = ar;
                dhp[n + j] = az;
                dhp[2 * n + j] = an * r;
                dh[j] = d * z;
            }
        }
        RecurrentKind::Rnn => {
            for j in 0..n {
                let h_t = saved[j];
                let a = dh[j] * (1.0 - h_t * h_t);
                dx[j] = a;
                dhp[j] = a;
                dh[j] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against std's tanh and 1 / (1 + exp(−x)) in f64, over [−20, 20] and the region
    /// near 0 where the two formulas of `tanh` meet: within 4e-7 relative (a few f32
    /// ulp) or 1e-30 absolute.
    #[test]
    fn activations_match_std() {
        let mut worst = (0.0f64, 0.0f64);
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            for x in [x, x * 1e-3] {
                let t = (x as f64).tanh();
                let s = 1.0 / (1.0 + (-(x as f64)).exp());
                let et = (tanh(x) as f64 - t).abs() / t.abs().max(1e-30);
                let es = (sigmoid(x) as f64 - s).abs() / s;
                worst = (worst.0.max(et), worst.1.max(es));
            }
        }
        assert!(
            worst.0 < 4e-7 && worst.1 < 4e-7,
            "tanh {:e}, sigmoid {:e}",
            worst.0,
            worst.1
        );
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(sigmoid(-200.0), 0.0);
    }
}
