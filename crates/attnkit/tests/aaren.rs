//! The Aaren forms against each other and against the direct f64 definition
//! (`attnkit_kernels::reference::aaren_layer`, O(L²), no recurrence and no scan).
//!
//! Tolerances: against the f64 definition, atol 1e-4 + rtol 1e-3 of the output's scale
//! for f32 arithmetic with scores in the hundreds; between two f32 forms of the same
//! sequence, 1e-5 relative to the output's scale (different summation orders only).

#![allow(clippy::unwrap_used)]

use attnkit::aaren::{AarenConfig, AarenMode, TokenStream, last_output, prefix_attention};
use attnkit::store::StoredTensor;
use attnkit::verify::{Agreement, aaren_vs_reference};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    StoredTensor::from_tensor(t).data
}

fn randn(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let want: Vec<f64> = b.iter().map(|&x| x as f64).collect();
    Agreement::measure(a, &want).unwrap().max_rel
}

#[test]
fn both_modes_match_the_f64_definition_with_masks_and_large_scores() {
    let device = Device::flex();
    for (mode, len, scale) in [
        (AarenMode::Parallel, 1, 1.0),
        (AarenMode::Parallel, 37, 1.0),
        (AarenMode::Parallel, 300, 300.0),
        (AarenMode::Iterative, 37, 1.0),
        (AarenMode::Iterative, 120, 300.0),
        (AarenMode::Fused, 1, 1.0),
        (AarenMode::Fused, 37, 1.0),
        (AarenMode::Fused, 300, 300.0),
    ] {
        let a = aaren_vs_reference(&device, 7, len, scale, mode).unwrap();
        assert!(a.finite, "{mode:?} L={len}: non-finite output");
        assert!(
            a.max_abs <= 1e-4 || a.max_rel <= 1e-3,
            "{mode:?} L={len} scale={scale}: {a:?}"
        );
    }
}

#[test]
fn iterative_parallel_and_closed_form_agree() {
    let device = Device::flex();
    let (b, l, e, h) = (3, 45, 8, 2);
    let layer = AarenConfig::new(e, h).init(&device).unwrap();
    let x = Tensor::<3>::random(
        [b, l, e],
        burn::tensor::Distribution::Normal(0.0, 2.0),
        &device,
    );
    let mask = Tensor::<2, Bool>::from_data(
        TensorData::new(
            (0..b * l).map(|i| i % 7 == 3 || i < 5).collect::<Vec<_>>(),
            [b, l],
        ),
        &device,
    );
    let (par, par_state) = layer
        .cell
        .forward_parallel(x.clone(), Some(&mask), None)
        .unwrap();
    let (it, it_state) = layer
        .cell
        .forward_iterative(x.clone(), Some(&mask), None)
        .unwrap();
    let last = layer.cell.forward_last(x, Some(&mask)).unwrap();
    let (hp, hi) = (host(par.clone()), host(it));
    assert!(rel_diff(&hp, &hi) < 1e-5, "{}", rel_diff(&hp, &hi));
    let par_last = host(par.narrow(2, l - 1, 1));
    assert!(rel_diff(&host(last), &par_last) < 1e-5);
    assert!(rel_diff(&host(par_state.output()), &host(it_state.output())) < 1e-5);
    // The first sequence starts with five padded tokens: its first outputs are zero.
    assert!(hp[..5 * (e / h)].iter().all(|&v| v == 0.0));
}

#[test]
fn chunked_stream_equals_one_full_call() {
    let device = Device::flex();
    let (b, l, e, h) = (2, 50, 8, 4);
    for mode in [AarenMode::Parallel, AarenMode::Iterative] {
        let layer = AarenConfig::new(e, h)
            .with_mode(mode)
            .init(&device)
            .unwrap();
        let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
        let full = host(layer.forward(x.clone(), None).unwrap());
        let mut stream = layer.stream(b);
        let mut parts = Vec::new();
        let mut start = 0;
        for chunk in [1, 7, 16, 1, 25] {
            parts.push(
                stream
                    .push(x.clone().narrow(1, start, chunk), None)
                    .unwrap(),
            );
            start += chunk;
            assert_eq!(stream.state().num_elements(), b * h * (e / h + 2));
        }
        assert_eq!(stream.tokens(), l);
        let chunked = host(Tensor::cat(parts, 1));
        assert!(
            rel_diff(&chunked, &full) < 1e-5,
            "{mode:?}: {}",
            rel_diff(&chunked, &full)
        );
    }
}

/// A million tokens through the allocation-free kernel stream hold the same
/// twelve numbers of state as one token did, and give the parallel scan's outputs.
#[test]
fn a_million_tokens_stream_in_constant_memory_and_match_the_scan() {
    let device = Device::flex();
    let (l, e, h) = (1_000_000, 8, 2);
    let layer = AarenConfig::new(e, h).init(&device).unwrap();
    let mut rng = SplitMix64::new(11);
    let x = randn(&mut rng, l * e);
    let parallel = host(
        layer
            .forward(
                Tensor::from_data(TensorData::new(x.clone(), [1, l, e]), &device),
                None,
            )
            .unwrap(),
    );
    let mut stream = TokenStream::<f32>::new(&layer).unwrap();
    let state_size = stream.state().len();
    assert_eq!(state_size, h * (e / h + 2));
    let mut streamed = Vec::with_capacity(l * e);
    for t in 0..l {
        streamed.extend_from_slice(stream.push(&x[t * e..(t + 1) * e], false).unwrap());
    }
    assert_eq!(stream.state().len(), state_size);
    assert_eq!(stream.tokens(), l as u64);
    let err = rel_diff(&streamed, &parallel);
    assert!(err < 1e-4, "stream vs scan over 1e6 tokens: {err:e}");

    // The Burn stream in chunks keeps a fixed-size state too.
    let mut chunks = layer.stream(1);
    let xt = Tensor::<3>::from_data(TensorData::new(x, [1, l, e]), &device);
    let mut last = Vec::new();
    for start in (0..l).step_by(250_000) {
        let out = chunks
            .push(xt.clone().narrow(1, start, 250_000), None)
            .unwrap();
        assert_eq!(chunks.state().dims(), [1, h, e / h]);
        last = host(out.narrow(1, 249_999, 1));
    }
    assert!(rel_diff(&last, &parallel[(l - 1) * e..]) < 1e-4);
}

#[test]
fn scan_survives_extreme_scores_and_empty_prefixes() {
    let device = Device::flex();
    // Scores that jump by 2e4 (e^2e4 overflows any float), then a masked token.
    let s = [-1.0e4f32, 1.0e4, -1.0e4, 5.0, 1.0e4];
    let v: Vec<f32> = (0..5).map(|i| i as f32).collect();
    let mask = [true, false, false, false, true];
    let scores = Tensor::<3>::from_data(TensorData::new(s.to_vec(), [1, 1, 5]), &device);
    let values = Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 1, 5, 1]), &device);
    let m = Tensor::<2, Bool>::from_data(TensorData::new(mask.to_vec(), [1, 5]), &device);
    let out = host(prefix_attention(scores.clone(), values.clone(), Some(&m)).unwrap());
    let want = attnkit_kernels::reference::prefix_attention(
        &s.map(|x| x as f64),
        &v.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        1,
        Some(&mask),
    )
    .unwrap();
    assert_eq!(out, want.iter().map(|&x| x as f32).collect::<Vec<_>>());
    assert_eq!(out[0], 0.0, "no unmasked token yet gives 0, not NaN");
    let last = host(last_output(scores, values, Some(&m)).unwrap());
    assert_eq!(last, [out[4]]);
}

/// Iterative vs parallel agreement at test scale: 2·10^5 tokens, scores up to ~5·10^4 and a moderate scale
/// where many tokens share the weight. Bounds in units of f32 epsilon, relative to the
/// size of the terms each output sums (see `compare_aaren_forms`): the parallel scan and
/// the compensated cell stay within 16 (measured <= 5); the plain cell drifts with the
/// length (measured 28 at 10^5) and is only required to stay finite and below 200.
#[test]
fn forms_agree_at_long_lengths_and_extreme_scores() {
    use attnkit::verify::{AarenCompareSpec, compare_aaren_forms};
    let device = Device::flex();
    let eps = f32::EPSILON as f64;
    for score_scale in [10.0, 1.0e4] {
        let r = compare_aaren_forms(
            &device,
            AarenCompareSpec {
                batch: 1,
                heads: 2,
                len: 200_000,
                d_head: 4,
                score_scale,
                seed: 3,
            },
        )
        .unwrap();
        for a in [
            r.parallel_vs_iterative,
            r.parallel_vs_reference,
            r.iterative_vs_reference,
            r.compensated_vs_reference,
        ] {
            assert!(a.finite && a.max_abs.is_finite(), "{r:?}");
        }
        assert!(r.parallel_vs_reference.max_rel <= 16.0 * eps, "{r:?}");
        assert!(r.compensated_vs_reference.max_rel <= 16.0 * eps, "{r:?}");
        assert!(r.iterative_vs_reference.max_rel <= 200.0 * eps, "{r:?}");
    }
}

#[test]
fn encoder_stack_is_causal_and_round_trips_its_weights() {
    use attnkit::aaren::AarenEncoderConfig;
    use attnkit::store::{TensorStore, TorchWeights};
    let device = Device::flex();
    let (b, l, e) = (2, 9, 8);
    let cfg = AarenEncoderConfig::new(e, 2)
        .with_ff_dim(16)
        .with_dropout(0.0)
        .with_num_layers(2);
    let enc = cfg.init(&device).unwrap();
    let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
    let y = host(enc.forward(x.clone(), None).unwrap());
    // Changing token 5 changes nothing before it: every block is causal.
    let bump = Tensor::<3>::zeros([b, l, e], &device)
        .slice_assign([0..b, 5..6, 0..e], Tensor::ones([b, 1, e], &device));
    let y2 = host(enc.forward(x.clone() + bump, None).unwrap());
    let before = 5 * e;
    assert_eq!(&y[..before], &y2[..before]);
    assert_ne!(&y[before..before + e], &y2[before..before + e]);
    // Saved under PyTorch-style names and loaded into a fresh stack: same outputs.
    let mut store = TensorStore::new("encoder");
    enc.save_weights(&mut store, "");
    assert!(store.get("layers.1.aaren.query").is_some());
    assert!(store.get("layers.0.norm2.bias").is_some());
    let loaded = cfg.init(&device).unwrap().load_weights(&store, "").unwrap();
    assert_eq!(host(loaded.forward(x, None).unwrap()), y);
}

/// The layer trains through the parallel scan: Adam learns the running mean of the
/// tokens (uniform attention over the prefix) to a loss under 5% of where it started.
#[test]
fn layer_trains_through_the_scan() {
    use burn::optim::{AdamConfig, GradientsParams};
    let device = Device::flex().autodiff();
    device.seed(4);
    let (b, l, e) = (16, 12, 8);
    let mut layer = AarenConfig::new(e, 2).init(&device).unwrap();
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..200 {
        let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
        let counts = Tensor::<1, Int>::arange(1..(l as i64 + 1), &device)
            .float()
            .reshape([1, l, 1]);
        let target = x.clone().cumsum(1) / counts;
        let loss = (layer.forward(x, None).unwrap() - target)
            .powf_scalar(2.0)
            .mean();
        losses.push(loss.clone().into_scalar::<f32>() as f64);
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(1e-2, layer, grads);
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < 0.05 * first, "loss {first} → {last}");
}

/// The fused CPU form equals the parallel scan on a padded batch and continues from a
/// state like the other forms (its f64 path: `forward_cli.rs`, where `aaren` runs in
/// f64 by default).
#[test]
fn fused_form_matches_the_scan_and_continues_from_a_state() {
    let device = Device::flex();
    let (b, l, e, h) = (3, 50, 8, 2);
    let layer = AarenConfig::new(e, h).init(&device).unwrap();
    let x = Tensor::<3>::random(
        [b, l, e],
        burn::tensor::Distribution::Normal(0.0, 2.0),
        &device,
    );
    let mask = Tensor::<2, Bool>::from_data(
        TensorData::new(
            (0..b * l).map(|i| i % 7 == 3 || i < 5).collect::<Vec<_>>(),
            [b, l],
        ),
        &device,
    );
    let (scan, scan_state) = layer
        .cell
        .forward_parallel(x.clone(), Some(&mask), None)
        .unwrap();
    let (fused, fused_state) = layer
        .cell
        .forward_fused(x.clone(), Some(&mask), None)
        .unwrap();
    let r = rel_diff(&host(fused), &host(scan));
    assert!(r <= 1e-5, "fused vs scan {r:e}");
    assert!(rel_diff(&host(fused_state.a), &host(scan_state.a)) <= 1e-5);
    // Two chunks through the fused form equal one pass.
    let (o1, st) = layer
        .cell
        .forward_fused(
            x.clone().narrow(1, 0, 20),
            Some(&mask.clone().narrow(1, 0, 20)),
            None,
        )
        .unwrap();
    let (o2, _) = layer
        .cell
        .forward_fused(
            x.clone().narrow(1, 20, l - 20),
            Some(&mask.clone().narrow(1, 20, l - 20)),
            Some(st),
        )
        .unwrap();
    let (whole, _) = layer.cell.forward_fused(x, Some(&mask), None).unwrap();
    assert!(rel_diff(&host(Tensor::cat(vec![o1, o2], 2)), &host(whole)) <= 1e-6);
}

/// Training through the fused form (the default): the gradients of every parameter and
/// of the input equal the parallel (Hillis–Steele) scan's within 2e-5·(1 + |g|) (f32,
/// two summation orders), with padding at the start, in the middle and at the end of
/// sequences; padded tokens get exactly zero gradient; and the fused output equals the
/// parallel one within 1e-5.
#[test]
fn fused_form_trains_like_the_parallel_scan() {
    let device = Device::flex().autodiff();
    let (b, l, e, h) = (3, 11, 8, 2);
    let mut layer = AarenConfig::new(e, h).init(&Device::flex()).unwrap();
    assert_eq!(layer.mode(), AarenMode::Fused);
    // Scores of a few units, so the weights are far from uniform.
    layer.cell.query = layer.cell.query.map(|q| q * 3.0);
    let layer = layer.fork(&device);
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let x0 = Tensor::<3>::random([b, l, e], normal, &device);
    let r = Tensor::<3>::random([b, l, e], normal, &device);
    let pad: Vec<bool> = (0..b * l)
        .map(|i| {
            let (s, t) = (i / l, i % l);
            (s == 0 && t < 3) || (s == 1 && t == 5) || (s == 2 && t >= 8)
        })
        .collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [b, l]), &device);
    let run = |mode: AarenMode| {
        let layer = layer.clone().with_mode(mode).train();
        let x = x0.clone().require_grad();
        let out = layer.forward(x.clone(), Some(&mask)).unwrap();
        let grads = (out.clone() * r.clone()).sum().backward();
        let mut all = host(x.grad(&grads).unwrap());
        all.extend(host(layer.cell.query.val().grad(&grads).unwrap()));
        all.extend(host(layer.cell.in_proj_weight.val().grad(&grads).unwrap()));
        all.extend(host(layer.cell.in_proj_bias.val().grad(&grads).unwrap()));
        all.extend(host(layer.out_proj.weight.val().grad(&grads).unwrap()));
        (host(out), all)
    };
    let (out_f, grad_f) = run(AarenMode::Fused);
    let (out_p, grad_p) = run(AarenMode::Parallel);
    for (i, (f, p)) in out_f.iter().zip(&out_p).enumerate() {
        assert!(
            (f - p).abs() <= 1e-5,
            "output {i}: fused {f} vs parallel {p}"
        );
    }
    for (i, (f, p)) in grad_f.iter().zip(&grad_p).enumerate() {
        assert!(
            (f - p).abs() <= 2e-5 * (1.0 + p.abs()),
            "gradient {i}: fused {f} vs parallel {p}"
        );
    }
    for (i, &p) in pad.iter().enumerate() {
        if p {
            assert!(
                grad_f[i * e..(i + 1) * e].iter().all(|&g| g == 0.0),
                "padded token {i}"
            );
        }
    }
}
