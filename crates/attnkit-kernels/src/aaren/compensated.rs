//! The recurrent update with compensated (Kahan) sums, for long streams in `f32`.

use super::state::rescale;
use crate::real::Real;

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

/// [`update`](super::update) with compensated (Kahan) sums, for long sequential streams.
///
/// Adding e^(s − m)·v to a running sum that is much larger loses the addend's low bits
/// at every step; over 10^5–10^6 tokens of which most carry small weights, those
/// losses add up to tens or hundreds of ulps (measured by `attnkit aaren compare`).
/// The compensation terms c', a' keep the lost low parts and feed them back, so the
/// error stays at a few ulps whatever the length, for twice the state. Layout:
/// [`compensated_head_len`]`(d)` numbers, reset with [`reset`](super::reset).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aaren::{output, reset, update};

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
}
