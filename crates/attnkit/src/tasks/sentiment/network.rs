//! The sentiment network: word embeddings, a sequence model, a linear classifier.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

use super::{SentimentConfig, SentimentModel};
use crate::aaren::{Aaren, AarenConfig};
use crate::attention::{AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig};
use crate::error::{AttnError, FormatError, Result, check_size};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use crate::train::Checkpoint;

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
    /// On the word vectors and on the features (training only).
    pub dropout: Dropout,
}

impl SentimentNet {
    /// Builds the network; `glove` rows initialise the embedding when given.
    ///
    /// # Errors
    ///
    /// If the configuration is out of range or `glove`'s rows do not fill `[vocab_len, dim]`.
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
            if Some(rows.len()) != vocab_len.checked_mul(d) {
                return Err(AttnError::Config(format!(
                    "embedding rows: expected {vocab_len} × {d} values, got {}",
                    rows.len()
                )));
            }
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
            dropout: DropoutConfig::new(config.dropout).init(),
        })
    }

    /// The network saved in a checkpoint of task `imdb` (as
    /// [`super::SentimentTraining::save_checkpoint`] writes), with its config.
    ///
    /// # Errors
    ///
    /// If the checkpoint is not of task `imdb`, its header lacks the config, `vocab_len` or `embedding_dim`, or its parameters do not fit the network.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        path: &Path,
        device: &Device,
    ) -> Result<(SentimentConfig, Self)> {
        let bad = |why: String| {
            AttnError::File(FormatError::Format {
                path: path.to_path_buf(),
                why,
            })
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
        let elements = check_size("the embedding in the header", &[vocab_len, dim])
            .map_err(|e| bad(e.to_string()))?;
        // The header is not under the checksum: an embedding larger than the parameters
        // the file holds is refused before its zeros are allocated.
        if elements.saturating_mul(4) > ckpt.model.len() {
            return Err(bad(format!(
                "the header's embedding [{vocab_len}, {dim}] needs {} bytes of parameters, \
                 the file holds {}",
                elements.saturating_mul(4),
                ckpt.model.len()
            )));
        }
        let zeros = vec![0.0; elements];
        let net = Self::new(&config, vocab_len, Some((&zeros, dim)), device)?;
        Ok((config, ckpt.load_model(net, path)?))
    }

    /// Class logits.
    ///
    /// - `ids`: `[B, L]` token ids (0 = padding); `lengths`: true lengths
    /// - returns: `[B, 2]`
    ///
    /// # Errors
    ///
    /// If `ids` and `lengths` disagree on the batch, or a length is 0 or over `L`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Result<Tensor<2>> {
        let [b, l] = ids.dims();
        if lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > l) {
            return Err(AttnError::Value {
                what: "lengths".into(),
                why: format!(
                    "expected {b} lengths in 1..={l} (one per review of ids [{b}, {l}]), got {lengths:?}"
                ),
            });
        }
        let device = ids.device();
        let x = self.dropout.forward(self.embedding.forward(ids));
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
        self.classifier.forward(self.dropout.forward(features))
    }
}
