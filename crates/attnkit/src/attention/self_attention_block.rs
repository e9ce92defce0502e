//! The encoder-style self-attention block: multi-head self-attention, dropout, a
//! residual connection and LayerNorm (post-norm, as in the Transformer encoder):
//! y = LayerNorm(x + Dropout(MHA(x, x, x))).

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::mask::AttentionMask;
use super::multi_head::{MultiHeadAttention, MultiHeadAttentionConfig};
use crate::error::Result;
use crate::layers::{load_layer_norm, save_layer_norm};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`SelfAttentionBlock`].
#[derive(Config, Debug)]
pub struct SelfAttentionBlockConfig {
    /// Embedding width E.
    pub embed_dim: usize,
    /// Number of heads; must divide E.
    pub num_heads: usize,
    /// Dropout on the attention weights and on the block's output before the residual
    /// sum (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// LayerNorm epsilon. Default: 1e-5 (PyTorch's).
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

/// Self-attention with residual connection and LayerNorm.
///
/// PyTorch names: `attn.*` (as `nn.MultiheadAttention`), `norm.weight`, `norm.bias`.
#[derive(Module, Debug)]
pub struct SelfAttentionBlock {
    /// The attention.
    pub attn: MultiHeadAttention,
    /// The normalisation after the residual sum.
    pub norm: LayerNorm,
    dropout: Dropout,
}

impl SelfAttentionBlockConfig {
    /// Creates the block on `device`.
    ///
    /// # Errors
    ///
    /// As
    /// [`MultiHeadAttentionConfig::validate`](super::MultiHeadAttentionConfig::validate).
    pub fn init(&self, device: &Device) -> Result<SelfAttentionBlock> {
        Ok(SelfAttentionBlock {
            attn: MultiHeadAttentionConfig::new(self.embed_dim, self.num_heads)
                .with_dropout(self.dropout)
                .init(device)?,
            norm: LayerNormConfig::new(self.embed_dim)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        })
    }
}

impl SelfAttentionBlock {
    /// Applies the block.
    ///
    /// - `x`: `[B, L, E]`
    /// - `mask`: key padding `[B, L]` and/or causal
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`](crate::AttnError::Shape) if an input's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: &AttentionMask) -> Result<Tensor<3>> {
        let attended = self.attn.forward_self_context(x.clone(), mask)?;
        Ok(self.norm.forward(x + self.dropout.forward(attended)))
    }
}

impl TorchWeights for SelfAttentionBlock {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            attn: self.attn.load_weights(store, &format!("{prefix}attn."))?,
            norm: load_layer_norm(self.norm, store, &format!("{prefix}norm."))?,
            dropout: self.dropout,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.attn.save_weights(store, &format!("{prefix}attn."));
        save_layer_norm(&self.norm, store, &format!("{prefix}norm."));
    }
}
