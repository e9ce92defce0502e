//! Additive (Bahdanau) attention (Bahdanau et al. 2015, arXiv 1409.0473).
//!
//! A decoder state q scores each encoder state k_j with a one-hidden-layer network,
//! e_j = vᵀ·tanh(W_q·q + W_k·k_j + b), the weights are a_j = softmax_j(e_j), and the
//! context is c = Σ_j a_j·k_j (encoder states serve as keys and values).

use burn::prelude::*;

use super::scaled_dot_product::AttentionOutput;
use super::softmax::masked_softmax;
use crate::error::{AttnError, Result, check_shape, check_size};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`AdditiveAttention`].
#[derive(Config, Debug)]
pub struct AdditiveAttentionConfig {
    /// Width of the query (decoder state) Dq.
    pub query_dim: usize,
    /// Width of the keys (encoder states) Dk.
    pub key_dim: usize,
    /// Width of the scoring network's hidden layer.
    pub hidden_dim: usize,
}

/// Bahdanau attention. PyTorch names: `query_proj.weight` `[hidden, Dq]`,
/// `key_proj.weight` `[hidden, Dk]`, `key_proj.bias` `[hidden]`, `v.weight` `[1, hidden]`.
#[derive(Module, Debug)]
pub struct AdditiveAttention {
    /// W_q (no bias: the key projection's bias serves both).
    pub query_proj: TorchLinear,
    /// W_k and b.
    pub key_proj: TorchLinear,
    /// v.
    pub v: TorchLinear,
}

impl AdditiveAttentionConfig {
    /// Creates the module on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if a width is 0 or a weight would have more than 2^31
    /// elements.
    pub fn init(&self, device: &Device) -> Result<AdditiveAttention> {
        if self.query_dim == 0 || self.key_dim == 0 || self.hidden_dim == 0 {
            return Err(AttnError::Config(format!(
                "query_dim, key_dim and hidden_dim must be at least 1, got {}, {}, {}",
                self.query_dim, self.key_dim, self.hidden_dim
            )));
        }
        let h = self.hidden_dim;
        for (name, d) in [("query_proj", self.query_dim), ("key_proj", self.key_dim)] {
            check_size(&format!("{name}.weight [hidden_dim, {d}]"), &[h, d])?;
        }
        Ok(AdditiveAttention {
            query_proj: TorchLinearConfig::new(self.query_dim, self.hidden_dim)
                .with_bias(false)
                .init(device),
            key_proj: TorchLinearConfig::new(self.key_dim, self.hidden_dim).init(device),
            v: TorchLinearConfig::new(self.hidden_dim, 1)
                .with_bias(false)
                .init(device),
        })
    }
}

impl AdditiveAttention {
    /// Scores every key against the query and returns the weighted sum of the keys.
    ///
    /// - `query`: `[B, Dq]`
    /// - `keys`: `[B, L, Dk]`
    /// - `key_padding_mask`: optional `[B, L]`, `true` = ignore
    /// - returns `context` `[B, Dk]` and `weights` `[B, L]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(
        &self,
        query: Tensor<2>,
        keys: Tensor<3>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<AttentionOutput<2, 2>> {
        let dq = self.query_proj.d_input();
        let dk = self.key_proj.d_input();
        check_shape("query", &query.dims(), &[None, Some(dq)], &["B", "Dq"])?;
        let [b, _] = query.dims();
        check_shape(
            "keys",
            &keys.dims(),
            &[Some(b), None, Some(dk)],
            &["B", "L", "Dk"],
        )?;
        let l = keys.dims()[1];
        if let Some(m) = &key_padding_mask {
            check_shape(
                "key_padding_mask",
                &m.dims(),
                &[Some(b), Some(l)],
                &["B", "L"],
            )?;
        }
        if b == 0 || l == 0 {
            // Nothing to attend (Burn broadcasts an empty dimension as if it had size 1):
            // the context is a weighted sum of nothing.
            let device = keys.device();
            return Ok(AttentionOutput {
                context: Tensor::zeros([b, dk], &device),
                weights: Tensor::zeros([b, l], &device),
            });
        }
        let hidden = (self.query_proj.forward(query)?.unsqueeze_dim::<3>(1)
            + self.key_proj.forward(keys.clone())?)
        .tanh();
        let scores = self.v.forward(hidden)?.squeeze_dim::<2>(2);
        let weights = masked_softmax(scores, key_padding_mask, 1);
        let context = weights
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(keys)
            .squeeze_dim::<2>(1);
        Ok(AttentionOutput { context, weights })
    }
}

impl TorchWeights for AdditiveAttention {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            query_proj: self
                .query_proj
                .load_weights(store, &format!("{prefix}query_proj."))?,
            key_proj: self
                .key_proj
                .load_weights(store, &format!("{prefix}key_proj."))?,
            v: self.v.load_weights(store, &format!("{prefix}v."))?,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.query_proj
            .save_weights(store, &format!("{prefix}query_proj."));
        self.key_proj
            .save_weights(store, &format!("{prefix}key_proj."));
        self.v.save_weights(store, &format!("{prefix}v."));
    }
}
