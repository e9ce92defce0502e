//! The counting network: embedding, learnable positional encoding, one encoder layer,
//! a decoder of one attention block with a learned query, a linear classifier.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

use super::{CountConfig, Mixer};
use crate::aaren::{AarenEncoderBlock, AarenEncoderConfig};
use crate::attention::{
    AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig, TransformerEncoderLayer,
    TransformerEncoderLayerConfig,
};
use crate::error::Result;
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::positional::{LearnablePositionalEncoding, LearnablePositionalEncodingConfig};

/// The counting network.
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
    ///
    /// # Errors
    ///
    /// If the configuration is out of range.
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
    ///
    /// # Errors
    ///
    /// If `tokens` has more than `seq_len + 2` positions.
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
