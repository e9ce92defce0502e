//! One head's state (m, c, a): the identity, the associative combine, the recurrent
//! update, the output a / c, and a whole sequence in one pass.

use crate::error::KernelError;
use crate::real::Real;

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
pub(super) fn rescale<T: Real>(m_prev: T, score: T) -> Option<(T, T, T)> {
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
///
/// # Errors
///
/// [`KernelError::Length`] if the buffers do not hold L scores, L·d values and L·d outputs,
/// or the state is not d + 2 numbers.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aaren::direct_softmax as direct;

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
}
