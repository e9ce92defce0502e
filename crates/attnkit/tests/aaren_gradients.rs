//! Gradients through the parallel scan against central finite differences and against
//! the iterative cell, in f64 (this test binary configures the device for f64 once,
//! before any tensor exists, so finite differences are not drowned by f32 rounding).
//!
//! Tolerances: |autodiff − finite difference| <= 1e-6·(1 + |fd|) with step h = 1e-5
//! (truncation error O(h²) ≈ 1e-10, rounding ≈ 1e-16/h ≈ 1e-11); parallel vs iterative
//! gradients within 1e-10 (same mathematics, different summation order).

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use attnkit::aaren::{Aaren, AarenConfig, AarenMode};
use burn::prelude::*;
use burn::tensor::FloatDType;

const B: usize = 2;
const L: usize = 9;
const E: usize = 4;
const H: usize = 2;

fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut d = Device::flex();
            d.configure(FloatDType::F64).unwrap();
            d
        })
        .clone()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

fn tensor<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn mask(device: &Device) -> Tensor<2, Bool> {
    // The second sequence starts padded and has a gap.
    let m: Vec<bool> = (0..B * L)
        .map(|i| i == L || i == L + 1 || i == L + 5)
        .collect();
    Tensor::from_data(TensorData::new(m, [B, L]), device)
}

/// loss = Σ out ⊙ r for a fixed r, so ∂loss/∂out = r.
fn loss(layer: &Aaren, x: Tensor<3>, r: &[f64], device: &Device) -> Tensor<1> {
    let out = layer.forward(x, Some(&mask(device))).unwrap();
    (out * tensor(r, [B, L, E], device)).sum()
}

fn draw(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut g = attnkit_kernels::rng::SplitMix64::new(seed);
    (0..n).map(|_| g.normal() * scale).collect()
}

fn setup(mode: AarenMode) -> (Aaren, Vec<f64>, Vec<f64>) {
    let dev = device();
    let mut layer = AarenConfig::new(E, H).with_mode(mode).init(&dev).unwrap();
    // Scores of a few units, so the softmax weights are far from uniform.
    layer.cell.query = layer.cell.query.map(|q| q * 3.0);
    (layer, draw(1, B * L * E, 1.0), draw(2, B * L * E, 1.0))
}

fn input_gradient(layer: &Aaren, x: &[f64], r: &[f64]) -> Vec<f64> {
    let dev = device().autodiff();
    let layer = layer.clone().train();
    let xt = tensor(x, [B, L, E], &dev).require_grad();
    let grads = loss(&layer, xt.clone(), r, &dev).backward();
    values(xt.grad(&grads).unwrap())
}

#[test]
fn parallel_scan_gradients_match_finite_differences() {
    let (layer, x, r) = setup(AarenMode::Parallel);
    let got = input_gradient(&layer, &x, &r);
    let dev = device();
    let h = 1e-5;
    let f = |x: &[f64]| values(loss(&layer, tensor(x, [B, L, E], &dev), &r, &dev))[0];
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[i] += h;
        minus[i] -= h;
        let fd = (f(&plus) - f(&minus)) / (2.0 * h);
        let err = (got[i] - fd).abs() / (1.0 + fd.abs());
        worst = worst.max(err);
        assert!(err <= 1e-6, "x[{i}]: autodiff {} vs fd {fd}", got[i]);
    }
    // Padded tokens get no gradient: they never reach the output.
    for t in [L, L + 1, L + 5] {
        assert!(got[t * E..(t + 1) * E].iter().all(|&g| g == 0.0));
    }
    assert!(worst > 0.0);
}

#[test]
fn parameter_gradients_match_finite_differences() {
    let (layer, x, r) = setup(AarenMode::Parallel);
    let dev = device().autodiff();
    let ad_layer = layer.clone().train();
    let grads = loss(&ad_layer, tensor(&x, [B, L, E], &dev), &r, &dev).backward();
    let got = values(ad_layer.cell.query.val().grad(&grads).unwrap());
    let plain = device();
    let h = 1e-5;
    let q0 = values(layer.cell.query.val());
    for i in 0..E {
        let at = |delta: f64| {
            let mut q = q0.clone();
            q[i] += delta;
            let mut l = layer.clone();
            l.cell.query = l.cell.query.map(|_| tensor(&q, [E], &plain));
            values(loss(&l, tensor(&x, [B, L, E], &plain), &r, &plain))[0]
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (got[i] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
            "query[{i}]: autodiff {} vs fd {fd}",
            got[i]
        );
    }
}

#[test]
fn parallel_and_iterative_gradients_agree() {
    let (layer, x, r) = setup(AarenMode::Parallel);
    let par = input_gradient(&layer, &x, &r);
    let it = input_gradient(&layer.with_mode(AarenMode::Iterative), &x, &r);
    for (i, (p, q)) in par.iter().zip(&it).enumerate() {
        assert!(
            (p - q).abs() <= 1e-10,
            "x[{i}]: parallel {p} vs iterative {q}"
        );
    }
}
