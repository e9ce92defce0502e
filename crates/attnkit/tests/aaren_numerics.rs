//! The numerical hazards of softmax attention as a recurrence, beyond the max trick.
//!
//! Tests named `demonstrates_…` are demonstrations, not tests of attnkit: they run a
//! naive form written out in the test (or plain IEEE arithmetic, or f16/bf16 rounding
//! simulated with the `half` crate) to show the hazard happening. The other tests run
//! attnkit's own code on the inputs that trigger each hazard. `docs/aaren.md`
//! ("Numerical instabilities") explains each one and cites both kinds.

#![allow(clippy::unwrap_used)]

use attnkit::aaren::{prefix_attention, prefix_attention_fused};
use attnkit::verify::{AarenCompareSpec, compare_aaren_forms};
use attnkit_kernels::aaren::{output, reset, update};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;
use half::{bf16, f16};

const VERY_NEGATIVE_SCORES: [f32; 2] = [-1.0e4, -2.0e4];
const VERY_NEGATIVE_VALUES: [f32; 2] = [3.0, 5.0];

/// A demonstration, not a test of attnkit: the recurrence written out with m_0 = 0
/// instead of −inf. With every score far below 0, each weight e^(s − 0) underflows to 0
/// and the output is 0/0.
#[test]
fn demonstrates_m0_zero_gives_nan() {
    let (mut m, mut c, mut a) = (0.0f32, 0.0f32, 0.0f32);
    for (s, v) in VERY_NEGATIVE_SCORES.iter().zip(VERY_NEGATIVE_VALUES) {
        let m_new = m.max(*s);
        let (alpha, beta) = ((m - m_new).exp(), (s - m_new).exp());
        c = c * alpha + beta;
        a = a * alpha + v * beta;
        m = m_new;
    }
    assert!((a / c).is_nan(), "m_0 = 0 gives 0/0");
}

/// The kernel's update starts from m_0 = −inf: on the same very negative scores the
/// first token sets m and weighs e^0 = 1, so the output is the first value exactly.
#[test]
fn m0_neg_inf_survives_very_negative_scores() {
    let (scores, values) = (VERY_NEGATIVE_SCORES, VERY_NEGATIVE_VALUES);
    let mut state = [0.0f32; 3];
    reset(&mut state);
    for (s, v) in scores.iter().zip(values) {
        update(&mut state, *s, &[v]);
    }
    let mut o = [0.0f32];
    output(&state, &mut o);
    assert_eq!(o, [3.0]);
}

const HUGE_AND_TINY_SCORES: [[f32; 2]; 2] = [[100.0, 101.0], [-200.0, -201.0]];

/// A demonstration, not a test of attnkit: softmax written out without a running
/// maximum. e^s overflows f32 at s > 88.7 (inf/inf = NaN) and underflows below s < −103
/// (0/0 = NaN).
#[test]
fn demonstrates_overflow_and_underflow_without_the_running_max() {
    for scores in HUGE_AND_TINY_SCORES {
        let (c, a) = scores.iter().fold((0.0f32, 0.0f32), |(c, a), s| {
            (c + s.exp(), a + 2.0 * s.exp())
        });
        assert!((a / c).is_nan(), "{scores:?}");
    }
}

/// The kernel's state (m, c, a) keeps every exponent ≤ 0: on the same scores the output
/// is the (equal) value exactly.
#[test]
fn running_max_keeps_huge_and_tiny_scores_finite() {
    for scores in HUGE_AND_TINY_SCORES {
        let mut state = [0.0f32; 3];
        reset(&mut state);
        for s in scores {
            update(&mut state, s, &[2.0]);
        }
        let mut o = [0.0f32];
        output(&state, &mut o);
        assert_eq!(o, [2.0], "{scores:?}");
    }
}

/// A demonstration, not a test of attnkit: IEEE arithmetic gives −inf − (−inf) = NaN,
/// which is what combining two empty prefixes computes in e^(m_A − M) unless guarded.
#[test]
fn demonstrates_neg_inf_minus_neg_inf_is_nan() {
    assert!((f32::NEG_INFINITY - f32::NEG_INFINITY).is_nan());
}

/// Combining two empty prefixes would compute e^(−inf − (−inf)) = NaN; the scan clamps
/// the reference maximum, so fully padded sequences give zeros and finite gradients.
#[test]
fn fully_padded_sequences_give_zeros_and_finite_gradients() {
    let device = Device::flex().autodiff();
    let (b, h, l, d) = (2, 1, 5, 2);
    let scores =
        Tensor::<3>::random([b, h, l], burn::tensor::Distribution::Default, &device).require_grad();
    let values = Tensor::<4>::random([b, h, l, d], burn::tensor::Distribution::Default, &device)
        .require_grad();
    // The first sequence is all padding; the second has padding around one token.
    let pad = [true, true, true, true, true, true, true, false, true, true];
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad.to_vec(), [b, l]), &device);
    // The parallel scan and the fused operation (whose backward is a reverse scan).
    for fused in [false, true] {
        let out = if fused {
            prefix_attention_fused(scores.clone(), values.clone(), Some(&mask)).unwrap()
        } else {
            prefix_attention(scores.clone(), values.clone(), Some(&mask)).unwrap()
        };
        let o: Vec<f32> = out.clone().into_data().try_to_vec().unwrap();
        assert!(o.iter().all(|x| x.is_finite()));
        assert!(
            o[..l * d].iter().all(|&x| x == 0.0),
            "all-padded sequence gives zeros"
        );
        let grads = out.sum().backward();
        for g in [
            scores
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            values
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        ] {
            assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
        }
    }
}

/// The fused training operation over 10⁵ tokens with scores of size 10⁴ (every
/// exponential out of f32's range unless rescaled) and padding: its outputs and
/// gradients against the same recurrence in f64 (the kernels' `sequence_forward` and
/// `sequence_backward`, on the same f32 inputs read exactly in f64): outputs and value
/// gradients within 1e-4·(1 + |want|), score gradients within the bound given below.
#[test]
fn fused_training_survives_long_sequences_and_huge_scores() {
    use attnkit_kernels::aaren::gradient::{sequence_backward, sequence_forward};
    let device = Device::flex().autodiff();
    let (h, l, d) = (2, 100_000, 4);
    let mut rng = SplitMix64::new(8);
    let s: Vec<f32> = (0..h * l).map(|_| (rng.normal() * 1e4) as f32).collect();
    let v: Vec<f32> = (0..h * l * d).map(|_| rng.normal() as f32).collect();
    let g: Vec<f32> = (0..h * l * d).map(|_| rng.normal() as f32).collect();
    let pad: Vec<bool> = (0..l).map(|t| t % 97 == 3).collect();
    let scores =
        Tensor::<3>::from_data(TensorData::new(s.clone(), [1, h, l]), &device).require_grad();
    // Head-major [1, H, L, d] for the public function; the kernels read token-major.
    let v_hm: Vec<f32> = (0..h * l * d)
        .map(|i| {
            let (hh, t, k) = (i / (l * d), (i / d) % l, i % d);
            v[(t * h + hh) * d + k]
        })
        .collect();
    let g_hm: Vec<f32> = (0..h * l * d)
        .map(|i| {
            let (hh, t, k) = (i / (l * d), (i / d) % l, i % d);
            g[(t * h + hh) * d + k]
        })
        .collect();
    let values =
        Tensor::<4>::from_data(TensorData::new(v_hm, [1, h, l, d]), &device).require_grad();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [1, l]), &device);
    let out = prefix_attention_fused(scores.clone(), values.clone(), Some(&mask)).unwrap();
    let r = Tensor::<4>::from_data(TensorData::new(g_hm, [1, h, l, d]), &device);
    let got_out: Vec<f32> = out.clone().into_data().try_to_vec().unwrap();
    let grads = (out * r).sum().backward();
    let got_gs: Vec<f32> = scores
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let got_gv: Vec<f32> = values
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    // The f64 reference, token-major, masked scores −inf.
    let s64: Vec<f64> = (0..h * l)
        .map(|i| {
            if pad[i % l] {
                f64::NEG_INFINITY
            } else {
                s[i] as f64
            }
        })
        .collect();
    let v64: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
    let mut st = vec![0.0f64; h * (d + 2)];
    for head in st.chunks_exact_mut(d + 2) {
        reset(head);
    }
    let (mut o64, mut stats) = (vec![0.0; l * h * d], vec![0.0; h * l * 2]);
    sequence_forward(&s64, &v64, &mut st, &mut o64, &mut stats, h);
    let (mut gs64, mut gv64) = (vec![0.0; h * l], vec![0.0; l * h * d]);
    let mut carry = vec![0.0; h * (d + 2)];
    sequence_backward(
        &s64, &v64, &o64, &stats, &g64, &mut gs64, &mut gv64, &mut carry, h,
    );
    let close = |got: f32, want: f64, what: &str| {
        assert!(
            got.is_finite() && (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{what}: {got} vs {want}"
        );
    };
    // ∂L/∂s_i = e^(s_i − m_i)(v_i · R_i − Q_i) is a difference of sums over up to 10⁵
    // later positions (R_i ~ ∂L/∂v_i where the token holds the maximum); f32 rounds each
    // term, so the bound is relative to the terms' size: 1e-6·(1 + 2·max|v|₁·max|∂L/∂v|)
    // per head.
    let score_tol: Vec<f64> = (0..h)
        .map(|hh| {
            let v1 = (0..l)
                .map(|t| {
                    v64[(t * h + hh) * d..(t * h + hh + 1) * d]
                        .iter()
                        .map(|x| x.abs())
                        .sum::<f64>()
                })
                .fold(0.0, f64::max);
            let dv = (0..l * d)
                .map(|i| gv64[((i / d) * h + hh) * d + i % d].abs())
                .fold(0.0, f64::max);
            1e-6 * (1.0 + 2.0 * v1 * dv)
        })
        .collect();
    for hh in 0..h {
        for t in 0..l {
            for k in 0..d {
                let hm = (hh * l + t) * d + k;
                let tm = (t * h + hh) * d + k;
                close(got_out[hm], o64[tm], "output");
                close(got_gv[hm], gv64[tm], "value gradient");
            }
            let i = hh * l + t;
            let err = (got_gs[i] as f64 - gs64[i]).abs();
            assert!(
                got_gs[i].is_finite() && err <= score_tol[hh],
                "score gradient {i}: {} vs {} (bound {:e})",
                got_gs[i],
                gs64[i],
                score_tol[hh]
            );
            if pad[t] {
                assert_eq!(got_gs[hh * l + t], 0.0, "padded score");
            }
        }
    }
}

/// o = a / c never divides by a tiny number: the token holding the maximum contributes
/// e^0 = 1 exactly, so c ≥ 1 after any non-empty prefix, whatever the scores.
#[test]
fn division_is_never_catastrophic() {
    let mut g = SplitMix64::new(17);
    let mut state = [0.0f32; 3];
    reset(&mut state);
    for i in 0..100_000 {
        let scale = [1e-3, 1.0, 1e2, 1e4][i % 4];
        update(
            &mut state,
            (g.normal() * scale) as f32,
            &[g.normal() as f32],
        );
        assert!(state[1] >= 1.0, "c = {} at step {i}", state[1]);
    }
}

/// A demonstration, not a test of attnkit (which computes in f32 and f64 only, with no
/// f16 or bf16 path): the recurrence written out here with every operation rounded to
/// f16 by the `half` crate. f16 overflows at 65504, so e^s without the max trick
/// overflows for s > 11.1 (bf16 shares f32's range: s > 88.7). With the max trick every
/// exponent is ≤ 0: only underflow remains, and an underflowed weight is below 2^-24 of
/// the largest.
#[test]
fn demonstrates_half_precision_ranges() {
    assert!(f16::from_f32(12.0f32.exp()).is_infinite());
    assert!(bf16::from_f32(89.0f32.exp()).is_infinite());
    let mut g = SplitMix64::new(5);
    let scores: Vec<f32> = (0..64).map(|_| (g.normal() * 30.0) as f32).collect();
    let values: Vec<f32> = (0..64).map(|_| g.normal() as f32).collect();
    // Every operation rounded to f16.
    let r = |x: f32| f16::from_f32(x).to_f32();
    let (mut m, mut c, mut a) = (f32::NEG_INFINITY, 0.0f32, 0.0f32);
    let (mut exact_c, mut exact_a, mut exact_m) = (0.0f64, 0.0f64, f64::NEG_INFINITY);
    for (s, v) in scores
        .iter()
        .map(|s| r(*s))
        .zip(values.iter().map(|v| r(*v)))
    {
        let m_new = m.max(s);
        let (alpha, beta) = (r((m - m_new).exp()), r((s - m_new).exp()));
        c = r(r(c * alpha) + beta);
        a = r(r(a * alpha) + r(v * beta));
        m = m_new;
        let em = exact_m.max(s as f64);
        exact_c = exact_c * (exact_m - em).exp() + (s as f64 - em).exp();
        exact_a = exact_a * (exact_m - em).exp() + v as f64 * (s as f64 - em).exp();
        exact_m = em;
        assert!(c.is_finite() && a.is_finite());
    }
    let err = (r(a / c) as f64 - exact_a / exact_c).abs();
    assert!(err < 1e-2, "f16 state with the max trick: error {err}");
    let naive = scores.iter().fold(0.0f32, |acc, s| r(acc + r(r(*s).exp())));
    assert!(naive.is_infinite(), "f16 without the max trick overflows");
}

/// 4096 tokens of equal score whose values ramp from 0 to 1, each rounded to bf16: the
/// exact output is their mean, ~0.5.
fn bf16_ramp() -> (Vec<f32>, f64) {
    let n = 4096;
    let values: Vec<f32> = (0..n)
        .map(|t| bf16::from_f32(t as f32 / (n - 1) as f32).to_f32())
        .collect();
    let exact = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    (values, exact)
}

/// A demonstration, not a test of attnkit (which has no bf16 path): a state kept in
/// bf16, simulated with the `half` crate, saturates. bf16 has an 8-bit significand, so
/// once c reaches 256, c + 1 rounds back to 256 and later tokens stop counting.
#[test]
fn demonstrates_bf16_state_saturates() {
    let (values, exact) = bf16_ramp();
    let r = |x: f32| bf16::from_f32(x).to_f32();
    let (mut c16, mut a16) = (0.0f32, 0.0f32);
    for &v in &values {
        c16 = r(c16 + 1.0);
        a16 = r(a16 + v);
    }
    assert_eq!(c16, 256.0, "bf16 count saturates");
    let bf16_err = (r(a16 / c16) as f64 - exact).abs();
    assert!(bf16_err > 0.1, "bf16 state error {bf16_err}");
}

/// The kernel's f32 state on the same bf16-valued tokens counts every one of them:
/// error < 1e-5 against the exact mean.
#[test]
fn f32_state_counts_every_token_of_a_long_ramp() {
    let (values, exact) = bf16_ramp();
    let mut state = [0.0f32; 3];
    reset(&mut state);
    for &v in &values {
        update(&mut state, 0.0, &[v]);
    }
    let mut o = [0.0f32];
    output(&state, &mut o);
    let f32_err = (o[0] as f64 - exact).abs();
    assert!(f32_err < 1e-5, "f32 state error {f32_err}");
}

/// Accumulation order: the sequential cell adds each small term to a large running sum
/// (losing its low bits every step); the scan adds partial sums of similar size in a
/// tree, so its error grows like log L instead of L. Measured at 5·10^4 tokens.
#[test]
fn accumulation_order_in_the_scan() {
    let r = compare_aaren_forms(
        &Device::flex(),
        AarenCompareSpec {
            batch: 1,
            heads: 2,
            len: 50_000,
            d_head: 4,
            score_scale: 10.0,
            seed: 1,
        },
    )
    .unwrap();
    let (par, it) = (
        r.parallel_vs_reference.max_rel,
        r.iterative_vs_reference.max_rel,
    );
    assert!(par * 2.0 < it, "parallel {par:e} vs iterative {it:e}");
    assert!(r.compensated_vs_reference.max_rel * 2.0 < it);
}
