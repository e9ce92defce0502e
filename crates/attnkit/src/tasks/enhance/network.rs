//! The enhancement network: features → mask, frame by frame, causal.

use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::{BINS, EnhanceConfig, TemporalModel};
use crate::aaren::{AarenEncoder, AarenEncoderConfig};
use crate::attention::{AttentionMask, TransformerEncoderLayer, TransformerEncoderLayerConfig};
use crate::error::{AttnError, Result, check_shape};
use crate::layers::{TorchLinear, TorchLinearConfig};
use crate::recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use crate::store::{TensorStore, TorchWeights};

/// Names: `input.*`, then `aaren.layers.{i}.*`, `gru.*` (as `nn.GRU`) or
/// `attention.{i}.*` (as `nn.TransformerEncoderLayer`), then `output.*`.
#[derive(Module, Debug)]
pub struct Enhancer {
    /// Features (161) → width, followed by a ReLU.
    pub input: TorchLinear,
    /// Aaren blocks.
    pub aaren: Option<AarenEncoder>,
    /// Stacked GRU.
    pub gru: Option<Recurrent>,
    /// Causal Transformer encoder layers.
    pub attention: Vec<TransformerEncoderLayer>,
    /// Width → 161 gains (before the sigmoid).
    pub output: TorchLinear,
}

impl Enhancer {
    /// Creates the network `config` describes on `device`.
    ///
    /// # Errors
    ///
    /// [`crate::AttnError::Config`] if the configuration is out of range.
    pub fn new(config: &EnhanceConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let e = config.width;
        let (mut aaren, mut gru, mut attention) = (None, None, Vec::new());
        match config.model {
            TemporalModel::Aaren => {
                aaren = Some(
                    AarenEncoderConfig::new(e, config.heads)
                        .with_ff_dim(config.ff_dim)
                        .with_dropout(0.0)
                        .with_num_layers(config.layers)
                        .with_forgetting(config.forgetting)
                        .init(device)?,
                );
            }
            TemporalModel::Gru => {
                gru = Some(
                    RecurrentConfig::new(RecurrentKind::Gru, e, e)
                        .with_num_layers(config.layers)
                        .init(device)?,
                );
            }
            TemporalModel::Attention => {
                for _ in 0..config.layers {
                    attention.push(
                        TransformerEncoderLayerConfig::new(e, config.heads, config.ff_dim)
                            .init(device)?,
                    );
                }
            }
        }
        Ok(Self {
            input: TorchLinearConfig::new(BINS, e).init(device),
            aaren,
            gru,
            attention,
            output: TorchLinearConfig::new(e, BINS).init(device),
        })
    }

    /// The temporal layers' input for every frame: ReLU(input(features)).
    pub(crate) fn embed(&self, features: Tensor<3>) -> Result<Tensor<3>> {
        Ok(relu(self.input.forward(features)?))
    }

    /// The gain of every bin of every frame.
    ///
    /// - `features`: `[B, T, 161]` ([`super::feature`] of each bin)
    /// - returns: `[B, T, 161]` gains in (0, 1); frame t depends on frames ≤ t only
    ///
    /// # Errors
    ///
    /// [`crate::AttnError::Shape`] if `features` is not `[B, T, 161]`.
    pub fn forward(&self, features: Tensor<3>) -> Result<Tensor<3>> {
        check_shape(
            "features",
            &features.dims(),
            &[None, None, Some(BINS)],
            &["B", "T", "bins"],
        )?;
        let mut x = self.embed(features)?;
        if let Some(aaren) = &self.aaren {
            x = aaren.forward(x, None)?;
        }
        if let Some(gru) = &self.gru {
            x = gru.forward(x, None)?.output;
        }
        if !self.attention.is_empty() {
            let mask = AttentionMask::none().with_causal(true);
            for layer in &self.attention {
                x = layer.forward(x, &mask)?;
            }
        }
        Ok(sigmoid(self.output.forward(x)?))
    }

    /// Parameters.
    pub fn parameters(&self) -> usize {
        self.num_params()
    }

    /// The weights (PyTorch-style names, see the type's docs) with `config` as JSON in
    /// the metadata under [`CONFIG_KEY`]: what `attnkit enhance --checkpoint` reads. The
    /// file describes the network, not its training: `config.init` is left out.
    pub fn to_store(&self, config: &EnhanceConfig) -> TensorStore {
        let mut store = TensorStore::new("the enhancer");
        self.save_weights(&mut store, "");
        let config = EnhanceConfig {
            init: None,
            ..config.clone()
        };
        store.set_metadata(
            CONFIG_KEY,
            serde_json::to_string(&config).expect("the config serialises"),
        );
        store
    }

    /// The network and its configuration from a store [`Enhancer::to_store`] wrote.
    ///
    /// # Errors
    ///
    /// [`crate::AttnError::Value`] if the metadata has no valid configuration; a missing
    /// or misshapen weight's error otherwise.
    pub fn from_store(store: &TensorStore, device: &Device) -> Result<(Self, EnhanceConfig)> {
        let json = store.metadata().get(CONFIG_KEY).ok_or_else(|| AttnError::Value {
            what: "enhancer weights".into(),
            why: format!("no `{CONFIG_KEY}` in the file's metadata: not written by `attnkit train enhance`"),
        })?;
        let config: EnhanceConfig = serde_json::from_str(json).map_err(|e| AttnError::Value {
            what: CONFIG_KEY.into(),
            why: format!("not an enhancement configuration: {e}"),
        })?;
        let model = Self::new(&config, device)?.load_weights(store, "")?;
        Ok((model, config))
    }
}

/// The metadata key of an enhancer's configuration in its weights file.
pub const CONFIG_KEY: &str = "attnkit_enhance_config";

impl TorchWeights for Enhancer {
    fn load_weights(self, store: &TensorStore, prefix: &str) -> Result<Self> {
        let aaren = match self.aaren {
            Some(a) => Some(a.load_weights(store, &format!("{prefix}aaren."))?),
            None => None,
        };
        let gru = match self.gru {
            Some(g) => Some(g.load_weights(store, &format!("{prefix}gru."))?),
            None => None,
        };
        let attention = self
            .attention
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.load_weights(store, &format!("{prefix}attention.{i}.")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            input: self.input.load_weights(store, &format!("{prefix}input."))?,
            aaren,
            gru,
            attention,
            output: self
                .output
                .load_weights(store, &format!("{prefix}output."))?,
        })
    }

    fn save_weights(&self, store: &mut TensorStore, prefix: &str) {
        self.input.save_weights(store, &format!("{prefix}input."));
        if let Some(a) = &self.aaren {
            a.save_weights(store, &format!("{prefix}aaren."));
        }
        if let Some(g) = &self.gru {
            g.save_weights(store, &format!("{prefix}gru."));
        }
        for (i, l) in self.attention.iter().enumerate() {
            l.save_weights(store, &format!("{prefix}attention.{i}."));
        }
        self.output.save_weights(store, &format!("{prefix}output."));
    }
}
