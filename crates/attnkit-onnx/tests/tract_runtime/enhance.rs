//! The speech enhancer's one-frame cell in tract against the Rust stream.

use attnkit::tasks::enhance::{BINS, EnhanceConfig, Enhancer, EnhancerStream, TemporalModel};
use attnkit_onnx::{enhancer_state_names, export_enhancer_step};

use super::runner::*;

#[test]
fn enhancer_cell_streams_like_the_rust_stream() {
    let device = burn::prelude::Device::flex();
    for (model, forgetting) in [
        (TemporalModel::Aaren, false),
        (TemporalModel::Aaren, true),
        (TemporalModel::Gru, false),
    ] {
        let config = EnhanceConfig {
            model,
            width: 16,
            heads: 4,
            ff_dim: 24,
            layers: 2,
            forgetting,
            ..EnhanceConfig::default()
        };
        let net = Enhancer::new(&config, &device).unwrap();
        let weights = net.to_store(&config);
        let exported = export_enhancer_step(&weights).unwrap();
        assert!(exported.warnings.is_empty(), "{:?}", exported.warnings);
        assert_single_assignment(&exported.model, "enhance step");
        let mut stream = EnhancerStream::new(&net, &config).unwrap();
        let names = enhancer_state_names(&config);
        let (h, d, e) = (config.heads, config.width / config.heads, config.width);
        let mut states: Vec<StoredTensor> = names
            .iter()
            .map(|n| {
                if n.starts_with("state_a_") {
                    StoredTensor::new(vec![1, h, d], vec![0.0; h * d]).unwrap()
                } else if n.starts_with("state_c_") {
                    StoredTensor::new(vec![1, h], vec![0.0; h]).unwrap()
                } else if n.starts_with("state_m_") {
                    StoredTensor::new(vec![1, h], vec![f32::NEG_INFINITY; h]).unwrap()
                } else {
                    StoredTensor::new(vec![1, e], vec![0.0; e]).unwrap()
                }
            })
            .collect();
        let mut rng = SplitMix64::new(4);
        for frame in 0..40 {
            // Features as speech gives them: about −1.7 (silence) to 2 (loud).
            let features: Vec<f32> = (0..BINS).map(|_| rng.uniform(-1.7, 2.0) as f32).collect();
            let mut feeds = vec![(
                "features",
                StoredTensor::new(vec![1, BINS], features.clone()).unwrap(),
            )];
            for (n, s) in names.iter().zip(&states) {
                feeds.push((n.as_str(), s.clone()));
            }
            let out = run_tract(&exported.model, &store("step", feeds));
            let want = stream.step_features(&features).unwrap();
            let got = &out.get("gains").unwrap().data;
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                // Gains in (0, 1) from f32 graphs in two runtimes: 1e-5 absolute.
                assert!(
                    (g - w).abs() < 1e-5,
                    "{model:?} (forgetting {forgetting}) frame {frame} bin {k}: {g} vs {w}"
                );
            }
            states = names
                .iter()
                .map(|n| out.get(&format!("next_{n}")).unwrap().clone())
                .collect();
        }
    }
    let config = EnhanceConfig {
        model: TemporalModel::Attention,
        width: 16,
        ff_dim: 16,
        ..EnhanceConfig::default()
    };
    let net = Enhancer::new(&config, &device).unwrap();
    let err = export_enhancer_step(&net.to_store(&config))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no fixed-size state"), "{err}");
}

#[test]
fn a_forgetting_aaren_layer_outside_the_enhancer_is_refused_by_the_sequence_export() {
    let device = burn::prelude::Device::flex();
    let layer = attnkit::aaren::AarenConfig::new(8, 2)
        .with_forgetting(true)
        .init(&device)
        .unwrap();
    let mut weights = attnkit::store::TensorStore::new("aaren.safetensors");
    attnkit::store::TorchWeights::save_weights(&layer, &mut weights, "");
    for mode in ["iterative", "parallel"] {
        let config = serde_json::json!({"embed_dim": 8, "num_heads": 2, "mode": mode});
        let err = attnkit_onnx::export_module(
            "aaren",
            &config,
            Some(&weights),
            &attnkit_onnx::ExportOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("forgetting"), "{mode}: {err}");
    }
}
