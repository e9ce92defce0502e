//! The position-wise feed-forward network of a Transformer block:
//! FFN(x) = linear₂(Dropout(ReLU(linear₁(x)))).

use burn::nn::{Dropout, DropoutConfig, Relu};
use burn::prelude::*;

use super::linear::{TorchLinear, TorchLinearConfig};
use crate::error::{AttnError, Result, check_size};
use crate::store::{TensorStore, TorchWeights};

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Input and output width E.
    pub d_model: usize,
    /// Hidden width.
    pub d_hidden: usize,
    /// Dropout after the activation (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// Two linear layers with a ReLU between. Names: `linear1.*`, `linear2.*` (as
/// `nn.TransformerEncoderLayer`).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// E → hidden.
    pub linear1: TorchLinear,
    /// hidden → E.
    pub linear2: TorchLinear,
    dropout: Dropout,
    activation: Relu,
}

impl FeedForwardConfig {
    /// Creates the network on `device` (weights initialised as `nn.Linear`).
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if a width is 0, dropout is outside [0, 1), or a weight
    /// would have more than 2^31 elements.
    pub fn init(&self, device: &Device) -> Result<FeedForward> {
        if self.d_model == 0 || self.d_hidden == 0 {
            return Err(AttnError::Config(format!(
                "d_model and d_hidden must be at least 1, got {} and {}",
                self.d_model, self.d_hidden
            )));
        }
        check_size(
            &format!(
                "linear1.weight [d_hidden, d_model] with d_hidden = {}, d_model = {}",
                self.d_hidden, self.d_model
            ),
            &[self.d_hidden, self.d_model],
        )?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(AttnError::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(FeedForward {
            linear1: TorchLinearConfig::new(self.d_model, self.d_hidden).init(device),
            linear2: TorchLinearConfig::new(self.d_hidden, self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: Relu::new(),
        })
    }
}

impl FeedForward {
    /// Applies the network to the last axis.
    ///
    /// - `x`: `[B, L, E]`
    /// - returns: `[B, L, E]`
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if the last axis of `x` is not `d_model`.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let hidden = self
            .dropout
            .forward(self.activation.forward(self.linear1.forward(x)?));
        self.linear2.forward(hidden)
    }
}

impl TorchWeights for FeedForward {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            linear1: self
                .linear1
                .load_weights(store, &format!("{prefix}linear1."))?,
            linear2: self
                .linear2
                .load_weights(store, &format!("{prefix}linear2."))?,
            dropout: self.dropout,
            activation: self.activation,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.linear1
            .save_weights(store, &format!("{prefix}linear1."));
        self.linear2
            .save_weights(store, &format!("{prefix}linear2."));
    }
}
