//! `external`: external attention with memories `mk` and `mv`.

use serde::Deserialize;

use super::{Call, ModuleConfig};
use crate::attention::ExternalAttentionConfig;
use crate::error::{Result, check_result_size, check_size};
use crate::store::{TensorStore, TorchWeights};

/// The `external` config: `d_model` and `memory` (S, the number of memory slots).
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalContract {
    /// d, the model width.
    pub d_model: usize,
    /// S, the memory size.
    pub memory: usize,
}

impl ExternalContract {
    /// The weight names, as in the contract.
    pub const WEIGHTS: [&'static str; 2] = ["mk.weight", "mv.weight"];
}

impl ModuleConfig for ExternalContract {
    const KEYS: &'static [&'static str] = &["d_model", "memory"];

    fn check(&self, module: &str) -> Result<()> {
        check_size(
            &format!(
                "`{module}`: mk.weight [memory, d_model] with memory = {}, d_model = {}",
                self.memory, self.d_model
            ),
            &[self.memory, self.d_model],
        )
        .map(drop)
    }
}

pub(super) fn run(call: &mut Call<'_>) -> Result<TensorStore> {
    let cfg: ExternalContract = call.config()?;
    let weights = call.weights(&ExternalContract::WEIGHTS)?;
    let module = ExternalAttentionConfig::new(cfg.d_model)
        .with_memory(cfg.memory)
        .init(call.device)?
        .load_weights(weights, "")?;
    let x = call.input("x", [None, None, Some(cfg.d_model)], ["B", "N", "d"])?;
    let [b, n, _] = x.dims();
    check_result_size(
        "`external` attention map [B, N, memory]",
        &[b, n, cfg.memory],
    )?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("output", module.forward(x, None)?);
    Ok(store)
}
