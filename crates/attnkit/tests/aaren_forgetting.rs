//! Aaren with learned forgetting rates against the direct f64 definition, computed here
//! from the layer's weights with no recurrence and no scan:
//! o_t = Σ_{i ≤ t} e^(s_i − λ(t − i)) v_i / Σ_{i ≤ t} e^(s_i − λ(t − i)), per head.
//!
//! Tolerances: every f32 form against the f64 definition within 1e-4 of the output's
//! scale (scores of a few units, added decay terms up to λ·1024 ≈ 300 in the chunked
//! inference); two f32 forms of the same sequence within 1e-5; gradients of the rates
//! against central differences of the f64 definition (step 1e-4, truncation ≈ 1e-8)
//! within 1e-3·(1 + |g|), f32 rounding of a sum over hundreds of terms.

#![allow(clippy::unwrap_used)]

use attnkit::aaren::{Aaren, AarenConfig, AarenMode, TokenStream};
use attnkit::store::StoredTensor;
use burn::prelude::*;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    StoredTensor::from_tensor(t).data
}

/// A forgetting layer with the given rates and scores of a few units.
fn layer(e: usize, h: usize, rates: &[f64], device: &Device) -> Aaren {
    let mut layer = AarenConfig::new(e, h)
        .with_forgetting(true)
        .init(device)
        .unwrap();
    layer.cell.query = layer.cell.query.map(|q| q * 3.0);
    let log: Vec<f32> = rates.iter().map(|r| r.ln() as f32).collect();
    let p = layer.cell.log_decay.take().unwrap();
    layer.cell.log_decay = Some(p.map(|_| Tensor::from_data(TensorData::new(log, [h]), device)));
    layer
}

/// The decayed attention of every prefix, `[B, H, L, d]`, in f64 from the weights.
fn definition(
    layer: &Aaren,
    x: &[f32],
    mask: &[bool],
    rates: &[f64],
    [b, l, e]: [usize; 3],
) -> Vec<f64> {
    let h = layer.num_heads();
    let d = e / h;
    let f = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let query = f(host(layer.cell.query.val()));
    let w = f(host(layer.cell.in_proj_weight.val()));
    let bias = f(host(layer.cell.in_proj_bias.val()));
    let project = |block: usize, v: &[f64]| -> Vec<f64> {
        (0..e)
            .map(|r| {
                let row = &w[(block * e + r) * e..][..e];
                bias[block * e + r] + row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>()
            })
            .collect()
    };
    let q = project(0, &query);
    let mut out = vec![0.0; b * h * l * d];
    for s in 0..b {
        let tokens: Vec<Vec<f64>> = (0..l)
            .map(|t| {
                x[(s * l + t) * e..][..e]
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            })
            .collect();
        let keys: Vec<Vec<f64>> = tokens.iter().map(|t| project(1, t)).collect();
        let values: Vec<Vec<f64>> = tokens.iter().map(|t| project(2, t)).collect();
        for hh in 0..h {
            let score = |i: usize| -> f64 {
                (0..d)
                    .map(|k| q[hh * d + k] * keys[i][hh * d + k])
                    .sum::<f64>()
                    / (d as f64).sqrt()
            };
            let scores: Vec<f64> = (0..l).map(score).collect();
            for t in 0..l {
                let seen: Vec<usize> = (0..=t).filter(|&i| !mask[s * l + i]).collect();
                if seen.is_empty() {
                    continue;
                }
                let decayed = |i: usize| scores[i] - rates[hh] * (t - i) as f64;
                let top = seen.iter().map(|&i| decayed(i)).fold(f64::MIN, f64::max);
                let weights: Vec<f64> = seen.iter().map(|&i| (decayed(i) - top).exp()).collect();
                let total: f64 = weights.iter().sum();
                for k in 0..d {
                    let num: f64 = seen
                        .iter()
                        .zip(&weights)
                        .map(|(&i, w)| w * values[i][hh * d + k])
                        .sum();
                    out[((s * h + hh) * l + t) * d + k] = num / total;
                }
            }
        }
    }
    out
}

fn worst(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

#[test]
fn every_form_matches_the_decayed_softmax_with_masks() {
    let device = Device::flex();
    let (b, l, e, h) = (3, 40, 8, 2);
    let rates = [0.05, 0.7];
    let layer = layer(e, h, &rates, &device);
    let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
    let pad: Vec<bool> = (0..b * l)
        .map(|i| (i / l == 0 && i % l < 4) || i % 9 == 5)
        .collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [b, l]), &device);
    let want = definition(&layer, &host(x.clone()), &pad, &rates, [b, l, e]);
    let cell = &layer.cell;
    let forms = [
        (
            "iterative",
            cell.forward_iterative(x.clone(), Some(&mask), None),
        ),
        (
            "parallel",
            cell.forward_parallel(x.clone(), Some(&mask), None),
        ),
        ("fused", cell.forward_fused(x.clone(), Some(&mask), None)),
    ];
    let mut states = Vec::new();
    for (name, result) in forms {
        let (out, state) = result.unwrap();
        let err = worst(&host(out), &want);
        assert!(err <= 1e-4, "{name}: {err:e}");
        states.push((name, host(state.m), host(state.c), host(state.a)));
    }
    // The state after the sequence is the same in every form (referred to its last token).
    for (name, m, c, a) in &states[1..] {
        for (got, want) in [(m, &states[0].1), (c, &states[0].2), (a, &states[0].3)] {
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{name}: {g} vs {w}"
                );
            }
        }
    }
    // The closed form for the last output.
    let last = host(cell.forward_last(x, Some(&mask)).unwrap());
    for s in 0..b {
        for hh in 0..h {
            for k in 0..e / h {
                let w = want[((s * h + hh) * l + l - 1) * (e / h) + k];
                let g = last[(s * h + hh) * (e / h) + k] as f64;
                assert!((g - w).abs() <= 1e-4, "last output: {g} vs {w}");
            }
        }
    }
}

#[test]
fn chunks_steps_and_the_kernel_stream_continue_the_decay() {
    let device = Device::flex();
    let (b, l, e, h) = (1, 2_500, 8, 2);
    let rates = [0.02, 0.3];
    let layer = layer(e, h, &rates, &device);
    let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
    let want = definition(
        &layer,
        &host(x.clone()),
        &vec![false; b * l],
        &rates,
        [b, l, e],
    );
    // Whole-sequence inference runs in chunks of 1,024 tokens internally.
    let (out, _) = layer.cell.forward_fused(x.clone(), None, None).unwrap();
    let full = host(out);
    let err = worst(&full, &want);
    assert!(err <= 1e-4, "fused, 2,500 tokens: {err:e}");
    // Chunks of any size through the layer's stream give the one call's outputs.
    for mode in [AarenMode::Parallel, AarenMode::Fused, AarenMode::Iterative] {
        let layer = layer.clone().with_mode(mode);
        let whole = host(layer.forward(x.clone().narrow(1, 0, 300), None).unwrap());
        let mut stream = layer.stream(b);
        let mut parts = Vec::new();
        let mut start = 0;
        for chunk in [1, 7, 130, 1, 161] {
            parts.push(host(
                stream
                    .push(x.clone().narrow(1, start, chunk), None)
                    .unwrap(),
            ));
            start += chunk;
        }
        let chunked: Vec<f32> = parts.concat();
        let scale = whole.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        for (i, (c, w)) in chunked.iter().zip(&whole).enumerate() {
            assert!(
                (c - w).abs() <= 1e-5 * scale,
                "{mode:?} token {i}: {c} vs {w}"
            );
        }
    }
    // One token at a time: the cell's step and the allocation-free kernel stream.
    let mut state = layer.cell.empty_state(b);
    let mut tokens = TokenStream::<f32>::new(&layer).unwrap();
    let full_layer = host(layer.forward(x.clone().narrow(1, 0, 200), None).unwrap());
    let d = e / h;
    for t in 0..200 {
        let xt = x.clone().narrow(1, t, 1).reshape([b, e]);
        let (next, o) = layer.cell.step(state, xt.clone(), None).unwrap();
        state = next;
        let o = host(o);
        for hh in 0..h {
            for k in 0..d {
                let w = want[(hh * l + t) * d + k];
                assert!((o[hh * d + k] as f64 - w).abs() <= 1e-4, "step {t}");
            }
        }
        let y = tokens.push(&host(xt), false).unwrap();
        for (k, (g, w)) in y.iter().zip(&full_layer[t * e..(t + 1) * e]).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "kernel stream {t}.{k}"
            );
        }
    }
    assert_eq!(tokens.state().len(), h * (d + 2));
}

#[test]
fn gradients_of_the_rates_match_central_differences_in_both_training_forms() {
    let device = Device::flex();
    let (b, l, e, h) = (2, 60, 8, 2);
    let rates = [0.04, 0.5];
    let base = layer(e, h, &rates, &device);
    let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &device);
    let r = Tensor::<4>::random(
        [b, h, l, e / h],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (xs, rs) = (host(x.clone()), host(r.clone()));
    let pad = vec![false; b * l];
    // The loss Σ r·o as a function of the log-rates, by the f64 definition.
    let loss = |log: [f64; 2]| -> f64 {
        let rates = [log[0].exp(), log[1].exp()];
        definition(&base, &xs, &pad, &rates, [b, l, e])
            .iter()
            .zip(&rs)
            .map(|(o, r)| o * *r as f64)
            .sum()
    };
    let log = [rates[0].ln(), rates[1].ln()];
    let step = 1e-4;
    let numeric: Vec<f64> = (0..h)
        .map(|k| {
            let (mut up, mut down) = (log, log);
            up[k] += step;
            down[k] -= step;
            (loss(up) - loss(down)) / (2.0 * step)
        })
        .collect();
    let ad = Device::flex().autodiff();
    for mode in [AarenMode::Fused, AarenMode::Parallel] {
        let layer = base.clone().fork(&ad).with_mode(mode).train();
        let x = x.clone().fork(&ad);
        let (o, _) = match mode {
            AarenMode::Fused => layer.cell.forward_fused(x, None, None).unwrap(),
            _ => layer.cell.forward_parallel(x, None, None).unwrap(),
        };
        let grads = (o * r.clone().fork(&ad)).sum().backward();
        let g = host(
            layer
                .cell
                .log_decay
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .unwrap(),
        );
        for k in 0..h {
            let (got, want) = (g[k] as f64, numeric[k]);
            assert!(
                (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                "{mode:?} head {k}: autodiff {got} vs central difference {want}"
            );
        }
    }
}

#[test]
fn weights_round_trip_and_refuse_a_mismatched_configuration() {
    use attnkit::store::{TensorStore, TorchWeights};
    let device = Device::flex();
    let forgetting = layer(8, 2, &[0.1, 0.01], &device);
    let mut store = TensorStore::new("w.safetensors");
    forgetting.save_weights(&mut store, "");
    assert_eq!(store.get("log_decay").unwrap().shape, vec![2]);
    let back = AarenConfig::new(8, 2)
        .with_forgetting(true)
        .init(&device)
        .unwrap()
        .load_weights(&store, "")
        .unwrap();
    assert_eq!(
        host(back.cell.log_decay.unwrap().val()),
        host(forgetting.cell.log_decay.unwrap().val())
    );
    let plain = AarenConfig::new(8, 2).init(&device).unwrap();
    let err = plain.load_weights(&store, "").unwrap_err().to_string();
    assert!(
        err.contains("log_decay") && err.contains("without forgetting"),
        "{err}"
    );
}
