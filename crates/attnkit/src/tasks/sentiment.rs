//! IMDB sentiment classification (seed 004, TRAIN-4): word embeddings (GloVe or learned)
//! and one of the recurrent baselines, attention pooling or Aaren, then a linear
//! classifier over two classes.

use std::path::Path;

use attnkit_kernels::rng::SplitMix64;
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::aaren::{Aaren, AarenConfig};
use crate::attention::{AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig};
use crate::data::{Glove, Oov, Review, ReviewBatch, Vocabulary, tokenize};
use crate::error::{AttnError, Result};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use crate::train::{
    Checkpoint, CheckpointHeader, Optimizer, OptimizerConfig, accuracy, cross_entropy, materialize,
};
use burn::data::dataloader::DataLoader;

/// The sequence model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentModel {
    /// Elman RNN (last hidden state).
    Rnn,
    /// LSTM.
    Lstm,
    /// GRU.
    Gru,
    /// Bidirectional RNN (both final states).
    Birnn,
    /// Bidirectional LSTM.
    Bilstm,
    /// Bidirectional GRU.
    Bigru,
    /// Multi-head attention pooling with a learned query over the embeddings.
    Attention,
    /// An Aaren layer over the embeddings, read at each review's last token.
    Aaren,
}

impl SentimentModel {
    /// Every model, in the order of the comparison table.
    pub const ALL: [Self; 8] = [
        Self::Rnn,
        Self::Lstm,
        Self::Gru,
        Self::Birnn,
        Self::Bilstm,
        Self::Bigru,
        Self::Attention,
        Self::Aaren,
    ];
}

/// How words become vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingKind {
    /// GloVe vectors (fine-tuned); unknown words N(0, 0.1²).
    Glove,
    /// One-hot words: a one-hot vector times the first layer's input matrix is a
    /// trainable lookup table, so this is a randomly initialised trainable embedding.
    Onehot,
}

/// A sentiment run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentConfig {
    /// The sequence model.
    pub model: SentimentModel,
    /// The embedding.
    pub embedding: EmbeddingKind,
    /// Hidden width.
    pub hidden: usize,
    /// Reviews are truncated to this many tokens.
    pub max_len: usize,
    /// Reviews per step.
    pub batch_size: usize,
    /// Adam.
    pub optimizer: OptimizerConfig,
    /// Seed.
    pub seed: u64,
}

/// Encoded reviews: token ids `[N, max_len]`, true lengths, labels.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Row-major ids.
    pub ids: Vec<i64>,
    /// Lengths (≥ 1).
    pub lengths: Vec<usize>,
    /// 0/1.
    pub labels: Vec<i64>,
}

/// Tokenises and encodes `reviews` with `vocab`, truncating to `max_len`.
pub fn encode(reviews: &[Review], vocab: &Vocabulary, max_len: usize) -> Encoded {
    let mut out = Encoded {
        ids: Vec::with_capacity(reviews.len() * max_len),
        lengths: Vec::with_capacity(reviews.len()),
        labels: Vec::with_capacity(reviews.len()),
    };
    for r in reviews {
        let tokens = tokenize(&r.text);
        out.lengths.push(tokens.len().clamp(1, max_len));
        out.ids
            .extend(vocab.encode(&tokens, max_len).into_iter().map(|i| i as i64));
        out.labels.push(i64::from(r.label));
    }
    out
}

/// The network.
#[derive(Module, Debug)]
pub struct SentimentNet {
    /// Word vectors.
    pub embedding: Embedding,
    /// Recurrent models.
    pub recurrent: Option<Recurrent>,
    /// Attention pooling.
    pub attention: Option<MultiHeadAttention>,
    /// The pooling query, `[1, E]`.
    pub query: Option<Param<Tensor<2>>>,
    /// Aaren.
    pub aaren: Option<Aaren>,
    /// Features → 2 classes.
    pub classifier: TorchLinear,
}

impl SentimentNet {
    /// Builds the network; `glove` rows initialise the embedding when given.
    pub fn new(
        config: &SentimentConfig,
        vocab_len: usize,
        glove: Option<(&[f32], usize)>,
        device: &Device,
    ) -> Result<Self> {
        let dim = match glove {
            Some((_, d)) => d,
            None => config.hidden,
        };
        let mut embedding = EmbeddingConfig::new(vocab_len, dim)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.1,
            })
            .init(device);
        if let Some((rows, d)) = glove {
            let t = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [vocab_len, d]), device);
            embedding.weight = Param::from_tensor(t);
        }
        let h = config.hidden;
        let (kind, bi) = match config.model {
            SentimentModel::Rnn => (Some(RecurrentKind::Rnn), false),
            SentimentModel::Lstm => (Some(RecurrentKind::Lstm), false),
            SentimentModel::Gru => (Some(RecurrentKind::Gru), false),
            SentimentModel::Birnn => (Some(RecurrentKind::Rnn), true),
            SentimentModel::Bilstm => (Some(RecurrentKind::Lstm), true),
            SentimentModel::Bigru => (Some(RecurrentKind::Gru), true),
            _ => (None, false),
        };
        let recurrent = kind
            .map(|k| {
                RecurrentConfig::new(k, dim, h)
                    .with_bidirectional(bi)
                    .init(device)
            })
            .transpose()?;
        let heads = if dim % 2 == 0 { 2 } else { 1 };
        let (attention, query) = if config.model == SentimentModel::Attention {
            (
                Some(MultiHeadAttentionConfig::new(dim, heads).init(device)?),
                Some(
                    Initializer::Normal {
                        mean: 0.0,
                        std: 1.0,
                    }
                    .init([1, dim], device),
                ),
            )
        } else {
            (None, None)
        };
        let aaren = (config.model == SentimentModel::Aaren)
            .then(|| AarenConfig::new(dim, heads).init(device))
            .transpose()?;
        let features = match config.model {
            SentimentModel::Attention | SentimentModel::Aaren => dim,
            _ if bi => 2 * h,
            _ => h,
        };
        Ok(Self {
            embedding,
            recurrent,
            attention,
            query,
            aaren,
            classifier: TorchLinearConfig::new(features, 2).init(device),
        })
    }

    /// The network saved in a checkpoint of task `imdb` (as
    /// [`SentimentTraining::save_checkpoint`] writes), with its config.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        path: &Path,
        device: &Device,
    ) -> Result<(SentimentConfig, Self)> {
        let bad = |why: String| AttnError::Format {
            path: path.to_path_buf(),
            why,
        };
        if ckpt.header.task != "imdb" {
            return Err(bad(format!(
                "expected a checkpoint of task `imdb`, got `{}`",
                ckpt.header.task
            )));
        }
        let config: SentimentConfig = serde_json::from_value(ckpt.header.config.clone())
            .map_err(|e| bad(format!("imdb config in the header: {e}")))?;
        let size = |key: &str| {
            ckpt.header.extra[key]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("`{key}` missing from the header")))
        };
        let (vocab_len, dim) = (size("vocab_len")?, size("embedding_dim")?);
        let zeros = vec![0.0; vocab_len * dim];
        let net = Self::new(&config, vocab_len, Some((&zeros, dim)), device)?;
        Ok((config, ckpt.load_model(net, path)?))
    }

    /// Class logits.
    ///
    /// - `ids`: `[B, L]` token ids (0 = padding); `lengths`: true lengths
    /// - returns: `[B, 2]`
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Result<Tensor<2>> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let x = self.embedding.forward(ids);
        let pad: Vec<bool> = lengths
            .iter()
            .flat_map(|&n| (0..l).map(move |t| t >= n))
            .collect();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, l]), &device);
        let features = if let Some(rnn) = &self.recurrent {
            // Final state of each direction, concatenated: [dirs, B, H] → [B, dirs·H].
            let h_n = rnn.forward(x, Some(lengths))?.h_n;
            let [dirs, _, h] = h_n.dims();
            h_n.swap_dims(0, 1).reshape([b, dirs * h])
        } else if let (Some(att), Some(q)) = (&self.attention, &self.query) {
            let e = x.dims()[2];
            let q = q.val().unsqueeze_dim::<3>(0).expand([b, 1, e]);
            att.forward(
                q,
                x.clone(),
                x,
                &AttentionMask::none().with_key_padding(pad),
            )?
            .output
            .reshape([b, e])
        } else if let Some(aaren) = &self.aaren {
            let out = aaren.forward(x, Some(&pad))?;
            let e = out.dims()[2];
            let idx: Vec<i64> = lengths.iter().map(|&n| (n - 1) as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device)
                .reshape([b, 1, 1])
                .expand([b, 1, e]);
            out.gather(1, idx).reshape([b, e])
        } else {
            return Err(AttnError::Config("no sequence model configured".into()));
        };
        self.classifier.forward(features)
    }
}

/// A sentiment run: data encoded once, then epochs of shuffled mini-batches.
pub struct SentimentTraining {
    config: SentimentConfig,
    model: SentimentNet,
    optimizer: Optimizer,
    device: Device,
    rng: SplitMix64,
    train: Encoded,
    steps: u64,
}

impl std::fmt::Debug for SentimentTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentimentTraining")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SentimentTraining {
    /// Sets up a run on encoded training data.
    pub fn new(
        config: SentimentConfig,
        vocab: &Vocabulary,
        glove: Option<&Glove>,
        train: Encoded,
        device: &Device,
    ) -> Result<Self> {
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let rows = glove.map(|g| {
            let (m, _) = g.embedding_matrix(
                vocab,
                Oov::Random {
                    std: 0.1,
                    seed: config.seed,
                },
            );
            (m, g.dim())
        });
        let model = SentimentNet::new(
            &config,
            vocab.len(),
            rows.as_ref().map(|(m, d)| (m.as_slice(), *d)),
            &device,
        )?;
        materialize(&model);
        Ok(Self {
            optimizer: config.optimizer.init()?,
            rng: SplitMix64::new(config.seed),
            config,
            model,
            device,
            train,
            steps: 0,
        })
    }

    /// The network being trained.
    pub fn model(&self) -> &SentimentNet {
        &self.model
    }

    /// Saves the network (and the optimizer's state) at `path` atomically; the header
    /// holds the config, the vocabulary size and the embedding width, which is what
    /// [`SentimentNet::from_checkpoint`] needs to rebuild it.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let [vocab_len, dim] = self.model.embedding.weight.val().dims();
        let (state, spare) = self.rng.snapshot();
        let header = CheckpointHeader {
            task: "imdb".into(),
            config: serde_json::json!(self.config),
            step: self.steps,
            rng_state: state,
            rng_spare: spare,
            extra: serde_json::json!({"vocab_len": vocab_len, "embedding_dim": dim}),
            lengths: [0, 0],
            checksum: String::new(),
        };
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)?.save(path)
    }

    /// Trainable parameters.
    pub fn num_params(&self) -> usize {
        self.model.num_params()
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn batch(
        &self,
        data: &Encoded,
        rows: &[usize],
        device: &Device,
    ) -> (Tensor<2, Int>, Vec<usize>, Tensor<1, Int>) {
        let l = self.config.max_len;
        let mut ids = Vec::with_capacity(rows.len() * l);
        let mut lengths = Vec::with_capacity(rows.len());
        let mut labels = Vec::with_capacity(rows.len());
        for &r in rows {
            ids.extend_from_slice(&data.ids[r * l..(r + 1) * l]);
            lengths.push(data.lengths[r]);
            labels.push(data.labels[r]);
        }
        let n = rows.len();
        (
            Tensor::from_data(TensorData::new(ids, [n, l]), device),
            lengths,
            Tensor::from_data(TensorData::new(labels, [n]), device),
        )
    }

    /// One epoch over the encoded training data, shuffled by the run's own generator
    /// (reproducible, and bit-identical on resume); calls
    /// `progress(step_in_epoch, steps_in_epoch, loss)` after each step. Returns the mean
    /// training loss and accuracy.
    pub fn epoch(&mut self, mut progress: impl FnMut(usize, usize, f64)) -> Result<(f64, f64)> {
        let n = self.train.labels.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        let chunks: Vec<&[usize]> = order.chunks(self.config.batch_size).collect();
        let (mut loss_sum, mut acc_sum) = (0.0, 0.0);
        for (k, rows) in chunks.iter().enumerate() {
            let (ids, lengths, labels) = self.batch(&self.train, rows, &self.device);
            let (l, a) = self.train_batch(ids, &lengths, labels)?;
            loss_sum += l;
            acc_sum += a;
            progress(k + 1, chunks.len(), l);
        }
        let m = chunks.len().max(1) as f64;
        Ok((loss_sum / m, acc_sum / m))
    }

    /// One epoch from a Burn data loader (see [`crate::data::ReviewLoaderConfig`]),
    /// whose workers tokenize and batch while the model trains. Batches must be on
    /// [`SentimentTraining::device`]. With workers the batch order varies from run to
    /// run; [`SentimentTraining::epoch`] is the reproducible path.
    pub fn epoch_from(
        &mut self,
        loader: &dyn DataLoader<ReviewBatch>,
        mut progress: impl FnMut(usize, usize, f64),
    ) -> Result<(f64, f64)> {
        let steps = loader.num_items().div_ceil(self.config.batch_size.max(1));
        let (mut loss_sum, mut acc_sum, mut k) = (0.0, 0.0, 0);
        for batch in loader.iter() {
            let batch = batch.map_err(|e| AttnError::Config(format!("data loader: {e}")))?;
            let (l, a) = self.train_batch(batch.ids, &batch.lengths, batch.labels)?;
            loss_sum += l;
            acc_sum += a;
            k += 1;
            progress(k, steps.max(k), l);
        }
        let m = k.max(1) as f64;
        Ok((loss_sum / m, acc_sum / m))
    }

    /// One optimizer step on a batch: `ids` `[B, L]`, true `lengths`, `labels` `[B]`.
    /// Returns the batch's loss and accuracy (before the step).
    pub fn train_batch(
        &mut self,
        ids: Tensor<2, Int>,
        lengths: &[usize],
        labels: Tensor<1, Int>,
    ) -> Result<(f64, f64)> {
        let logits = self.model.forward(ids, lengths)?;
        let acc = accuracy(logits.clone().detach(), labels.clone());
        let loss = cross_entropy(logits, labels)?;
        let l = loss.clone().into_scalar::<f32>() as f64;
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.steps += 1;
        Ok((l, acc))
    }

    /// The device batches must be on (the training device).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Accuracy on encoded reviews.
    pub fn evaluate(&self, data: &Encoded) -> Result<f64> {
        let model = self.model.valid();
        let device = model.classifier.weight.val().device();
        let n = data.labels.len();
        let rows: Vec<usize> = (0..n).collect();
        let mut correct = 0.0;
        for chunk in rows.chunks(256) {
            let (ids, lengths, labels) = self.batch(data, chunk, &device);
            correct += accuracy(model.forward(ids, &lengths)?, labels) * chunk.len() as f64;
        }
        Ok(correct / n.max(1) as f64)
    }
}
