//! Which keys a query may attend to: padding and causal masks.
//!
//! Masks are boolean tensors where `true` means "ignore this key", matching PyTorch's
//! boolean `key_padding_mask` and the 0/1 float masks of the module contract (1 =
//! ignore). The causal mask is top-left aligned like PyTorch's `is_causal`: query i sees
//! keys j <= i, also when Lq != Lk.

use burn::prelude::*;

use crate::error::{AttnError, Result, check_shape};

/// The masks of one attention call.
#[derive(Debug, Clone, Default)]
pub struct AttentionMask {
    /// `[B, Lk]`, `true` = padding: no query attends to this key.
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Query i attends to keys j <= i only.
    pub causal: bool,
}

impl AttentionMask {
    /// No mask.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a key padding mask `[B, Lk]` (`true` = ignore).
    pub fn with_key_padding(mut self, mask: Tensor<2, Bool>) -> Self {
        self.key_padding = Some(mask);
        self
    }

    /// Sets the causal flag.
    pub fn with_causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// The combined mask, broadcastable to scores `[B, H, Lq, Lk]`: shape `[B, 1, Lq, Lk]`
    /// (or `[1, 1, Lq, Lk]` when only causal), `None` when nothing is masked.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if the key padding mask is not `[B, Lk]` for the given sizes.
    pub fn to_scores_mask(
        &self,
        batch: usize,
        len_q: usize,
        len_k: usize,
        device: &Device,
    ) -> Result<Option<Tensor<4, Bool>>> {
        let padding = match &self.key_padding {
            Some(m) => {
                check_shape(
                    "key_padding_mask",
                    &m.dims(),
                    &[Some(batch), Some(len_k)],
                    &["B", "Lk"],
                )?;
                Some(m.clone().reshape([batch, 1, 1, len_k]))
            }
            None => None,
        };
        let causal = self.causal.then(|| {
            Tensor::<2, Bool>::tril_mask([len_q, len_k], 0, device).reshape([1, 1, len_q, len_k])
        });
        Ok(match (padding, causal) {
            (None, None) => None,
            (Some(p), None) => Some(p),
            (None, Some(c)) => Some(c),
            (Some(p), Some(c)) => Some(
                p.expand([batch, 1, len_q, len_k])
                    .bool_or(c.expand([batch, 1, len_q, len_k])),
            ),
        })
    }

    /// The key padding mask on the host, `[B · Lk]` row-major (`true` = ignore), after
    /// checking its shape; `None` without one.
    pub(crate) fn host_key_padding(&self, batch: usize, len_k: usize) -> Result<Option<Vec<bool>>> {
        self.key_padding
            .as_ref()
            .map(|m| key_padding_on_host(m, batch, len_k))
            .transpose()
    }
}

/// A key padding mask `[B, Lk]` on the host, row-major, after checking its shape.
pub(crate) fn key_padding_on_host(
    mask: &Tensor<2, Bool>,
    batch: usize,
    len_k: usize,
) -> Result<Vec<bool>> {
    check_shape(
        "key_padding_mask",
        &mask.dims(),
        &[Some(batch), Some(len_k)],
        &["B", "Lk"],
    )?;
    // Backends store booleans their own way (bytes on the CPU, 32-bit words on wgpu):
    // read them as integers.
    let ints = mask
        .clone()
        .int()
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| AttnError::Config(format!("key_padding_mask: {e:?}")))?;
    Ok(ints.into_iter().map(|v| v != 0).collect())
}

/// Converts a 0/1 float mask (1 = ignore) to a boolean mask, refusing other values.
///
/// - `mask`: any shape, values 0.0 or 1.0
/// - returns: the same shape, `true` where the value is 1
///
/// # Errors
///
/// [`AttnError::Value`] naming `what` if an entry is neither 0 nor 1.
pub fn mask_from_floats<const D: usize>(what: &str, mask: Tensor<D>) -> Result<Tensor<D, Bool>> {
    let values: Vec<f32> = mask
        .try_to_vec_as::<f32>()
        .expect("float tensors read back as f32");
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| **v != 0.0 && **v != 1.0)
    {
        return Err(AttnError::Value {
            what: what.to_string(),
            why: format!("expected 0/1 values (1 = ignore this key), found {v} at flat index {i}"),
        });
    }
    Ok(mask.equal_elem(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bools(t: Tensor<4, Bool>) -> Vec<bool> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn causal_is_top_left_aligned() {
        let device = Device::flex();
        let m = AttentionMask::none()
            .with_causal(true)
            .to_scores_mask(1, 2, 3, &device)
            .unwrap()
            .unwrap();
        assert_eq!(m.dims(), [1, 1, 2, 3]);
        assert_eq!(bools(m), [false, true, true, false, false, true]);
    }

    #[test]
    fn padding_and_causal_combine() {
        let device = Device::flex();
        let pad = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![true, false, false, false], [2, 2]),
            &device,
        );
        let m = AttentionMask::none()
            .with_key_padding(pad)
            .with_causal(true)
            .to_scores_mask(2, 2, 2, &device)
            .unwrap()
            .unwrap();
        assert_eq!(
            bools(m),
            [true, true, true, false, false, true, false, false]
        );
    }

    #[test]
    fn wrong_padding_shape_is_an_error() {
        let device = Device::flex();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 3], [1, 3]), &device);
        let err = AttentionMask::none()
            .with_key_padding(pad)
            .to_scores_mask(2, 4, 4, &device)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key_padding_mask: expected shape [B=2, Lk=4], got [1, 3]"
        );
    }

    #[test]
    fn float_masks_must_be_zero_or_one() {
        let device = Device::flex();
        let ok = mask_from_floats(
            "m",
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 2]), &device),
        )
        .unwrap();
        assert_eq!(ok.into_data().try_to_vec::<bool>().unwrap(), [false, true]);
        let err = mask_from_floats(
            "key_padding_mask",
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.5], [1, 2]), &device),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key_padding_mask: expected 0/1 values (1 = ignore this key), found 0.5 at flat index 1"
        );
    }
}
