//! Aaren in tract: both forms, masks, long sequences with large scores, the one-token streaming cell.

use crate::runner::*;

pub fn aaren_weights(rng: &mut SplitMix64, e: usize, scale: f32) -> TensorStore {
    store(
        "aaren weights",
        vec![
            ("query", random(rng, &[e], scale)),
            ("in_proj_weight", random(rng, &[3 * e, e], 0.5)),
            ("in_proj_bias", random(rng, &[3 * e], 0.2)),
            ("out_proj.weight", random(rng, &[e, e], 0.5)),
            ("out_proj.bias", random(rng, &[e], 0.2)),
        ],
    )
}

#[test]
fn aaren_both_modes_with_masks() {
    let mut rng = SplitMix64::new(5);
    let e = 8;
    let weights = aaren_weights(&mut rng, e, 1.0);
    // Row 0 unmasked; row 1 masked at the end; row 2 masked at the start (its first
    // outputs see no token and must be out_proj.bias exactly).
    let sets: Vec<TensorStore> = [(3usize, 6usize), (1, 13)]
        .iter()
        .map(|&(b, l)| {
            let mut mask = padding_mask(l, &vec![0; b]);
            if b == 3 {
                for i in 0..2 {
                    mask.data[l + l - 1 - i] = 1.0;
                    mask.data[2 * l + i] = 1.0;
                }
            }
            store(
                &format!("B{b} L{l}"),
                vec![
                    ("x", random(&mut rng, &[b, l, e], 1.5)),
                    ("key_padding_mask", mask),
                ],
            )
        })
        .collect();
    for mode in ["iterative", "parallel"] {
        let config = json!({"embed_dim": e, "num_heads": 2, "mode": mode});
        check_against_burn(
            "aaren",
            config,
            Some(&weights),
            &ExportOptions::default(),
            &sets,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn aaren_long_sequence_with_large_scores() {
    let mut rng = SplitMix64::new(6);
    let e = 8;
    // A query of norm ~1e3 makes scores in the thousands: exp overflows without the
    // running max, and f32 rounding of the scores dominates the error.
    let weights = aaren_weights(&mut rng, e, 400.0);
    let inputs = store("L3000", vec![("x", random(&mut rng, &[1, 3000, e], 1.0))]);
    for mode in ["iterative", "parallel"] {
        let config = json!({"embed_dim": e, "num_heads": 2, "mode": mode});
        check_against_burn(
            "aaren",
            config,
            Some(&weights),
            &without_mask(),
            std::slice::from_ref(&inputs),
            2e-4,
            2e-3,
        );
    }
}

#[test]
fn aaren_parallel_is_exact_up_to_max_len_and_nan_beyond() {
    let mut rng = SplitMix64::new(7);
    let e = 4;
    let weights = aaren_weights(&mut rng, e, 1.0);
    let config = json!({"embed_dim": e, "num_heads": 1, "mode": "parallel"});
    let options = ExportOptions {
        max_len: 6, // rounded up to 8
        ..without_mask()
    };
    let exported = export_module("aaren", &config, Some(&weights), &options).unwrap();
    let (b, l) = (2, 11);
    let inputs = store("L11", vec![("x", random(&mut rng, &[b, l, e], 1.0))]);
    let got = run_tract(&exported.model, &inputs);
    let want = burn_forward("aaren", &config, Some(&weights), &inputs);
    let (g, w) = (got.get("output").unwrap(), want.get("output").unwrap());
    for bi in 0..b {
        for t in 0..l {
            for k in 0..e {
                let i = (bi * l + t) * e + k;
                if t < 8 {
                    assert!((g.data[i] - w.data[i]).abs() <= 1e-5 + 1e-4 * w.data[i].abs());
                } else {
                    assert!(
                        g.data[i].is_nan(),
                        "position {t} beyond max_len 8 must be NaN"
                    );
                }
            }
        }
    }
}

#[test]
fn aaren_step_model_streams_the_sequence() {
    let mut rng = SplitMix64::new(8);
    let (e, heads, b, l) = (8, 2, 2, 9);
    let dh = e / heads;
    let weights = aaren_weights(&mut rng, e, 2.0);
    let config = json!({"embed_dim": e, "num_heads": heads, "mode": "iterative"});
    let step = export_module(
        "aaren",
        &config,
        Some(&weights),
        &ExportOptions {
            aaren_step: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_single_assignment(&step.model, "aaren step");
    let x = random(&mut rng, &[b, l, e], 1.5);
    let want = burn_forward(
        "aaren",
        &config,
        Some(&weights),
        &store("x", vec![("x", x.clone())]),
    );
    let want = want.get("output").unwrap();
    // The empty state: a = 0, c = 0, m = −∞.
    let mut a = StoredTensor::new(vec![b, heads, dh], vec![0.0; b * heads * dh]).unwrap();
    let mut c = StoredTensor::new(vec![b, heads], vec![0.0; b * heads]).unwrap();
    let mut m = StoredTensor::new(vec![b, heads], vec![f32::NEG_INFINITY; b * heads]).unwrap();
    for t in 0..l {
        let x_t: Vec<f32> = (0..b)
            .flat_map(|bi| x.data[(bi * l + t) * e..(bi * l + t + 1) * e].to_vec())
            .collect();
        let inputs = store(
            "step",
            vec![
                (STEP_INPUTS[0], StoredTensor::new(vec![b, e], x_t).unwrap()),
                (STEP_INPUTS[1], a.clone()),
                (STEP_INPUTS[2], c.clone()),
                (STEP_INPUTS[3], m.clone()),
            ],
        );
        let out = run_tract(&step.model, &inputs);
        let y = out.get(STEP_OUTPUTS[0]).unwrap();
        for bi in 0..b {
            for k in 0..e {
                let w = want.data[(bi * l + t) * e + k];
                let g = y.data[bi * e + k];
                assert!(
                    (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "token {t}: {g} vs {w}"
                );
            }
        }
        a = out.get(STEP_OUTPUTS[1]).unwrap().clone();
        c = out.get(STEP_OUTPUTS[2]).unwrap().clone();
        m = out.get(STEP_OUTPUTS[3]).unwrap().clone();
    }
}
