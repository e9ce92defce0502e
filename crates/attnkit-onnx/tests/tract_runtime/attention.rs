//! Scaled dot-product, multi-head and external attention in tract; masks.

use crate::aaren::aaren_weights;
use crate::runner::*;

#[test]
fn sdpa_plain_causal_and_masked() {
    let mut rng = SplitMix64::new(1);
    let sets = |rng: &mut SplitMix64, mask: bool| -> Vec<TensorStore> {
        [(2, 3, 5, 7, 4, 6), (1, 2, 9, 9, 8, 3)]
            .iter()
            .map(|&(b, h, lq, lk, d, dv)| {
                let mut t = vec![
                    ("query", random(rng, &[b, h, lq, d], 1.5)),
                    ("key", random(rng, &[b, h, lk, d], 1.5)),
                    ("value", random(rng, &[b, h, lk, dv], 1.0)),
                ];
                if mask {
                    let pads: Vec<usize> = (0..b).map(|i| (i * 2) % lk).collect();
                    t.push(("key_padding_mask", padding_mask(lk, &pads)));
                }
                store(&format!("B{b} Lq{lq} Lk{lk}"), t)
            })
            .collect()
    };
    let plain = sets(&mut rng, false);
    let masked = sets(&mut rng, true);
    check_against_burn("sdpa", json!({}), None, &without_mask(), &plain, 1e-5, 1e-4);
    check_against_burn(
        "sdpa",
        json!({"causal": true, "scale": 0.3}),
        None,
        &ExportOptions::default(),
        &masked,
        1e-5,
        1e-4,
    );
    check_against_burn(
        "sdpa",
        json!({"causal": true}),
        None,
        &without_mask(),
        &plain,
        1e-5,
        1e-4,
    );
}

#[test]
fn fully_masked_rows_give_zeros_not_nan() {
    let mut rng = SplitMix64::new(2);
    let (b, h, l, d) = (2, 2, 4, 3);
    let inputs = store(
        "all masked",
        vec![
            ("query", random(&mut rng, &[b, h, l, d], 1.0)),
            ("key", random(&mut rng, &[b, h, l, d], 1.0)),
            ("value", random(&mut rng, &[b, h, l, d], 1.0)),
            ("key_padding_mask", padding_mask(l, &[l, 1])),
        ],
    );
    let exported = export_module("sdpa", &json!({}), None, &ExportOptions::default()).unwrap();
    let got = run_tract(&exported.model, &inputs);
    let out = got.get("output").unwrap();
    assert!(out.data[..h * l * d].iter().all(|&v| v == 0.0));
    assert_close(
        "sdpa all masked",
        &got,
        &burn_forward("sdpa", &json!({}), None, &inputs),
        1e-5,
        1e-4,
    );
}

fn mha_weights(rng: &mut SplitMix64, e: usize, bias: bool) -> TensorStore {
    let mut t = vec![
        ("in_proj_weight", random(rng, &[3 * e, e], 0.5)),
        ("out_proj.weight", random(rng, &[e, e], 0.5)),
    ];
    if bias {
        t.push(("in_proj_bias", random(rng, &[3 * e], 0.2)));
        t.push(("out_proj.bias", random(rng, &[e], 0.2)));
    }
    store("mha weights", t)
}

#[test]
fn mha_self_cross_and_masked() {
    let mut rng = SplitMix64::new(3);
    let e = 12;
    for bias in [true, false] {
        let weights = mha_weights(&mut rng, e, bias);
        let sets: Vec<TensorStore> = [(2, 5, 7), (3, 1, 4)]
            .iter()
            .map(|&(b, lq, lk)| {
                let pads: Vec<usize> = (0..b).map(|i| i % lk).collect();
                store(
                    &format!("B{b} Lq{lq} Lk{lk}"),
                    vec![
                        ("query", random(&mut rng, &[b, lq, e], 1.0)),
                        ("key", random(&mut rng, &[b, lk, e], 1.0)),
                        ("value", random(&mut rng, &[b, lk, e], 1.0)),
                        ("key_padding_mask", padding_mask(lk, &pads)),
                    ],
                )
            })
            .collect();
        let config = json!({"embed_dim": e, "num_heads": 3});
        check_against_burn(
            "mha",
            config,
            Some(&weights),
            &ExportOptions::default(),
            &sets,
            1e-5,
            1e-4,
        );
    }
}

/// The mask input (sdpa, mha, aaren) fed zeros gives the same outputs as the export without a mask input
/// (bitwise: a zero mask selects every score unchanged, and the fully-masked-row guards
/// are no-ops when a row has a real maximum) and as the Burn forward given no mask
/// (atol 1e-5, rtol 1e-4); the file without the mask has no such input.
#[test]
fn zero_mask_equals_the_export_without_a_mask() {
    let mut rng = SplitMix64::new(12);
    let e = 12;
    let weights = mha_weights(&mut rng, e, true);
    let aaren = aaren_weights(&mut rng, e, 1.0);
    let (b, h, lq, lk, d) = (2, 3, 5, 7, 4);
    let cases = [
        (
            "sdpa",
            json!({"causal": true}),
            None,
            vec![
                ("query", random(&mut rng, &[b, h, lq, d], 1.5)),
                ("key", random(&mut rng, &[b, h, lk, d], 1.5)),
                ("value", random(&mut rng, &[b, h, lk, d], 1.0)),
            ],
        ),
        (
            "mha",
            json!({"embed_dim": e, "num_heads": 3}),
            Some(&weights),
            vec![
                ("query", random(&mut rng, &[b, lq, e], 1.0)),
                ("key", random(&mut rng, &[b, lk, e], 1.0)),
                ("value", random(&mut rng, &[b, lk, e], 1.0)),
            ],
        ),
        (
            "aaren",
            json!({"embed_dim": e, "num_heads": 3, "mode": "parallel"}),
            Some(&aaren),
            vec![("x", random(&mut rng, &[b, lk, e], 1.5))],
        ),
    ];
    for (module, config, weights, tensors) in cases {
        let plain = store(module, tensors);
        let mut zeros = store(module, vec![("key_padding_mask", zero_mask(b, lk))]);
        for name in plain.names() {
            put(&mut zeros, name, plain.get(name).unwrap().clone());
        }
        let with = export_module(module, &config, weights, &ExportOptions::default()).unwrap();
        let without = export_module(module, &config, weights, &without_mask()).unwrap();
        let input_names = |m: &ModelProto| -> Vec<String> {
            let g = m.graph.as_ref().unwrap();
            g.input.iter().map(|i| i.name.clone()).collect()
        };
        assert!(input_names(&with.model).contains(&"key_padding_mask".to_string()));
        assert!(!input_names(&without.model).contains(&"key_padding_mask".to_string()));
        let got_with = run_tract(&with.model, &zeros);
        let got_without = run_tract(&without.model, &plain);
        for name in got_without.names() {
            assert_eq!(
                got_with.get(name).unwrap(),
                got_without.get(name).unwrap(),
                "{module} `{name}`: zero mask vs no mask input"
            );
        }
        let want = burn_forward(module, &config, weights, &plain);
        assert_close(module, &got_with, &want, 1e-5, 1e-4);
    }
}

#[test]
fn external_attention() {
    let mut rng = SplitMix64::new(4);
    let (d, s) = (6, 10);
    let weights = store(
        "external weights",
        vec![
            ("mk.weight", random(&mut rng, &[s, d], 0.8)),
            ("mv.weight", random(&mut rng, &[d, s], 0.8)),
        ],
    );
    let sets: Vec<TensorStore> = [(2, 5), (1, 11)]
        .iter()
        .map(|&(b, n)| {
            store(
                &format!("B{b} N{n}"),
                vec![("x", random(&mut rng, &[b, n, d], 2.0))],
            )
        })
        .collect();
    check_against_burn(
        "external",
        json!({"d_model": d, "memory": s}),
        Some(&weights),
        &ExportOptions::default(),
        &sets,
        1e-5,
        1e-4,
    );
}
