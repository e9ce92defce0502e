//! `mha`: `torch.nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)`.

use serde::Deserialize;

use super::{Call, ModuleConfig};
use crate::attention::{AttentionMask, MultiHeadAttentionConfig, mask_from_floats};
use crate::error::{Result, check_result_size};
use crate::store::{TensorStore, TorchWeights};

/// The `mha` config: `embed_dim` and `num_heads`.
#[derive(Debug, Clone, Deserialize)]
pub struct MhaContract {
    /// E, the model width.
    pub embed_dim: usize,
    /// Heads; E must divide by it.
    pub num_heads: usize,
}

impl MhaContract {
    /// The weight names, as in `nn.MultiheadAttention` (the biases are absent when it
    /// was built with `bias=False`).
    pub const WEIGHTS: [&'static str; 4] = [
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ];
}

impl ModuleConfig for MhaContract {
    const KEYS: &'static [&'static str] = &["embed_dim", "num_heads"];

    fn check(&self, _module: &str) -> Result<()> {
        MultiHeadAttentionConfig::new(self.embed_dim, self.num_heads).validate()
    }
}

pub(super) fn run(call: &mut Call<'_>) -> Result<TensorStore> {
    let cfg: MhaContract = call.config()?;
    let e = cfg.embed_dim;
    let weights = call.weights(&MhaContract::WEIGHTS)?;
    // A module built with `bias=False` has no bias tensors: follow the file.
    let bias = weights.get("in_proj_bias").is_some();
    let mha = MultiHeadAttentionConfig::new(e, cfg.num_heads)
        .with_bias(bias)
        .init(call.device)?
        .load_weights(weights, "")?;
    let query = call.input("query", [None, None, Some(e)], ["B", "Lq", "E"])?;
    let b = query.dims()[0];
    // Key defaults to the query and value to the key (self-attention).
    let key = call
        .optional_input("key", [Some(b), None, Some(e)], ["B", "Lk", "E"])?
        .unwrap_or_else(|| query.clone());
    let lk = key.dims()[1];
    let value = call
        .optional_input("value", [Some(b), Some(lk), Some(e)], ["B", "Lk", "E"])?
        .unwrap_or_else(|| key.clone());
    check_result_size(
        "`mha` attention weights [B, num_heads, Lq, Lk]",
        &[b, cfg.num_heads, query.dims()[1], lk],
    )?;
    let mut mask = AttentionMask::none();
    if let Some(m) = call.optional_input("key_padding_mask", [Some(b), Some(lk)], ["B", "Lk"])? {
        mask = mask.with_key_padding(mask_from_floats("key_padding_mask", m)?);
    }
    let out = mha.forward(query, key, value, &mask)?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("weights", out.mean_weights());
    store.insert_tensor("output", out.output);
    Ok(store)
}
