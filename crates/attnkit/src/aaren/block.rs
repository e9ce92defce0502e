//! An encoder block with Aaren in place of self-attention, and a stack of them.
//!
//! y = LayerNorm₁(x + Dropout(Aaren(x))), z = LayerNorm₂(y + Dropout(FFN(y))) with
//! FFN(y) = linear₂(Dropout(ReLU(linear₁(y)))) — `nn.TransformerEncoderLayer`'s post-norm
//! layout with its self-attention swapped for [`Aaren`]. Because every position only
//! sees positions up to it, a stack of these blocks is causal and can run as a stream.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::layer::{Aaren, AarenConfig, AarenMode};
use crate::error::{AttnError, Result, check_size};
use crate::layers::{FeedForward, FeedForwardConfig, load_layer_norm, save_layer_norm};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`AarenEncoderBlock`] and [`AarenEncoder`].
#[derive(Config, Debug)]
pub struct AarenEncoderConfig {
    /// Embedding width E.
    pub embed_dim: usize,
    /// Heads H; must divide E.
    pub num_heads: usize,
    /// Hidden width of the feed-forward network. Default: 4·E is common; the default
    /// here is 2048 like PyTorch's `dim_feedforward`, so set it for small models.
    #[config(default = 2048)]
    pub ff_dim: usize,
    /// Dropout after the Aaren layer, inside and after the feed-forward network
    /// (training only). Default: 0.1 (PyTorch's).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// LayerNorm epsilon. Default: 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// How the Aaren layers compute. Default: fused.
    #[config(default = "AarenMode::Fused")]
    pub mode: AarenMode,
    /// Blocks in an [`AarenEncoder`]. Default: 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// A learned forgetting rate per head in every Aaren layer (beyond the paper; see
    /// [`AarenCellConfig::forgetting`](super::AarenCellConfig::forgetting)). Default: false.
    #[config(default = false)]
    pub forgetting: bool,
}

/// Aaren + residual + LayerNorm, feed-forward + residual + LayerNorm.
///
/// Names: `aaren.*` (as [`Aaren`]), `linear1.*`, `linear2.*` (the feed-forward network),
/// `norm1.*`, `norm2.*`.
#[derive(Module, Debug)]
pub struct AarenEncoderBlock {
    /// The token mixer.
    pub aaren: Aaren,
    /// The feed-forward network (`linear1`, `linear2`).
    pub ff: FeedForward,
    /// After the Aaren residual.
    pub norm1: LayerNorm,
    /// After the feed-forward residual.
    pub norm2: LayerNorm,
    dropout: Dropout,
}

impl AarenEncoderConfig {
    /// Creates one block on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if dropout is outside [0, 1) or the Aaren layer's or the
    /// feed-forward network's config is refused.
    pub fn init_block(&self, device: &Device) -> Result<AarenEncoderBlock> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(AttnError::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        let e = self.embed_dim;
        Ok(AarenEncoderBlock {
            aaren: AarenConfig::new(e, self.num_heads)
                .with_mode(self.mode)
                .with_forgetting(self.forgetting)
                .init(device)?,
            ff: FeedForwardConfig::new(e, self.ff_dim)
                .with_dropout(self.dropout)
                .init(device)?,
            norm1: LayerNormConfig::new(e)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            norm2: LayerNormConfig::new(e)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        })
    }

    /// Creates a stack of `num_layers` blocks on `device`.
    ///
    /// # Errors
    ///
    /// As [`AarenEncoderConfig::init_block`]; also if `num_layers` is 0 or the stack
    /// would have more than 2^31 parameters.
    pub fn init(&self, device: &Device) -> Result<AarenEncoder> {
        if self.num_layers == 0 {
            return Err(AttnError::Config(
                "num_layers must be at least 1, got 0".into(),
            ));
        }
        // The first block checks each part's config on its own (the more precise
        // message); then the stack as a whole.
        let first = self.init_block(device)?;
        // One block: the Aaren layer 4E² + 5E, the feed-forward network 2·E·F + E + F,
        // two layer norms 4E (an upper bound is enough to refuse an absurd stack).
        let (e, f) = (self.embed_dim, self.ff_dim);
        let block = e
            .saturating_mul(e)
            .saturating_mul(4)
            .saturating_add(e.saturating_mul(f).saturating_mul(2))
            .saturating_add(f)
            .saturating_add(e.saturating_mul(10));
        check_size(
            &format!(
                "the parameters of {} blocks [num_layers, one block's]",
                self.num_layers
            ),
            &[self.num_layers, block],
        )?;
        let mut layers = vec![first];
        for _ in 1..self.num_layers {
            layers.push(self.init_block(device)?);
        }
        Ok(AarenEncoder { layers })
    }
}

impl AarenEncoderBlock {
    /// Applies the block.
    ///
    /// - `x`: `[B, L, E]`
    /// - `mask`: `[B, L]`, `true` = padding
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<2, Bool>>) -> Result<Tensor<3>> {
        let mixed = self.aaren.forward(x.clone(), mask)?;
        let y = self.norm1.forward(x + self.dropout.forward(mixed));
        let ff = self.ff.forward(y.clone())?;
        Ok(self.norm2.forward(y + self.dropout.forward(ff)))
    }
}

impl TorchWeights for AarenEncoderBlock {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            aaren: self.aaren.load_weights(store, &format!("{prefix}aaren."))?,
            ff: self.ff.load_weights(store, prefix)?,
            norm1: load_layer_norm(self.norm1, store, &format!("{prefix}norm1."))?,
            norm2: load_layer_norm(self.norm2, store, &format!("{prefix}norm2."))?,
            dropout: self.dropout,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.aaren.save_weights(store, &format!("{prefix}aaren."));
        self.ff.save_weights(store, prefix);
        save_layer_norm(&self.norm1, store, &format!("{prefix}norm1."));
        save_layer_norm(&self.norm2, store, &format!("{prefix}norm2."));
    }
}

/// A stack of [`AarenEncoderBlock`]s. Names: `layers.{i}.*`.
#[derive(Module, Debug)]
pub struct AarenEncoder {
    /// The blocks, applied in order.
    pub layers: Vec<AarenEncoderBlock>,
}

impl AarenEncoder {
    /// Applies every block.
    ///
    /// - `x`: `[B, L, E]`; `mask`: `[B, L]`, `true` = padding
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&Tensor<2, Bool>>) -> Result<Tensor<3>> {
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(x, mask)?;
        }
        Ok(x)
    }
}

impl TorchWeights for AarenEncoder {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        let layers = self
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.load_weights(store, &format!("{prefix}layers.{i}.")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        for (i, l) in self.layers.iter().enumerate() {
            l.save_weights(store, &format!("{prefix}layers.{i}."));
        }
    }
}
