//! Sentiment models learn a separable toy corpus in the aclImdb layout, for every model.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use attnkit::data::{Glove, Split, Vocabulary, load_reviews, tokenize};
use attnkit::tasks::sentiment::{
    EmbeddingKind, KeepTokens, SentimentConfig, SentimentModel, SentimentTraining, encode,
};
use attnkit::train::{OptimizerConfig, TrainPlan, Trainer, TrainingTask};
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;

fn corpus(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("attnkit-sentiment-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut rng = SplitMix64::new(1);
    let filler = ["the", "movie", "plot", "actor", "was", "and", "a", "film"];
    for part in ["train", "test"] {
        for (class, words) in [
            ("pos", ["great", "wonderful"]),
            ("neg", ["awful", "boring"]),
        ] {
            let d = root.join(part).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..40 {
                let mut text: Vec<&str> = (0..12).map(|_| filler[rng.below(8) as usize]).collect();
                text.insert(rng.below(12) as usize, words[rng.below(2) as usize]);
                std::fs::write(d.join(format!("{i}_0.txt")), text.join(" ") + "<br />").unwrap();
            }
        }
    }
    root
}

/// `n` epochs, logged at each epoch's end, no checkpoints.
fn epochs(n: u64) -> TrainPlan {
    TrainPlan::by_epochs(n, 80usize.div_ceil(16) as u64, None).unwrap()
}

#[test]
fn every_model_learns_a_separable_corpus() {
    let root = corpus("models");
    let train = load_reviews(&root, Split::Train, 0.0, 0).unwrap();
    let test = load_reviews(&root, Split::Test, 0.0, 0).unwrap();
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100);
    // 8-d "GloVe" for a few words, to exercise the loader path.
    let glove = Glove::from_reader(
        &b"great 1 0 0 0 0 0 0 0\nawful -1 0 0 0 0 0 0 0\nthe 0 1 0 0 0 0 0 0\n"[..],
        std::path::Path::new("mini.txt"),
    )
    .unwrap();
    for (model, embedding) in [
        (SentimentModel::Lstm, EmbeddingKind::Glove),
        (SentimentModel::Bigru, EmbeddingKind::Onehot),
        (SentimentModel::Birnn, EmbeddingKind::Glove),
        (SentimentModel::Attention, EmbeddingKind::Glove),
        (SentimentModel::Aaren, EmbeddingKind::Onehot),
    ] {
        let config = SentimentConfig {
            model,
            embedding,
            hidden: 8,
            max_len: 16,
            batch_size: 16,
            optimizer: OptimizerConfig::Adam { lr: 2e-2 },
            seed: 3,
            dropout: 0.0,
            keep: KeepTokens::First,
        };
        let g = (embedding == EmbeddingKind::Glove).then_some(&glove);
        let run = SentimentTraining::new(
            config,
            &vocab,
            g,
            encode(&train, &vocab, 16),
            &Device::flex(),
        )
        .unwrap()
        .with_validation(encode(&test, &vocab, 16))
        .unwrap();
        let mut trainer = Trainer::new(run, epochs(15)).unwrap();
        trainer.run(&mut ()).unwrap();
        let acc = trainer.task().evaluate(&encode(&test, &vocab, 16)).unwrap();
        // The loop's validation at the last epoch is the same evaluation.
        assert_eq!(trainer.last("val_accuracy"), Some(acc));
        assert!(acc >= 0.9, "{model:?}/{embedding:?}: test accuracy {acc}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Training from the Burn data loader, with two worker threads tokenizing and batching.
#[test]
fn training_through_the_multithreaded_loader_learns() {
    use attnkit::data::ReviewLoaderConfig;
    let root = corpus("loader");
    let train = load_reviews(&root, Split::Train, 0.0, 0).unwrap();
    let test = load_reviews(&root, Split::Test, 0.0, 0).unwrap();
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100);
    let config = SentimentConfig {
        model: SentimentModel::Attention,
        embedding: EmbeddingKind::Onehot,
        hidden: 8,
        max_len: 16,
        batch_size: 16,
        optimizer: OptimizerConfig::Adam { lr: 2e-2 },
        seed: 3,
        dropout: 0.0,
        keep: KeepTokens::First,
    };
    let run = SentimentTraining::new(
        config,
        &vocab,
        None,
        encode(&train, &vocab, 16),
        &Device::flex(),
    )
    .unwrap();
    let loader = ReviewLoaderConfig::new(16, 16)
        .with_shuffle(Some(3))
        .with_workers(2)
        .init(
            train.clone(),
            std::sync::Arc::new(vocab.clone()),
            run.device(),
        )
        .unwrap();
    let run = run.with_loader(loader);
    assert_eq!(run.steps_per_epoch(), Some(train.len().div_ceil(16) as u64));
    let mut trainer = Trainer::new(run, epochs(15)).unwrap();
    trainer.run(&mut ()).unwrap();
    assert_eq!(trainer.step(), 15 * train.len().div_ceil(16) as u64);
    assert_eq!(trainer.history().len(), 15);
    let acc = trainer.task().evaluate(&encode(&test, &vocab, 16)).unwrap();
    assert!(acc >= 0.9, "accuracy {acc}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Lengths that do not fit the batch are refused with what was expected, for every model
/// (the Aaren reader would index position length − 1).
#[test]
fn bad_lengths_are_refused() {
    use attnkit::tasks::sentiment::SentimentNet;
    let device = Device::flex();
    for model in SentimentModel::ALL {
        let config = SentimentConfig {
            model,
            embedding: EmbeddingKind::Onehot,
            hidden: 4,
            max_len: 3,
            batch_size: 2,
            optimizer: OptimizerConfig::Adam { lr: 1e-3 },
            seed: 0,
            dropout: 0.0,
            keep: KeepTokens::First,
        };
        // GloVe rows that do not fill [vocab, dim] are refused, not a panic.
        let err = SentimentNet::new(&config, 5, Some((&[0.0; 7], 2)), &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 5 × 2 values, got 7"), "{err}");
        let net = SentimentNet::new(&config, 5, None, &device).unwrap();
        let ids = || Tensor::<2, Int>::from_data(TensorData::new(vec![1i64; 6], [2, 3]), &device);
        assert_eq!(net.forward(ids(), &[3, 1]).unwrap().dims(), [2, 2]);
        for bad in [&[0usize, 1][..], &[4, 1], &[1]] {
            let err = net.forward(ids(), bad).unwrap_err().to_string();
            assert!(
                err.contains("expected 2 lengths in 1..=3"),
                "{model:?}: {err}"
            );
        }
    }
}

/// Reviews encoded at another length than the run's are refused where they enter.
#[test]
fn reviews_of_another_length_are_refused() {
    let root = corpus("lengths");
    let train = load_reviews(&root, Split::Train, 0.0, 0).unwrap();
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100);
    let config = SentimentConfig {
        model: SentimentModel::Gru,
        embedding: EmbeddingKind::Onehot,
        hidden: 4,
        max_len: 16,
        batch_size: 16,
        optimizer: OptimizerConfig::Adam { lr: 1e-3 },
        seed: 0,
        dropout: 0.0,
        keep: KeepTokens::First,
    };
    let short = encode(&train, &vocab, 8);
    let err = SentimentTraining::new(config.clone(), &vocab, None, short.clone(), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 80 reviews of 16 ids"), "{err}");
    let run = SentimentTraining::new(
        config,
        &vocab,
        None,
        encode(&train, &vocab, 16),
        &Device::flex(),
    )
    .unwrap();
    assert!(run.evaluate(&short).is_err());
    assert!(run.with_validation(short).is_err());
    let _ = std::fs::remove_dir_all(&root);
}

/// Model selection on the validation reviews: after training, `best_epoch` is the epoch
/// whose validation accuracy the history shows highest (the first such), its network is
/// saved, and `evaluate_best` on the validation reviews gives that accuracy back; with
/// dropout the run still learns the corpus.
#[test]
fn the_best_validation_epoch_is_kept() {
    let root = corpus("best");
    let train = load_reviews(&root, Split::Train, 0.0, 0).unwrap();
    let tokens: Vec<Vec<String>> = train.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100);
    let val = load_reviews(&root, Split::Test, 0.0, 0).unwrap();
    let config = SentimentConfig {
        model: SentimentModel::Bilstm,
        embedding: EmbeddingKind::Onehot,
        hidden: 8,
        max_len: 16,
        batch_size: 16,
        optimizer: OptimizerConfig::Adam { lr: 2e-2 },
        seed: 5,
        dropout: 0.3,
        keep: KeepTokens::First,
    };
    let best_path = root.join("best.ckpt");
    let run = SentimentTraining::new(
        config,
        &vocab,
        None,
        encode(&train, &vocab, 16),
        &Device::flex(),
    )
    .unwrap()
    .with_validation(encode(&val, &vocab, 16))
    .unwrap()
    .with_best_checkpoint(best_path.clone());
    let per_epoch = train.len().div_ceil(16) as u64;
    let mut trainer =
        Trainer::new(run, TrainPlan::by_epochs(12, per_epoch, None).unwrap()).unwrap();
    trainer.run(&mut ()).unwrap();
    let vals: Vec<f64> = trainer
        .history()
        .iter()
        .map(|r| r.get("val_accuracy").unwrap())
        .collect();
    let top = vals.iter().cloned().fold(f64::MIN, f64::max);
    let first = vals.iter().position(|&v| v == top).unwrap() as u64 + 1;
    let (step, acc) = trainer.task().best_epoch().unwrap();
    assert_eq!((step / per_epoch, acc), (first, top), "history {vals:?}");
    assert!(best_path.exists());
    let again = trainer
        .task()
        .evaluate_best(&encode(&val, &vocab, 16))
        .unwrap();
    assert_eq!(again, top);
    assert!(top >= 0.9, "validation accuracies {vals:?}");
    let _ = std::fs::remove_dir_all(&root);
}

/// `keep: last` keeps a long review's last `max_len` tokens, `first` its first; short
/// reviews are the same either way.
#[test]
fn longer_reviews_keep_their_first_or_last_tokens() {
    use attnkit::data::Review;
    use attnkit::tasks::sentiment::encode_keeping;
    let text = "one two three four five six";
    let reviews = vec![
        Review {
            text: text.into(),
            label: 1,
            path: "long.txt".into(),
        },
        Review {
            text: "two".into(),
            label: 0,
            path: "short.txt".into(),
        },
    ];
    let tokens: Vec<Vec<String>> = reviews.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100);
    let ids = |words: &[&str]| -> Vec<i64> {
        let w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        vocab.encode(&w, 3).into_iter().map(|i| i as i64).collect()
    };
    let first = encode_keeping(&reviews, &vocab, 3, KeepTokens::First);
    let last = encode_keeping(&reviews, &vocab, 3, KeepTokens::Last);
    assert_eq!(&first.ids[..3], &ids(&["one", "two", "three"])[..]);
    assert_eq!(&last.ids[..3], &ids(&["four", "five", "six"])[..]);
    assert_eq!(first.ids[3..], last.ids[3..]);
    assert_eq!((first.lengths, last.lengths), (vec![3, 1], vec![3, 1]));
}
