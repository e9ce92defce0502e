//! The speech enhancer: the stream against the whole-file form, fixed memory,
//! causality, saved weights, and training on a small synthetic corpus.

#![allow(clippy::unwrap_used)]

use attnkit::tasks::enhance::{
    EnhanceConfig, EnhanceData, EnhanceTraining, Enhancer, EnhancerStream, TemporalModel,
    enhance_signal,
};
use attnkit::train::TrainingTask;
use attnkit_audio::corpus::{Clip, Pair};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;

fn small(model: TemporalModel) -> EnhanceConfig {
    EnhanceConfig {
        model,
        width: 32,
        heads: 4,
        ff_dim: 32,
        layers: 2,
        ..EnhanceConfig::default()
    }
}

/// A vowel-like harmonic tone with an envelope, plus white noise.
fn speechlike(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let f0 = rng.uniform(100.0, 250.0);
    let clean: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let env = (std::f64::consts::PI * 3.0 * t).sin().abs();
            let s: f64 = (1..6)
                .map(|k| (2.0 * std::f64::consts::PI * f0 * k as f64 * t).sin() / k as f64)
                .sum();
            (0.2 * env * s) as f32
        })
        .collect();
    let noisy = clean
        .iter()
        .map(|c| c + 0.05 * rng.normal() as f32)
        .collect();
    (noisy, clean)
}

#[test]
fn the_stream_equals_the_file_mode_within_2_lsb_and_holds_fixed_memory() {
    let device = Device::flex();
    let forgetting = EnhanceConfig {
        forgetting: true,
        ..small(TemporalModel::Aaren)
    };
    // 12 s: past the 1,024-frame chunks of a forgetting Aaren's whole-file form.
    for (config, len) in [
        (small(TemporalModel::Aaren), 16_000 + 77),
        (forgetting, 192_000 + 77),
        (small(TemporalModel::Gru), 16_000 + 77),
    ] {
        let model = config.model;
        device.seed(3);
        let net = Enhancer::new(&config, &device).unwrap();
        let (noisy, _) = speechlike(len, 1);
        let file = enhance_signal(&net, &noisy, &device).unwrap();
        let mut stream = EnhancerStream::new(&net, &config).unwrap();
        let bytes = stream.state_bytes();
        let streamed = stream.enhance(&noisy).unwrap();
        assert_eq!(streamed.len(), noisy.len());
        assert_eq!(file.len(), noisy.len());
        // Two implementations (Burn's batched forward, the host's per-frame kernels):
        // they agree to f32 rounding, far inside the 2 LSB (2/32768) the CLI promises.
        let worst = file
            .iter()
            .zip(&streamed)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 2.0 / 32768.0, "{model:?}: worst {worst}");
        assert!(worst < 1e-5, "{model:?}: worst {worst}");
        for _ in 0..2_000 {
            stream.push(&[0.01; 160]).unwrap();
        }
        assert_eq!(stream.state_bytes(), bytes, "{model:?}");
        let recurrent = match model {
            // H·(d + 2) numbers per layer.
            TemporalModel::Aaren => 2 * 4 * (8 + 2) * 4,
            _ => 2 * 32 * 4,
        };
        assert_eq!(stream.recurrent_state_bytes(), recurrent, "{model:?}");
        assert!(stream.push(&[0.0; 100]).is_err());
    }
    let config = small(TemporalModel::Attention);
    let net = Enhancer::new(&config, &device).unwrap();
    let err = EnhancerStream::new(&net, &config).unwrap_err().to_string();
    assert!(err.contains("no fixed-memory stream"), "{err}");
}

#[test]
fn the_file_mode_is_causal_and_aligned() {
    let device = Device::flex();
    for model in [
        TemporalModel::Aaren,
        TemporalModel::Gru,
        TemporalModel::Attention,
    ] {
        let config = small(model);
        device.seed(5);
        let net = Enhancer::new(&config, &device).unwrap();
        let (noisy, _) = speechlike(8_000, 2);
        let whole = enhance_signal(&net, &noisy, &device).unwrap();
        let prefix = enhance_signal(&net, &noisy[..4_800], &device).unwrap();
        // Output block j depends on input samples < 160·j + 320 only: the first
        // 4,800 − 320 samples of the prefix's output are the whole signal's.
        let worst = whole[..4_480]
            .iter()
            .zip(&prefix[..4_480])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "{model:?}: worst {worst}");
        assert_eq!(prefix.len(), 4_800);
    }
}

#[test]
fn saved_weights_load_into_the_same_network() {
    let device = Device::flex();
    let forgetting = EnhanceConfig {
        forgetting: true,
        ..small(TemporalModel::Aaren)
    };
    for config in [
        small(TemporalModel::Aaren),
        forgetting,
        small(TemporalModel::Gru),
        small(TemporalModel::Attention),
    ] {
        let net = Enhancer::new(&config, &device).unwrap();
        let bytes = net.to_store(&config).to_bytes().unwrap();
        let store =
            attnkit::store::TensorStore::from_bytes(&bytes, std::path::Path::new("w.safetensors"))
                .unwrap();
        let (back, back_config) = Enhancer::from_store(&store, &device).unwrap();
        assert_eq!(back_config, config);
        let (noisy, _) = speechlike(3_000, 4);
        assert_eq!(
            enhance_signal(&net, &noisy, &device).unwrap(),
            enhance_signal(&back, &noisy, &device).unwrap()
        );
    }
    let empty = attnkit::store::TensorStore::new("x");
    let err = Enhancer::from_store(&empty, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("attnkit_enhance_config"), "{err}");
}

#[test]
fn training_on_synthetic_speech_raises_the_validation_si_sdr() {
    let device = Device::flex();
    let speech: Vec<Clip> = (0..8)
        .map(|i| Clip {
            name: format!("s{i}.wav"),
            samples: speechlike(16_000, 10 + i).1,
        })
        .collect();
    let noise = vec![Clip {
        name: "n.wav".into(),
        samples: {
            let mut rng = SplitMix64::new(9);
            (0..16_000).map(|_| rng.normal() as f32).collect()
        },
    }];
    let valid: Vec<Pair> = (0..4)
        .map(|i| {
            let (noisy, clean) = speechlike(8_000, 100 + i);
            Pair {
                name: format!("v{i}"),
                clean,
                noisy,
            }
        })
        .collect();
    let config = EnhanceConfig {
        batch_size: 4,
        segment_frames: 50,
        snr_db: (0.0, 10.0),
        optimizer: attnkit::train::OptimizerConfig::Adam { lr: 3e-3 },
        ..small(TemporalModel::Gru)
    };
    let mut task = EnhanceTraining::new(
        config,
        EnhanceData::Mixing { speech, noise },
        valid,
        &device,
    )
    .unwrap();
    let before = task.validation_si_sdr().unwrap();
    for _ in 0..60 {
        let m = task.train_step().unwrap();
        assert!(m[0].1.is_finite());
    }
    let after = task.validation_si_sdr().unwrap();
    // The noisy pairs are at about 10 dB; 60 steps of a mask learn to pass the
    // harmonics and cut the noise between them: at least 1 dB better.
    assert!(
        after > before + 1.0,
        "before {before:.2} dB, after {after:.2} dB (noisy {:.2})",
        task.noisy_si_sdr()
    );
}

#[test]
fn a_run_adds_forgetting_rates_to_weights_trained_without_them() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let plain = small(TemporalModel::Aaren);
    let net = Enhancer::new(&plain, &device).unwrap();
    let path = dir.path().join("plain.safetensors");
    net.to_store(&plain).save(&path).unwrap();
    let speech = vec![Clip {
        name: "s.wav".into(),
        samples: speechlike(16_000, 1).1,
    }];
    let noise = vec![Clip {
        name: "n.wav".into(),
        samples: speechlike(16_000, 2).0,
    }];
    let (noisy, clean) = speechlike(4_000, 3);
    let valid = vec![Pair {
        name: "v".into(),
        clean,
        noisy,
    }];
    let data = || EnhanceData::Mixing {
        speech: speech.clone(),
        noise: noise.clone(),
    };
    let forgetting = EnhanceConfig {
        forgetting: true,
        init: Some(path.display().to_string()),
        batch_size: 2,
        segment_frames: 30,
        ..plain.clone()
    };
    let mut task =
        EnhanceTraining::new(forgetting.clone(), data(), valid.clone(), &device).unwrap();
    let store = task.inference_model().to_store(task.config());
    let before = net.to_store(&plain);
    // Every earlier weight carried over; the rates start at 1/50, 1/200, 1/800, 1/3200.
    for name in before.names() {
        assert_eq!(
            store.get(name).unwrap().data,
            before.get(name).unwrap().data,
            "{name}"
        );
    }
    let rates: Vec<f32> = store
        .get("aaren.layers.1.aaren.log_decay")
        .unwrap()
        .data
        .iter()
        .map(|v| v.exp())
        .collect();
    for (got, want) in rates.iter().zip([50.0, 200.0, 800.0, 3200.0]) {
        assert!((got * want - 1.0).abs() < 1e-5, "{rates:?}");
    }
    assert!(task.train_step().unwrap()[0].1.is_finite());
    // The other way round is refused: rates the run would drop.
    let trained = dir.path().join("forgetting.safetensors");
    task.inference_model()
        .to_store(task.config())
        .save(&trained)
        .unwrap();
    let back = EnhanceConfig {
        init: Some(trained.display().to_string()),
        ..plain
    };
    let err = EnhanceTraining::new(back, data(), valid, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--forgetting"), "{err}");
}
