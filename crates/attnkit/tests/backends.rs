//! The modules on a GPU backend against the CPU backend (built with `--features wgpu`;
//! `ATTNKIT_TEST_DEVICE` names the device, default `wgpu`; CI runs it on Mesa's lavapipe
//! as `wgpu:cpu`).
//!
//! On the CPU backend the modules take attnkit's kernels (the fused attention softmax,
//! the Aaren and recurrent scans with hand-written backward passes, the tiled inference
//! kernels); on every other backend they take the composed Burn operations. So these
//! tests check the fallbacks and the kernels against each other: the same weights
//! (drawn on the CPU and moved), the same inputs, outputs and gradients within
//! |gpu − cpu| ≤ 1e-4 + 1e-3·|cpu| (f32 with other summation orders: observed
//! differences are near 1e-6), and a few training steps of the counting task with losses
//! within 1e-3.

#![cfg(feature = "wgpu")]
#![allow(clippy::unwrap_used)]

use attnkit::aaren::{AarenConfig, AarenMode};
use attnkit::attention::{AttentionMask, MultiHeadAttentionConfig};
use attnkit::device::ComputeDevice;
use attnkit::recurrent::{RecurrentConfig, RecurrentKind};
use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::tasks::enhance::{EnhanceConfig, Enhancer, TemporalModel};
use attnkit::train::TrainingTask;
use attnkit_kernels::rng::SplitMix64;
use burn::module::Module;
use burn::prelude::*;

fn gpu() -> Device {
    let name = std::env::var("ATTNKIT_TEST_DEVICE").unwrap_or_else(|_| "wgpu".into());
    let device: ComputeDevice = name.parse().unwrap();
    device.init().unwrap()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn draw(seed: u64, shape: &[usize], device: &Device) -> Tensor<3> {
    let mut g = SplitMix64::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| g.normal() as f32).collect();
    Tensor::from_data(TensorData::new(v, shape.to_vec()), device)
}

#[track_caller]
fn assert_close(what: &str, gpu: Vec<f32>, cpu: Vec<f32>) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let mut worst = (0.0f32, 0usize);
    for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        let excess = (g - c).abs() - (1e-4 + 1e-3 * c.abs());
        assert!(g.is_finite(), "{what}[{i}] = {g} on the GPU");
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 0.0,
        "{what}[{i}]: gpu {} vs cpu {}",
        gpu[i],
        cpu[i]
    );
}

const B: usize = 3;
const L: usize = 9;
const E: usize = 16;
const HEADS: usize = 4;

/// Key padding: sequence 1 has 5 tokens, sequence 2 has 1.
fn padding(device: &Device) -> Tensor<2, Bool> {
    let v: Vec<bool> = (0..B)
        .flat_map(|b| (0..L).map(move |t| t >= [L, 5, 1][b]))
        .collect();
    Tensor::from_data(TensorData::new(v, [B, L]), device)
}

#[test]
fn attention_matches_the_cpu_backend() {
    let (cpu, gpu) = (Device::flex(), gpu());
    let mha = MultiHeadAttentionConfig::new(E, HEADS).init(&cpu).unwrap();
    let mha_gpu = mha.clone().to_device(&gpu);
    for causal in [false, true] {
        let on = |d: &Device| {
            AttentionMask::none()
                .with_key_padding(padding(d))
                .with_causal(causal)
        };
        let want = mha
            .forward_self(draw(1, &[B, L, E], &cpu), &on(&cpu))
            .unwrap();
        let got = mha_gpu
            .forward_self(draw(1, &[B, L, E], &gpu), &on(&gpu))
            .unwrap();
        assert_close("mha output", host(got.output), host(want.output));
        assert_close("mha weights", host(got.weights), host(want.weights));
        // The context-only inference form (tiled kernel on the CPU).
        let want = mha
            .forward_self_context(draw(2, &[B, L, E], &cpu), &on(&cpu))
            .unwrap();
        let got = mha_gpu
            .forward_self_context(draw(2, &[B, L, E], &gpu), &on(&gpu))
            .unwrap();
        assert_close("mha context", host(got), host(want));
    }
}

#[test]
fn aaren_matches_the_cpu_backend() {
    let (cpu, gpu) = (Device::flex(), gpu());
    for mode in [AarenMode::Fused, AarenMode::Parallel, AarenMode::Iterative] {
        let layer = AarenConfig::new(E, HEADS)
            .init(&cpu)
            .unwrap()
            .with_mode(mode);
        let want = layer
            .forward(draw(3, &[B, L, E], &cpu), Some(&padding(&cpu)))
            .unwrap();
        let got = layer
            .clone()
            .to_device(&gpu)
            .forward(draw(3, &[B, L, E], &gpu), Some(&padding(&gpu)))
            .unwrap();
        assert_close(&format!("aaren {mode:?}"), host(got), host(want));
    }
}

#[test]
fn recurrent_layers_match_the_cpu_backend() {
    let (cpu, gpu) = (Device::flex(), gpu());
    let lengths = [L, 4, 1];
    for kind in [RecurrentKind::Rnn, RecurrentKind::Lstm, RecurrentKind::Gru] {
        let net = RecurrentConfig::new(kind, E, 8)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&cpu)
            .unwrap();
        let want = net
            .forward(draw(4, &[B, L, E], &cpu), Some(&lengths))
            .unwrap();
        let got = net
            .clone()
            .to_device(&gpu)
            .forward(draw(4, &[B, L, E], &gpu), Some(&lengths))
            .unwrap();
        assert_close(
            &format!("{kind:?} output"),
            host(got.output),
            host(want.output),
        );
        assert_close(&format!("{kind:?} h_n"), host(got.h_n), host(want.h_n));
    }
}

#[test]
fn the_enhancer_matches_the_cpu_backend() {
    let (cpu, gpu) = (Device::flex(), gpu());
    for model in [
        TemporalModel::Aaren,
        TemporalModel::Gru,
        TemporalModel::Attention,
    ] {
        let config = EnhanceConfig {
            model,
            width: 32,
            ff_dim: 32,
            ..EnhanceConfig::default()
        };
        let net = Enhancer::new(&config, &cpu).unwrap();
        let features = |d: &Device| draw(5, &[2, 30, 161], d);
        let want = net.forward(features(&cpu)).unwrap();
        let got = net.clone().to_device(&gpu).forward(features(&gpu)).unwrap();
        assert_close(&format!("enhancer {}", model.name()), host(got), host(want));
    }
}

/// ∂(Σ r ⊙ output)/∂(input and weights): the CPU's hand-written backward passes (fused
/// softmax, Aaren reverse scan, recurrent BPTT) against autodiff of the composed
/// operations on the GPU.
#[test]
fn gradients_match_the_cpu_backend() {
    let (cpu, gpu) = (Device::flex().autodiff(), gpu().autodiff());
    let r = |d: &Device| draw(6, &[B, L, E], d);
    let x = |d: &Device| draw(7, &[B, L, E], d).require_grad();

    let mha = MultiHeadAttentionConfig::new(E, HEADS).init(&cpu).unwrap();
    let mha_gpu = mha.clone().fork(&gpu);
    let mask = |d: &Device| {
        AttentionMask::none()
            .with_key_padding(padding(d))
            .with_causal(true)
    };
    let grads = |d: &Device, m: &attnkit::attention::MultiHeadAttention| {
        let x = x(d);
        let out = m.forward_self(x.clone(), &mask(d)).unwrap().output;
        let g = (out * r(d)).sum().backward();
        (
            host(x.grad(&g).unwrap()),
            host(m.in_proj_weight.val().grad(&g).unwrap().unsqueeze::<3>()),
        )
    };
    let (want_x, want_w) = grads(&cpu, &mha);
    let (got_x, got_w) = grads(&gpu, &mha_gpu);
    assert_close("mha ∂x", got_x, want_x);
    assert_close("mha ∂in_proj_weight", got_w, want_w);

    let aaren = AarenConfig::new(E, HEADS).init(&cpu).unwrap();
    let aaren_gpu = aaren.clone().fork(&gpu);
    let grads = |d: &Device, m: &attnkit::aaren::Aaren| {
        let x = x(d);
        let out = m.forward(x.clone(), Some(&padding(d))).unwrap();
        let g = (out * r(d)).sum().backward();
        (
            host(x.grad(&g).unwrap()),
            host(m.cell.query.val().grad(&g).unwrap().unsqueeze::<3>()),
        )
    };
    let (want_x, want_q) = grads(&cpu, &aaren);
    let (got_x, got_q) = grads(&gpu, &aaren_gpu);
    assert_close("aaren ∂x", got_x, want_x);
    assert_close("aaren ∂query", got_q, want_q);

    let gru = RecurrentConfig::new(RecurrentKind::Gru, E, E)
        .with_bidirectional(true)
        .init(&cpu)
        .unwrap();
    let gru_gpu = gru.clone().fork(&gpu);
    let lengths = [L, 4, 1];
    let grads = |d: &Device, m: &attnkit::recurrent::Recurrent| {
        let x = x(d);
        let out = m.forward(x.clone(), Some(&lengths)).unwrap().output;
        let out = out.narrow(2, 0, E);
        let g = (out * r(d)).sum().backward();
        (
            host(x.grad(&g).unwrap()),
            host(
                m.cells[0]
                    .weight_hh
                    .val()
                    .grad(&g)
                    .unwrap()
                    .unsqueeze::<3>(),
            ),
        )
    };
    let (want_x, want_w) = grads(&cpu, &gru);
    let (got_x, got_w) = grads(&gpu, &gru_gpu);
    assert_close("gru ∂x", got_x, want_x);
    assert_close("gru ∂weight_hh", got_w, want_w);
}

/// The same seed gives the same weights on both backends (drawn on the CPU and moved),
/// and the same batches; after a few Adam steps the losses still agree.
#[test]
fn counting_trains_alike_on_both_backends() {
    for mixer in [Mixer::Attention, Mixer::Aaren] {
        let config = CountConfig {
            mixer,
            seed: 3,
            ..CountConfig::default()
        };
        let mut cpu = CountTraining::new(config.clone(), &Device::flex()).unwrap();
        let mut gpu = CountTraining::new(config, &gpu()).unwrap();
        for step in 0..8 {
            let loss =
                |m: Vec<(&'static str, f64)>| m.iter().find(|(k, _)| *k == "loss").unwrap().1;
            let want = loss(cpu.train_step().unwrap());
            let got = loss(gpu.train_step().unwrap());
            assert!(
                (got - want).abs() <= 1e-3,
                "{mixer:?} step {step}: loss {got} on the GPU, {want} on the CPU"
            );
        }
    }
}
