//! External attention (Guo et al. 2021, arXiv 2105.02358): attention against two small
//! learned memories shared by all samples, linear in the sequence length.
//!
//! A = x·M_kᵀ `[B, N, S]`; A ← softmax over the N axis (each memory slot distributes its
//! attention over the tokens); A ← A / Σ_S A (each token's row normalised over the
//! slots: the "double normalisation"); output = A·M_vᵀ `[B, N, d]`.

use burn::nn::Initializer;
use burn::prelude::*;

use super::heads::check_embedding;
use super::softmax::masked_softmax;
use crate::error::{AttnError, Result, check_shape, check_size};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`ExternalAttention`].
#[derive(Config, Debug)]
pub struct ExternalAttentionConfig {
    /// Feature width d.
    pub d_model: usize,
    /// Memory size S. Default: 64 (the paper's).
    #[config(default = 64)]
    pub memory: usize,
}

/// External attention with memories `mk` `[S, d]` and `mv` `[d, S]` (bias-free linear
/// layers; PyTorch names `mk.weight`, `mv.weight`). Initialised N(0, 0.001²) as the
/// paper's code does.
#[derive(Module, Debug)]
pub struct ExternalAttention {
    /// Key memory, `d → S`.
    pub mk: TorchLinear,
    /// Value memory, `S → d`.
    pub mv: TorchLinear,
}

impl ExternalAttentionConfig {
    /// Creates the module on `device`.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if `d_model` or `memory` is 0, or the memories would have
    /// more than 2^31 elements each.
    pub fn init(&self, device: &Device) -> Result<ExternalAttention> {
        if self.d_model == 0 || self.memory == 0 {
            return Err(AttnError::Config(format!(
                "d_model and memory must be at least 1, got d_model = {}, memory = {}",
                self.d_model, self.memory
            )));
        }
        check_size(
            &format!(
                "mk.weight [memory, d_model] with memory = {}, d_model = {}",
                self.memory, self.d_model
            ),
            &[self.memory, self.d_model],
        )?;
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.001,
        };
        Ok(ExternalAttention {
            mk: TorchLinearConfig::new(self.d_model, self.memory)
                .with_bias(false)
                .with_initializer(init.clone())
                .init(device),
            mv: TorchLinearConfig::new(self.memory, self.d_model)
                .with_bias(false)
                .with_initializer(init)
                .init(device),
        })
    }
}

impl ExternalAttention {
    /// Applies external attention.
    ///
    /// - `x`: `[B, N, d]`
    /// - `key_padding_mask`: optional `[B, N]`, `true` = padding: padded tokens take no
    ///   part in the softmax over N and their output rows are zero
    /// - returns: `[B, N, d]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if an input's shape is not the one above.
    pub fn forward(
        &self,
        x: Tensor<3>,
        key_padding_mask: Option<Tensor<2, Bool>>,
    ) -> Result<Tensor<3>> {
        check_embedding("x", &x, self.mk.d_input())?;
        let [b, n, _] = x.dims();
        let s = self.mk.d_output();
        let mask = match key_padding_mask {
            Some(m) => {
                check_shape(
                    "key_padding_mask",
                    &m.dims(),
                    &[Some(b), Some(n)],
                    &["B", "N"],
                )?;
                Some(m.reshape([b, n, 1]).expand([b, n, s]))
            }
            None => None,
        };
        let attn = masked_softmax(self.mk.forward(x)?, mask, 1);
        // A row can sum to 0 only if every entry underflowed or was masked; dividing it
        // by 1 instead gives the zero row it should be, and changes nothing else.
        let sum = attn.clone().sum_dim(2);
        let sum = sum.clone().mask_fill(sum.equal_elem(0.0), 1.0);
        self.mv.forward(attn / sum)
    }
}

impl TorchWeights for ExternalAttention {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            mk: self.mk.load_weights(store, &format!("{prefix}mk."))?,
            mv: self.mv.load_weights(store, &format!("{prefix}mv."))?,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.mk.save_weights(store, &format!("{prefix}mk."));
        self.mv.save_weights(store, &format!("{prefix}mv."));
    }
}
