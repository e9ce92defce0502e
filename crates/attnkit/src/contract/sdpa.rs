//! `sdpa`: scaled dot-product attention on given Q, K, V.

use serde::Deserialize;

use super::{Call, ModuleConfig};
use crate::attention::{ScaledDotProductAttentionConfig, mask_from_floats};
use crate::error::{AttnError, Result, check_result_size};
use crate::store::TensorStore;

/// The `sdpa` config: `causal` (default false) and `scale` (default 1/√D).
#[derive(Debug, Clone, Deserialize)]
pub struct SdpaContract {
    /// Query i sees keys j ≤ i (top-left aligned, as PyTorch's `is_causal`).
    #[serde(default)]
    pub causal: bool,
    /// Multiplies Q·Kᵀ; `None` means 1/√D.
    #[serde(default)]
    pub scale: Option<f64>,
}

impl ModuleConfig for SdpaContract {
    const KEYS: &'static [&'static str] = &["causal", "scale"];

    fn check(&self, module: &str) -> Result<()> {
        match self.scale {
            Some(s) if !s.is_finite() => Err(AttnError::Config(format!(
                "`{module}`: scale must be finite, got {s}"
            ))),
            _ => Ok(()),
        }
    }
}

pub(super) fn run(call: &mut Call<'_>) -> Result<TensorStore> {
    let cfg: SdpaContract = call.config()?;
    if let Some(w) = call.weights
        && !w.is_empty()
    {
        call.warnings.push(format!(
            "`sdpa` has no weights; ignoring the {} tensors of {}",
            w.len(),
            w.source()
        ));
    }
    call.weights = None;
    let q = call.input("query", [None; 4], ["B", "H", "Lq", "D"])?;
    let [b, h, _, d] = q.dims();
    let k = call.input(
        "key",
        [Some(b), Some(h), None, Some(d)],
        ["B", "H", "Lk", "D"],
    )?;
    let lk = k.dims()[2];
    check_result_size(
        "`sdpa` attention weights [B, H, Lq, Lk]",
        &[b, h, q.dims()[2], lk],
    )?;
    let v = call.input(
        "value",
        [Some(b), Some(h), Some(lk), None],
        ["B", "H", "Lk", "Dv"],
    )?;
    let mask = call
        .optional_input("key_padding_mask", [Some(b), Some(lk)], ["B", "Lk"])?
        .map(|m| mask_from_floats("key_padding_mask", m))
        .transpose()?;
    let module = ScaledDotProductAttentionConfig::new()
        .with_causal(cfg.causal)
        .with_scale(cfg.scale)
        .init(call.device);
    let out = module.forward(q, k, v, mask)?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("output", out.context);
    store.insert_tensor("weights", out.weights);
    Ok(store)
}
