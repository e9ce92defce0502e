//! Reviews through Burn's data API: a [`Dataset`] of raw reviews and a [`Batcher`] that
//! tokenizes, encodes, pads and truncates them, so a multi-threaded Burn
//! `DataLoader` spreads that work over worker threads while the model trains.
//!
//! ```
//! use std::sync::Arc;
//! use attnkit::data::{Review, ReviewLoaderConfig, Vocabulary, tokenize};
//! use burn::prelude::*;
//!
//! let reviews: Vec<Review> = (0..10)
//!     .map(|i| Review { text: format!("a fine film {i}"), label: (i % 2) as u8, path: "r.txt".into() })
//!     .collect();
//! let tokens: Vec<Vec<String>> = reviews.iter().map(|r| tokenize(&r.text)).collect();
//! let vocab = Arc::new(Vocabulary::build(tokens.iter().map(|t| t.as_slice()), 1, 100));
//! let loader = ReviewLoaderConfig::new(4, 6)
//!     .with_shuffle(Some(7))
//!     .with_workers(2)
//!     .init(reviews, vocab, &Device::flex())
//!     .unwrap();
//! let sizes: Vec<usize> = loader.iter().map(|b| b.unwrap().lengths.len()).collect();
//! assert_eq!(sizes.iter().sum::<usize>(), 10);
//! ```

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;

use super::{Review, Vocabulary};
use crate::error::{AttnError, Result};
use crate::tasks::sentiment::KeepTokens;

/// Reviews as a Burn [`Dataset`].
#[derive(Debug, Clone)]
pub struct ReviewDataset {
    reviews: Vec<Review>,
}

impl ReviewDataset {
    /// The dataset of `reviews`, in this order.
    pub fn new(reviews: Vec<Review>) -> Self {
        Self { reviews }
    }
}

impl Dataset<Review> for ReviewDataset {
    fn get(&self, index: usize) -> std::result::Result<Review, DatasetError> {
        self.reviews.get(index).cloned().ok_or_else(|| {
            DatasetError::new(AttnError::Value {
                what: "review index".into(),
                why: format!("{index} is past the {} reviews", self.reviews.len()),
            })
        })
    }

    fn len(&self) -> usize {
        self.reviews.len()
    }
}

/// One batch of encoded reviews.
#[derive(Debug, Clone)]
pub struct ReviewBatch {
    /// Token ids `[B, max_len]`, 0 = padding.
    pub ids: Tensor<2, Int>,
    /// True lengths, each in `1..=max_len` (an empty review counts as one `<pad>`).
    pub lengths: Vec<usize>,
    /// Labels `[B]`: 1 positive, 0 negative.
    pub labels: Tensor<1, Int>,
}

/// Tokenizes, encodes, pads and truncates reviews into a [`ReviewBatch`].
#[derive(Debug, Clone)]
pub struct ReviewBatcher {
    vocab: Arc<Vocabulary>,
    max_len: usize,
    keep: KeepTokens,
}

impl ReviewBatcher {
    /// A batcher with `vocab`, cutting reviews at their first `max_len` tokens.
    pub fn new(vocab: Arc<Vocabulary>, max_len: usize) -> Self {
        Self {
            vocab,
            max_len,
            keep: KeepTokens::First,
        }
    }

    /// The same batcher keeping the first or the last `max_len` tokens.
    pub fn with_keep(mut self, keep: KeepTokens) -> Self {
        self.keep = keep;
        self
    }
}

impl Batcher<Review, ReviewBatch> for ReviewBatcher {
    fn batch(&self, items: Vec<Review>, device: &Device) -> ReviewBatch {
        let n = items.len();
        let enc =
            crate::tasks::sentiment::encode_keeping(&items, &self.vocab, self.max_len, self.keep);
        ReviewBatch {
            ids: Tensor::from_data(TensorData::new(enc.ids, [n, self.max_len]), device),
            lengths: enc.lengths,
            labels: Tensor::from_data(TensorData::new(enc.labels, [n]), device),
        }
    }
}

/// How reviews are served: batch size, length, shuffling and worker threads.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewLoaderConfig {
    /// Reviews per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Tokens kept per review; shorter reviews are padded with id 0.
    pub max_len: usize,
    /// Shuffle with this seed; `None` (the default) keeps the dataset's order.
    pub shuffle: Option<u64>,
    /// Worker threads that tokenize and batch; 0 (the default) does it on the caller's
    /// thread, in order. With workers, batches arrive in the order they finish, so a
    /// run is reproducible only with 0.
    pub workers: usize,
    /// Which tokens of a longer review are kept. Default: the first.
    pub keep: KeepTokens,
}

impl ReviewLoaderConfig {
    /// `batch_size` reviews of `max_len` tokens, in order, no workers.
    pub fn new(batch_size: usize, max_len: usize) -> Self {
        Self {
            batch_size,
            max_len,
            shuffle: None,
            workers: 0,
            keep: KeepTokens::First,
        }
    }

    /// Sets the shuffle seed.
    pub fn with_shuffle(mut self, seed: Option<u64>) -> Self {
        self.shuffle = seed;
        self
    }

    /// Sets the number of worker threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Keeps the first or the last `max_len` tokens of longer reviews.
    pub fn with_keep(mut self, keep: KeepTokens) -> Self {
        self.keep = keep;
        self
    }

    /// The loader over `reviews`, producing batches on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if `batch_size` or `max_len` is 0.
    pub fn init(
        &self,
        reviews: Vec<Review>,
        vocab: Arc<Vocabulary>,
        device: &Device,
    ) -> Result<Arc<dyn DataLoader<ReviewBatch>>> {
        if self.batch_size == 0 || self.max_len == 0 {
            return Err(AttnError::Config(format!(
                "batch_size and max_len must be at least 1, got {} and {}",
                self.batch_size, self.max_len
            )));
        }
        let mut builder =
            DataLoaderBuilder::new(ReviewBatcher::new(vocab, self.max_len).with_keep(self.keep))
                .batch_size(self.batch_size)
                .set_device(device.clone());
        if let Some(seed) = self.shuffle {
            builder = builder.shuffle(seed);
        }
        if self.workers > 0 {
            builder = builder.num_workers(self.workers);
        }
        Ok(builder.build(ReviewDataset::new(reviews)))
    }
}
