//! The Burn data loader over reviews: every review once per epoch with or without
//! worker threads, batches encoded exactly as `encode` does, seeded shuffling that
//! changes between epochs, and training through it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::sync::Arc;

use attnkit::data::{Review, ReviewLoaderConfig, Vocabulary, tokenize};
use attnkit::tasks::sentiment::encode;
use burn::prelude::*;

/// Review i is `r{i}` followed by i % 7 filler words, so its first id names it.
fn reviews(n: usize) -> (Vec<Review>, Arc<Vocabulary>) {
    let reviews: Vec<Review> = (0..n)
        .map(|i| Review {
            text: std::iter::once(format!("r{i}"))
                .chain((0..i % 7).map(|_| "film".to_string()))
                .collect::<Vec<_>>()
                .join(" "),
            label: (i % 2) as u8,
            path: format!("{i}.txt").into(),
        })
        .collect();
    let tokens: Vec<Vec<String>> = reviews.iter().map(|r| tokenize(&r.text)).collect();
    let vocab = Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 1000);
    (reviews, Arc::new(vocab))
}

/// The review index of each row, in the order the loader served them, checking each
/// row against `encode` of that review.
fn served(
    config: &ReviewLoaderConfig,
    reviews: &[Review],
    vocab: &Arc<Vocabulary>,
    epochs: usize,
) -> Vec<Vec<usize>> {
    let device = Device::flex();
    let loader = config
        .init(reviews.to_vec(), vocab.clone(), &device)
        .unwrap();
    let by_first_id: BTreeMap<i64, usize> = reviews
        .iter()
        .enumerate()
        .map(|(i, r)| (encode(std::slice::from_ref(r), vocab, 1).ids[0], i))
        .collect();
    (0..epochs)
        .map(|_| {
            let mut order = Vec::new();
            for batch in loader.iter() {
                let batch = batch.unwrap();
                let [b, l] = batch.ids.dims();
                assert!(b <= config.batch_size && l == config.max_len);
                let ids = batch
                    .ids
                    .to_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap();
                let labels = batch
                    .labels
                    .to_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap();
                for row in 0..b {
                    let i = by_first_id[&ids[row * l]];
                    let want = encode(std::slice::from_ref(&reviews[i]), vocab, config.max_len);
                    assert_eq!(&ids[row * l..(row + 1) * l], want.ids.as_slice());
                    assert_eq!(batch.lengths[row], want.lengths[0]);
                    assert_eq!(labels[row], want.labels[0]);
                    order.push(i);
                }
            }
            order
        })
        .collect()
}

#[test]
fn every_review_once_per_epoch_with_and_without_workers() {
    let (reviews, vocab) = reviews(103);
    for workers in [0, 2] {
        let config = ReviewLoaderConfig::new(16, 5)
            .with_shuffle(Some(3))
            .with_workers(workers);
        for order in served(&config, &reviews, &vocab, 2) {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..103).collect::<Vec<_>>(), "workers {workers}");
        }
    }
}

#[test]
fn shuffling_is_seeded_and_changes_between_epochs() {
    let (reviews, vocab) = reviews(64);
    let plain = served(&ReviewLoaderConfig::new(8, 4), &reviews, &vocab, 1);
    assert_eq!(plain[0], (0..64).collect::<Vec<_>>());
    let config = ReviewLoaderConfig::new(8, 4).with_shuffle(Some(11));
    let a = served(&config, &reviews, &vocab, 2);
    let b = served(&config, &reviews, &vocab, 2);
    assert_eq!(a, b, "same seed, same orders");
    assert_ne!(a[0], plain[0]);
    assert_ne!(a[0], a[1], "each epoch is shuffled anew");
}

#[test]
fn zero_sizes_are_refused() {
    let (reviews, vocab) = reviews(4);
    let err = ReviewLoaderConfig::new(0, 4)
        .init(reviews, vocab, &Device::flex())
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("batch_size and max_len must be at least 1"),
        "{err}"
    );
}
