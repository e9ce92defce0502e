//! The counting task: a sequence `X Y d_1 … d_n` of digits in `0..vocab`
//! (n = `seq_len`); the label is the number of X's minus the number of Y's among
//! d_1..d_n, offset by n so that it is a class index in `0..=2n` (cross-entropy needs
//! non-negative classes).
//!
//! The network ([`CountingNet`]): an embedding, a learnable positional encoding, one
//! encoder layer (multi-head self-attention, or an Aaren encoder block with
//! [`Mixer::Aaren`]), a decoder made of one multi-head attention block whose query is a
//! learned parameter, and a linear classifier. [`CountTraining`] is the task the
//! training loop ([`crate::train::Trainer`]) runs: fresh random sequences every step,
//! 2,000 fixed validation sequences.

use attnkit_kernels::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::error::{AttnError, Result};
use crate::train::OptimizerConfig;

/// The token mixer of the encoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mixer {
    /// Multi-head self-attention (a Transformer encoder layer).
    #[default]
    Attention,
    /// Aaren (attention as an RNN) in the same block.
    Aaren,
}

/// Everything that defines a counting run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountConfig {
    /// Digits after X and Y. Default: 5.
    pub seq_len: usize,
    /// Digits are `0..vocab`. Default: 6.
    pub vocab: usize,
    /// Embedding width. Default: 64.
    pub embed_dim: usize,
    /// Heads. Default: 4.
    pub num_heads: usize,
    /// Hidden width of the encoder's feed-forward network. Default: 128.
    pub ff_dim: usize,
    /// The encoder's token mixer.
    pub mixer: Mixer,
    /// Sequences per step. Default: 64.
    pub batch_size: usize,
    /// Default: SGD, lr 0.005, momentum 0.9.
    pub optimizer: OptimizerConfig,
    /// Seed of the weights and the data.
    pub seed: u64,
}

impl Default for CountConfig {
    fn default() -> Self {
        Self {
            seq_len: 5,
            vocab: 6,
            embed_dim: 64,
            num_heads: 4,
            ff_dim: 128,
            mixer: Mixer::Attention,
            batch_size: 64,
            optimizer: OptimizerConfig::Sgd {
                lr: 0.005,
                momentum: 0.9,
            },
            seed: 0,
        }
    }
}

impl CountConfig {
    /// Number of classes, 2·seq_len + 1.
    pub fn classes(&self) -> usize {
        2 * self.seq_len + 1
    }

    fn validate(&self) -> Result<()> {
        if self.seq_len == 0 || self.vocab < 2 || self.batch_size == 0 {
            return Err(AttnError::Config(format!(
                "seq_len and batch_size must be at least 1 and vocab at least 2, got {}, {}, {}",
                self.seq_len, self.batch_size, self.vocab
            )));
        }
        Ok(())
    }
}

/// A batch of the counting task: tokens `[B, seq_len + 2]` and labels `[B]`, row-major.
pub fn sample_batch(
    rng: &mut SplitMix64,
    batch: usize,
    seq_len: usize,
    vocab: usize,
) -> (Vec<i64>, Vec<i64>) {
    let width = seq_len + 2;
    let mut tokens = Vec::with_capacity(batch * width);
    let mut labels = Vec::with_capacity(batch);
    for _ in 0..batch {
        let row: Vec<i64> = (0..width).map(|_| rng.below(vocab as u64) as i64).collect();
        let (x, y) = (row[0], row[1]);
        let diff: i64 = row[2..]
            .iter()
            .map(|&d| i64::from(d == x) - i64::from(d == y))
            .sum();
        labels.push(diff + seq_len as i64);
        tokens.extend(row);
    }
    (tokens, labels)
}

mod network;
mod training;

pub use network::CountingNet;
pub use training::CountTraining;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_count_x_minus_y_offset_by_the_length() {
        let mut rng = SplitMix64::new(3);
        let (tokens, labels) = sample_batch(&mut rng, 200, 5, 6);
        for (row, label) in tokens.chunks(7).zip(&labels) {
            let (x, y) = (row[0], row[1]);
            let nx = row[2..].iter().filter(|&&d| d == x).count() as i64;
            let ny = row[2..].iter().filter(|&&d| d == y).count() as i64;
            assert_eq!(*label, nx - ny + 5, "{row:?}");
            assert!(row.iter().all(|d| (0..6).contains(d)));
            assert!((0..=10).contains(label));
        }
        // The task statement's example: 1214211 → 3 ones, 1 two in 14211 → 2 (class 7).
        let row = [1i64, 2, 1, 4, 2, 1, 1];
        let diff: i64 = row[2..]
            .iter()
            .map(|&d| i64::from(d == 1) - i64::from(d == 2))
            .sum();
        assert_eq!(diff, 2);
    }
}
