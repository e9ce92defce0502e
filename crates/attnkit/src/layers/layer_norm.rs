//! PyTorch names for Burn's `LayerNorm`.
//!
//! Burn calls the scale and shift `gamma` and `beta`; PyTorch calls them `weight` and
//! `bias`. These two functions translate, so blocks that contain a LayerNorm load
//! PyTorch state dicts directly.

use burn::nn::LayerNorm;

use crate::error::Result;
use crate::store::{TensorStore, load_param};

/// Loads `prefix + "weight"` into `gamma` and `prefix + "bias"` into `beta`.
///
/// # Errors
///
/// [`AttnError::MissingTensor`](crate::AttnError::MissingTensor) or [`AttnError::Shape`](crate::AttnError::Shape) for an absent or misshapen weight
/// or bias.
pub fn load_layer_norm(norm: LayerNorm, store: &TensorStore, prefix: &str) -> Result<LayerNorm> {
    let mut norm = norm;
    norm.gamma = load_param(norm.gamma, store, &format!("{prefix}weight"))?;
    if let Some(beta) = norm.beta.take() {
        norm.beta = Some(load_param(beta, store, &format!("{prefix}bias"))?);
    }
    Ok(norm)
}

/// Writes `gamma` as `prefix + "weight"` and `beta` as `prefix + "bias"`.
pub fn save_layer_norm(norm: &LayerNorm, store: &mut TensorStore, prefix: &str) {
    store.insert_tensor(format!("{prefix}weight"), norm.gamma.val());
    if let Some(beta) = &norm.beta {
        store.insert_tensor(format!("{prefix}bias"), beta.val());
    }
}
