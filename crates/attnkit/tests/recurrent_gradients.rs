//! The recurrent layers' fused operation (f32, backpropagation through time by hand)
//! against two independent oracles:
//!
//! - central finite differences of a plain f64 implementation of the three recurrences
//!   written here (loops over scalars, no Burn), for the gradient of every weight,
//!   bias and input; step 1e-6, so truncation (~1e-12) and f64 rounding (~1e-10) are far
//!   below the f32 gradient's own rounding. Tolerance: |fused − fd| ≤ 2e-4·(1 + |fd|)
//!   (f32 sums over ≤ 12 steps of products of numbers below ~3);
//! - Burn's autodiff of the composed layer (`forward_composed`, one tensor operation at
//!   a time), same f32 weights: every gradient within 1e-5·(1 + |g|).
//!
//! Sequences of lengths [6, 3, 0, 5] padded to 6, both directions, h_n and c_n in the
//! loss, so the reverse direction's start at each sequence's last token, the empty
//! sequence and the final states are all covered; padded inputs get exactly zero
//! gradient.

#![allow(clippy::unwrap_used)]

use attnkit::recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;

const B: usize = 4;
const L: usize = 6;
const I: usize = 3;
const H: usize = 5;
const LENS: [usize; B] = [6, 3, 0, 5];

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

fn draw(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut g = SplitMix64::new(seed);
    (0..n).map(|_| g.normal() * scale).collect()
}

fn tensor<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// One direction's weights in f64: W_ih [G·H, in], W_hh [G·H, H], b_ih, b_hh.
#[derive(Clone)]
struct Weights {
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

impl Weights {
    fn flat(&self) -> Vec<f64> {
        [&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh]
            .into_iter()
            .flatten()
            .copied()
            .collect()
    }

    fn with_flat(&self, v: &[f64]) -> Self {
        let (a, rest) = v.split_at(self.w_ih.len());
        let (b, rest) = rest.split_at(self.w_hh.len());
        let (c, d) = rest.split_at(self.b_ih.len());
        Self {
            w_ih: a.to_vec(),
            w_hh: b.to_vec(),
            b_ih: c.to_vec(),
            b_hh: d.to_vec(),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The f64 reference: one layer, `dirs` directions, PyTorch's gates and padding rules.
/// Returns output [B, L, D·H], h_n [D, B, H], c_n [D, B, H].
fn reference(kind: RecurrentKind, x: &[f64], w: &[Weights]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let dirs = w.len();
    let g = kind.gates();
    let mut out = vec![0.0; B * L * dirs * H];
    let mut h_n = vec![0.0; dirs * B * H];
    let mut c_n = vec![0.0; dirs * B * H];
    for (d, w) in w.iter().enumerate() {
        for b in 0..B {
            let (mut h, mut c) = (vec![0.0; H], vec![0.0; H]);
            let order: Vec<usize> = if d == 1 {
                (0..LENS[b]).rev().collect()
            } else {
                (0..LENS[b]).collect()
            };
            for t in order {
                let xt = &x[(b * L + t) * I..(b * L + t + 1) * I];
                let proj = |wm: &[f64], bias: &[f64], v: &[f64], n: usize| -> Vec<f64> {
                    (0..g * H)
                        .map(|r| bias[r] + (0..n).map(|k| wm[r * n + k] * v[k]).sum::<f64>())
                        .collect()
                };
                let xp = proj(&w.w_ih, &w.b_ih, xt, I);
                let hp = proj(&w.w_hh, &w.b_hh, &h, H);
                let mut h_new = vec![0.0; H];
                for j in 0..H {
                    match kind {
                        RecurrentKind::Rnn => h_new[j] = (xp[j] + hp[j]).tanh(),
                        RecurrentKind::Lstm => {
                            let i = sigmoid(xp[j] + hp[j]);
                            let f = sigmoid(xp[H + j] + hp[H + j]);
                            let gg = (xp[2 * H + j] + hp[2 * H + j]).tanh();
                            let o = sigmoid(xp[3 * H + j] + hp[3 * H + j]);
                            c[j] = f * c[j] + i * gg;
                            h_new[j] = o * c[j].tanh();
                        }
                        RecurrentKind::Gru => {
                            let r = sigmoid(xp[j] + hp[j]);
                            let z = sigmoid(xp[H + j] + hp[H + j]);
                            let n = (xp[2 * H + j] + r * hp[2 * H + j]).tanh();
                            h_new[j] = (1.0 - z) * n + z * h[j];
                        }
                    }
                }
                h = h_new;
                let at = ((b * L + t) * dirs + d) * H;
                out[at..at + H].copy_from_slice(&h);
            }
            h_n[(d * B + b) * H..(d * B + b + 1) * H].copy_from_slice(&h);
            c_n[(d * B + b) * H..(d * B + b + 1) * H].copy_from_slice(&c);
        }
    }
    (out, h_n, c_n)
}

struct Case {
    kind: RecurrentKind,
    net: Recurrent,
    x: Vec<f64>,
    /// Weights on output, h_n, c_n in the loss.
    r: [Vec<f64>; 3],
}

fn case(kind: RecurrentKind, layers: usize, device: &Device) -> Case {
    let net = RecurrentConfig::new(kind, I, H)
        .with_num_layers(layers)
        .with_bidirectional(true)
        .init(device)
        .unwrap();
    // Weights of a few units, so the gates leave their linear range.
    let net = net.map(&mut Scale(2.0));
    let n = 2 * layers * B * H;
    Case {
        kind,
        net,
        x: draw(1, B * L * I, 1.0),
        r: [
            draw(2, B * L * 2 * H, 1.0),
            draw(3, n, 1.0),
            draw(4, n, 1.0),
        ],
    }
}

/// Multiplies every parameter by a constant.
struct Scale(f64);

impl burn::module::ModuleMapper for Scale {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let k = self.0;
        param.map(|t| t * k)
    }
}

/// Σ output ⊙ r0 + Σ h_n ⊙ r1 (+ Σ c_n ⊙ r2) through the layer.
fn loss(c: &Case, net: &Recurrent, x: Tensor<3>, composed: bool) -> Tensor<1> {
    let device = x.device();
    let out = if composed {
        net.forward_composed(x, Some(&LENS)).unwrap()
    } else {
        net.forward(x, Some(&LENS)).unwrap()
    };
    let dims_n = out.h_n.dims();
    let mut total = (out.output * tensor(&c.r[0], [B, L, 2 * H], &device)).sum()
        + (out.h_n * tensor(&c.r[1], dims_n, &device)).sum();
    if let Some(c_n) = out.c_n {
        total = total + (c_n * tensor(&c.r[2], dims_n, &device)).sum();
    }
    total
}

fn reference_loss(c: &Case, x: &[f64], w: &[Weights]) -> f64 {
    let (out, h_n, c_n) = reference(c.kind, x, w);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut total = dot(&out, &c.r[0]) + dot(&h_n, &c.r[1]);
    if c.kind == RecurrentKind::Lstm {
        total += dot(&c_n, &c.r[2]);
    }
    total
}

fn weights_of(net: &Recurrent) -> Vec<Weights> {
    net.cells
        .iter()
        .map(|c| Weights {
            w_ih: host(c.weight_ih.val()),
            w_hh: host(c.weight_hh.val()),
            b_ih: host(c.bias_ih.val()),
            b_hh: host(c.bias_hh.val()),
        })
        .collect()
}

/// Gradients of the loss w.r.t. x and each direction's [W_ih, W_hh, b_ih, b_hh], flat.
fn gradients(c: &Case, composed: bool) -> (Vec<f64>, Vec<Vec<f64>>) {
    let device = Device::flex().autodiff();
    let net = c.net.clone().fork(&device).train();
    let x = tensor(&c.x, [B, L, I], &device).require_grad();
    let grads = loss(c, &net, x.clone(), composed).backward();
    let params = net
        .cells
        .iter()
        .map(|w| {
            [
                host(w.weight_ih.val().grad(&grads).unwrap()),
                host(w.weight_hh.val().grad(&grads).unwrap()),
                host(w.bias_ih.val().grad(&grads).unwrap()),
                host(w.bias_hh.val().grad(&grads).unwrap()),
            ]
            .concat()
        })
        .collect();
    (host(x.grad(&grads).unwrap()), params)
}

const KINDS: [RecurrentKind; 3] = [RecurrentKind::Lstm, RecurrentKind::Gru, RecurrentKind::Rnn];

#[test]
fn fused_forward_matches_the_f64_reference() {
    let device = Device::flex();
    for kind in KINDS {
        let c = case(kind, 1, &device);
        let out = c
            .net
            .forward(tensor(&c.x, [B, L, I], &device), Some(&LENS))
            .unwrap();
        let (want, want_h, want_c) = reference(kind, &c.x, &weights_of(&c.net));
        let checks = [
            (host(out.output), want),
            (host(out.h_n), want_h),
            (
                out.c_n.map(host).unwrap_or_else(|| vec![0.0; 2 * B * H]),
                want_c,
            ),
        ];
        for (k, (got, want)) in checks.iter().enumerate() {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5,
                    "{kind:?} tensor {k} [{i}]: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn fused_gradients_match_finite_differences() {
    let device = Device::flex();
    let step = 1e-6;
    for kind in KINDS {
        let c = case(kind, 1, &device);
        let (gx, gw) = gradients(&c, false);
        let w = weights_of(&c.net);
        let close = |got: f64, fd: f64, what: &str| {
            assert!(
                (got - fd).abs() <= 2e-4 * (1.0 + fd.abs()),
                "{kind:?} {what}: fused {got} vs fd {fd}"
            );
        };
        for i in 0..c.x.len() {
            let (mut plus, mut minus) = (c.x.clone(), c.x.clone());
            plus[i] += step;
            minus[i] -= step;
            let fd =
                (reference_loss(&c, &plus, &w) - reference_loss(&c, &minus, &w)) / (2.0 * step);
            close(gx[i], fd, &format!("x[{i}]"));
            // Padding never reaches the outputs: exactly zero.
            let (b, t) = (i / (L * I), (i / I) % L);
            if t >= LENS[b] {
                assert_eq!(gx[i], 0.0, "{kind:?} padded x[{i}]");
            }
        }
        for d in 0..2 {
            let flat = w[d].flat();
            for k in 0..flat.len() {
                let at = |delta: f64| {
                    let mut v = flat.clone();
                    v[k] += delta;
                    let mut ws = w.clone();
                    ws[d] = w[d].with_flat(&v);
                    reference_loss(&c, &c.x, &ws)
                };
                let fd = (at(step) - at(-step)) / (2.0 * step);
                close(gw[d][k], fd, &format!("direction {d} parameter {k}"));
            }
        }
    }
}

#[test]
fn fused_gradients_match_autodiff_of_the_composed_layer() {
    let device = Device::flex();
    for kind in KINDS {
        // Two stacked layers: the second layer's input is the first's fused output.
        let c = case(kind, 2, &device);
        let (fx, fw) = gradients(&c, false);
        let (cx, cw) = gradients(&c, true);
        let all_f = fx.iter().chain(fw.iter().flatten());
        let all_c = cx.iter().chain(cw.iter().flatten());
        for (i, (f, g)) in all_f.zip(all_c).enumerate() {
            assert!(
                (f - g).abs() <= 1e-5 * (1.0 + g.abs()),
                "{kind:?} gradient {i}: fused {f} vs composed {g}"
            );
        }
    }
}

/// The forward pass reuses the buffer a finished backward pass kept (stale contents
/// where sequences are padded): gradients after a pass on other data are bit for bit
/// those of a first pass.
#[test]
fn reused_buffers_give_the_same_gradients() {
    let device = Device::flex();
    for kind in KINDS {
        let c = case(kind, 1, &device);
        let first = gradients(&c, false);
        let other = Case {
            x: draw(9, B * L * I, 5.0),
            ..case(kind, 1, &device)
        };
        let _ = gradients(&other, false);
        let again = gradients(&c, false);
        assert_eq!(first.0, again.0, "{kind:?} input gradient");
        assert_eq!(first.1, again.1, "{kind:?} parameter gradients");
    }
}
