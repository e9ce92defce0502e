//! SGD with momentum and Adam, with PyTorch's semantics and defaults.

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{AttnError, Result};

/// Which optimizer, with its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD(lr, momentum)`: v ← μ·v + g, p ← p − lr·v (no dampening, no
    /// Nesterov, as PyTorch's defaults).
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum μ (0 = plain SGD).
        momentum: f64,
    },
    /// `torch.optim.Adam(lr)` with β = (0.9, 0.999), ε = 1e-8 (PyTorch's defaults).
    Adam {
        /// Learning rate.
        lr: f64,
    },
}

impl OptimizerConfig {
    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adam { lr } => *lr,
        }
    }

    /// Creates the optimizer after checking the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if the learning rate is not a positive number or the momentum is outside [0, 1).
    pub fn init(&self) -> Result<Optimizer> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(AttnError::Config(format!(
                "learning rate must be a positive number, got {lr}"
            )));
        }
        let inner = match *self {
            Self::Sgd { momentum, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(AttnError::Config(format!(
                        "momentum must be in [0, 1), got {momentum}"
                    )));
                }
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                });
                SgdConfig::new().with_momentum(momentum).init()
            }
            Self::Adam { .. } => AdamConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .init(),
        };
        Ok(Optimizer {
            config: *self,
            inner,
        })
    }
}

/// An optimizer and its state (momenta), which checkpoints save and restore.
pub struct Optimizer {
    config: OptimizerConfig,
    inner: ModuleOptimizer,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Optimizer {
    /// The hyperparameters.
    pub fn config(&self) -> OptimizerConfig {
        self.config
    }

    /// Back-propagates `loss` (a scalar of `module`'s autodiff graph) and updates
    /// `module`'s parameters.
    pub fn step<M: Module>(&mut self, module: M, loss: Tensor<1>) -> M {
        let grads = GradientsParams::from_grads(loss.backward(), &module);
        self.inner.step(self.config.lr(), module, grads)
    }

    /// The optimizer state as bytes (for a checkpoint).
    ///
    /// # Errors
    ///
    /// If Burn cannot serialise the state.
    pub fn state_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self.inner.into_bytes().map_err(|e| AttnError::Value {
            what: "optimizer state".into(),
            why: format!("cannot serialise: {e:?}"),
        })?;
        Ok(bytes.to_vec())
    }

    /// Restores the state written by [`state_bytes`](Self::state_bytes).
    ///
    /// # Errors
    ///
    /// If `bytes` are not an optimizer state written by [`Optimizer::state_bytes`].
    pub fn load_state_bytes(self, bytes: Vec<u8>) -> Result<Self> {
        let inner = self
            .inner
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| AttnError::Value {
                what: "optimizer state".into(),
                why: format!("cannot restore: {e:?}"),
            })?;
        Ok(Self {
            config: self.config,
            inner,
        })
    }
}
