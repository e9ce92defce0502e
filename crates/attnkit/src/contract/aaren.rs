//! `aaren`: the Aaren layer of the module contract, `mode` `iterative` (the recurrent cell, token by
//! token) or `parallel` (the prefix scan).

use serde::Deserialize;

use super::{Call, ModuleConfig};
use crate::aaren::{AarenCellConfig, AarenConfig, AarenMode};
use crate::attention::mask_from_floats;
use crate::error::Result;
use crate::store::{TensorStore, TorchWeights};

/// The `aaren` config: `embed_dim`, `num_heads`, `mode` (default `parallel`).
#[derive(Debug, Clone, Deserialize)]
pub struct AarenContract {
    /// E, the model width.
    pub embed_dim: usize,
    /// Heads; E must divide by it.
    pub num_heads: usize,
    /// Iterative cell or parallel scan.
    #[serde(default)]
    pub mode: AarenMode,
}

impl AarenContract {
    /// The weight names, as in the contract.
    pub const WEIGHTS: [&'static str; 5] = [
        "query",
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ];
}

impl ModuleConfig for AarenContract {
    const KEYS: &'static [&'static str] = &["embed_dim", "num_heads", "mode"];

    fn check(&self, _module: &str) -> Result<()> {
        AarenCellConfig::new(self.embed_dim, self.num_heads).validate()
    }
}

pub(super) fn run(call: &mut Call<'_>) -> Result<TensorStore> {
    let cfg: AarenContract = call.config()?;
    let e = cfg.embed_dim;
    let weights = call.weights(&AarenContract::WEIGHTS)?;
    let layer = AarenConfig::new(e, cfg.num_heads)
        .with_mode(cfg.mode)
        .init(call.device)?
        .load_weights(weights, "")?;
    let x = call.input("x", [None, None, Some(e)], ["B", "L", "E"])?;
    let [b, l, _] = x.dims();
    let mask = call
        .optional_input("key_padding_mask", [Some(b), Some(l)], ["B", "L"])?
        .map(|m| mask_from_floats("key_padding_mask", m))
        .transpose()?;
    let output = layer.forward(x, mask.as_ref())?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("output", output);
    Ok(store)
}
