//! The Transformer encoder layer (post-norm, as `nn.TransformerEncoderLayer` with
//! `batch_first=True, norm_first=False`):
//! y = LayerNorm₁(x + Dropout(MHA(x, x, x))), z = LayerNorm₂(y + Dropout(FFN(y))).

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::mask::AttentionMask;
use super::multi_head::{MultiHeadAttention, MultiHeadAttentionConfig};
use crate::error::{AttnError, Result};
use crate::layers::{FeedForward, FeedForwardConfig, load_layer_norm, save_layer_norm};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`TransformerEncoderLayer`].
#[derive(Config, Debug)]
pub struct TransformerEncoderLayerConfig {
    /// Embedding width E.
    pub embed_dim: usize,
    /// Heads; must divide E.
    pub num_heads: usize,
    /// Hidden width of the feed-forward network (PyTorch's `dim_feedforward`).
    pub ff_dim: usize,
    /// Dropout on the attention weights, after each sub-layer and inside the feed-forward
    /// network (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// LayerNorm epsilon. Default: 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

/// Self-attention and a feed-forward network, each with a residual connection and
/// LayerNorm. Names as `nn.TransformerEncoderLayer`: `self_attn.*`, `linear1.*`,
/// `linear2.*`, `norm1.*`, `norm2.*`.
#[derive(Module, Debug)]
pub struct TransformerEncoderLayer {
    /// Multi-head self-attention.
    pub self_attn: MultiHeadAttention,
    /// The feed-forward network.
    pub ff: FeedForward,
    /// After the attention residual.
    pub norm1: LayerNorm,
    /// After the feed-forward residual.
    pub norm2: LayerNorm,
    dropout: Dropout,
}

impl TransformerEncoderLayerConfig {
    /// Creates the layer on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if dropout is outside [0, 1), or the attention's or the
    /// feed-forward network's config is refused (heads that do not divide E, weights over
    /// 2^31 elements).
    pub fn init(&self, device: &Device) -> Result<TransformerEncoderLayer> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(AttnError::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        let norm = || {
            LayerNormConfig::new(self.embed_dim)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        Ok(TransformerEncoderLayer {
            self_attn: MultiHeadAttentionConfig::new(self.embed_dim, self.num_heads)
                .with_dropout(self.dropout)
                .init(device)?,
            ff: FeedForwardConfig::new(self.embed_dim, self.ff_dim)
                .with_dropout(self.dropout)
                .init(device)?,
            norm1: norm(),
            norm2: norm(),
            dropout: DropoutConfig::new(self.dropout).init(),
        })
    }
}

impl TransformerEncoderLayer {
    /// Applies the layer.
    ///
    /// - `x`: `[B, L, E]`
    /// - `mask`: key padding `[B, L]` and/or causal
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `x` or the mask's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: &AttentionMask) -> Result<Tensor<3>> {
        let attended = self.self_attn.forward_self_context(x.clone(), mask)?;
        let y = self.norm1.forward(x + self.dropout.forward(attended));
        let ff = self.ff.forward(y.clone())?;
        Ok(self.norm2.forward(y + self.dropout.forward(ff)))
    }
}

impl TorchWeights for TransformerEncoderLayer {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            self_attn: self
                .self_attn
                .load_weights(store, &format!("{prefix}self_attn."))?,
            ff: self.ff.load_weights(store, prefix)?,
            norm1: load_layer_norm(self.norm1, store, &format!("{prefix}norm1."))?,
            norm2: load_layer_norm(self.norm2, store, &format!("{prefix}norm2."))?,
            dropout: self.dropout,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.self_attn
            .save_weights(store, &format!("{prefix}self_attn."));
        self.ff.save_weights(store, prefix);
        save_layer_norm(&self.norm1, store, &format!("{prefix}norm1."));
        save_layer_norm(&self.norm2, store, &format!("{prefix}norm2."));
    }
}
