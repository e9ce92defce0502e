//! Multi-head attention at B 4, H 8, L 512, E 512 (f32): forward with the weights, the
//! fused inference path, the attention kernel alone, and one training step (forward,
//! MSE backward, Adam). The same shapes as `attnkit bench mha-*` and `sdpa-fused`; PyTorch
//! peers in `bench/peer_pytorch.py`.
//!
//! `cargo bench -p attnkit --bench attention` (threads: `RAYON_NUM_THREADS`).

#![allow(missing_docs)]

use attnkit::attention::{
    AttentionMask, MultiHeadAttentionConfig, ScaledDotProductAttentionConfig,
};
use attnkit::train::{OptimizerConfig, materialize, mse};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};

// As the CLI does: freed multi-megabyte tensors are not handed back to the OS each pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const B: usize = 4;
const H: usize = 8;
const L: usize = 512;
const E: usize = 512;

/// Forces a lazily evaluated result.
fn sync<const D: usize>(t: Tensor<D>) {
    let _ = t.into_data();
}

fn attention(c: &mut Criterion) {
    let device = Device::flex();
    let mha = MultiHeadAttentionConfig::new(E, H)
        .init(&device)
        .expect("config");
    let x = Tensor::<3>::random([B, L, E], Distribution::Default, &device);
    let none = AttentionMask::none();
    let mut group = c.benchmark_group("mha_b4_h8_l512_e512");
    group.sample_size(10);
    group.bench_function("forward_with_weights", |bench| {
        bench.iter(|| sync(mha.forward_self(x.clone(), &none).expect("forward").output))
    });
    group.bench_function("forward_context_fused", |bench| {
        bench.iter(|| sync(mha.forward_self_context(x.clone(), &none).expect("forward")))
    });
    let sdpa = ScaledDotProductAttentionConfig::new().init(&device);
    let qkv = || Tensor::<4>::random([B, H, L, E / H], Distribution::Default, &device);
    let (q, k, v) = (qkv(), qkv(), qkv());
    group.bench_function("sdpa_forward_context_fused", |bench| {
        bench.iter(|| {
            sync(
                sdpa.forward_context(q.clone(), k.clone(), v.clone(), None)
                    .expect("forward"),
            )
        })
    });

    let ad = device.clone().autodiff();
    let mut model = MultiHeadAttentionConfig::new(E, H)
        .init(&ad)
        .expect("config");
    materialize(&model);
    let mut optim = OptimizerConfig::Adam { lr: 1e-4 }
        .init()
        .expect("optimizer");
    let x = Tensor::<3>::random([B, L, E], Distribution::Default, &ad);
    let y = Tensor::<3>::random([B, L, E], Distribution::Default, &ad);
    group.bench_function("train_step_adam", |bench| {
        bench.iter(|| {
            let out = model
                .forward_self(x.clone(), &none)
                .expect("forward")
                .output;
            let loss = mse(out, y.clone()).expect("loss");
            model = optim.step(model.clone(), loss);
            sync(model.in_proj_weight.val());
        })
    });
    group.finish();
}

criterion_group!(benches, attention);
criterion_main!(benches);
