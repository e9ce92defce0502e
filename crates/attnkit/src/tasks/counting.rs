//! The counting task (seed 004, DATA-3, TRAIN-2).
//!
//! A sequence `X Y d_1 … d_n` of digits in `0..vocab` (n = `seq_len`); the label is the
//! number of X's minus the number of Y's among d_1..d_n, offset by n so that it is a
//! class index in `0..=2n` (cross-entropy needs non-negative classes). The network is the
//! seed's: an embedding, a learnable positional encoding, one encoder layer (multi-head
//! self-attention, or [`AarenEncoderBlock`] with `--mixer aaren`), a decoder made of one
//! multi-head attention block whose query is a learned parameter, and a linear classifier.

use std::path::Path;

use attnkit_kernels::rng::SplitMix64;
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aaren::{AarenEncoderBlock, AarenEncoderConfig};
use crate::attention::{
    AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig, TransformerEncoderLayer,
    TransformerEncoderLayerConfig,
};
use crate::error::{AttnError, Result};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::positional::{LearnablePositionalEncoding, LearnablePositionalEncodingConfig};
use crate::train::{
    Checkpoint, CheckpointHeader, Optimizer, OptimizerConfig, accuracy, cross_entropy,
};

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
    /// Digits after X and Y. Seed: 5.
    pub seq_len: usize,
    /// Digits are `0..vocab`. Seed: 6.
    pub vocab: usize,
    /// Embedding width. Seed: 64.
    pub embed_dim: usize,
    /// Heads. Seed: 4.
    pub num_heads: usize,
    /// Hidden width of the encoder's feed-forward network (the seed leaves it open): 128.
    pub ff_dim: usize,
    /// The encoder's token mixer.
    pub mixer: Mixer,
    /// Sequences per step. Seed: 64.
    pub batch_size: usize,
    /// Seed: SGD, lr 0.005, momentum 0.9.
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

/// The seed's network.
#[derive(Module, Debug)]
pub struct CountingNet {
    /// Digit embedding, `[vocab, E]`.
    pub embedding: Embedding,
    /// Learnable positional encoding, `[1, seq_len + 2, E]`.
    pub positional: LearnablePositionalEncoding,
    /// The encoder layer with self-attention (mixer `attention`).
    pub attention_encoder: Option<TransformerEncoderLayer>,
    /// The encoder layer with Aaren (mixer `aaren`).
    pub aaren_encoder: Option<AarenEncoderBlock>,
    /// The decoder's learned query, `[1, E]`.
    pub query: Param<Tensor<2>>,
    /// The decoder: one multi-head attention block.
    pub decoder: MultiHeadAttention,
    /// E → 2·seq_len + 1 classes.
    pub classifier: TorchLinear,
}

impl CountingNet {
    /// Creates the network for `config` on `device` (weights from the device's seed).
    pub fn new(config: &CountConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let e = config.embed_dim;
        let (attention_encoder, aaren_encoder) = match config.mixer {
            Mixer::Attention => (
                Some(
                    TransformerEncoderLayerConfig::new(e, config.num_heads, config.ff_dim)
                        .init(device)?,
                ),
                None,
            ),
            Mixer::Aaren => (
                None,
                Some(
                    AarenEncoderConfig::new(e, config.num_heads)
                        .with_ff_dim(config.ff_dim)
                        .with_dropout(0.0)
                        .init_block(device)?,
                ),
            ),
        };
        Ok(Self {
            embedding: EmbeddingConfig::new(config.vocab, e).init(device),
            positional: LearnablePositionalEncodingConfig::new(config.seq_len + 2, e)
                .init(device)?,
            attention_encoder,
            aaren_encoder,
            query: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([1, e], device),
            decoder: MultiHeadAttentionConfig::new(e, config.num_heads).init(device)?,
            classifier: TorchLinearConfig::new(e, config.classes()).init(device),
        })
    }

    /// Class logits for each sequence.
    ///
    /// - `tokens`: `[B, seq_len + 2]` digits
    /// - returns: `[B, 2·seq_len + 1]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Result<Tensor<2>> {
        let b = tokens.dims()[0];
        let x = self.positional.forward(self.embedding.forward(tokens))?;
        let x = match (&self.attention_encoder, &self.aaren_encoder) {
            (Some(enc), _) => enc.forward(x, &AttentionMask::none())?,
            (None, Some(enc)) => enc.forward(x, None)?,
            (None, None) => x,
        };
        let e = x.dims()[2];
        let q = self.query.val().unsqueeze_dim::<3>(0).expand([b, 1, e]);
        let pooled = self
            .decoder
            .forward(q, x.clone(), x, &AttentionMask::none())?
            .output
            .reshape([b, e]);
        self.classifier.forward(pooled)
    }
}

/// Salts of the generators of the validation and test sequences: both are disjoint
/// streams from training's, fixed by the run's seed.
const VALIDATION_SALT: u64 = 0x5eed_0000_0000_0001;
const TEST_SALT: u64 = 0x5eed_0000_0000_0002;

/// Metrics logged during training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CountLog {
    /// Steps taken.
    pub step: u64,
    /// Mean training loss over the steps since the last log.
    pub train_loss: f64,
    /// Mean training-batch accuracy over the same steps.
    pub train_accuracy: f64,
    /// Accuracy on the fixed validation sequences.
    pub val_accuracy: f64,
}

/// A counting run in progress.
pub struct CountTraining {
    config: CountConfig,
    model: CountingNet,
    optimizer: Optimizer,
    rng: SplitMix64,
    step: u64,
    device: Device,
    history: Vec<CountLog>,
    window: (f64, f64, u64),
}

impl std::fmt::Debug for CountTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountTraining")
            .field("config", &self.config)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl CountTraining {
    /// A fresh run: weights and data from `config.seed`, on `device`'s autodiff.
    pub fn new(config: CountConfig, device: &Device) -> Result<Self> {
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let model = CountingNet::new(&config, &device)?;
        crate::train::materialize(&model);
        let optimizer = config.optimizer.init()?;
        Ok(Self {
            rng: SplitMix64::new(config.seed),
            config,
            model,
            optimizer,
            step: 0,
            device,
            history: Vec::new(),
            window: (0.0, 0.0, 0),
        })
    }

    /// Continues the run saved at `path`, which must be a checkpoint of this task and
    /// of exactly `config`.
    pub fn resume(config: CountConfig, path: &Path, device: &Device) -> Result<Self> {
        let ckpt = Checkpoint::load(path)?;
        ckpt.check_matches("count", &json!(config), path)?;
        let mut run = Self::new(config, device)?;
        // Load into a plain-device model, then wrap it for training: parameters loaded
        // straight into an autodiff model would not be tracked, and would silently stop
        // learning.
        let plain = CountingNet::new(&run.config, device)?;
        run.model = ckpt.load_model(plain, path)?.train();
        run.optimizer = run.optimizer.load_state_bytes(ckpt.optimizer.clone())?;
        run.rng = SplitMix64::restore(ckpt.header.rng_state, ckpt.header.rng_spare);
        run.step = ckpt.header.step;
        let extra = &ckpt.header.extra;
        run.history =
            serde_json::from_value(extra["history"].clone()).map_err(|e| AttnError::Format {
                path: path.to_path_buf(),
                why: format!("history in the header: {e}"),
            })?;
        let w = &extra["window"];
        run.window = (
            w[0].as_f64().unwrap_or(0.0),
            w[1].as_f64().unwrap_or(0.0),
            w[2].as_u64().unwrap_or(0),
        );
        Ok(run)
    }

    /// The run's configuration.
    pub fn config(&self) -> &CountConfig {
        &self.config
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The metrics logged so far.
    pub fn history(&self) -> &[CountLog] {
        &self.history
    }

    /// The model.
    pub fn model(&self) -> &CountingNet {
        &self.model
    }

    /// One optimizer step on a fresh batch; returns its loss and accuracy.
    pub fn train_step(&mut self) -> Result<(f64, f64)> {
        let c = &self.config;
        let (tokens, labels) = sample_batch(&mut self.rng, c.batch_size, c.seq_len, c.vocab);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(tokens, [c.batch_size, c.seq_len + 2]),
            &self.device,
        );
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(labels, [c.batch_size]), &self.device);
        let logits = self.model.forward(tokens)?;
        let acc = accuracy(logits.clone().detach(), labels.clone());
        let loss = cross_entropy(logits, labels)?;
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.step += 1;
        self.window.0 += loss_value;
        self.window.1 += acc;
        self.window.2 += 1;
        Ok((loss_value, acc))
    }

    /// The model without autodiff tracking, and its device, for evaluation.
    fn inference_model(&self) -> (CountingNet, Device) {
        let model = self.model.valid();
        let device = model.query.val().device();
        (model, device)
    }

    /// Accuracy on `n` sequences drawn from a generator seeded with `seed`.
    pub fn accuracy_on(&self, n: usize, seed: u64) -> Result<f64> {
        let c = &self.config;
        let (model, device) = self.inference_model();
        let mut rng = SplitMix64::new(seed);
        let mut correct = 0.0;
        let mut left = n;
        while left > 0 {
            let b = left.min(1000);
            let (tokens, labels) = sample_batch(&mut rng, b, c.seq_len, c.vocab);
            let tokens =
                Tensor::<2, Int>::from_data(TensorData::new(tokens, [b, c.seq_len + 2]), &device);
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &device);
            let logits = model.forward(tokens)?;
            correct += accuracy(logits, labels) * b as f64;
            left -= b;
        }
        Ok(correct / n.max(1) as f64)
    }

    /// Accuracy on every possible sequence (vocab^(seq_len + 2) of them: 279,936 for the
    /// seed's task) and up to `keep` of the sequences it gets wrong.
    pub fn exhaustive_accuracy(&self, keep: usize) -> Result<(f64, Vec<Vec<i64>>)> {
        let c = &self.config;
        let width = c.seq_len + 2;
        let total = (c.vocab as u64)
            .checked_pow(width as u32)
            .filter(|&n| n <= 50_000_000)
            .ok_or_else(|| {
                AttnError::Config(format!(
                    "{}^{width} sequences are too many to enumerate",
                    c.vocab
                ))
            })? as usize;
        let (model, device) = self.inference_model();
        let mut correct = 0usize;
        let mut wrong = Vec::new();
        let mut start = 0usize;
        while start < total {
            let b = (total - start).min(4096);
            let mut tokens = Vec::with_capacity(b * width);
            let mut labels = Vec::with_capacity(b);
            for index in start..start + b {
                let mut rest = index;
                let row: Vec<i64> = (0..width)
                    .map(|_| {
                        let d = (rest % c.vocab) as i64;
                        rest /= c.vocab;
                        d
                    })
                    .collect();
                let diff: i64 = row[2..]
                    .iter()
                    .map(|&d| i64::from(d == row[0]) - i64::from(d == row[1]))
                    .sum();
                labels.push(diff + c.seq_len as i64);
                tokens.extend_from_slice(&row);
            }
            let t =
                Tensor::<2, Int>::from_data(TensorData::new(tokens.clone(), [b, width]), &device);
            let predicted: Vec<i64> = model
                .forward(t)?
                .detach()
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| AttnError::Value {
                    what: "predictions".into(),
                    why: format!("{e:?}"),
                })?;
            for (i, (p, l)) in predicted.iter().zip(&labels).enumerate() {
                if p == l {
                    correct += 1;
                } else if wrong.len() < keep {
                    wrong.push(tokens[i * width..(i + 1) * width].to_vec());
                }
            }
            start += b;
        }
        Ok((correct as f64 / total as f64, wrong))
    }

    /// Accuracy on the run's fixed validation sequences (2,000, disjoint from training).
    pub fn validation_accuracy(&self) -> Result<f64> {
        self.accuracy_on(2_000, self.config.seed ^ VALIDATION_SALT)
    }

    /// Accuracy on `n` freshly generated held-out sequences (the test set).
    pub fn test_accuracy(&self, n: usize) -> Result<f64> {
        self.accuracy_on(n, self.config.seed ^ TEST_SALT)
    }

    /// Closes the current logging window: mean training loss and accuracy since the last
    /// log, and the validation accuracy now.
    pub fn log(&mut self) -> Result<CountLog> {
        let (loss, acc, n) = self.window;
        let n = n.max(1) as f64;
        let entry = CountLog {
            step: self.step,
            train_loss: loss / n,
            train_accuracy: acc / n,
            val_accuracy: self.validation_accuracy()?,
        };
        self.history.push(entry);
        self.window = (0.0, 0.0, 0);
        Ok(entry)
    }

    /// The first logged step whose validation accuracy reached `threshold`.
    pub fn first_step_reaching(&self, threshold: f64) -> Option<u64> {
        self.history
            .iter()
            .find(|l| l.val_accuracy >= threshold)
            .map(|l| l.step)
    }

    /// Saves everything needed to continue exactly (atomically).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let (state, spare) = self.rng.snapshot();
        let header = CheckpointHeader {
            task: "count".into(),
            config: json!(self.config),
            step: self.step,
            rng_state: state,
            rng_spare: spare,
            extra: json!({
                "history": self.history,
                "window": [self.window.0, self.window.1, self.window.2],
            }),
            lengths: [0, 0],
            checksum: String::new(),
        };
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)?.save(path)
    }

    /// The configuration as JSON (what a checkpoint must match).
    pub fn config_json(&self) -> Value {
        json!(self.config)
    }
}

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
        // The seed's example: 1214211 → 3 ones, 1 two in 14211 → 2 (class 7).
        let row = [1i64, 2, 1, 4, 2, 1, 1];
        let diff: i64 = row[2..]
            .iter()
            .map(|&d| i64::from(d == 1) - i64::from(d == 2))
            .sum();
        assert_eq!(diff, 2);
    }
}
