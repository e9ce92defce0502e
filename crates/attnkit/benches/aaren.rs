//! Aaren: the scan over [B 8, H 8, L, d 64] by Burn's parallel prefix scan, the
//! iterative cell and the fused CPU kernel, L from 256 to 65 536; and one streaming step
//! against one KV-cache decoding step after N tokens (E 64, H 4), N from 10³ to 10⁶.
//! The same workloads as `attnkit bench aaren-scan-*`, `aaren-stream` and
//! `kv-cache-decode`.
//!
//! `cargo bench -p attnkit --bench aaren` (threads: `RAYON_NUM_THREADS`). The parallel
//! scan stops at L 16 384 (beyond, its log-depth passes hold several GB) and the cell at
//! L 4 096 (tens of seconds per sample beyond).

#![allow(missing_docs)]

use attnkit::aaren::{
    AarenConfig, AarenState, TokenStream, prefix_attention, prefix_attention_fused,
};
use attnkit_kernels::kv_cache::KvCacheDecoder;
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const B: usize = 8;
const H: usize = 8;
const D: usize = 64;

fn sync<const N: usize>(t: Tensor<N>) {
    let _ = t.into_data();
}

fn scan(c: &mut Criterion) {
    let device = Device::flex();
    let normal = Distribution::Normal(0.0, 1.0);
    let mut group = c.benchmark_group("aaren_scan_b8_h8_d64");
    group.sample_size(10);
    for len in [256usize, 1024, 4096, 16_384, 65_536] {
        let s = Tensor::<3>::random([B, H, len], normal, &device).into_data();
        let v = Tensor::<4>::random([B, H, len, D], normal, &device).into_data();
        // Each run gets its own inputs, made outside the timing (the fused scan works in
        // place over a buffer it alone holds, as the layer's is).
        let inputs = || {
            (
                Tensor::<3>::from_data(s.clone(), &device),
                Tensor::<4>::from_data(v.clone(), &device),
            )
        };
        group.bench_with_input(BenchmarkId::new("fused", len), &len, |bench, _| {
            bench.iter_batched(
                inputs,
                |(s, v)| sync(prefix_attention_fused(s, v, None).expect("scan")),
                BatchSize::PerIteration,
            )
        });
        if len <= 16_384 {
            group.bench_with_input(BenchmarkId::new("parallel", len), &len, |bench, _| {
                bench.iter_batched(
                    inputs,
                    |(s, v)| sync(prefix_attention(s, v, None).expect("scan")),
                    BatchSize::PerIteration,
                )
            });
        }
        if len <= 4096 {
            group.bench_with_input(BenchmarkId::new("iterative", len), &len, |bench, &len| {
                bench.iter_batched(
                    inputs,
                    |(s, v)| {
                        let mut state = AarenState::empty(B, H, D, &device);
                        let mut outputs = Vec::with_capacity(len);
                        for t in 0..len {
                            state = state
                                .step(
                                    s.clone().narrow(2, t, 1).reshape([B, H]),
                                    v.clone().narrow(2, t, 1).reshape([B, H, D]),
                                    None,
                                )
                                .expect("step");
                            outputs.push(state.output().unsqueeze_dim::<4>(2));
                        }
                        sync(Tensor::cat(outputs, 2));
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let (e, h) = (64, 4);
    let device = Device::flex();
    let layer = AarenConfig::new(e, h).init(&device).expect("config");
    let w =
        |n: usize, s: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * 0.11).sin() * s).collect() };
    let token = w(e, 1.0);
    let mut group = c.benchmark_group("decode_step_e64_h4");
    for tokens in [1_000usize, 10_000, 100_000, 1_000_000] {
        let mut stream = TokenStream::<f32>::new(&layer).expect("stream");
        for _ in 0..tokens {
            stream.push(&token, false).expect("push");
        }
        group.bench_with_input(
            BenchmarkId::new("aaren_stream", tokens),
            &tokens,
            |bench, _| bench.iter(|| stream.push(&token, false).expect("push")[0]),
        );
        let scale = 1.0 / (e as f32).sqrt();
        let mut decoder = KvCacheDecoder::new(
            e,
            h,
            &w(3 * e * e, scale),
            &w(3 * e, 0.1),
            &w(e * e, scale),
            &w(e, 0.1),
        )
        .expect("decoder");
        let (k, v) = (w(e, 0.5), w(e, 0.25));
        for _ in 0..tokens - 1 {
            decoder.push_cached(&k, &v).expect("cache");
        }
        let mut out = vec![0.0f32; e];
        // Each step appends one token: the cache grows by the number of samples taken,
        // a few hundred on top of N.
        group.bench_with_input(BenchmarkId::new("kv_cache", tokens), &tokens, |bench, _| {
            bench.iter(|| decoder.step(&token, &mut out).expect("step"))
        });
    }
    group.finish();
}

criterion_group!(benches, scan, streaming);
criterion_main!(benches);
