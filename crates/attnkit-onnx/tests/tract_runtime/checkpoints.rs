//! Trained counting and sentiment networks exported whole from their checkpoints.

use crate::runner::*;

/// A trained counting network (both mixers) exported from its checkpoint: the logits
/// in tract match the Burn forward of the same checkpoint within atol 1e-4, rtol 1e-3
/// (two encoder blocks of f32 with LayerNorm), and the predicted classes agree.
#[test]
fn counting_checkpoint_exports_whole() {
    use attnkit::tasks::counting::{CountConfig, CountTraining, CountingNet, Mixer, sample_batch};
    use attnkit::train::{Checkpoint, TrainingTask};
    use burn::prelude::{Int, Tensor, TensorData};

    let dir = std::env::temp_dir().join(format!("attnkit-onnx-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mixer in [Mixer::Attention, Mixer::Aaren] {
        let config = CountConfig {
            mixer,
            seed: 3,
            ..CountConfig::default()
        };
        let device = Device::flex();
        let mut run = CountTraining::new(config.clone(), &device).unwrap();
        while run.step() < 30 {
            run.train_step().unwrap();
        }
        let path = dir.join(format!("{mixer:?}.ckpt"));
        run.save_checkpoint(&path).unwrap();
        let exported = attnkit_onnx::export_checkpoint(&path).unwrap();
        assert!(exported.warnings.is_empty(), "{:?}", exported.warnings);
        assert_single_assignment(&exported.model, "count");

        let ckpt = Checkpoint::load(&path).unwrap();
        let net = ckpt
            .load_model(CountingNet::new(&config, &device).unwrap(), &path)
            .unwrap();
        let mut rng = SplitMix64::new(11);
        let b = 16;
        let (tokens, _) = sample_batch(&mut rng, b, config.seq_len, config.vocab);
        let t = config.seq_len + 2;
        let want = net
            .forward(Tensor::<2, Int>::from_data(
                TensorData::new(tokens.clone(), [b, t]),
                &device,
            ))
            .unwrap();
        let want = StoredTensor::from_tensor(want);

        let got = run_tract_i64(&exported.model, &[(vec![b, t], &tokens)]);
        let check = TensorCheck::compare("logits", &got, &want, Tolerance::new(1e-4, 1e-3));
        assert!(check.passed(), "{mixer:?}: {check}");
        let classes = want.shape[1];
        for row in 0..b {
            let argmax = |d: &[f32]| (0..classes).max_by(|&i, &j| d[i].total_cmp(&d[j])).unwrap();
            let s = row * classes..(row + 1) * classes;
            assert_eq!(argmax(&got.data[s.clone()]), argmax(&want.data[s]));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every sentiment model exported from its checkpoint, on a padded batch (lengths 12,
/// 7, 1, 3, 12): the logits in tract match the Burn forward with the same lengths
/// within atol 1e-5, rtol 1e-4 — so the reverse directions start at each review's
/// true end, and attention and Aaren ignore the padding.
#[test]
fn sentiment_checkpoints_export_whole() {
    use attnkit::data::Vocabulary;
    use attnkit::tasks::sentiment::{
        EmbeddingKind, Encoded, KeepTokens, SentimentConfig, SentimentModel, SentimentNet,
        SentimentTraining,
    };
    use attnkit::train::{Checkpoint, OptimizerConfig, TrainingTask};
    use burn::prelude::{Int, Tensor, TensorData};

    let dir = std::env::temp_dir().join(format!("attnkit-onnx-imdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let words: Vec<Vec<String>> = (0..20).map(|i| vec![format!("w{i}"); 2]).collect();
    let vocab = Vocabulary::build(words.iter().map(|t| t.as_slice()), 1, 100);
    let mut rng = SplitMix64::new(5);
    let (n, l) = (24, 12);
    let lengths: Vec<usize> = (0..n).map(|_| 1 + rng.below(l as u64) as usize).collect();
    let mut ids = Vec::new();
    for &len in &lengths {
        ids.extend((0..l).map(|t| if t < len { 2 + rng.below(20) as i64 } else { 0 }));
    }
    let labels: Vec<i64> = (0..n).map(|i| (i % 2) as i64).collect();
    let train = Encoded {
        ids,
        lengths,
        labels,
    };
    let device = Device::flex();
    for model in SentimentModel::ALL {
        let config = SentimentConfig {
            model,
            embedding: EmbeddingKind::Onehot,
            hidden: 6,
            max_len: l,
            batch_size: 8,
            optimizer: OptimizerConfig::Adam { lr: 1e-2 },
            seed: 2,
            dropout: 0.0,
            keep: KeepTokens::First,
        };
        let mut run = SentimentTraining::new(config, &vocab, None, train.clone(), &device).unwrap();
        for _ in 0..run.steps_per_epoch().unwrap() {
            run.train_step().unwrap();
        }
        let path = dir.join(format!("{model:?}.ckpt"));
        run.save_checkpoint(&path).unwrap();
        let exported = attnkit_onnx::export_checkpoint(&path).unwrap();
        assert!(
            exported.warnings.is_empty(),
            "{model:?}: {:?}",
            exported.warnings
        );
        assert_single_assignment(&exported.model, "imdb");

        let ckpt = Checkpoint::load(&path).unwrap();
        let (_, net) = SentimentNet::from_checkpoint(&ckpt, &path, &device).unwrap();
        let lengths = [12usize, 7, 1, 3, 12];
        let b = lengths.len();
        let mut ids = Vec::new();
        for &len in &lengths {
            // Padding holds real ids here: the model must ignore it by length alone.
            ids.extend((0..l).map(|t| {
                if t < len {
                    2 + rng.below(20) as i64
                } else {
                    1 + rng.below(5) as i64
                }
            }));
        }
        let want = net
            .forward(
                Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [b, l]), &device),
                &lengths,
            )
            .unwrap();
        let want = StoredTensor::from_tensor(want);

        let lens: Vec<i64> = lengths.iter().map(|&v| v as i64).collect();
        let got = run_tract_i64(&exported.model, &[(vec![b, l], &ids), (vec![b], &lens)]);
        let check = TensorCheck::compare("logits", &got, &want, Tolerance::new(1e-5, 1e-4));
        assert!(check.passed(), "{model:?}: {check}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
