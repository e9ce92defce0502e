//! Every mechanism against the fixtures written by `tools/fixtures/gen_attention.py`,
//! `tools/fixtures/gen_recurrent.py` and `tools/fixtures/gen_aaren.py` (PyTorch float32
//! for `mha`, `sdpa`, the recurrent layers, the self-attention block, the Transformer
//! encoder layer and its feed-forward block; numpy float64 for the others), loaded and
//! checked by `attnkit::verify::Fixture`. Tolerances come from each case's `case.json`:
//! |got − want| <= atol + rtol·|want| element-wise, atol 1e-5 and rtol 1e-4 for most
//! (float32 against float32 or float64); the self-attention exercise is float64 against
//! float64 (1e-9); Aaren is atol 2e-4, rtol 2e-3 (its acceptance bound) and in practice
//! lands near 0.1% of it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use attnkit::attention::{
    AdditiveAttentionConfig, AttentionMask, LuongAttentionConfig, LuongScore,
    SelfAttentionBlockConfig, SimplifiedSelfAttentionConfig, TransformerEncoderLayerConfig,
    mask_from_floats,
};
use attnkit::contract;
use attnkit::layers::FeedForwardConfig;
use attnkit::store::{TensorStore, TorchWeights};
use attnkit::verify::{CaseReport, Fixture, FixtureSummary};
use attnkit::{AttnError, Result};
use attnkit_kernels::reference::SelfAttention;
use burn::prelude::*;
use serde_json::Value;

/// Every committed case, by folder name (sorted): a case folder that disappears, or one
/// that appears without being listed here, fails the test.
const CASES: [&str; 31] = [
    "aaren_all_padded",
    "aaren_iterative",
    "aaren_long_iterative",
    "aaren_long_parallel",
    "aaren_parallel",
    "additive",
    "encoder_layer",
    "encoder_layer_padding",
    "exercise_self_attention",
    "external",
    "external_large",
    "feed_forward",
    "gru",
    "gru_bidirectional_2layer",
    "lstm_bidirectional_2layer",
    "lstm_large_inputs",
    "luong_concat",
    "luong_dot",
    "luong_general",
    "mha_cross",
    "mha_large_inputs",
    "mha_padding",
    "mha_self",
    "rnn_bidirectional",
    "sdpa_causal",
    "sdpa_causal_rect",
    "sdpa_large_logits",
    "sdpa_padding_scale",
    "sdpa_plain",
    "self_attention_block",
    "simplified",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/attention")
}

fn all_cases() -> Vec<Fixture> {
    Fixture::load_all(&fixtures_dir()).unwrap_or_else(|e| panic!("{e}"))
}

fn usize_of(config: &Value, key: &str) -> Result<usize> {
    config[key]
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| AttnError::Config(format!("`{key}`: expected an unsigned integer")))
}

fn optional_mask(inputs: &TensorStore, device: &Device) -> Result<Option<Tensor<2, Bool>>> {
    inputs
        .get("key_padding_mask")
        .map(|m| {
            mask_from_floats(
                "key_padding_mask",
                m.to_tensor::<2>("key_padding_mask", device)?,
            )
        })
        .transpose()
}

/// The module holds exactly the fixture's parameters: saving it back under PyTorch's
/// names gives every tensor of the state dict, with the same values, and nothing else.
fn holds_exactly(module: &impl TorchWeights, weights: &TensorStore) -> Result<()> {
    let mut saved = TensorStore::new("saved");
    module.save_weights(&mut saved, "");
    let names = |s: &TensorStore| s.names().map(str::to_string).collect::<Vec<_>>();
    if names(&saved) != names(weights) {
        return Err(AttnError::Config(format!(
            "the module's parameters are [{}], the state dict's [{}]",
            names(&saved).join(", "),
            names(weights).join(", ")
        )));
    }
    for name in weights.names() {
        let (a, b) = (saved.require(name)?, weights.require(name)?);
        if a.shape != b.shape || a.data != b.data {
            return Err(AttnError::Config(format!(
                "`{name}` does not round-trip through the module"
            )));
        }
    }
    Ok(())
}

/// Runs a case's module: contract modules through `contract::forward` (what the CLI
/// runs), the others by building the module directly and loading the fixture's state
/// dict under its PyTorch names.
fn run(case: &Fixture, device: &Device) -> Result<TensorStore> {
    if contract::MODULES.contains(&case.module.as_str()) {
        let r = contract::forward(
            &case.module,
            &case.config,
            case.weights.as_ref(),
            &case.inputs,
            device,
        )?;
        if !r.warnings.is_empty() {
            return Err(AttnError::Config(format!(
                "unexpected warnings: {}",
                r.warnings.join("; ")
            )));
        }
        return Ok(r.outputs);
    }
    let w = case
        .weights
        .as_ref()
        .ok_or_else(|| AttnError::Config(format!("`{}` needs a weights file", case.module)))?;
    let c = &case.config;
    let input = |n: &str| case.inputs.require(n);
    let mut out = TensorStore::new("outputs");
    let x = |device: &Device| input("x")?.to_tensor::<3>("x", device);
    match case.module.as_str() {
        "additive" => {
            let m = AdditiveAttentionConfig::new(
                usize_of(c, "query_dim")?,
                usize_of(c, "key_dim")?,
                usize_of(c, "hidden_dim")?,
            )
            .init(device)?
            .load_weights(w, "")?;
            let r = m.forward(
                input("query")?.to_tensor("query", device)?,
                input("keys")?.to_tensor("keys", device)?,
                optional_mask(&case.inputs, device)?,
            )?;
            out.insert_tensor("output", r.context);
            out.insert_tensor("weights", r.weights);
        }
        "luong" => {
            let score = match c["score"].as_str() {
                Some("dot") => LuongScore::Dot,
                Some("general") => LuongScore::General,
                Some("concat") => LuongScore::Concat,
                other => {
                    return Err(AttnError::Config(format!(
                        "`score`: expected dot, general or concat, got {other:?}"
                    )));
                }
            };
            let m = LuongAttentionConfig::new(usize_of(c, "query_dim")?, usize_of(c, "key_dim")?)
                .with_score(score)
                .init(device)?
                .load_weights(w, "")?;
            let r = m.forward(
                input("query")?.to_tensor("query", device)?,
                input("keys")?.to_tensor("keys", device)?,
                optional_mask(&case.inputs, device)?,
            )?;
            out.insert_tensor("output", r.output);
            out.insert_tensor("context", r.context);
            out.insert_tensor("weights", r.weights);
        }
        "simplified" => {
            let m = SimplifiedSelfAttentionConfig::new(usize_of(c, "embed_dim")?)
                .with_num_heads(usize_of(c, "num_heads")?)
                .init(device)?
                .load_weights(w, "")?;
            out.insert_tensor("output", m.forward(x(device)?, &AttentionMask::none())?);
        }
        "self_attention_block" => {
            let m =
                SelfAttentionBlockConfig::new(usize_of(c, "embed_dim")?, usize_of(c, "num_heads")?)
                    .init(device)?
                    .load_weights(w, "")?;
            let mut mask = AttentionMask::none();
            mask.key_padding = optional_mask(&case.inputs, device)?;
            out.insert_tensor("output", m.forward(x(device)?, &mask)?);
        }
        "transformer_encoder_layer" => {
            // nn.TransformerEncoderLayer's state dict as it is: self_attn.*, linear1.*,
            // linear2.*, norm1.*, norm2.*.
            let eps = c["layer_norm_eps"].as_f64().ok_or_else(|| {
                AttnError::Config("`layer_norm_eps`: expected a number".to_string())
            })?;
            let layer = TransformerEncoderLayerConfig::new(
                usize_of(c, "embed_dim")?,
                usize_of(c, "num_heads")?,
                usize_of(c, "ff_dim")?,
            )
            .with_layer_norm_eps(eps)
            .init(device)?
            .load_weights(w, "")?;
            holds_exactly(&layer, w)?;
            let mut mask = AttentionMask::none();
            mask.key_padding = optional_mask(&case.inputs, device)?;
            out.insert_tensor("output", layer.forward(x(device)?, &mask)?);
        }
        "feed_forward" => {
            let ff = FeedForwardConfig::new(usize_of(c, "d_model")?, usize_of(c, "d_hidden")?)
                .init(device)?
                .load_weights(w, "")?;
            holds_exactly(&ff, w)?;
            out.insert_tensor("output", ff.forward(x(device)?)?);
        }
        "exercise_self_attention" => {
            // The kernels' float64 reference against numpy's float64.
            let dims = usize_of(c, "dims")?;
            let f = |n: &str| -> Result<Vec<f64>> {
                Ok(w.require(n)?.data.iter().map(|&v| v as f64).collect())
            };
            let layer =
                SelfAttention::from_weights(dims, f("w_q")?, f("w_k")?, f("w_v")?, f("w_o")?)?;
            let x = input("x")?;
            let n = x.shape[0];
            let r = layer
                .forward_with_weights(&x.data.iter().map(|&v| v as f64).collect::<Vec<_>>(), n)?;
            let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
            out.insert("output", vec![n, dims], to32(r.output))?;
            out.insert("weights", vec![n, n], to32(r.weights))?;
        }
        other => {
            return Err(AttnError::UnknownModule {
                name: other.to_string(),
                known: "the contract modules, additive, luong, simplified, \
                        self_attention_block, transformer_encoder_layer, feed_forward, \
                        exercise_self_attention"
                    .to_string(),
            });
        }
    }
    Ok(out)
}

#[test]
fn every_fixture_matches_within_its_tolerance() {
    let device = Device::flex();
    let cases = all_cases();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, CASES, "the committed fixture cases");
    let mut modules = std::collections::BTreeSet::new();
    let mut summary = FixtureSummary::new();
    for case in &cases {
        let report = match run(case, &device) {
            Ok(got) => case.check(&got),
            Err(e) => CaseReport::not_run(&case.name, e),
        };
        println!("{report}");
        modules.insert(case.module.as_str());
        summary.push(report);
    }
    // Every failing case and tensor is in the message, not just the first.
    assert!(summary.passed(), "{summary}");
    // Every mechanism is covered.
    for m in [
        "sdpa",
        "mha",
        "external",
        "additive",
        "luong",
        "simplified",
        "self_attention_block",
        "transformer_encoder_layer",
        "feed_forward",
        "exercise_self_attention",
        "aaren",
        "lstm",
        "gru",
        "rnn",
    ] {
        assert!(modules.contains(m), "no fixture for `{m}`");
    }
}

/// The encoder-layer cases check something: with PyTorch's LayerNorm eps replaced by
/// 1e-3, or with the padding mask dropped, the same weights miss the fixture.
#[test]
fn encoder_layer_fixtures_see_the_eps_and_the_mask() {
    let device = Device::flex();
    let case = Fixture::load(&fixtures_dir().join("encoder_layer_padding")).unwrap();
    let mut config = case.config.clone();
    config["layer_norm_eps"] = 1e-3.into();
    let other_eps = Fixture {
        config,
        ..case.clone()
    };
    assert!(!other_eps.check(&run(&other_eps, &device).unwrap()).passed());
    let mut inputs = TensorStore::new("no mask");
    let x = case.inputs.require("x").unwrap();
    inputs.insert("x", x.shape.clone(), x.data.clone()).unwrap();
    let no_mask = Fixture { inputs, ..case };
    let report = no_mask.check(&run(&no_mask, &device).unwrap());
    assert!(!report.passed(), "{report}");
}

#[test]
fn fixtures_name_their_generator() {
    for case in all_cases() {
        let generator = case
            .expected
            .metadata()
            .get("generator")
            .expect("generator metadata");
        assert_eq!(generator, &case.generator, "{}", case.name);
        // PyTorch cases name torch and numpy; the Aaren cases are numpy alone.
        assert!(
            generator.starts_with("torch ") || generator.starts_with("numpy "),
            "{}: {generator}",
            case.name
        );
    }
}
