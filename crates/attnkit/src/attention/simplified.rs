//! Simplified self-attention: multi-head self-attention without the Q/K/V projections.
//!
//! The input itself, split into heads, serves as queries, keys and values, so the
//! attention map is computed directly from the features (fewer parameters and one
//! matmul less per token); an output projection, a residual connection and LayerNorm
//! follow as in the full block: y = LayerNorm(x + Dropout(fc(combine(SDPA(x_h, x_h, x_h))))).
//! Because Q = K, each token's largest score tends to be with itself: a property (and a
//! limitation) of this simplification.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::heads::{check_embedding, combine_heads, split_heads};
use super::mask::AttentionMask;
use super::scaled_dot_product::attend;
use crate::error::{AttnError, Result, check_size};
use crate::layers::{TorchLinear, TorchLinearConfig, load_layer_norm, save_layer_norm};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`SimplifiedSelfAttention`].
#[derive(Config, Debug)]
pub struct SimplifiedSelfAttentionConfig {
    /// Embedding width E.
    pub embed_dim: usize,
    /// Number of heads; must divide E. Default: 8.
    #[config(default = 8)]
    pub num_heads: usize,
    /// Dropout on weights and output (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// Self-attention with no Q/K/V projections.
///
/// PyTorch names: `fc.weight` `[E, E]`, `fc.bias` `[E]`, `layer_norm.weight`,
/// `layer_norm.bias`.
#[derive(Module, Debug)]
pub struct SimplifiedSelfAttention {
    /// Output projection.
    pub fc: TorchLinear,
    /// Normalisation after the residual sum.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
    num_heads: usize,
}

impl SimplifiedSelfAttentionConfig {
    /// Creates the module on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if `num_heads` does not divide `embed_dim`, or the
    /// `[E, E]` projection would have more than 2^31 elements.
    pub fn init(&self, device: &Device) -> Result<SimplifiedSelfAttention> {
        if self.num_heads == 0 || self.embed_dim % self.num_heads != 0 {
            return Err(AttnError::Config(format!(
                "num_heads must divide embed_dim: embed_dim = {}, num_heads = {}",
                self.embed_dim, self.num_heads
            )));
        }
        let e = self.embed_dim;
        check_size(
            &format!("fc.weight [embed_dim, embed_dim] with embed_dim = {e}"),
            &[e, e],
        )?;
        Ok(SimplifiedSelfAttention {
            fc: TorchLinearConfig::new(self.embed_dim, self.embed_dim).init(device),
            layer_norm: LayerNormConfig::new(self.embed_dim).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            num_heads: self.num_heads,
        })
    }
}

impl SimplifiedSelfAttention {
    /// Applies the layer.
    ///
    /// - `x`: `[B, L, E]`
    /// - `mask`: key padding `[B, L]` and/or causal
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: &AttentionMask) -> Result<Tensor<3>> {
        let e = self.fc.d_input();
        check_embedding("x", &x, e)?;
        let heads = split_heads(x.clone(), self.num_heads)?;
        let scale = 1.0 / ((e / self.num_heads) as f64).sqrt();
        let attn = attend(
            heads.clone(),
            heads.clone(),
            heads,
            mask,
            scale,
            Some(&self.dropout),
        )?;
        let out = self.fc.forward(combine_heads(attn.context))?;
        Ok(self.layer_norm.forward(x + self.dropout.forward(out)))
    }
}

impl TorchWeights for SimplifiedSelfAttention {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            fc: self.fc.load_weights(store, &format!("{prefix}fc."))?,
            layer_norm: load_layer_norm(self.layer_norm, store, &format!("{prefix}layer_norm."))?,
            ..self
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.fc.save_weights(store, &format!("{prefix}fc."));
        save_layer_norm(&self.layer_norm, store, &format!("{prefix}layer_norm."));
    }
}
