//! Every mechanism against the fixtures written by `tools/fixtures/gen_attention.py`,
//! `tools/fixtures/gen_recurrent.py` and `tools/fixtures/gen_aaren.py` (PyTorch float32 for `mha`, `sdpa` and the
//! self-attention block; numpy float64 for the others). Tolerances come from each case's
//! `case.json`: |got − want| <= atol + rtol·|want| element-wise, atol 1e-5 and rtol 1e-4
//! for most; the seed's self-attention is float64 against float64 (1e-9); Aaren is
//! atol 2e-4, rtol 2e-3 (its acceptance bound) and in practice lands near 0.1% of it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use attnkit::attention::{
    AdditiveAttentionConfig, AttentionMask, LuongAttentionConfig, LuongScore,
    SelfAttentionBlockConfig, SimplifiedSelfAttentionConfig, mask_from_floats,
};
use attnkit::contract;
use attnkit::store::{TensorStore, TorchWeights};
use attnkit_kernels::reference::SelfAttention;
use burn::prelude::*;
use serde_json::Value;

struct Case {
    name: String,
    module: String,
    config: Value,
    atol: f64,
    rtol: f64,
    weights: Option<TensorStore>,
    inputs: TensorStore,
    expected: TensorStore,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/attention")
}

fn load_case(dir: &Path) -> Case {
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let weights_path = dir.join("weights.safetensors");
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        module: case["module"].as_str().unwrap().to_string(),
        config: case["config"].clone(),
        atol: case["tolerance"]["atol"].as_f64().unwrap(),
        rtol: case["tolerance"]["rtol"].as_f64().unwrap(),
        weights: weights_path
            .exists()
            .then(|| TensorStore::load(&weights_path).unwrap()),
        inputs: TensorStore::load(&dir.join("input.safetensors")).unwrap(),
        expected: TensorStore::load(&dir.join("expected.safetensors")).unwrap(),
    }
}

fn all_cases() -> Vec<Case> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures exist: run tools/fixtures/gen_attention.py")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_case(d)).collect()
}

/// Checks every expected tensor; returns the worst |err| / (atol + rtol·|want|).
fn compare(case: &Case, got: &TensorStore) -> f64 {
    let mut worst: f64 = 0.0;
    for name in case.expected.names() {
        let want = case.expected.get(name).unwrap();
        let g = got
            .get(name)
            .unwrap_or_else(|| panic!("{}: output `{name}` missing", case.name));
        assert_eq!(g.shape, want.shape, "{}: shape of `{name}`", case.name);
        for (i, (a, b)) in g.data.iter().zip(&want.data).enumerate() {
            let (a, b) = (*a as f64, *b as f64);
            let bound = case.atol + case.rtol * b.abs();
            let ratio = (a - b).abs() / bound;
            assert!(
                ratio <= 1.0,
                "{}: `{name}`[{i}] = {a}, want {b} (|err| {:.3e} > {bound:.3e})",
                case.name,
                (a - b).abs()
            );
            worst = worst.max(ratio);
        }
    }
    worst
}

fn usize_of(config: &Value, key: &str) -> usize {
    config[key].as_u64().unwrap() as usize
}

fn optional_mask(inputs: &TensorStore, device: &Device) -> Option<Tensor<2, Bool>> {
    inputs.get("key_padding_mask").map(|m| {
        mask_from_floats(
            "key_padding_mask",
            m.to_tensor::<2>("key_padding_mask", device).unwrap(),
        )
        .unwrap()
    })
}

/// Runs a case's module: contract modules through `contract::forward` (what the CLI
/// runs), the others by building the module directly.
fn run(case: &Case, device: &Device) -> TensorStore {
    if contract::MODULES.contains(&case.module.as_str()) {
        let r = contract::forward(
            &case.module,
            &case.config,
            case.weights.as_ref(),
            &case.inputs,
            device,
        )
        .unwrap();
        assert!(r.warnings.is_empty(), "{}: {:?}", case.name, r.warnings);
        return r.outputs;
    }
    let w = case.weights.as_ref().unwrap();
    let c = &case.config;
    let input = |n: &str| case.inputs.get(n).unwrap();
    let mut out = TensorStore::new("outputs");
    match case.module.as_str() {
        "additive" => {
            let m = AdditiveAttentionConfig::new(
                usize_of(c, "query_dim"),
                usize_of(c, "key_dim"),
                usize_of(c, "hidden_dim"),
            )
            .init(device)
            .unwrap()
            .load_weights(w, "")
            .unwrap();
            let r = m
                .forward(
                    input("query").to_tensor("query", device).unwrap(),
                    input("keys").to_tensor("keys", device).unwrap(),
                    optional_mask(&case.inputs, device),
                )
                .unwrap();
            out.insert_tensor("output", r.context);
            out.insert_tensor("weights", r.weights);
        }
        "luong" => {
            let score = match c["score"].as_str().unwrap() {
                "dot" => LuongScore::Dot,
                "general" => LuongScore::General,
                _ => LuongScore::Concat,
            };
            let m = LuongAttentionConfig::new(usize_of(c, "query_dim"), usize_of(c, "key_dim"))
                .with_score(score)
                .init(device)
                .unwrap()
                .load_weights(w, "")
                .unwrap();
            let r = m
                .forward(
                    input("query").to_tensor("query", device).unwrap(),
                    input("keys").to_tensor("keys", device).unwrap(),
                    optional_mask(&case.inputs, device),
                )
                .unwrap();
            out.insert_tensor("output", r.output);
            out.insert_tensor("context", r.context);
            out.insert_tensor("weights", r.weights);
        }
        "simplified" => {
            let m = SimplifiedSelfAttentionConfig::new(usize_of(c, "embed_dim"))
                .with_num_heads(usize_of(c, "num_heads"))
                .init(device)
                .unwrap()
                .load_weights(w, "")
                .unwrap();
            let y = m
                .forward(
                    input("x").to_tensor("x", device).unwrap(),
                    &AttentionMask::none(),
                )
                .unwrap();
            out.insert_tensor("output", y);
        }
        "self_attention_block" => {
            let m =
                SelfAttentionBlockConfig::new(usize_of(c, "embed_dim"), usize_of(c, "num_heads"))
                    .init(device)
                    .unwrap()
                    .load_weights(w, "")
                    .unwrap();
            let mut mask = AttentionMask::none();
            mask.key_padding = optional_mask(&case.inputs, device);
            let y = m
                .forward(input("x").to_tensor("x", device).unwrap(), &mask)
                .unwrap();
            out.insert_tensor("output", y);
        }
        "seed_self_attention" => {
            // The kernels' float64 reference against numpy's float64.
            let dims = usize_of(c, "dims");
            let f = |n: &str| {
                w.get(n)
                    .unwrap()
                    .data
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>()
            };
            let layer =
                SelfAttention::from_weights(dims, f("w_q"), f("w_k"), f("w_v"), f("w_o")).unwrap();
            let x = input("x");
            let n = x.shape[0];
            let r = layer
                .forward_with_weights(&x.data.iter().map(|&v| v as f64).collect::<Vec<_>>(), n)
                .unwrap();
            let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
            out.insert("output", vec![n, dims], to32(r.output)).unwrap();
            out.insert("weights", vec![n, n], to32(r.weights)).unwrap();
        }
        other => panic!("{}: no runner for module `{other}`", case.name),
    }
    out
}

#[test]
fn every_fixture_matches_within_its_tolerance() {
    let device = Device::flex();
    let cases = all_cases();
    assert!(
        cases.len() >= 18,
        "expected the 18 committed cases, found {}",
        cases.len()
    );
    let mut modules = std::collections::BTreeSet::new();
    for case in &cases {
        let got = run(case, &device);
        let worst = compare(case, &got);
        modules.insert(case.module.clone());
        println!("{:<24} worst err/tolerance {worst:.3}", case.name);
    }
    // Every mechanism is covered.
    for m in [
        "sdpa",
        "mha",
        "external",
        "additive",
        "luong",
        "simplified",
        "self_attention_block",
        "seed_self_attention",
        "aaren",
        "lstm",
        "gru",
        "rnn",
    ] {
        assert!(modules.contains(m), "no fixture for `{m}`");
    }
}

#[test]
fn fixtures_name_their_generator() {
    for case in all_cases() {
        let meta = case.expected.metadata();
        let generator = meta.get("generator").expect("generator metadata");
        // PyTorch cases name torch and numpy; the Aaren cases are numpy alone.
        assert!(
            generator.starts_with("torch ") || generator.starts_with("numpy "),
            "{}: {generator}",
            case.name
        );
    }
}
