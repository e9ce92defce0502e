//! `external`: external attention with memories `mk` and `mv`.

use serde::Deserialize;

use super::Call;
use crate::attention::ExternalAttentionConfig;
use crate::error::Result;
use crate::store::{TensorStore, TorchWeights};

#[derive(Deserialize)]
struct ExternalConfig {
    d_model: usize,
    memory: usize,
}

pub(super) fn run(call: &mut Call<'_>) -> Result<TensorStore> {
    let cfg: ExternalConfig = call.config(&["d_model", "memory"])?;
    let weights = call.weights(&["mk.weight", "mv.weight"])?;
    let module = ExternalAttentionConfig::new(cfg.d_model)
        .with_memory(cfg.memory)
        .init(call.device)?
        .load_weights(weights, "")?;
    let x = call.input("x", [None, None, Some(cfg.d_model)], ["B", "N", "d"])?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("output", module.forward(x, None)?);
    Ok(store)
}
